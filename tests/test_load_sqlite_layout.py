"""The SQLite layout of galaxies (issue 25): targetid is the rowid (INTEGER PRIMARY KEY, no second
B-tree for the key) and the rows are stored in targetid order; a database loaded with the
previous layout (BIGINT key, a unique autoindex beside the rowid) is rebuilt by the next load,
and integrity accepts either; PostgreSQL keeps BIGINT."""
from __future__ import annotations

import sqlite3

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from desivoids.integrity import tables as integrity_tables
from desivoids.load import load, queries
from desivoids.load import schema as S
from desivoids.load.inputs import discover
from desivoids.load.loader import DEFAULT_BLOCK_SIZE, LAYOUT_VERSION
from desivoids.load import sqlite as load_sqlite
from load_fixtures import parquet_dir


pdir = pytest.fixture(parquet_dir)


def _parquet_targetids(pdir) -> np.ndarray:
    return pq.read_table(pdir / "galaxies", columns=["targetid"])["targetid"].to_numpy()


def _layout(db) -> dict:
    con = sqlite3.connect(db)
    try:
        info = {r[1]: (r[2], r[5]) for r in con.execute("PRAGMA table_info(galaxies)")}
        return {
            "indexes": sorted(r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'galaxies'")),
            "targetid": info["targetid"],  # (declared type, position in the primary key)
            "stored": [r[0] for r in con.execute("SELECT targetid FROM galaxies NOT INDEXED")],
            "rowid_is_targetid": con.execute(
                "SELECT count(*) FROM galaxies WHERE rowid != targetid").fetchone()[0] == 0,
            "lookup": con.execute("EXPLAIN QUERY PLAN SELECT ra FROM galaxies WHERE targetid = 1"
                                  ).fetchall()[0][-1],
        }
    finally:
        con.close()


def _rows(db) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT * FROM galaxies ORDER BY targetid").fetchall()
    finally:
        con.close()


def test_targetid_is_the_rowid_and_rows_are_stored_in_its_order(pdir, tmp_path):
    tid = _parquet_targetids(pdir)
    assert (np.diff(tid) < 0).any()  # the input is not in targetid order
    db = tmp_path / "a.sqlite"
    load(parquet_dir=pdir, db_url=f"sqlite:///{db}", batch_rows=100)
    got = _layout(db)
    assert got["indexes"] == ["ix_galaxies_z"]  # no sqlite_autoindex_galaxies_1
    assert got["targetid"] == ("INTEGER", 1)
    assert got["rowid_is_targetid"]
    assert "INTEGER PRIMARY KEY" in got["lookup"]
    assert got["stored"] == sorted(tid.tolist())  # the table scanned: targetid order


def test_the_key_is_still_enforced_and_pg_keeps_bigint(pdir):
    schema = discover(pdir)["galaxies"].schema
    for with_key in (True, False):
        pg = str(CreateTable(S.data_table("galaxies", schema, MetaData(), with_key=with_key))
                 .compile(dialect=postgresql.dialect()))
        assert "targetid BIGINT NOT NULL" in pg or "targetid BIGSERIAL NOT NULL" in pg
    lite = str(CreateTable(S.data_table("galaxies", schema, MetaData())).compile(
        dialect=sqlite.dialect()))
    assert "targetid INTEGER NOT NULL" in lite and "PRIMARY KEY (targetid)" in lite
    # other tables keyed by targetid (later stages' WITHOUT ROWID tables) are untouched
    other = S.data_table("selection", schema, MetaData(), key=("targetid",), clustered=True)
    assert "targetid BIGINT NOT NULL" in str(CreateTable(other).compile(dialect=sqlite.dialect()))


def _to_previous_layout(db, pdir) -> None:
    """Rewrite galaxies as the load wrote it before targetid became the rowid (BIGINT key and a
    unique autoindex, rows in Parquet order) and record the digest that load gave it."""
    con = sqlite3.connect(db, isolation_level=None)
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'galaxies'").fetchone()[0]
    old = sql.replace("targetid INTEGER NOT NULL", "targetid BIGINT NOT NULL")
    assert old != sql
    con.execute("BEGIN")
    con.execute("ALTER TABLE galaxies RENAME TO galaxies_new")
    con.execute("DROP INDEX ix_galaxies_z")
    con.execute(old)
    con.execute("INSERT INTO galaxies SELECT * FROM galaxies_new ORDER BY random()")
    con.execute("DROP TABLE galaxies_new")
    con.execute("CREATE INDEX ix_galaxies_z ON galaxies (z)")
    settings = {"layout": LAYOUT_VERSION, "dialect": "sqlite", "block_size": DEFAULT_BLOCK_SIZE,
                "sky_index": "rtree"}
    con.execute("UPDATE load_tables SET digest = ? WHERE table_name = 'galaxies'",
                (discover(pdir)["galaxies"].digest(settings),))
    con.execute("COMMIT")
    con.close()


def test_a_database_of_the_previous_layout_works_then_is_rebuilt(pdir, tmp_path):
    db = tmp_path / "a.sqlite"
    url = f"sqlite:///{db}"
    load(parquet_dir=pdir, db_url=url)
    rows = _rows(db)
    _to_previous_layout(db, pdir)
    before = _layout(db)
    assert "sqlite_autoindex_galaxies_1" in before["indexes"] and before["targetid"][0] == "BIGINT"
    # it still works: the queries, and integrity's type check, on the previous layout
    v = pq.read_table(pdir / "voids.parquet").to_pylist()[0]
    sphere = queries.sphere(url, v["x"], v["y"], v["z"], 200.0)
    checks = {c.id: c.status for c in integrity_tables.types(pdir, url)}
    assert checks["types.database.galaxies"] == "pass", checks
    queries.dispose_engines()
    # the next load rebuilds galaxies (its digest names the layout), and only galaxies
    r = load(parquet_dir=pdir, db_url=url)
    assert {t.table: t.action for t in r.tables} == {
        "galaxies": "loaded", "voids": "unchanged", "holes": "unchanged",
        "zonevoid": "unchanged", "galzone": "unchanged", "rejects": "unchanged"}
    after = _layout(db)
    assert after["indexes"] == ["ix_galaxies_z"] and after["targetid"] == ("INTEGER", 1)
    assert after["stored"] == sorted(after["stored"])
    assert _rows(db) == rows
    assert queries.sphere(url, v["x"], v["y"], v["z"], 200.0).equals(sphere)
    checks = {c.id: c.status for c in integrity_tables.types(pdir, url)}
    assert checks["types.database.galaxies"] == "pass", checks
    # and a reload with nothing changed changes nothing
    r = load(parquet_dir=pdir, db_url=url)
    assert {t.action for t in r.tables} == {"unchanged"}


def _batches(keys, size):
    t = pa.table({"k": pa.array(keys, pa.int64()), "s": pa.array([f"r{k}" for k in keys])})
    return t.to_batches(max_chunksize=size)


@pytest.mark.parametrize("n,size", [(1, 5), (10, 3), (1000, 64), (999, 1000), (4000, 333)])
def test_in_key_order_sorts_across_batches_and_keeps_every_row(n, size):
    rng = np.random.default_rng(n)
    keys = rng.choice(10 * n, n, replace=False)
    if n > 3:
        keys[-1] = keys[0]  # a duplicate key stays, for the database to refuse
    out = list(load_sqlite.in_key_order(_batches(keys.tolist(), size), "k"))
    got = pa.concat_tables([pa.table(b) if isinstance(b, pa.RecordBatch) else b for b in out])
    assert got["k"].to_pylist() == sorted(keys.tolist())
    assert got["s"].to_pylist() == [f"r{k}" for k in sorted(keys.tolist())]
    assert max(b.num_rows for b in out) <= size


def test_in_key_order_gives_sorted_input_back_as_it_came():
    batches = _batches(list(range(20)), 6)
    out = list(load_sqlite.in_key_order(iter(batches), "k"))
    assert all(a is b for a, b in zip(out, batches)) and len(out) == len(batches)
    assert list(load_sqlite.in_key_order(iter([]), "k")) == []
