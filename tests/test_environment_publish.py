"""The environment stage writes galaxy_void_assignments to Parquet and into the database at the
same time (desivoids.environment.stage.AssignmentsPublication, issue 25): the database's insert
in a thread of its own, fed batch by batch by the thread that writes the Parquet file, while
the summary is computed. File and table must hold exactly the rows that a direct construction
gives (Assignment.to_arrow, sorted by the key), whatever the batching; a failure on either side,
or of the summary, must stop both threads and leave the previous table and folder."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import environment, formats
from desivoids.environment import stage
from desivoids.environment.flags import EDGE_VOID, INTERIOR, NO_VOID, UNKNOWN, Assignment
from desivoids.load.queries import dispose_engines
from desivoids.load.tables import table_transaction

pytestmark = pytest.mark.timeout(300)  # a thread left waiting would hang the test, not fail it

KEY = ["targetid", "algorithm", "cap"]


def _result(n: int, seed: int = 3) -> tuple[np.ndarray, dict[str, Assignment]]:
    """Assignments of n galaxies with every sentinel (no void, NaN distance, unknown interior),
    galaxies in shuffled targetid order."""
    rng = np.random.default_rng(seed)
    targetid = rng.permutation(np.arange(10**15, 10**15 + 7 * n, 7, dtype=np.int64))
    out = {}
    for alg in formats.ALGORITHMS:
        flag = rng.choice(np.array([0, 1, 2, 9], np.int8), n)
        void = np.where(flag == 1, rng.integers(0, 50, n), NO_VOID).astype(np.int64)
        dist = np.where(flag == 1, rng.uniform(0, 2, n), np.nan)
        dist[rng.random(n) < 0.1] = np.nan
        interior = np.where(flag == 1, rng.choice(np.array([INTERIOR, EDGE_VOID, UNKNOWN],
                                                           np.int8), n), UNKNOWN).astype(np.int8)
        out[alg] = Assignment(alg, rng.integers(0, 2, n).astype(np.int8), flag, void, dist,
                              interior)
    return targetid, out


def _expected(targetid, result) -> pd.DataFrame:
    """The rows built independently of the batching: one to_arrow table per algorithm."""
    t = pa.concat_tables([r.to_arrow(targetid) for r in result.values()])
    return t.to_pandas().sort_values(KEY, ignore_index=True)


def _db_table(d: Path, name: str) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{d / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:  # in the table's own (key) order
        return pd.read_sql(f'SELECT * FROM "{name}"', con)
    finally:
        con.close()


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.astype({"flag": "int64", "flag_interior": "int64"})
    want = want.astype({"flag": "int64", "flag_interior": "int64"})
    for c in ("void", "interior"):  # SQLite gives numbers (NULL: NaN / None) for both
        got[c] = got[c].astype("float64")
        want[c] = want[c].astype("float64")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def _url(d: Path) -> str:
    return f"sqlite:///{d / 'database' / 'desivoids.sqlite'}"


def test_many_batches_give_the_file_and_the_table_the_rows_built_directly(selected_copy,
                                                                         tmp_path):
    d = selected_copy
    targetid, result = _result(1_003)
    want = _expected(targetid, result)
    path = tmp_path / "a.parquet"
    with table_transaction(_url(d)) as db:
        pub = stage.AssignmentsPublication(
            db, path, stage.assignment_batches(targetid, result, rows_per_batch=41),
            stage.ASSIGNMENT_SCHEMA, name="unit_assignments")
        pub.result()
    dispose_engines()
    f = pq.ParquetFile(path)
    assert f.schema_arrow == stage.ASSIGNMENT_SCHEMA
    got = f.read().to_pandas()
    _same(got, want)  # in key order, not merely the same rows
    _same(_db_table(d, "unit_assignments"), want)
    # the stage's file writer gives the same file content
    stage.write_assignments(tmp_path / "b.parquet", targetid, result, rows_per_group=97)
    assert pq.read_table(tmp_path / "b.parquet").equals(f.read())


def _previous(d: Path) -> pd.DataFrame:
    with table_transaction(_url(d)) as db:
        db.publish("unit_assignments", pa.table({"targetid": [1, 2]}), key=("targetid",))
    dispose_engines()
    return _db_table(d, "unit_assignments")


def test_a_failure_of_the_batches_stops_the_insert_and_the_table_stays(selected_copy, tmp_path):
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)

    def failing():
        for i, b in enumerate(stage.assignment_batches(targetid, result, rows_per_batch=40)):
            if i == 3:
                raise OSError(28, "No space left on device (injected)")
            yield b

    with pytest.raises(OSError, match="injected"):
        with table_transaction(_url(d)) as db:
            stage.AssignmentsPublication(db, tmp_path / "a.parquet", failing(),
                                         stage.ASSIGNMENT_SCHEMA,
                                         name="unit_assignments").result()
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_a_failure_of_the_insert_stops_the_writer_and_is_raised(selected_copy, tmp_path):
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)
    targetid[1] = targetid[0]  # a duplicate key: the database refuses the insert
    for r in result.values():
        r.cap_code[1] = r.cap_code[0]

    with pytest.raises(Exception, match="(?i)unique|constraint"):
        with table_transaction(_url(d)) as db:
            stage.AssignmentsPublication(
                db, tmp_path / "a.parquet",
                stage.assignment_batches(targetid, result, rows_per_batch=40),
                stage.ASSIGNMENT_SCHEMA, name="unit_assignments").result()
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_a_failure_of_the_summary_cancels_the_insert_and_leaves_tables_and_folder(
        selected_copy, monkeypatch):
    d = selected_copy
    environment.run(data_dir=str(d), randoms=2_000)
    dispose_engines()
    folder = {p.name: p.read_bytes() for p in (d / "environment").iterdir()}
    table = _db_table(d, "galaxy_void_assignments")

    def summarise(*args, **kwargs):
        raise RuntimeError("the summary failed (injected)")
    monkeypatch.setattr(stage, "summarise", summarise)
    with pytest.raises(RuntimeError, match="injected"):
        environment.run(data_dir=str(d), randoms=2_000, seed=5)
    dispose_engines()
    assert {p.name: p.read_bytes() for p in (d / "environment").iterdir()} == folder
    pd.testing.assert_frame_equal(_db_table(d, "galaxy_void_assignments"), table)
    # and the published pair agrees: the table holds the file's rows, in key order
    got = pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas()
    _same(table, got)

