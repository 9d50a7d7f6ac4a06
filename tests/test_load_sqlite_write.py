"""How the SQLite load writes (issue 25): the Parquet read ahead of the insert in a thread of its
own, the spatial rows computed beside the galaxies index build, a new file's page size, and the
parts' sha256 hashed once. The tables are the same whichever way they were written."""
from __future__ import annotations

import hashlib
import sqlite3
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import load as load_stage
from desivoids.load import LoadError, load, queries
from desivoids.load import inputs as load_inputs
from desivoids.load import loader
from desivoids.load import sqlite as load_sqlite
from desivoids.load.sqlite import SqliteTarget
from load_fixtures import parquet_dir
from test_load import _snapshot


pdir = pytest.fixture(parquet_dir)


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "load-reader" and t.is_alive()]


def test_the_parquet_is_read_ahead_of_the_insert(pdir, tmp_path, monkeypatch):
    """While SQLite inserts a batch (GIL released), the next ones are read in another thread."""
    seen = []
    write = SqliteTarget.write

    def spy(self, table, batches, label):
        def each():
            for b in batches:
                if label == "galaxies":
                    seen.append(bool(_readers()))
                yield b
        return write(self, table, each(), label)

    monkeypatch.setattr(SqliteTarget, "write", spy)
    load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'a.sqlite'}", batch_rows=150)
    # 3 parts of 4 batches, read at most loader.PREFETCH ahead: the reader is still at work
    # when the insert takes each but the last few
    assert len(seen) == 12 and all(seen[:12 - loader.PREFETCH - 1])
    assert not _readers()  # the reader ended with its stream


def test_a_failed_insert_stops_the_reader_and_names_the_key(pdir, tmp_path):
    part = sorted((pdir / "galaxies").glob("*.parquet"))[1]
    t = pq.read_table(part)
    pq.write_table(pa.concat_tables([t, t.slice(0, 1)]), part)
    with pytest.raises(LoadError, match="duplicate key") as err:
        load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'a.sqlite'}", batch_rows=100)
    assert "targetid" in str(err.value)
    assert not _readers()


def test_a_read_error_mid_stream_names_its_part_and_leaves_the_database(pdir, tmp_path,
                                                                        monkeypatch):
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    load(parquet_dir=pdir, db_url=url)
    before = _snapshot(url)
    bad = sorted((pdir / "galaxies").glob("*.parquet"))[2]
    iter_batches = pq.ParquetFile.iter_batches

    def failing(self, *a, **k):
        for i, b in enumerate(iter_batches(self, *a, **k)):
            if i == 1 and str(bad) in str(getattr(self, "_path", "")):
                raise OSError("disk read error")
            yield b

    opened = pq.ParquetFile.__init__

    def remember(self, source, *a, **k):
        opened(self, source, *a, **k)
        self._path = source

    monkeypatch.setattr(pq.ParquetFile, "__init__", remember)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", failing)
    with pytest.raises(LoadError, match="disk read error") as err:
        load(parquet_dir=pdir, db_url=url, force=True, batch_rows=100)
    assert bad.name in str(err.value)
    assert _snapshot(url) == before and not _readers()


def test_the_spatial_rows_are_computed_while_sqlite_builds_the_galaxies_indexes(
        pdir, tmp_path, monkeypatch):
    started = threading.Event()
    spatial_rows = loader._spatial_rows

    def spatial(stream, block_size):
        started.set()
        return spatial_rows(stream, block_size)

    finish = SqliteTarget.finish_table
    overlapped = []

    def finish_table(self, table):
        if table.name == "galaxies":  # the computation starts before the indexes are done
            overlapped.append(started.wait(timeout=30))
        return finish(self, table)

    monkeypatch.setattr(loader, "_spatial_rows", spatial)
    monkeypatch.setattr(SqliteTarget, "finish_table", finish_table)
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    load(parquet_dir=pdir, db_url=url)
    assert overlapped == [True]


def test_a_new_file_gets_the_load_page_size_an_existing_one_keeps_its_own(pdir, tmp_path):
    new, old = tmp_path / "new.sqlite", tmp_path / "old.sqlite"
    con = sqlite3.connect(old)  # an existing database with SQLite's default pages
    con.execute("CREATE TABLE other_stage (x INTEGER)")
    con.commit()
    default = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    assert default != load_sqlite.PAGE_SIZE
    for db in (new, old):
        load(parquet_dir=pdir, db_url=f"sqlite:///{db}")
    sizes = {}
    for db in (new, old):
        with sqlite3.connect(db) as con:
            sizes[db.name] = con.execute("PRAGMA page_size").fetchone()[0]
    assert sizes == {"new.sqlite": load_sqlite.PAGE_SIZE, "old.sqlite": default}
    a, b = _snapshot(f"sqlite:///{new}"), _snapshot(f"sqlite:///{old}")
    b.pop("other_stage")
    for when in ("load_runs", "load_tables"):  # their loaded_at differ
        a.pop(when), b.pop(when)
    assert a == b and "galaxies" in a and "galaxy_positions" in a


