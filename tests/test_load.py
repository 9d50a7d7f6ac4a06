"""The load stage on both backends: content, keys, indexes, provenance, idempotence and
transactions. Every test runs on SQLite and on a real PostgreSQL (see pg_fixtures.py)."""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, inspect, text

from desivoids.load import LoadError, load, queries
from desivoids.load.schema import DATA_TABLES, KEYS
from load_fixtures import write_inputs

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'desivoids.sqlite'}"
    else:
        yield request.getfixturevalue("pg_db_url")
    queries.dispose_engines()


@pytest.fixture
def inputs(tmp_path):
    pdir = tmp_path / "parquet"
    tables = write_inputs(pdir, n_galaxies=1500, parts=3)
    return pdir, tables


def _read(url: str, table: str) -> pd.DataFrame:
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            order = ", ".join(f'"{k}"' for k in KEYS[table])
            return pd.read_sql(text(f'SELECT * FROM "{table}" ORDER BY {order}'), c)
    finally:
        eng.dispose()


def _snapshot(url: str) -> dict[str, str]:
    """A digest of every data and provenance table's full content."""
    out = {}
    eng = create_engine(url)
    try:
        with eng.connect() as c:
            names = inspect(c).get_table_names()
            for t in sorted(names):
                if t.startswith("galaxy_blocks_"):  # R*Tree shadow tables
                    continue
                cols = [col["name"] for col in inspect(c).get_columns(t)]
                order = ", ".join(f'"{x}"' for x in cols)
                rows = c.execute(text(f'SELECT * FROM "{t}" ORDER BY {order}')).all()
                out[t] = hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        eng.dispose()
    return out


def _expected(tables: dict[str, pa.Table], name: str) -> pd.DataFrame:
    df = tables[name].to_pandas()
    return df.sort_values(list(KEYS[name]), ignore_index=True)


def test_load_content_keys_and_provenance(db_url, inputs):
    pdir, tables = inputs
    res = load(parquet_dir=pdir, db_url=db_url)
    assert [t.action for t in res.tables] == ["loaded"] * len(DATA_TABLES)
    dialect = "sqlite" if db_url.startswith("sqlite") else "postgresql"

    for name in DATA_TABLES:
        got = _read(db_url, name)
        want = _expected(tables, name)
        assert len(got) == tables[name].num_rows
        for col in want.columns:
            g, w = got[col], want[col]
            if w.dtype.kind == "f":
                # SQLite stores NaN as NULL: compare NaN/NULL as missing, values exactly
                np.testing.assert_array_equal(g.to_numpy(float), w.to_numpy(float),
                                              err_msg=f"{name}.{col}")
            elif w.dtype.kind == "b" or col == "is_edge" or col == "sfr_zero":
                assert [None if pd.isna(v) else bool(v) for v in g] == \
                       [None if pd.isna(v) else bool(v) for v in w], f"{name}.{col}"
            else:
                assert [None if pd.isna(v) else v for v in g] == \
                       [None if pd.isna(v) else v for v in w], f"{name}.{col}"
    gal = _read(db_url, "galaxies")
    ra, dec = np.radians(gal["ra"]), np.radians(gal["dec"])
    np.testing.assert_array_equal(gal["unit_z"].to_numpy(), np.sin(dec.to_numpy()))
    np.testing.assert_allclose(gal["unit_x"], np.cos(dec) * np.cos(ra), rtol=0, atol=1e-15)

    eng = create_engine(db_url)
    with eng.connect() as c:
        ins = inspect(c)
        for name in DATA_TABLES:  # keys the database enforces
            assert tuple(ins.get_pk_constraint(name)["constrained_columns"]) == KEYS[name]
        idx = {i["name"] for i in ins.get_indexes("galaxies")}
        assert "ix_galaxies_z" in idx
        if dialect == "postgresql":
            assert "ix_galaxies_q3c" in idx
            assert "ix_galaxy_blocks_cube" in {i["name"] for i in ins.get_indexes("galaxy_blocks")}
        else:
            sql = c.execute(text("SELECT sql FROM sqlite_master WHERE name = 'galaxy_blocks'")
                            ).scalar_one()
            assert "USING rtree" in sql
        # provenance: every part with its sha256 and rows
        parts = pd.read_sql(text("SELECT * FROM load_parts ORDER BY table_name, part"), c)
        assert len(parts) == 3 + 5
        for row in parts.itertuples():
            f = pdir / row.part
            assert row.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
            assert row.rows == pq.ParquetFile(f).metadata.num_rows
        cols = pd.read_sql(text("SELECT * FROM load_columns WHERE table_name = 'galaxies' "
                                "AND column_name = 'logmstar'"), c)
        logm = tables["galaxies"]["logmstar"].to_numpy(zero_copy_only=False)
        assert int(cols["nans"].iloc[0]) == int(np.isnan(logm).sum()) > 0
        runs = pd.read_sql(text("SELECT * FROM load_runs"), c)
        assert list(runs["run_id"]) == [1] and runs["rows_loaded"].iloc[0] == sum(
            t.num_rows for t in tables.values())
        n_pos = c.execute(text("SELECT count(*) FROM galaxy_positions")).scalar_one()
        assert n_pos == tables["galaxies"].num_rows
        # blocks cover every position exactly once
        b = pd.read_sql(text("SELECT pos_lo, pos_hi FROM galaxy_blocks ORDER BY pos_lo"), c)
        assert b["pos_lo"].iloc[0] == 0 and b["pos_hi"].iloc[-1] == n_pos - 1
        assert (b["pos_lo"].iloc[1:].to_numpy() == b["pos_hi"].iloc[:-1].to_numpy() + 1).all()
    eng.dispose()


