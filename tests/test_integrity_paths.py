"""integrity's faster paths give the report the plain ones gave: rows per source file counted
through ADBC on SQLite, the database's checks on a thread beside the Parquet checks, duplicate
keys found by a sort before the group_by that lists them."""
from __future__ import annotations

import json
import sqlite3

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine

from desivoids import integrity
from desivoids.errors import StageError
from desivoids.integrity import tables
from desivoids.integrity.stage import check_all
from desivoids.load.queries import _Conn, dispose_engines
from validation_fixtures import rewrite_parquet


def _db(d):
    return d / "database" / "desivoids.sqlite"


def test_rows_per_source_file_as_sqlite_groups_them(run_copy):
    con = sqlite3.connect(_db(run_copy))
    with con:  # a third of the voids from a file of another name
        con.execute("ALTER TABLE voids RENAME TO voids_keyed")
        con.execute("CREATE TABLE voids AS SELECT * FROM voids_keyed")
        con.execute("UPDATE voids SET source_file = 'elsewhere.fits' WHERE rowid % 3 = 0")
    want = {t: dict(con.execute(f'SELECT source_file, count(*) FROM "{t}" GROUP BY source_file'))
            for t in tables.CONVERT_TABLES}
    con.close()
    eng = create_engine(f"sqlite:///{_db(run_copy)}")
    try:
        with _Conn(eng) as conn:
            assert tables._sqlite_file(conn) == _db(run_copy)
            got = {t: tables._rows_by_source_file(conn, t) for t in tables.CONVERT_TABLES}
    finally:
        eng.dispose()
    assert got == want
    assert "elsewhere.fits" in got["voids"] and len(got["voids"]) >= 2


def test_a_table_the_arrow_path_cannot_read_is_the_databases_error(run_copy):
    """No such table: the SQL the stage reports as a database it cannot read (StageError), not
    the Arrow driver's own exception."""
    from sqlalchemy.exc import SQLAlchemyError

    con = sqlite3.connect(_db(run_copy))
    with con:
        con.execute("DROP TABLE voids")
    con.close()
    eng = create_engine(f"sqlite:///{_db(run_copy)}")
    try:
        with _Conn(eng) as conn, pytest.raises(SQLAlchemyError, match="no such table"):
            tables._rows_by_source_file(conn, "voids")
    finally:
        eng.dispose()
        dispose_engines()


def test_the_same_checks_in_the_same_order_with_an_engine_or_a_connection(run_copy):
    """With an Engine the database's checks run on a thread; with a Connection in sequence."""
    eng = create_engine(f"sqlite:///{_db(run_copy)}")
    args = (dict(integrity.DEFAULT_MAX_NULL_FRACTION), [-0.01, 7.0])
    try:
        threaded = check_all(run_copy / "convert", eng, *args)
        with eng.connect() as conn:
            serial = check_all(run_copy / "convert", conn, *args)
    finally:
        eng.dispose()
        dispose_engines()
    assert [c.to_json() for c in threaded] == [c.to_json() for c in serial]
    ids = [c.id for c in threaded]
    assert ids.index("reconciliation.galzone") < ids.index("keys.parquet.galaxies") \
        < ids.index("keys.database.galaxies") < ids.index("keys.parquet.voids") \
        < ids.index("types.parquet.galaxies") < ids.index("nulls.galaxies.targetid")


def test_a_duplicate_targetid_in_parquet_is_listed(run_copy):
    """A galaxies part holding one TARGETID twice: the sort finds it, the group_by lists it."""
    part = sorted((run_copy / "convert" / "galaxies").glob("*.parquet"))[-1]
    tid = pq.read_table(part, columns=["targetid"]).column("targetid")[0].as_py()
    rewrite_parquet(part, lambda t: pa.concat_tables([t, t.slice(0, 1)]))
    with pytest.raises(StageError, match="keys.parquet.galaxies"):
        integrity.run(data_dir=str(run_copy))
    report = json.loads((run_copy / "integrity" / "report.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "keys.parquet.galaxies")
    assert check["status"] == "fail"
    assert check["evidence"]["duplicates"] == 1
    assert check["evidence"]["examples"] == [{"targetid": tid, "count_all": 2}]


def test_no_duplicate_no_examples():
    t = pa.table({"targetid": pa.array([5, 3, 2**60, 7], pa.int64())})
    assert tables._duplicates(t, ("targetid",)) == (0, [])
    t = pa.table({"targetid": pa.array([5, 3, 5, 7, 3, 3], pa.int64())})
    assert tables._duplicates(t, ("targetid",)) == (2, [{"targetid": 5, "count_all": 2},
                                                        {"targetid": 3, "count_all": 3}])


def test_null_and_nonfinite_counts_in_one_pass(tmp_path):
    """Nulls, NaN and inf counted over every part, each column apart; an absent column fails."""
    parts = tmp_path / "galaxies"
    parts.mkdir()
    inf, nan = float("inf"), float("nan")
    pq.write_table(pa.table({"z": pa.array([0.1, nan, None, inf], pa.float64()),
                             "survey": pa.array(["main", None, "sv1", "main"]),
                             "sfr": pa.array([None, None, None, None], pa.float32())}),
                   parts / "part-000-00000.parquet")
    pq.write_table(pa.table({"z": pa.array([-inf, 0.2], pa.float64()),
                             "survey": pa.array(["main", "main"]),
                             "sfr": pa.array([1.0, nan], pa.float32())}),
                   parts / "part-001-00000.parquet")
    got = {c.id: (c.status, c.evidence) for c in tables.nulls(
        tmp_path, {"z": 0.7, "survey": 0.0, "sfr": 0.8, "dn4000": 0.0})}
    assert got["nulls.galaxies.z"] == ("pass", {"rows": 6, "null": 1, "nonfinite": 3,
                                                "fraction": round(4 / 6, 8), "limit": 0.7})
    assert got["nulls.galaxies.survey"] == ("fail", {"rows": 6, "null": 1, "nonfinite": 0,
                                                     "fraction": round(1 / 6, 8), "limit": 0.0})
    assert got["nulls.galaxies.sfr"] == ("fail", {"rows": 6, "null": 4, "nonfinite": 1,
                                                  "fraction": round(5 / 6, 8), "limit": 0.8})
    assert got["nulls.galaxies.dn4000"][0] == "fail"
    assert list(got) == ["nulls.galaxies.z", "nulls.galaxies.survey", "nulls.galaxies.sfr",
                         "nulls.galaxies.dn4000"]
