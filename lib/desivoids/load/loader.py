"""The load behind the load stage: Parquet -> SQL database, in one transaction, idempotently.

- **Transactional.** Every table that changes is rebuilt inside one database transaction
  (SQLite: dropped and recreated in the transaction; PostgreSQL: built in a staging schema and
  swapped in before the commit). Any error (bad input, a key violation, a row-count mismatch,
  an interrupted stream) rolls back the whole load: the database keeps its previous content
  and provenance. Nothing prints "done" unless the commit happened.
- **Idempotent.** ``load_tables`` remembers, per table, a digest of its Parquet parts (sha256)
  and of the load settings. A table whose digest is unchanged is left alone; a table whose input
  changed is replaced as a whole, so loading twice gives the same rows and a changed input
  replaces exactly its own table's rows (a row that disappeared from the input disappears).
- **Checked.** Input schemas are checked against the convert contract before the database is
  opened; NULLs in key or NOT NULL columns are reported with file, table, column and row; a
  duplicate key is reported with the files and rows that hold it; after loading, every table's
  row count must equal the Parquet row count.
"""
from __future__ import annotations

import json
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import __version__
from ..errors import LoadError, UsageError
from ..paths import RunLayout, display
from ..progress import bar
from . import schema as S
from .inputs import TableInput, discover
from .spatial import NO_DISTANCE, make_blocks, morton_order, unit_vectors

if TYPE_CHECKING:
    from .stage import LoadResult

__all__ = ["load", "DEFAULT_BLOCK_SIZE", "DEFAULT_BATCH_ROWS", "connect_target"]

#: Galaxies per galaxy_blocks box: small enough for tight boxes, large enough that the R-tree
#: has ~200,000 entries at DR1 scale (seconds to build).
DEFAULT_BLOCK_SIZE = 32
DEFAULT_BATCH_ROWS = 100_000
#: batches read ahead of the database's insert (each ~50 MB for galaxies)
PREFETCH = 2
_END = object()
#: Bumped when the loader's table layout changes, so an old database is rebuilt.
LAYOUT_VERSION = 3  # 3: NaN loaded as NULL on PostgreSQL too


