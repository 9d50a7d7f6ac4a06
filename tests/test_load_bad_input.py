"""Bad input: every error names the file, table and column, and leaves nothing half-loaded."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from desivoids.load import LoadError, load, queries
from desivoids.cli import main as cli_main
from desivoids.outputs import write_manifest
from load_fixtures import write_inputs
from sealing import reseal
from test_load import _snapshot

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def loaded(request, tmp_path):
    """A database holding a good load, and the Parquet directory it came from."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'desivoids.sqlite'}"
    else:
        url = request.getfixturevalue("pg_db_url")
    pdir = tmp_path / "parquet"
    write_inputs(pdir, n_galaxies=600, parts=2)
    load(parquet_dir=pdir, db_url=url)
    yield url, pdir, _snapshot(url)
    queries.dispose_engines()


def _rewrite(path, fn):
    t = pq.read_table(path)
    pq.write_table(fn(t), path)


def _set(t: pa.Table, name: str, arr) -> pa.Table:
    i = t.schema.get_field_index(name)
    return t.set_column(i, pa.field(name, arr.type, nullable=True), arr)


CASES = {
    "missing table": (
        lambda p: (p / "holes.parquet").unlink(),
        ("holes.parquet", "holes", None, "missing")),
    "missing column": (
        lambda p: _rewrite(p / "holes.parquet", lambda t: t.drop_columns(["radius"])),
        ("holes.parquet", "holes", "radius", "column missing")),
    "wrong type": (
        lambda p: _rewrite(p / "voids.parquet",
                           lambda t: _set(t, "x", pc.cast(t["x"], pa.float32()))),
        ("voids.parquet", "voids", "x", "float")),
    "unknown column": (
        lambda p: _rewrite(p / "zonevoid.parquet",
                           lambda t: t.append_column("surprise", pa.array([1] * t.num_rows))),
        ("zonevoid.parquet", "zonevoid", "surprise", "not in the convert contract")),
    "unreadable part": (
        lambda p: sorted((p / "galaxies").glob("*.parquet"))[1].write_bytes(b"not parquet" * 9),
        ("part-001-00000.parquet", "galaxies", None, "unreadable Parquet")),
    "null key": (
        lambda p: _rewrite(p / "galzone.parquet", lambda t: _set(
            t, "gal", pa.array([None if i == 17 else v for i, v in
                                enumerate(t["gal"].to_pylist())], pa.int64()))),
        ("galzone.parquet", "galzone", "gal", "row 17")),
    "null in a NOT NULL column": (
        lambda p: _rewrite(sorted((p / "galaxies").glob("*.parquet"))[1], lambda t: _set(
            t, "ra", pa.array([None if i == 4 else v for i, v in
                               enumerate(t["ra"].to_pylist())], pa.float64()))),
        ("part-001-00000.parquet", "galaxies", "ra", "row 4")),
    "duplicate targetid across parts": (
        lambda p: _rewrite(sorted((p / "galaxies").glob("*.parquet"))[1], lambda t: _set(
            t, "targetid", pa.array([pq.read_table(sorted((p / "galaxies").glob("*.parquet"))[0])
                                     ["targetid"][2].as_py() if i == 9 else v
                                     for i, v in enumerate(t["targetid"].to_pylist())],
                                    pa.int64()))),
        ("galaxies", "galaxies", "targetid", "part-000-00000.parquet row 2")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_named_and_nothing_loaded(case, loaded):
    url, pdir, before = loaded
    breaker, (file_part, table, column, words) = CASES[case]
    # change a good table too, so a half-done load would be visible
    _rewrite(pdir / "rejects.parquet", lambda t: t.slice(0, 2))
    breaker(pdir)
    with pytest.raises(LoadError) as err:
        load(parquet_dir=pdir, db_url=url)
    e = err.value
    assert file_part in (e.file or ""), e
    assert e.table == table and e.column == column, e
    assert words in str(e), e
    if case == "duplicate targetid across parts":
        assert "part-001-00000.parquet row 9" in str(e)
    assert _snapshot(url) == before


def test_cli_reports_errors_and_success(tmp_path, capsys):
    write_inputs(tmp_path / "convert", n_galaxies=300, parts=1)
    write_manifest(tmp_path / "convert")  # as convert seals what it publishes (the verb checks it)
    assert cli_main(["load", "-p", "data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "committed run 1" in out and "galaxies" in out
    db = f"sqlite:///{tmp_path / 'database' / 'desivoids.sqlite'}"
    before = _snapshot(db)
    _rewrite(tmp_path / "convert" / "voids.parquet", lambda t: t.drop_columns(["cap"]))
    reseal(tmp_path / "convert" / "voids.parquet")  # bad content, not a bad seal, is under test
    assert cli_main(["load", "-p", "data_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "voids.parquet" in err and "table voids" in err and "column cap" in err
    assert "database was left as it was" in err
    assert _snapshot(db) == before
    queries.dispose_engines()


def test_missing_parquet_dir_never_creates_a_database(tmp_path):
    with pytest.raises(LoadError, match="Parquet directory not found"):
        load(tmp_path)
    assert not (tmp_path / "database").exists()
    write_inputs(tmp_path / "convert", n_galaxies=100, parts=1)
    with pytest.raises(ValueError, match="unsupported database URL"):
        load(tmp_path, "mysql://nobody@127.0.0.1/x")
