"""SQLite target of the load: one transaction on an ADBC connection, Arrow batches in.

Why ADBC (``adbc-driver-sqlite``) rather than ``sqlite3.executemany``: it binds Arrow columns
in C, about five times faster than building Python tuples (the galaxies table has ~60 columns).
The schema is still the SQLAlchemy Core one, compiled to SQLite DDL; queries use SQLAlchemy's
own sqlite driver on the same file.

Atomicity: everything (drop of the old tables, create, insert, indexes, provenance) happens in
the connection's single transaction; a failure rolls back to the previous file content, which
SQLite readers keep seeing until the commit.

Indexes: the declared primary keys, a B-tree on galaxies.z, and ``galaxy_blocks``, an R*Tree
virtual table over the bounding boxes of runs of ``galaxy_positions`` (see :mod:`.schema`).

Layout of galaxies: ``targetid`` is the rowid (``INTEGER PRIMARY KEY``, :data:`.schema.ROWID_KEYS`)
and the rows are inserted in targetid order (:func:`in_key_order`): the whole table is read (its
batches checked and derived as they come), each batch sorted as it arrives, then merged key
range by key range beside the insert. Each insert appends at the table B-tree's right edge and
the key needs no second B-tree. At DR1 scale (measured on the same 2 cores, both under load)
the load used 79-84 CPU s instead of 100-111 (Parquet order into ``BIGINT PRIMARY KEY``: a
table B-tree plus a unique autoindex filled in random key order, 21% of the profile); the price
is memory, the table held whole while it is inserted: peak RSS 5.2 GiB instead of 3.45-3.6.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from . import schema as S
from .queries import SQLITE_BUSY_PRAGMA
from .spatial import Blocks

__all__ = ["SqliteTarget", "sqlite_path"]

_DIALECT = sqlite_dialect.dialect()
#: Page size of a database file the load creates. A galaxies row is ~550 bytes: on SQLite's
#: default 4 KiB pages the insert spends its time in page allocation, B-tree balancing and
#: one write per spilled page; 16 KiB pages cut the DR1-scale galaxies insert from 53.6 to
#: 41.3 CPU s (64 KiB: 46.1), measured. The rows, schema and indexes are the same.
PAGE_SIZE = 16384
#: Page cache of the load's connection (negative: KiB): up to 1 GB, for the R*Tree's build.
CACHE_SIZE = -1000000
#: Page cache while a table is appended in rowid order (:meth:`SqliteTarget.write`).
APPEND_CACHE_SIZE = -65536
#: While an index is built (:meth:`SqliteTarget.finish_table`): SQLite's sorter writes the
#: index's keys in sorted runs no larger than the page cache and, with ``PRAGMA threads``,
#: sorts a run in a helper thread while the next one fills, then merges them; under the 1 GB
#: cache the whole index is one in-memory sort on one thread. DR1 scale, galaxies(z) of
#: 6,445,927 rows: 12.3 and 12.4 s under the 1 GB cache; 4.7 to 6.3 s with 8 MB and one
#: helper thread (5.3 and 6.5 s without it; 6.0 s with 32 MB); measured.
INDEX_CACHE_SIZE = -8192
INDEX_THREADS = 1


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite:///`` URL (in-memory databases cannot be loaded into)."""
    u = make_url(url)
    if not u.database or u.database == ":memory:":
        raise ValueError(f"{url}: the load needs a SQLite file, not an in-memory database")
    return Path(u.database)


def _q(name: str) -> str:
    return _DIALECT.identifier_preparer.quote(name)


def rowid_key(table: Table) -> str | None:
    """The column that is the rowid of ``table`` on SQLite (a single-column primary key declared
    INTEGER on SQLite, :data:`.schema.ROWID_KEYS`), or None."""
    if table.dialect_options["sqlite"].get("with_rowid") is False:
        return None
    pk = list(table.primary_key.columns)
    if len(pk) != 1:
        return None
    t = pk[0].type
    t = getattr(t, "_variant_mapping", {}).get("sqlite", t)
    return pk[0].name if t.compile(dialect=_DIALECT) == "INTEGER" else None