def test_nan_is_null_on_every_backend(db_url, inputs):
    """SQLite turns a bound NaN into NULL; PostgreSQL must hold the same rows, or a filter such
    as ``logmstar > 0`` selects the NaN rows there only."""
    pdir, tables = inputs
    load(parquet_dir=pdir, db_url=db_url)
    logm = tables["galaxies"]["logmstar"]
    n_nan = int(pc.sum(pc.is_nan(logm)).as_py())
    vals = logm.to_numpy(zero_copy_only=False)
    assert n_nan > 0
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            n_null = c.execute(text("SELECT count(*) FROM galaxies WHERE logmstar IS NULL")).scalar()
            n_pos = c.execute(text("SELECT count(*) FROM galaxies WHERE logmstar > 0")).scalar()
    finally:
        eng.dispose()
    assert n_null == logm.null_count + n_nan
    assert n_pos == int((vals[np.isfinite(vals)] > 0).sum())


def test_load_twice_same_rows_and_changed_input_replaces_its_rows(db_url, inputs):
    pdir, tables = inputs
    load(parquet_dir=pdir, db_url=db_url)
    before = _snapshot(db_url)
    res = load(parquet_dir=pdir, db_url=db_url)
    assert {t.action for t in res.tables} == {"unchanged"}
    after = _snapshot(db_url)
    assert {k: v for k, v in after.items() if k != "load_runs"} == \
           {k: v for k, v in before.items() if k != "load_runs"}

    res = load(parquet_dir=pdir, db_url=db_url, force=True)
    assert {t.action for t in res.tables} == {"loaded"}
    forced = _snapshot(db_url)
    for t in DATA_TABLES + ("galaxy_positions", "galaxy_blocks"):
        assert forced[t] == before[t], t

    # change voids: drop the ZOBOV voids, move one void: only voids is reloaded
    v = pq.read_table(pdir / "voids.parquet")
    keep = pc.not_equal(v["algorithm"], "ZOBOV")
    v2 = v.filter(keep)
    x = v2["x"].to_numpy().copy()
    x[0] += 1.5
    v2 = v2.set_column(v2.schema.get_field_index("x"), v2.schema.field("x"), pa.array(x))
    pq.write_table(v2, pdir / "voids.parquet")
    res = load(parquet_dir=pdir, db_url=db_url)
    assert {t.table: t.action for t in res.tables} == {
        "galaxies": "unchanged", "voids": "loaded", "holes": "unchanged",
        "zonevoid": "unchanged", "galzone": "unchanged", "rejects": "unchanged"}
    got = _read(db_url, "voids")
    assert len(got) == v2.num_rows and "ZOBOV" not in set(got["algorithm"])
    want = v2.to_pandas().sort_values(list(KEYS["voids"]), ignore_index=True)
    np.testing.assert_array_equal(got["x"].to_numpy(float), want["x"].to_numpy(float))
    final = _snapshot(db_url)
    for t in ("galaxies", "holes", "galzone", "galaxy_positions"):
        assert final[t] == before[t], t
    eng = create_engine(db_url)
    with eng.connect() as c:
        runs = dict(c.execute(text("SELECT table_name, run_id FROM load_tables")).all())
    eng.dispose()
    assert runs["voids"] == 4 and runs["galaxies"] == 3


