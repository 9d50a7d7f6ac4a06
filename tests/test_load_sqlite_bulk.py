"""The SQLite load's bulk path: rows sent in key order within windows, read in a second thread;
the loaded content is the Parquet's either way."""
from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import create_engine, text

from desivoids.load import LoadError, load, queries
from desivoids.load import sqlite as target
from desivoids.load.schema import DATA_TABLES
from desivoids.load.sqlite import Prefetched, in_key_windows
from load_fixtures import write_inputs
from test_load import _expected, _read


def _batches(n: int, size: int, seed: int = 3) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    t = pa.table({"alg": rng.choice(["ZOBOV", "VIDE", "REVOLVER"], n),
                  "gal": rng.permutation(n).astype(np.int64), "row": np.arange(n)})
    return t.to_batches(max_chunksize=size)


def test_in_key_windows_sorts_each_window_and_keeps_every_row():
    batches = _batches(1000, 70)
    out = list(in_key_windows(iter(batches), ("alg", "gal"), window_rows=250))
    assert max(b.num_rows for b in out) <= 70
    got = pa.Table.from_batches(out)
    rows = got["row"].to_numpy()
    assert sorted(rows) == list(range(1000))  # every row exactly once
    # windows: whole input batches up to >= 250 rows (4 batches = 280 rows), each sorted
    start = 0
    for stop in (280, 560, 840, 1000):
        w = got.slice(start, stop - start).to_pylist()
        assert sorted(r["row"] for r in w) == list(range(start, stop))
        keys = [(r["alg"], r["gal"]) for r in w]
        assert keys == sorted(keys)
        start = stop
    assert list(in_key_windows(iter([]), ("gal",))) == []


def test_prefetched_raises_the_producers_error_where_it_happened():
    def items():
        yield from range(3)
        raise LoadError("part.parquet", "galaxies", "ra", "NULL in a NOT NULL column")

    seen = []
    with pytest.raises(LoadError, match="NULL in a NOT NULL"):
        with Prefetched(items()) as it:
            for x in it:
                seen.append(x)
    assert seen == [0, 1, 2]


def test_prefetched_stops_its_thread_when_the_consumer_fails():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="insert failed"):
        with Prefetched(endless(), depth=2) as it:
            for x in it:
                if x == 5:
                    raise RuntimeError("insert failed")
    assert threading.active_count() == before
    assert len(produced) <= 5 + 1 + 2 + 1  # at most the queue's depth read ahead


@pytest.fixture
def inputs(tmp_path):
    pdir = tmp_path / "parquet"
    return pdir, write_inputs(pdir, n_galaxies=1500, parts=3, seed=5)


def test_load_in_small_sort_windows_matches_the_parquet(inputs, tmp_path, monkeypatch):
    """Many windows (the DR1-scale case): the rows of each table are stored sorted by key
    within each window, and every table reads back as the Parquet."""
    monkeypatch.setattr(target, "SORT_WINDOW_ROWS", 200)
    pdir, tables = inputs
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    load(parquet_dir=pdir, db_url=url)
    for name in DATA_TABLES:
        got, want = _read(url, name), _expected(tables, name)
        assert len(got) == len(want), name
        for col in want.columns:
            g, w = got[col].to_numpy(), want[col].to_numpy()
            if w.dtype.kind == "f":
                np.testing.assert_array_equal(g.astype(float), w.astype(float), err_msg=col)
            else:
                assert [None if v is None or v != v else v for v in g] == \
                       [None if v is None or v != v else v for v in w], f"{name}.{col}"
    eng = create_engine(url)
    with eng.connect() as c:
        stored = [r[0] for r in c.execute(text("SELECT targetid FROM galaxies ORDER BY rowid"))]
    eng.dispose()
    queries.dispose_engines()
    parquet = [t for f in sorted((pdir / "galaxies").glob("*.parquet"))
               for t in pq.read_table(f, columns=["targetid"])["targetid"].to_pylist()]
    assert stored != parquet and sorted(stored) == sorted(parquet)
    for i in range(0, len(stored), 500):  # windows: whole 500-row parts, as the parts hold
        assert stored[i:i + 500] == sorted(stored[i:i + 500])


def test_duplicate_key_in_another_window_is_named(inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(target, "SORT_WINDOW_ROWS", 200)
    pdir, _ = inputs
    parts = sorted((pdir / "galaxies").glob("*.parquet"))
    first = pq.read_table(parts[0])["targetid"][2].as_py()
    t = pq.read_table(parts[2])
    tid = t["targetid"].to_pylist()
    tid[9] = first
    pq.write_table(t.set_column(t.schema.get_field_index("targetid"), "targetid",
                                pa.array(tid, pa.int64())), parts[2])
    with pytest.raises(LoadError) as err:
        load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'd.sqlite'}")
    assert "part-000-00000.parquet row 2" in str(err.value)
    assert "part-002-00000.parquet row 9" in str(err.value)