def in_key_order(batches, key: str, ahead: int = 2):
    """The rows of ``batches`` (record batches of one schema, ``key`` without NULLs) in
    ascending ``key`` order, in batches of the size of the largest.

    Every batch is read first (the table is held whole), each sorted by itself as it arrives;
    then output batch j gathers, from every sorted batch, its slice of the j-th key range (a
    ``searchsorted`` of the range bounds) and sorts these few rows. Each row is copied twice
    within one batch's worth of memory, never gathered at random across the whole table, and
    no second copy of the table is ever made (a whole-column take doubled the peak: 7.3 GiB at
    DR1 scale, measured). Output batches are made ``ahead`` of the insert, in a thread (Arrow
    releases the GIL, as the caller's insert does). Input already in key order comes back as
    it came."""
    runs, size, was_sorted = [], 0, True
    for batch in batches:
        k = batch.column(key).to_numpy()
        if len(k) > 1 and not bool((k[1:] > k[:-1]).all()):
            batch = batch.take(pa.array(np.argsort(k, kind="stable")))
            was_sorted = False
        runs.append(batch)
        size = max(size, batch.num_rows)
    runs = [r for r in runs if r.num_rows]
    keys = [r.column(key).to_numpy() for r in runs]
    if was_sorted and all(a[-1] < b[0] for a, b in zip(keys, keys[1:])):
        yield from runs
        return
    bounds = np.sort(np.concatenate(keys))[size::size]  # first key of output batches 1, 2, ...
    cuts = [np.concatenate([[0], np.searchsorted(k, bounds), [len(k)]]) for k in keys]
    schema = runs[0].schema

    def gather(j: int) -> pa.Table:
        pieces = [r.slice(c[j], c[j + 1] - c[j]) for r, c in zip(runs, cuts)]
        t = pa.Table.from_batches(pieces, schema).combine_chunks()
        return t.take(pa.array(np.argsort(t.column(key).to_numpy(), kind="stable")))

    n = len(bounds) + 1
    with ThreadPoolExecutor(1) as pool:
        pending = [pool.submit(gather, j) for j in range(min(ahead, n))]
        for j in range(n):
            out = pending.pop(0).result()
            if j + ahead < n:
                pending.append(pool.submit(gather, j + ahead))
            yield out
    # Arrow's allocator keeps the freed table's pages for reuse unless told: the index builds
    # that follow allocate elsewhere (SQLite, numpy), and the peak was 7.5 GiB, measured
    runs.clear()
    del out
    pa.default_memory_pool().release_unused()


