"""The load notebook executed on the tiny mock sky's convert output: it reconciles every table,
lists the indexes, runs the example queries, and nbval re-execution reproduces its outputs."""
from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from desivoids import paths, runner
from desivoids.load import queries
from desivoids.stages import STAGES
from pg_fixtures import pg_db_url, pg_url  # noqa: F401 - fixtures

SANITIZE = paths.ROOT / "tests" / "nbval_sanitize.cfg"


@pytest.fixture(scope="module")
def run_dir(tiny_sky, tmp_path_factory):
    from desivoids.convert import run

    root, _ = tiny_sky
    d = tmp_path_factory.mktemp("nb_load") / "run"
    fast, vast = run.discover(root)
    run.convert_files(fast, vast, d / "parquet", base=root, chunk_rows=5000)
    return d


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            parts.append(data.get("text/plain", "") or o.get("text", ""))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def executed(run_dir):
    out = runner.execute_stage(STAGES["load"], {"data_dir": str(run_dir)},
                               output=run_dir.parent / "04_load.ipynb", progress=False)
    return out


@pytest.mark.slow
def test_notebook_reconciles_and_queries(executed, run_dir):
    text = _text(nbformat.read(executed, as_version=4))
    assert (run_dir / "desivoids.sqlite").is_file()
    assert "database: sqlite" in text
    for name in ("galaxies", "galaxy_positions", "pk_voids", "ix_galaxies_z", "R*Tree",
                 "VoidFinder", "ZOBOV", "sphere galaxies also in the cone"):
        assert name in text, name
    assert "False" not in text.split("match")[1].split("sha256")[0]  # every table reconciles
    queries.dispose_engines()


@pytest.mark.slow
def test_nbval_reproduces_the_outputs(executed):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(executed), "--sanitize-with",
         str(SANITIZE), "-p", "no:cacheprovider", "-q", "-o", "addopts=", "--rootdir",
         str(executed.parent)],
        capture_output=True, text=True, cwd=executed.parent)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.postgres
def test_notebook_on_postgres(run_dir, pg_db_url, tmp_path):
    out = runner.execute_stage(STAGES["load"], {"data_dir": str(run_dir), "db_url": pg_db_url},
                               output=tmp_path / "04_load_pg.ipynb", progress=False)
    text = _text(nbformat.read(out, as_version=4))
    assert "database: postgresql; cone index: q3c" in text
    assert "ix_galaxies_q3c" in text and "GiST (cube)" in text
    assert "sphere galaxies also in the cone" in text
    queries.dispose_engines()