def test_failed_load_leaves_previous_state(db_url, inputs):
    pdir, tables = inputs
    load(parquet_dir=pdir, db_url=db_url)
    before = _snapshot(db_url)
    # new galaxies input, then an injected failure after galaxies was rebuilt in the transaction
    part = sorted((pdir / "galaxies").glob("*.parquet"))[0]
    t = pq.read_table(part)
    pq.write_table(t.slice(0, t.num_rows - 10), part)
    with pytest.raises(RuntimeError, match="injected"):
        load(parquet_dir=pdir, db_url=db_url, _fail_after="holes")
    assert _snapshot(db_url) == before

    # a duplicate void key: LoadError naming file, table, key columns and rows; nothing changed
    v = pq.read_table(pdir / "voids.parquet")
    pq.write_table(pa.concat_tables([v, v.slice(3, 1)]), pdir / "voids.parquet")
    with pytest.raises(LoadError) as err:
        load(parquet_dir=pdir, db_url=db_url)
    e = err.value
    assert e.table == "voids" and e.column == "algorithm, cap, void"
    assert "voids.parquet row 3" in str(e) and f"voids.parquet row {v.num_rows}" in str(e)
    assert _snapshot(db_url) == before


@pytest.mark.postgres
def test_copy_formats_give_identical_tables(pg_db_url, inputs):
    """Binary and CSV COPY load the same bits (floats round-trip exactly through CSV)."""
    pdir, _ = inputs
    load(parquet_dir=pdir, db_url=pg_db_url, copy_format="csv")
    a = _snapshot(pg_db_url)
    load(parquet_dir=pdir, db_url=pg_db_url, copy_format="binary", force=True)
    b = _snapshot(pg_db_url)
    for t in DATA_TABLES + ("galaxy_positions", "galaxy_blocks"):
        assert a[t] == b[t], t


@pytest.mark.postgres
def test_pg_without_q3c_uses_gist_blocks(pg_db_url, inputs):
    pdir, _ = inputs
    res = load(parquet_dir=pdir, db_url=pg_db_url, sky_index="blocks")
    assert res.sky_index == "blocks"
    assert queries.sky_method(pg_db_url) == "blocks"
    eng = create_engine(pg_db_url)
    with eng.connect() as c:
        idx = {i["name"] for i in inspect(c).get_indexes("galaxies")}
    eng.dispose()
    assert "ix_galaxies_q3c" not in idx
    # switching the index is a settings change: galaxies is rebuilt with q3c
    res = load(parquet_dir=pdir, db_url=pg_db_url, sky_index="q3c")
    assert {t.table: t.action for t in res.tables}["galaxies"] == "loaded"
    assert queries.sky_method(pg_db_url) == "q3c"


def test_load_uses_runlayout_defaults(tmp_path):
    write_inputs(tmp_path / "convert", n_galaxies=300, parts=1)
    res = load(tmp_path)
    db = tmp_path / "database" / "desivoids.sqlite"
    assert res.dialect == "sqlite" and db.is_file()
    assert queries.sky_method(f"sqlite:///{db}") == "blocks"
    queries.dispose_engines()


@pytest.mark.postgres
def test_pg_staging_schema_is_gone_after_load(pg_db_url, inputs):
    pdir, _ = inputs
    load(parquet_dir=pdir, db_url=pg_db_url)
    eng = create_engine(pg_db_url)
    with eng.connect() as c:
        schemas = set(inspect(c).get_schema_names())
    eng.dispose()
    assert "desivoids_load" not in schemas


@pytest.mark.parametrize("n, cells", [(0, 4), (1, 4), (2000, 3), (2000, 2**21)])
def test_morton_order_equals_a_lexsort_by_key_then_targetid(n, cells):
    """The fast ordering (stable sort of the Morton key, then ties by targetid) is exactly the
    lexsort it replaces, with many ties (few distinct cells) and almost none."""
    from desivoids.load import spatial

    rng = np.random.default_rng(7)
    targetid = rng.permutation(np.arange(10**6, 10**6 + n))
    comoving = np.floor(rng.uniform(0, cells, (n, 3))) * 3.0  # shared cells: equal keys
    comoving[rng.random(n) < 0.2] = np.nan                    # some without a distance
    unit = rng.normal(size=(n, 3))
    order, n_dist = spatial.morton_order(targetid, unit, comoving)
    has = np.isfinite(comoving).all(axis=1)
    ia, ib = np.flatnonzero(has), np.flatnonzero(~has)
    want = np.concatenate([ia[np.lexsort((targetid[ia], spatial._morton3(comoving[ia])))],
                           ib[np.lexsort((targetid[ib], spatial._morton3(unit[ib])))]])
    assert n_dist == len(ia)
    np.testing.assert_array_equal(order, want)