class SqliteTarget:
    """One load transaction into a SQLite file."""

    dialect = "sqlite"
    #: whether a server process, not this one, builds the keys and indexes
    indexes_in_server = False
    #: Arrow's memory pool while the tables are loaded (:func:`.loader.arrow_pool`): the C
    #: library's allocator. Arrow's default (mimalloc) keeps the pages of the galaxies table it
    #: read and sorted, and backs them with transparent huge pages that the kernel zeroes 2 MB
    #: at a time (14% of the DR1-scale load's CPU samples: perf, clear_page_erms under
    #: do_huge_pmd_anonymous_page). DR1 scale, three A/B pairs on the shared machine (load
    #: average 5.6-6.6): peak RSS 4.80, 4.93, 4.86 GiB against 5.24, 5.23, 5.22; total CPU
    #: 67.8, 75.6, 76.4 s against 68.6, 82.4, 75.5 (system CPU 13.5, 17.2, 17.1 against 18.5,
    #: 21.9, 16.4): the memory is the gain, the CPU the same within the machine's noise. The
    #: database is the same, row for row.
    arrow_pool = "system"

    def __init__(self, url: str):
        import adbc_driver_sqlite.dbapi as adbc

        self.path = sqlite_path(url)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = adbc.connect(str(self.path))  # autocommit off: one transaction
        self.cur = self.conn.cursor()
        self.cur.execute(SQLITE_BUSY_PRAGMA)
        # a new file only (an existing database keeps its page size): see PAGE_SIZE
        self.cur.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        self.cur.execute(f"PRAGMA cache_size = {CACHE_SIZE}")
        self.sky_index = "rtree"

    # -- introspection -------------------------------------------------------------------
    def _fetch(self, sql: str, params=None) -> list[tuple]:
        self.cur.execute(sql, parameters=params) if params else self.cur.execute(sql)
        return self.cur.fetchall()

    def table_exists(self, name: str) -> bool:
        return bool(self._fetch("SELECT 1 FROM sqlite_master WHERE name = ? AND type = 'table'",
                                (name,)))

    def loaded_digests(self) -> dict[str, str]:
        if not self.table_exists("load_tables"):
            return {}
        return {t: d for t, d in self._fetch("SELECT table_name, digest FROM load_tables")
                if self.table_exists(t)}

    def next_run_id(self) -> int:
        if not self.table_exists("load_runs"):
            return 1
        return int(self._fetch("SELECT COALESCE(MAX(run_id), 0) + 1 FROM load_runs")[0][0])

    def count(self, name: str) -> int:
        return int(self._fetch(f"SELECT count(*) FROM {_q(name)}")[0][0])

    def published_count(self, name: str) -> int:
        """Rows of a published table, as this (open) transaction sees it."""
        return self.count(name)

    # -- data tables ---------------------------------------------------------------------
    def ddl(self, element) -> None:
        self.cur.execute(str(element.compile(dialect=_DIALECT)))

    def new_table(self, name: str, arrow_schema: pa.Schema, key: tuple[str, ...] | None = None,
                  indexes: tuple[tuple[str, ...], ...] = (), clustered: bool = False) -> Table:
        return S.data_table(name, arrow_schema, MetaData(), key=key, indexes=indexes,
                            clustered=clustered)

    def create_table(self, table: Table) -> None:
        """Drop the previous table of that name (inside the transaction) and create it."""
        self.cur.execute(f"DROP TABLE IF EXISTS {_q(table.name)}")
        self.ddl(CreateTable(table))

    def write(self, table: Table, batches, label: str) -> None:
        key = rowid_key(table)
        if key is None:
            for batch in batches:
                self.cur.adbc_ingest(table.name, batch, mode="append")
            return
        # appends in key order touch only the B-tree's right edge: a small page cache holds it,
        # and the large one (for the indexes built next) would only hold written pages
        self.cur.execute(f"PRAGMA cache_size = {APPEND_CACHE_SIZE}")
        for batch in in_key_order(batches, key):
            self.cur.adbc_ingest(table.name, batch, mode="append")
        self.cur.execute(f"PRAGMA cache_size = {CACHE_SIZE}")  # (a failure rolls back, closes)

    def finish_table(self, table: Table) -> None:
        if not table.indexes:
            return
        self.cur.execute(f"PRAGMA threads = {INDEX_THREADS}")
        self.cur.execute(f"PRAGMA cache_size = {INDEX_CACHE_SIZE}")
        for idx in sorted(table.indexes, key=lambda i: i.name):
            self.ddl(CreateIndex(idx))
        self.cur.execute(f"PRAGMA cache_size = {CACHE_SIZE}")  # (a failure rolls back, closes)

    # -- spatial index -------------------------------------------------------------------
    def build_spatial(self, positions: pa.Table, blocks: Blocks, sky_index: str) -> str:
        md = MetaData()
        pos = S.positions_table(md)
        self.create_table(pos)
        if positions.num_rows:
            self.cur.adbc_ingest(pos.name, positions, mode="append")
        self.cur.execute("DROP TABLE IF EXISTS galaxy_blocks")
        dims = ", ".join(f"{d}_min, {d}_max" for d in S.BLOCK_DIMS)
        self.cur.execute(
            f"CREATE VIRTUAL TABLE galaxy_blocks USING rtree(block, {dims}, +pos_lo, +pos_hi)")
        if len(blocks):
            self.cur.adbc_ingest("galaxy_blocks", blocks.to_arrow(S.BLOCK_DIMS), mode="append")
        return "rtree"

    # -- provenance ----------------------------------------------------------------------
    def ensure_provenance(self) -> None:
        md = MetaData()
        for t in S.provenance_tables(md).values():
            self.cur.execute(str(CreateTable(t, if_not_exists=True).compile(dialect=_DIALECT)))

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.cur.execute(sql, parameters=params) if params else self.cur.execute(sql)

    def insert_rows(self, name: str, rows: list[dict]) -> None:
        if rows:
            t = pa.Table.from_pylist(rows)
            for i, f in enumerate(t.schema):  # all-None columns: give them a bindable type
                if pa.types.is_null(f.type):
                    t = t.set_column(i, f.name, pa.nulls(t.num_rows, pa.string()))
            self.cur.adbc_ingest(name, t, mode="append")

    @staticmethod
    def timestamp(dt) -> str:
        # SQLAlchemy's storage format for DateTime on SQLite (naive UTC)
        return dt.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def analyze(self, names: list[str] | None = None) -> None:
        if names is None:
            self.cur.execute("ANALYZE")
        for name in names or ():
            self.cur.execute(f"ANALYZE {_q(name)}")

    def publish(self, names: list[str]) -> None:
        """Nothing to swap: SQLite replaced the tables in place, inside the transaction."""

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        try:
            self.cur.close()
        finally:
            self.conn.close()