def test_parts_are_hashed_once_and_given_digests_are_used(pdir, monkeypatch):
    parts = sorted(pdir.rglob("*.parquet"))
    want = {p.relative_to(pdir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in parts}
    got = load_inputs.discover(pdir)
    assert {p.rel: p.sha256 for t in got.values() for p in t.parts} == want

    def no_hash(path):
        raise AssertionError(f"{path} hashed although its sha256 was given")

    monkeypatch.setattr(load_inputs, "sha256_file", no_hash)
    given = load_inputs.discover(pdir, sha256=want)
    assert {p.rel: p.sha256 for t in given.values() for p in t.parts} == want


def test_the_stage_takes_the_parts_sha256_from_converts_verified_manifest(run_copy,
                                                                           monkeypatch):
    """verify_reads hashed every file of convert's folder against its manifest just before:
    the stage does not hash the parts a second time, and records the same digests."""
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{run_copy / 'database' / 'desivoids.sqlite'}"
    eng = create_engine(url)
    with eng.connect() as c:
        before = c.execute(text("SELECT part, sha256 FROM load_parts ORDER BY part")).all()
    eng.dispose()
    hashed = []
    sha256_file = load_inputs.sha256_file
    monkeypatch.setattr(load_inputs, "sha256_file", lambda p: hashed.append(p) or sha256_file(p))
    load_stage.run(data_dir=str(run_copy), force=True)
    queries.dispose_engines()
    eng = create_engine(url)
    with eng.connect() as c:
        after = c.execute(text("SELECT part, sha256 FROM load_parts ORDER BY part")).all()
    eng.dispose()
    assert hashed == [] and after == before and len(before) > 3


def test_the_sqlite_load_allocates_from_the_system_pool_and_puts_the_default_back(
        pdir, tmp_path, monkeypatch):
    """The Parquet batches of the SQLite load come from the C library's allocator, not Arrow's
    default (mimalloc, transparent huge pages zeroed on first touch: see
    SqliteTarget.arrow_pool), and the caller's default pool is back after the load, failed or
    not; the tables are those of a load with the default pool."""
    seen = []
    write = SqliteTarget.write

    def spy(self, table, batches, label):
        def each():
            for b in batches:
                seen.append(pa.default_memory_pool().backend_name)
                yield b
        return write(self, table, each(), label)

    before = pa.default_memory_pool().backend_name
    assert before != "system"  # else the test proves nothing
    monkeypatch.setattr(SqliteTarget, "write", spy)
    load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert seen and set(seen) == {"system"}
    assert pa.default_memory_pool().backend_name == before
    with pytest.raises(RuntimeError, match="injected"):
        load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'b.sqlite'}", _fail_after="voids")
    assert pa.default_memory_pool().backend_name == before
    monkeypatch.setattr(SqliteTarget, "arrow_pool", None)
    monkeypatch.setattr(SqliteTarget, "write", write)
    load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'c.sqlite'}")
    a, c = _snapshot(f"sqlite:///{tmp_path / 'a.sqlite'}"), \
        _snapshot(f"sqlite:///{tmp_path / 'c.sqlite'}")
    for when in ("load_runs", "load_tables"):  # their loaded_at differ
        a.pop(when), c.pop(when)
    assert a == c and "galaxies" in a and "galaxy_positions" in a


def test_indexes_are_sorted_in_small_runs_with_a_helper_thread_then_the_cache_is_restored(
        pdir, tmp_path, monkeypatch):
    """CREATE INDEX under the index build's page cache and sort thread, not the 1 GB cache
    (one in-memory sort on one thread: twice as slow at DR1 scale); the R*Tree's build after it
    gets the large cache back."""
    seen = {}
    ddl, spatial = SqliteTarget.ddl, SqliteTarget.build_spatial

    def pragma(target, name):
        target.cur.execute(f"PRAGMA {name}")
        return target.cur.fetchall()[0][0]

    def spy_ddl(self, element):
        if type(element).__name__ == "CreateIndex":
            seen.setdefault("index", set()).add((pragma(self, "cache_size"), pragma(self, "threads")))
        return ddl(self, element)

    def spy_spatial(self, *args):
        seen["spatial"] = pragma(self, "cache_size")
        return spatial(self, *args)

    monkeypatch.setattr(SqliteTarget, "ddl", spy_ddl)
    monkeypatch.setattr(SqliteTarget, "build_spatial", spy_spatial)
    load(parquet_dir=pdir, db_url=f"sqlite:///{tmp_path / 'a.sqlite'}")
    assert seen == {"index": {(load_sqlite.INDEX_CACHE_SIZE, load_sqlite.INDEX_THREADS)},
                    "spatial": load_sqlite.CACHE_SIZE}
    assert load_sqlite.INDEX_CACHE_SIZE > load_sqlite.CACHE_SIZE  # KiB as negatives: smaller
