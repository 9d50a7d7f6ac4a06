"""A converted and loaded tiny mock run, and copies of it that a test may break."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import convert, load
from desivoids.load.queries import dispose_engines
from sealing import reseal


@pytest.fixture(scope="session")
def loaded_run(tiny_sky, tmp_path_factory) -> Path:
    """<run>/convert and <run>/database of the session's tiny mock sky (read-only: copy it)."""
    root, _ = tiny_sky
    d = tmp_path_factory.mktemp("loaded_tiny")
    convert.run(data_dir=str(d), input_dir=str(root), chunk_rows=2000)
    load.run(data_dir=str(d))
    dispose_engines()
    return d


@pytest.fixture
def run_copy(loaded_run, tmp_path) -> Path:
    """A private copy of the loaded run (its Parquet and its SQLite database)."""
    d = tmp_path / "run"
    for sub in ("convert", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    return d


@pytest.fixture
def selected_copy(loaded_run, tmp_path) -> Path:
    """A private copy of the loaded run (convert, load, database) with plausibility run on it."""
    from desivoids import plausibility

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    plausibility.run(data_dir=str(d))
    dispose_engines()
    return d


def rewrite_parquet(path: Path, edit) -> None:
    """Rewrite a Parquet file with ``edit(table) -> table``, keeping its schema metadata, and
    seal its stage's folder again."""
    t = pq.read_table(path)
    out = edit(t)
    pq.write_table(out.replace_schema_metadata(t.schema.metadata), path)
    reseal(path)  # bad content from the producer itself, not damage after it published


def set_value(t: pa.Table, column: str, row: int, value) -> pa.Table:
    """``t`` with one cell replaced (the column keeps its type)."""
    i = t.schema.get_field_index(column)
    values = t.column(column).to_pylist()
    values[row] = value
    return t.set_column(i, t.schema.field(i), pa.array(values, t.schema.field(i).type))


@pytest.fixture(scope="session")
def analysed(env_run, tiny_sky, tmp_path_factory):
    """A tiny run through systematics (recon included, for the inputs' checksums): what the
    release reads. It continues env_run's run (one chain per session: each stage runs once).
    Tests write their releases into it under their own version names."""
    from desivoids import integrity, recon, systematics
    from desivoids.load.queries import dispose_engines

    root, _ = tiny_sky
    d = tmp_path_factory.mktemp("release") / "run"
    shutil.copytree(env_run[0], d)
    recon.run(data_dir=str(d), input_dir=str(root))
    integrity.run(data_dir=str(d))
    systematics.run(data_dir=str(d), n_patches={"NGC": 8, "SGC": 4})
    dispose_engines()
    return d


@pytest.fixture(scope="session")
def env_run(loaded_run, tmp_path_factory):
    """A tiny run through the environment stage: (run folder, the stage's result). Read-only."""
    from desivoids import environment, plausibility

    d = tmp_path_factory.mktemp("env") / "run"
    for sub in ("convert", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    plausibility.run(data_dir=str(d))
    result = environment.run(data_dir=str(d), randoms=20_000)
    dispose_engines()
    return d, result