def connect_target(db_url: str, *, sky_index: str = "auto", copy_format: str = "binary"):
    """The load target for a database URL (``sqlite:///...`` or ``postgresql://...``)."""
    from .queries import normalise_url

    url = normalise_url(db_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        from .sqlite import SqliteTarget

        if sky_index not in ("auto", "rtree"):
            raise UsageError("SQLite always uses its R*Tree (sky_index 'auto')")
        return SqliteTarget(url.render_as_string(hide_password=False))
    if backend == "postgresql":
        from .postgres import PostgresTarget

        return PostgresTarget(url.render_as_string(hide_password=False), sky_index=sky_index,
                              copy_format=copy_format)
    raise UsageError(f"unsupported database URL {url!r}: sqlite:/// or postgresql://")


# -- streaming -----------------------------------------------------------------------------
class _Stream:
    """Batches of one table's parts, checked, with derived columns, and the per-column NULL and
    NaN counts of the input; for galaxies also the columns the spatial index needs."""

    def __init__(self, inp: TableInput, batch_rows: int, keep_positions: bool):
        self.inp = inp
        self.batch_rows = batch_rows
        self.nulls = {n: 0 for n in inp.schema.names}
        self.nans = {n: 0 for n in inp.schema.names}
        self.keep = keep_positions
        self.pos: dict[str, list[np.ndarray]] = {c: [] for c in S.POSITION_COLUMNS}
        self.current = None

    def _check(self, batch: pa.RecordBatch, part, offset: int) -> None:
        for name in self.inp.nonnull:
            col = batch.column(name)
            if col.null_count:
                row = offset + int(np.flatnonzero(~col.is_valid().to_numpy(
                    zero_copy_only=False))[0])
                raise LoadError(part.path, self.inp.name, name,
                                f"NULL in a key or NOT NULL column (row {row} of the file)")

    def prefetched(self, depth: int = PREFETCH):
        """The checked batches in part order (``current``: the part of the last one given),
        read, checked and derived ``depth`` batches ahead in a thread of its own: Parquet
        decoding, the NaN counts and the unit vectors (about 7 CPU s for the DR1-scale
        galaxies) run beside the database's insert of the previous batch, which releases the
        GIL (ADBC, psycopg's COPY). An error of the reader is raised here, in order; closing
        this generator early stops the reader. The counts and positions it keeps are complete
        once the last batch is given."""
        q: queue.Queue = queue.Queue(depth)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        def produce() -> None:
            try:
                for item in self._batches():
                    if not put(item):
                        return
                put(_END)
            except BaseException as exc:  # handed to the consumer, raised there
                put(exc)

        reader = threading.Thread(target=produce, name="load-reader", daemon=True)
        reader.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                self.current, batch = item
                yield batch
        finally:
            stop.set()
            reader.join()

    def _batches(self):
        for part in self.inp.parts:
            offset = 0
            try:
                pf = pq.ParquetFile(part.path)
                it = pf.iter_batches(batch_size=self.batch_rows, use_threads=True)
                for batch in it:
                    batch = batch.replace_schema_metadata(None)
                    if batch.schema != self.inp.schema:  # field metadata aside
                        batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.inp.schema)
                    self._check(batch, part, offset)
                    nan_cols = {}
                    for i, (n, col) in enumerate(zip(batch.schema.names, batch.columns)):
                        self.nulls[n] += col.null_count
                        if pa.types.is_floating(col.type):
                            k = int(pc.sum(pc.is_nan(col)).as_py() or 0)
                            self.nans[n] += k
                            if k:
                                nan_cols[i] = col
                    if nan_cols:
                        # SQLite stores a bound NaN as NULL; PostgreSQL keeps NaN, which sorts
                        # above every number (``logmstar > 10`` would select it). Send NULL to
                        # both so the backends hold the same rows; load_columns.nans keeps the
                        # count.
                        arrays = list(batch.columns)
                        for i, col in nan_cols.items():
                            arrays[i] = pc.if_else(pc.is_nan(col),
                                                   pa.scalar(None, col.type), col)
                        batch = pa.RecordBatch.from_arrays(arrays, schema=batch.schema)
                        self._check(batch, part, offset)  # NaN in a NOT NULL column
                    if self.inp.name == "galaxies":
                        batch = self._galaxies(batch)
                    offset += batch.num_rows
                    yield part, batch
            except LoadError:
                raise
            except (OSError, pa.ArrowException) as exc:
                raise LoadError(part.path, self.inp.name, None,
                                f"reading row {offset} onwards failed: {exc}") from None

    def _galaxies(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        ra = batch.column("ra").to_numpy(zero_copy_only=False)
        dec = batch.column("dec").to_numpy(zero_copy_only=False)
        ux, uy, uz = unit_vectors(ra, dec)
        if self.keep:
            for c in ("targetid", "ra", "dec", "z"):
                self.pos[c].append(batch.column(c).to_numpy(zero_copy_only=False))
            for c, v in (("unit_x", ux), ("unit_y", uy), ("unit_z", uz)):
                self.pos[c].append(v)
            for c in ("comoving_x", "comoving_y", "comoving_z"):
                col = batch.column(c)
                self.pos[c].append(col.to_numpy(zero_copy_only=False).astype(np.float64)
                                   if col.null_count == 0 else
                                   col.fill_null(np.nan).to_numpy(zero_copy_only=False))
        arrays = list(batch.columns) + [pa.array(ux), pa.array(uy), pa.array(uz)]
        names = batch.schema.names + [c for c, _ in S.DERIVED_GALAXY_COLUMNS]
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def positions(self) -> tuple[pa.Table, "object"]:
        """galaxy_positions in Morton order and the blocks over it."""
        cols = {c: (np.concatenate(v) if v else np.zeros(0)) for c, v in self.pos.items()}
        unit = np.column_stack([cols["unit_x"], cols["unit_y"], cols["unit_z"]])
        com = np.column_stack([cols["comoving_x"], cols["comoving_y"], cols["comoving_z"]])
        order, n_dist = morton_order(cols["targetid"], unit, com)
        r = np.sqrt((com * com).sum(axis=1))
        r = np.where(np.isfinite(r), r, NO_DISTANCE)
        dims = np.column_stack([unit, cols["z"], r])[order]
        table = {"pos": np.arange(len(order), dtype=np.int64),
                 "targetid": cols["targetid"].astype(np.int64)[order]}
        for c in S.POSITION_COLUMNS[1:]:
            v = cols[c][order].astype(np.float64)
            table[c] = pa.array(v, mask=np.isnan(v)) if c.startswith("comoving") else v
        return pa.table(table), dims, n_dist


def _duplicates(inp: TableInput, limit: int = 3) -> str | None:
    """Where the duplicate keys of a table's input are: key values, files and rows (None when
    the input has no duplicate key)."""
    key = list(S.KEYS[inp.name])
    frames = []
    import pandas as pd

    for part in inp.parts:
        t = pq.read_table(part.path, columns=key).to_pandas()
        t["_file"], t["_row"] = part.rel, np.arange(len(t))
        frames.append(t)
    df = pd.concat(frames, ignore_index=True)
    dup = df[df.duplicated(key, keep=False)].sort_values(key + ["_file", "_row"])
    if dup.empty:
        return None
    out = []
    for k, g in list(dup.groupby(key, sort=True))[:limit]:
        k = k if isinstance(k, tuple) else (k,)
        where = ", ".join(f"{f} row {r}" for f, r in zip(g["_file"], g["_row"]))
        out.append(f"({', '.join(map(str, k))}) in {where}")
    n = dup.drop_duplicates(key).shape[0]
    return f"{n} duplicate key value(s) of ({', '.join(key)}): " + "; ".join(out)


def _integrity_errors() -> tuple[type, ...]:
    """The DB-API IntegrityError classes of the drivers the loader uses. ADBC's SQLite driver
    reports a constraint failure as InternalError (adbc-driver-sqlite 1.x, measured), so for
    ADBC errors the loader looks for the duplicate keys in the input instead of trusting the
    class (see _load_table)."""
    import sqlite3

    import adbc_driver_manager
    import psycopg
    from sqlalchemy.exc import IntegrityError

    return (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError,
            adbc_driver_manager.IntegrityError, adbc_driver_manager.InternalError)


# -- the load ------------------------------------------------------------------------------
def load(data_dir: str | Path | None = None, db_url: str | None = None, *,
         parquet_dir: str | Path | None = None, force: bool = False, sky_index: str = "auto",
         copy_format: str = "binary", block_size: int = DEFAULT_BLOCK_SIZE,
         batch_rows: int = DEFAULT_BATCH_ROWS, progress: bool | None = None,
         _fail_after: str | None = None, before_commit=None,
         part_sha256: dict[str, str] | None = None) -> LoadResult:
    """Load ``RunLayout.of(data_dir).convert`` (or ``parquet_dir``) into ``db_url`` (default:
    ``RunLayout.of(data_dir).sqlite_url``).

    ``force`` rebuilds every table even when its input is unchanged. ``sky_index`` (PostgreSQL)
    picks the cone index: ``q3c``, ``blocks`` (GiST on cube) or ``auto`` (q3c when available).
    ``copy_format`` (PostgreSQL): ``binary`` or ``csv``. Raises :class:`LoadError` for bad input;
    on any error the database is left exactly as it was. ``before_commit(target, result,
    commit)`` runs inside the transaction after the last table (the stage seals its folder
    there, records it, calls ``commit()`` and then renames the folder into place, see
    :mod:`desivoids.publication`); an error in it before ``commit()`` rolls the whole load back.
    ``part_sha256``: the parts' sha256 by path relative to the Parquet directory, when the
    caller has just verified them (else each part is hashed).
    """
    if data_dir is None and (parquet_dir is None or db_url is None):
        raise UsageError("give data_dir, or both parquet_dir and db_url")
    layout = RunLayout.of(data_dir) if data_dir is not None else None
    pdir = Path(parquet_dir) if parquet_dir is not None else layout.convert
    url = db_url or layout.sqlite_url
    try:
        inputs = discover(pdir, sha256=part_sha256)  # all input checks before the database is opened
        return _load(inputs, pdir, url, force, sky_index, copy_format, block_size, batch_rows,
                     progress, _fail_after, before_commit)
    except LoadError as exc:
        raise exc.amended("the database was left as it was") from exc


@contextmanager
def arrow_pool(name: str | None):
    """Arrow's default memory pool set to ``pyarrow.<name>_memory_pool()`` ("system",
    "jemalloc", "mimalloc") for the block, the previous one back after it; ``None`` leaves it
    as it is. Every buffer is freed to the pool that allocated it, whichever is the default by
    then."""
    if name is None:
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(getattr(pa, f"{name}_memory_pool")())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _load(inputs, pdir, url, force, sky_index, copy_format, block_size, batch_rows, progress,
          _fail_after, before_commit=None) -> LoadResult:
    from .stage import LoadResult, TableResult  # the stage's result types (stage.py imports this module)

    target = connect_target(url, sky_index=sky_index, copy_format=copy_format)
    result = LoadResult(run_id=0, dialect=target.dialect, sky_index=target.sky_index)
    committed = False
    try:
        target.ensure_provenance()
        loaded = target.loaded_digests()
        run_id = target.next_run_id()
        result.run_id = run_id
        now = datetime.now(timezone.utc)
        settings_base = {"layout": LAYOUT_VERSION, "dialect": target.dialect}
        plan = []
        for name, inp in inputs.items():
            settings = dict(settings_base)
            if name == "galaxies":
                settings.update(block_size=block_size, sky_index=target.sky_index)
            if target.dialect == "sqlite" and name in S.ROWID_KEYS:
                # the key is the rowid (schema.ROWID_KEYS): a table loaded before, with the key
                # in a second B-tree, has another digest and is rebuilt, never kept beside
                settings["rowid_key"] = S.ROWID_KEYS[name]
            digest = inp.digest(settings)
            changed = force or loaded.get(name) != digest
            plan.append((name, inp, settings, digest, changed))
        tables = bar(plan, desc="load", unit="table", progress=progress)
        with arrow_pool(target.arrow_pool):
            for name, inp, settings, digest, changed in tables:
                tables.set_postfix_str(name)
                if not changed:
                    result.tables.append(TableResult(name, inp.rows, len(inp.parts),
                                                     "unchanged"))
                else:
                    _load_table(target, inp, settings, digest, run_id, now, block_size,
                                batch_rows, result.seconds)
                    result.tables.append(TableResult(name, inp.rows, len(inp.parts), "loaded"))
                if _fail_after == name:  # tests: a failure late in the transaction
                    raise RuntimeError(f"injected failure after table {name}")
        t0 = time.perf_counter()
        target.analyze()
        target.publish([t.table for t in result.tables if t.action == "loaded"])
        target.insert_rows("load_runs", [{
            "run_id": run_id, "loaded_at": target.timestamp(now), "parquet_dir": display(pdir),
            "tables_loaded": ",".join(t.table for t in result.tables if t.action == "loaded"),
            "tables_unchanged": ",".join(t.table for t in result.tables
                                         if t.action == "unchanged"),
            "rows_loaded": result.rows_loaded, "software": f"desivoids {__version__}"}])

        def commit() -> None:
            nonlocal committed
            target.commit()
            committed = True

        if before_commit is not None:  # seals the stage's folder, records it, commits, renames
            before_commit(target, result, commit)
        if not committed:
            commit()
        result.seconds["analyze+publish+commit"] = time.perf_counter() - t0
    finally:
        try:
            if not committed:
                target.rollback()
        finally:
            target.close()
    return result


def _load_table(target, inp: TableInput, settings: dict, digest: str, run_id: int, now,
                block_size: int, batch_rows: int, seconds: dict) -> None:
    name = inp.name
    table = target.new_table(name, inp.schema)
    target.create_table(table)
    stream = _Stream(inp, batch_rows, keep_positions=(name == "galaxies"))
    spatial = None
    try:
        t0 = time.perf_counter()
        batches = stream.prefetched()
        try:
            target.write(table, batches, name)
        finally:
            batches.close()  # a failed insert stops the reader
        t1 = time.perf_counter()
        # the Morton order and blocks of galaxy_positions (seconds of numpy at DR1 scale,
        # mostly without the GIL) are computed while the database builds the galaxies keys
        # and indexes, instead of after: the PostgreSQL server, or SQLite in this process,
        # which releases the GIL (ADBC) and sorts on one core
        overlap = name == "galaxies"
        with ThreadPoolExecutor(1) if overlap else nullcontext() as pool:
            if overlap:
                spatial = pool.submit(_spatial_rows, stream, block_size)
            target.finish_table(table)
            seconds[f"{name}:copy"], seconds[f"{name}:index"] = t1 - t0, time.perf_counter() - t1
            if spatial is not None:
                spatial.result()  # an error of the computation surfaces here, as before
    except LoadError:
        raise
    except Exception as exc:  # translate database errors, naming the input
        dups = _duplicates(inp) if isinstance(exc, _integrity_errors()) else None
        if dups is not None:
            raise LoadError(stream.current.path.parent if len(inp.parts) > 1
                            else stream.current.path, name, ", ".join(S.KEYS[name]),
                            dups) from exc
        part = stream.current.path if stream.current is not None else None
        col = _column_in(exc, table)
        raise LoadError(part, name, col, f"{type(exc).__name__}: {exc}".strip()) from exc
    n = target.count(name)
    if n != inp.rows:
        raise LoadError(None, name, None, f"{n} rows in the database after loading, "
                        f"{inp.rows} in the Parquet input")
    if name == "galaxies":
        t0 = time.perf_counter()
        positions, blocks = (spatial.result() if spatial is not None
                             else _spatial_rows(stream, block_size))
        target.build_spatial(positions, blocks, target.sky_index)
        seconds["galaxies:spatial"] = time.perf_counter() - t0
        if target.count("galaxy_positions") != inp.rows:
            raise LoadError(None, "galaxy_positions", None, "row count differs from galaxies")
    # provenance of this table: replace its rows
    for prov in ("load_tables", "load_parts", "load_columns"):
        target.execute(f"DELETE FROM {prov} WHERE table_name = ?", (name,))
    target.insert_rows("load_tables", [{
        "table_name": name, "digest": digest, "rows": inp.rows, "parts": len(inp.parts),
        "run_id": run_id, "loaded_at": target.timestamp(now),
        "settings": json.dumps(settings, sort_keys=True),
        "parquet_metadata": json.dumps(inp.metadata, sort_keys=True) if inp.metadata else None}])
    target.insert_rows("load_parts", [{
        "table_name": name, "part": p.rel, "sha256": p.sha256, "rows": p.rows, "bytes": p.bytes,
        "source_files": json.dumps(list(p.source_files)), "run_id": run_id}
        for p in inp.parts])
    target.insert_rows("load_columns", [{
        "table_name": name, "column_name": c.name, "position": i,
        "sql_type": str(c.type.compile(dialect=_dialect(target))),
        "nulls": stream.nulls.get(c.name, 0), "nans": stream.nans.get(c.name, 0)}
        for i, c in enumerate(table.columns)])


def _spatial_rows(stream: _Stream, block_size: int):
    """galaxy_positions (Morton order) and its blocks, from the positions the stream kept."""
    positions, dims, n_dist = stream.positions()
    return positions, make_blocks(dims, n_dist, block_size)


def _dialect(target):
    if target.dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.dialect()
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


def _column_in(exc: BaseException, table) -> str | None:
    """The column a database error message names, if any."""
    msg = str(exc)
    for c in table.columns:
        if f'"{c.name}"' in msg or f"{table.name}.{c.name}" in msg:
            return c.name
    return None
