"""The environment stage: the void membership of every galaxy under every algorithm.

Every galaxy of the converted catalogue (not only the tracers) gets, for each algorithm, VAST's
flag (0 wall, 1 void, 2 edge, 9 outside), its void, its distance to the void's centre in units of
the void's effective radius, whether that void is interior, and the flag of the interior-only
variant, from the catalogue of its own cap (its row for the other cap would be 9 by rule, so it
is not stored). The heavy part runs as Dask tasks over chunks of galaxies, on the local
scheduler or on the cluster of ``scheduler_address``; the per-cap structures (trees over holes
and tracers, masks) are built once and sent to every worker once. The database's insert of the
assignments, the stage's longest step, runs in a thread of its own that takes each chunk's rows
as soon as the chunk is assigned, beside the membership still running (which leaves it a core),
then beside the Parquet writer and the summary (:class:`AssignmentsPublication`).

Outputs in ``<data_dir>/environment``: ``galaxy_void_assignments.parquet`` (targetid, algorithm,
cap, flag, void, r_over_reff, interior, flag_interior), ``void_counts.parquet`` (galaxies and
tracers per void), ``report.json`` (fractions of tracers and of volume in voids per algorithm
beside VAST's DR7 reference, the agreement matrix of the labels); and the database tables
``galaxy_void_assignments`` and ``void_counts``; ``voidfinder_surface.parquet`` (targetid, cap,
flag, strict_void, tracer) lists VoidFinder's surface galaxies (within ``surface_tol`` of a
hole's surface, inside no hole by more: not void here; ``strict_void``: VAST's strict rule calls
it void), so that systematics can give the answer both ways; report.json counts them per cap,
and, where a VoidFinder file as acquire fetched it carries VAST's FIELD HDU, how many void
galaxies are field galaxies (``voidfinder_field``).
"""
from __future__ import annotations

import json
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, suppress
from functools import lru_cache
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import compute, formats, idsets, paths
from ..errors import StageError
from ..load.tables import table_transaction
from ..outputs import jsonable, staged, write_json
from .flags import (INTERIOR, NO_VOID, NOT_SURFACE, SURFACE_STRICT_VOID, UNKNOWN,
                    Assignment, interior_only)
from .field import field_summary, read_field
from ..vastheaders import caps_present, primary_headers
from .membership import (GALAXY_COLUMNS, TABLE_COLUMNS, _arrays, _galaxy_xyz, assign_cap,
                         assign_chunk, beyond_far_limit_in_holes, build_catalogues,
                         header_limits)
from .summary import (DR7_REFERENCE, agreement, flag_counts, footprint_randoms, fractions,
                      surface_summary, void_counts)
from ..params import checked
from ..stages import file_name

__all__ = ["run", "EnvironmentResult", "read_tables"]

SCHEMA_VERSION = 1
ASSIGNMENTS = "galaxy_void_assignments"
ASSIGNMENT_KEY = ("targetid", "algorithm", "cap")
#: galaxy_void_assignments' columns (:meth:`Assignment.to_arrow`)
ASSIGNMENT_SCHEMA = pa.schema([
    ("targetid", pa.int64()), ("algorithm", pa.string()), ("cap", pa.string()),
    ("flag", pa.int8()), ("void", pa.int64()), ("r_over_reff", pa.float64()),
    ("interior", pa.bool_()), ("flag_interior", pa.int8())])
#: galaxy_void_assignments.parquet's columns written without a dictionary: a targetid or a
#: distance is nearly unique to its row, so pyarrow's dictionary overflows and falls back to
#: plain pages after paying for it (DR1 scale, the stage's 13 batches: 145.4 MB written in
#: 3.1-4.0 CPU s; without these two dictionaries 131.5 MB in 2.4-3.0, the same rows, measured)
PLAIN_COLUMNS = ("targetid", "r_over_reff")
SURFACE_FILE = "voidfinder_surface"
#: rows per batch of galaxy_void_assignments (and so per write of its Parquet file)
ROWS_PER_BATCH = 2_000_000


@dataclass
class EnvironmentResult:
    out_dir: Path
    report: dict

    @property
    def fractions(self) -> pd.DataFrame:
        return pd.DataFrame(self.report["fractions"])

    @property
    def agreement(self) -> pd.DataFrame:
        return pd.DataFrame(self.report["agreement"])

    def __str__(self) -> str:
        f = self.fractions
        f = f[f.cap == "both"]
        lines = [f"environment: {self.report['galaxies']:,d} galaxies x "
                 f"{len(formats.ALGORITHMS)} algorithms -> {paths.display(self.out_dir)}"]
        for alg in formats.ALGORITHMS:
            t = f[(f.algorithm == alg) & (f["of"] == "tracers")].iloc[0]
            v = f[(f.algorithm == alg) & (f["of"] == "volume")].iloc[0]
            lines.append(f"  {alg:<10} tracers in voids {100 * t.void_of_void_and_wall:5.1f}%, "
                         f"volume in voids {100 * v.void_of_void_and_wall:5.1f}% "
                         "(void / (void + wall))")
        for r in self.report.get("voidfinder_surface", []):
            if r["cap"] == "both":
                lines.append(f"  VoidFinder surface galaxies (within {r['surface_tol']:g} Mpc/h, "
                             f"not void): {r['galaxies']:,d} ({r['tracers']:,d} tracers), "
                             f"{r['galaxies_strict_void']:,d} void by VAST's strict rule")
        for cap, n in self.report.get("beyond_zlimu_in_holes", {}).items():
            if n["galaxies"]:
                lines.append(f"  {cap}: {n['galaxies']:,d} galaxies beyond ZLIMU inside a "
                             "VoidFinder hole: outside (9) here, void (1) in VAST")
        return "\n".join(lines)


def read_tables(convert_dir: Path) -> dict[str, pa.Table]:
    """The DESIVAST tables membership reads, only the columns it needs."""
    return {name: pq.read_table(convert_dir / file_name("convert", name), columns=list(cols))
            for name, cols in TABLE_COLUMNS.items() if name != "galaxies"}


def survey_masks(convert_dir: Path) -> dict[tuple[str, str], tuple[str, int, np.ndarray]]:
    """(algorithm, cap) -> (scheme, resolution, cells) of the files that carry their own MASK
    HDU (convert's survey_masks.parquet; empty for the DESIVAST VAC, which ships none)."""
    path = convert_dir / file_name("convert", "survey_masks")
    if not path.exists():
        return {}
    t = pq.read_table(path).to_pandas()
    return {(a, c): (str(g.scheme.iloc[0]), int(g.resolution.iloc[0]), g.cell.to_numpy())
            for (a, c), g in t.groupby(["algorithm", "cap"])}


def _galaxy_omega_m(dataset: ds.Dataset) -> float | None:
    meta = (dataset.schema.metadata or {}).get(b"desivoids")
    if meta is None:
        return None
    value = json.loads(meta).get("omega_m")
    return None if value is None else float(value)


def _tracer_mask(targetid: np.ndarray, selection: Path) -> np.ndarray:
    """Which galaxies plausibility selected as tracers (its table lists the galaxies in the
    converted catalogue's order; joined on targetid should that order differ)."""
    sel = pq.read_table(selection, columns=["targetid", "tracer"])
    ids = sel.column("targetid").to_numpy()
    if np.array_equal(ids, targetid):
        return sel.column("tracer").to_numpy()
    order = np.argsort(ids)
    pos = np.searchsorted(ids[order], targetid)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[order][pos] == targetid
    return found & sel.column("tracer").to_numpy()[order][pos]


@lru_cache(maxsize=4)
def _algorithm_column(algs: tuple[str, ...], galaxies: int) -> pa.Array:
    """The algorithm column of a batch of ``galaxies`` galaxies: ``algs`` repeated, the same
    array for every full batch (arrow arrays are immutable), built once."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(len(algs), dtype=np.int8), galaxies)),
        pa.array(list(algs))).cast(pa.string())


def assignment_batches(targetid: np.ndarray, result: dict[str, Assignment],
                       rows_per_batch: int = ROWS_PER_BATCH) -> Iterator[pa.RecordBatch]:
    """The rows of galaxy_void_assignments, ordered by (targetid, algorithm): the order of its
    primary key, so a database builds the key by appending (25.8M rows at DR1 scale), in
    batches of about ``rows_per_batch`` rows, so memory stays bounded (at least one batch, empty
    when there are no galaxies). Columns as :meth:`Assignment.to_arrow`. Galaxies already in
    targetid order (as the stage holds them) are taken by slices, not gathered."""
    in_order = bool(np.all(targetid[1:] >= targetid[:-1]))
    order = None if in_order else np.argsort(targetid, kind="stable")
    step = _galaxies_per_batch(result, rows_per_batch)
    for s in range(0, max(len(targetid), 1), step):
        rows = slice(s, s + step) if in_order else order[s:s + step]
        yield _batch(targetid, result, rows)


def _galaxies_per_batch(result: dict, rows_per_batch: int) -> int:
    return max(1, rows_per_batch // len(result))


def _batch(targetid: np.ndarray, result: dict[str, Assignment], rows) -> pa.RecordBatch:
    """The rows of the galaxies ``rows`` (a slice or an index array), each galaxy's algorithms
    in byte order (as SQL's BINARY collation sorts them)."""
    algs = sorted(result)
    k = len(algs)
    caps = pa.array(list(formats.CAPS))

    def stacked(attr):  # (galaxy, algorithm) interleaved: row i * k + m
        return np.stack([getattr(result[a], attr)[rows] for a in algs], axis=1).ravel()

    ids = targetid[rows]
    flag, void, dist = stacked("flag"), stacked("void"), stacked("void_distance")
    interior = stacked("void_interior")
    flag_interior = interior_only(flag, interior)  # of these rows only, not every galaxy's
    return pa.RecordBatch.from_arrays([
        pa.array(np.repeat(ids, k), pa.int64()),
        _algorithm_column(tuple(algs), len(ids)),
        pa.DictionaryArray.from_arrays(pa.array(stacked("cap_code")), caps).cast(pa.string()),
        pa.array(flag.astype(np.int8)),
        pa.array(void, mask=void == NO_VOID),
        pa.array(dist, mask=~np.isfinite(dist)),
        pa.array(interior == INTERIOR, mask=interior == UNKNOWN),
        pa.array(flag_interior.astype(np.int8))], schema=ASSIGNMENT_SCHEMA)


def _lazy_batch(targetid, result, rows) -> Iterator[pa.RecordBatch]:
    """The batch of ``rows``, built when first asked for (by the thread that takes it)."""
    yield _batch(targetid, result, rows)


class KeyOrderBatches:
    """The rows of :func:`assignment_batches` (galaxies in targetid order, as the stage holds
    them) handed to ``emit`` piece by piece, as soon as every chunk of galaxies a piece covers
    is assigned (:meth:`done`, chunks in any order). Pieces are cut where chunks end and where
    :func:`assignment_batches` cuts its batches, so that one stream of rows, built once, feeds
    both the database's insert and the Parquet file (:class:`ParquetBatches` with
    ``rows_per_batch`` puts the pieces back together into the same batches)."""

    def __init__(self, targetid: np.ndarray, result: dict[str, Assignment], emit,
                 rows_per_batch: int = ROWS_PER_BATCH):
        self.targetid, self.result, self.emit = targetid, result, emit
        self.step = _galaxies_per_batch(result, rows_per_batch)
        self.n = len(targetid)
        self._done: dict[int, int] = {}  # start -> stop of assigned chunks past the frontier
        self.frontier = 0  # every galaxy before it is assigned
        self.sent = 0  # galaxies whose rows were emitted

    def done(self, rows: slice) -> None:
        """Chunk ``rows`` (a slice of the galaxies) is assigned."""
        self._done[rows.start] = min(rows.stop, self.n)
        while self.frontier in self._done:
            self.frontier = self._done.pop(self.frontier)
        while self.sent < self.frontier:
            stop = min(self.frontier, (self.sent // self.step + 1) * self.step)
            self.emit(_lazy_batch(self.targetid, self.result, slice(self.sent, stop)))
            self.sent = stop

    def end(self) -> None:
        """Every chunk is assigned: with no galaxies at all, the one (empty) batch."""
        if self.n == 0 and self.sent == 0:
            self.emit(_lazy_batch(self.targetid, self.result, slice(0, 0)))
            self.sent = -1
        elif self.sent != self.n:
            raise StageError(f"{ASSIGNMENTS}: {self.n - self.sent} galaxies never assigned")


def write_assignments(path: Path, targetid: np.ndarray, result: dict[str, Assignment],
                      rows_per_group: int = ROWS_PER_BATCH) -> Path:
    """galaxy_void_assignments.parquet, the rows of :func:`assignment_batches`."""
    with ParquetBatches(path, plain=PLAIN_COLUMNS) as sink:
        for batch in assignment_batches(targetid, result, rows_per_group):
            sink.write(batch)
    return path


class ParquetBatches:
    """``with ParquetBatches(path) as sink: sink.write(batch)``: record batches of one schema
    into a Parquet file (snappy, pyarrow's row groups), the writer opened by the first batch.
    With ``rows_per_batch``, the batches given are regrouped into batches of that many rows (the
    last one shorter) before they are written, so the file's row groups do not depend on how
    its rows were cut on the way. Columns named in ``plain`` are written without a dictionary
    (:data:`PLAIN_COLUMNS`), the others with one, as pyarrow does by default."""

    def __init__(self, path: Path, rows_per_batch: int | None = None,
                 plain: tuple[str, ...] = ()):
        self.path, self.writer, self.plain = path, None, tuple(plain)
        self.rows_per_batch = rows_per_batch
        self._held: list[pa.RecordBatch] = []
        self._rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self.rows_per_batch is None:
            return self._write(batch)
        self._held.append(batch)
        self._rows += batch.num_rows
        while self._rows >= self.rows_per_batch:
            whole = self._held[0] if len(self._held) == 1 else pa.concat_batches(self._held)
            self._write(whole.slice(0, self.rows_per_batch))
            rest = whole.slice(self.rows_per_batch)
            self._held, self._rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.path, batch.schema, compression="snappy",
                use_dictionary=[n for n in batch.schema.names if n not in self.plain])
        self.writer.write_batch(batch)

    def close(self) -> None:
        """Write what is held (an empty batch if nothing was ever written) and close."""
        if self._held and (self._rows or self.writer is None):
            self._write(self._held[0] if len(self._held) == 1
                        else pa.concat_batches(self._held))
        self._held, self._rows = [], 0
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self):
        return self

    def discard(self) -> None:
        """Forget the rows held for the next batch (the file is abandoned)."""
        self._held, self._rows = [], 0

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            self.discard()
        self.close()


class AssignmentsPublication:
    """galaxy_void_assignments rebuilt in the database while membership still runs, and
    written to Parquet once it has finished, while the caller goes on (the summary).

    The database's insert is the stage's longest step (25.8M keyed rows at DR1 scale, on one
    core, in SQLite's C code, which releases the GIL), so it gets a thread of its own from the
    start, fed through a short queue with each chunk's rows as soon as that chunk is assigned
    (:meth:`put`, which waits while the queue is full; or :meth:`put_later`, which never waits:
    a third thread builds the rows of what it was given as the insert takes them, so membership
    never waits for the insert; :meth:`end` when there are no more). The table is stored in key
    order (WITHOUT ROWID) whatever the order of the inserts: chunk after chunk, each sorted,
    measured 35.1 CPU s at DR1 scale against 33.8 for one sorted stream. The Parquet file, in
    key order, is written by the feeder from the very batches it queues for the table
    (:meth:`tee`, when they come in key order, as the stage gives them), by a thread from the
    whole result (:meth:`write`), or by the caller. Both get their rows from :func:`_batch` of
    the same Assignments, and the insert's row count is checked against what it was given.

    ``db``: the open TableTransaction.

    :meth:`result` waits for the threads and raises the first error (the feeder's, then the
    file's, then the table's); :meth:`cancel` stops them and waits for them, so that the caller
    can roll the transaction back."""

    _END = object()

    def __init__(self, db, schema: pa.Schema, name: str = ASSIGNMENTS,
                 key: tuple[str, ...] = ASSIGNMENT_KEY, queued: int = 2):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queued))
        self._stop = threading.Event()
        self._ended = False
        self._pool = ThreadPoolExecutor(3, thread_name_prefix="environment-publish")
        self._insert = self._pool.submit(self._publish, db, name, schema, key)
        self._write = self._feeder = None
        self._later: queue.SimpleQueue = queue.SimpleQueue()
        self._tee: ParquetBatches | None = None

    def tee(self, path: Path, rows_per_batch: int | None = None) -> None:
        """Write every batch given by :meth:`put_later` also to the Parquet file ``path``, in
        the order given (the feeder writes each before queueing it for the table), regrouped
        into batches of ``rows_per_batch`` rows if given (:class:`ParquetBatches`): for
        batches in the table's key order, the file and the table from one stream of rows."""
        if self._feeder is not None:
            raise RuntimeError(f"{ASSIGNMENTS}: tee() after put_later()")
        self._tee = ParquetBatches(path, rows_per_batch, PLAIN_COLUMNS)

    def put(self, batch: pa.RecordBatch) -> None:
        """Queue ``batch`` for the table (waits while the queue is full); raises the insert's
        error if it has stopped."""
        if self._ended:
            raise RuntimeError(f"{ASSIGNMENTS}: rows put after end()")
        if not self._put(batch):
            self._insert.result()  # its error, if it failed
            raise StageError(f"{ASSIGNMENTS}: the insert stopped before its rows ended")

    def put_later(self, batches: Iterator[pa.RecordBatch]) -> None:
        """Queue ``batches`` (a lazy iterator, e.g. :func:`assignment_batches`) for the table
        without waiting: the feeder thread iterates it when the insert's queue has room, so
        its rows are built as the insert takes them. Raises the insert's error if it has
        stopped."""
        if self._ended:
            raise RuntimeError(f"{ASSIGNMENTS}: rows put after end()")
        if self._stop.is_set():  # the feeder's error first: it stops the insert too
            if self._feeder is not None:
                self._feeder.result()
            self._insert.result()
            raise StageError(f"{ASSIGNMENTS}: the insert stopped before its rows ended")
        if self._feeder is None:
            self._feeder = self._pool.submit(self._feed)
        self._later.put(batches)

    def _feed(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._later.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is self._END:
                    self._put(self._END)
                    return
                for batch in item:
                    if self._tee is not None:
                        self._tee.write(batch)
                    if not self._put(batch):
                        return
        except BaseException:
            self._stop.set()  # the insert stops at its next batch; result() raises this
            raise
        finally:
            if self._tee is not None:
                if sys.exc_info()[0] is None and not self._stop.is_set():
                    self._tee.close()
                else:  # stopped: the file is left unfinished (and dropped with the folder)
                    self._tee.discard()
                    with suppress(Exception):  # the error that stopped it is the one raised
                        self._tee.close()

    def end(self) -> None:
        """No more rows for the table."""
        if not self._ended:
            self._ended = True
            if self._feeder is not None:  # after the rows it still holds
                self._later.put(self._END)
            else:
                self._put(self._END)

    def write(self, path: Path, batches: Iterator[pa.RecordBatch]) -> None:
        """Write ``batches`` to the Parquet file ``path``, in a thread."""
        self._write = self._pool.submit(self._produce, path, batches)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, path: Path, batches) -> None:
        with ParquetBatches(path, plain=PLAIN_COLUMNS) as sink:
            for batch in batches:
                if self._stop.is_set():  # cancelled, or the insert failed: result() says why
                    return
                sink.write(batch)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            if self._stop.is_set():
                raise StageError(f"{ASSIGNMENTS}: cancelled")
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is self._END:
                return
            yield item

    def _publish(self, db, name: str, schema: pa.Schema, key: tuple[str, ...]) -> int:
        try:
            return db.publish(name, pa.RecordBatchReader.from_batches(schema, self._batches()),
                              key=key)
        except BaseException:
            self._stop.set()  # the writer stops at its next batch, put() raises
            raise

    def result(self) -> None:
        """Wait for the threads (ending the table's rows); raise the first error."""
        try:
            self.end()
            if self._feeder is not None:
                self._feeder.result()
            if self._write is not None:
                self._write.result()
            self._insert.result()
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop the threads and wait for them (their errors are left unraised)."""
        self._stop.set()
        self._pool.shutdown(wait=True)


def write_surface(path: Path, targetid: np.ndarray, vf: Assignment, tracer: np.ndarray) -> Path:
    """voidfinder_surface.parquet: VoidFinder's surface galaxies, by targetid."""
    rows = np.flatnonzero(vf.surface != NOT_SURFACE)
    rows = rows[np.argsort(targetid[rows], kind="stable")]
    pq.write_table(pa.table({
        "targetid": pa.array(targetid[rows]),
        "cap": pa.array(np.asarray(formats.CAPS)[vf.cap_code[rows]]),
        "flag": pa.array(vf.flag[rows].astype(np.int8)),
        "strict_void": pa.array(vf.surface[rows] == SURFACE_STRICT_VOID),
        "tracer": pa.array(np.asarray(tracer[rows], bool))}), path)
    return path


def field_report(layout: paths.RunLayout, convert_dir: Path, galaxies, vf: Assignment,
                 tracer: np.ndarray, galaxy_omega_m: float | None) -> list[dict]:
    """Per cap, where the VoidFinder file (as acquire fetched it) carries a FIELD HDU (VAST
    writes one, DESIVAST's VAC does not): how many void galaxies are field galaxies."""
    rows, gal = [], None
    for (alg, cap), head in sorted(primary_headers(convert_dir / file_name("convert", "voids")).items()):
        if not formats.family(alg).holes:  # a FIELD HDU belongs to a hole family's files
            continue
        path = layout.raw / str(head["file"])
        fx = read_field(path) if path.is_file() else None
        own = np.flatnonzero(vf.cap_code == formats.CAPS.index(cap))
        if fx is None:
            xyz = np.zeros((len(own), 3))
        else:
            gal = _arrays(galaxies) if gal is None else gal
            xyz = _galaxy_xyz(gal, own, float(head["OMEGAM"]), galaxy_omega_m)
        row = field_summary(cap, fx, xyz, vf.flag[own] == 1, tracer[own])
        rows.append({**row, "file": str(head["file"]), "file_found": path.is_file()})
    return rows


@dataclass
class VoidInputs:
    """What the environment and density stages read to place galaxies in voids."""

    convert_dir: Path
    selection: Path
    tables: dict
    limits: dict
    present: list
    masks: dict
    catalogues: dict
    galaxies: pa.Table
    om: object


def void_inputs(layout: paths.RunLayout, caps=(), **catalogue_options) -> VoidInputs:
    """convert's void tables and galaxies, plausibility's selection, the caps present (among
    ``caps``; empty: all) and their void catalogues (``catalogue_options``, e.g. surface_tol,
    go to :func:`build_catalogues`)."""
    convert_dir = paths.require(layout.file("convert", "reconciliation"), "convert").parent
    selection = paths.require(layout.file("plausibility", "selection"), "plausibility")
    tables = read_tables(convert_dir)
    limits = header_limits(convert_dir / file_name("convert", "voids"))
    present = caps_present(primary_headers(convert_dir / file_name("convert", "voids")), list(caps))
    masks = survey_masks(convert_dir)
    catalogues = build_catalogues(tables["voids"], tables["holes"], tables["zonevoid"],
                                  tables["galzone"], limits, caps=present, survey_masks=masks,
                                  **catalogue_options)
    dataset = ds.dataset(convert_dir / "galaxies", format="parquet")
    return VoidInputs(convert_dir, selection, tables, limits, present, masks, catalogues,
                      dataset.to_table(columns=list(GALAXY_COLUMNS)), _galaxy_omega_m(dataset))


def summarise(layout: paths.RunLayout, inputs: VoidInputs, result: dict[str, Assignment],
              tracer: np.ndarray, *, chunk_rows: int, randoms: int, seed: int,
              surface_tol: float, caps) -> tuple[dict, pd.DataFrame]:
    """The stage's report (fractions of tracers and of volume in voids, flag counts, label
    agreement, surface and field galaxies) and the galaxies per void (void_counts)."""
    convert_dir, limits, present = inputs.convert_dir, inputs.limits, inputs.present
    masks, catalogues, galaxies, om = inputs.masks, inputs.catalogues, inputs.galaxies, inputs.om
    rng = np.random.default_rng(seed)
    random_flags, tracer_flags = {}, {}
    for cap, cat in catalogues.items():
        fp = cat.members["VoidFinder"].footprint
        pts = footprint_randoms(fp, randoms, limits[("VoidFinder", cap)].omega_m, rng)
        got = assign_cap(pts, cat)
        for alg in formats.ALGORITHMS:
            random_flags[(alg, cap)] = got[alg].flag
            own = result[alg].cap_code == formats.CAPS.index(cap)
            tracer_flags[(alg, cap)] = result[alg].flag[tracer & own]
    gal = _arrays(galaxies)  # the columns as numpy once, for every cap and the field report
    # each galaxy's own cap, as membership gave it (assign_chunk: cap_index_of_ra's)
    beyond = {cap: beyond_far_limit_in_holes(gal, cat, om, result["VoidFinder"].cap_code)
              for cap, cat in catalogues.items()}
    voids = pq.read_table(convert_dir / file_name("convert", "voids"),
                          columns=["algorithm", "cap", "void", "r_eff", "is_edge"]).to_pandas()
    counts = void_counts(voids, result, tracer)
    report = {
        "schema": "desivoids.environment", "schema_version": SCHEMA_VERSION,
        "galaxies": int(galaxies.num_rows), "tracers": int(tracer.sum()),
        "parameters": {"chunk_rows": chunk_rows, "randoms": randoms, "seed": seed,
                       "surface_tol": surface_tol, "caps": list(caps)},
        "flags": {str(k): v for k, v in {0: "wall", 1: "void", 2: "edge", 9: "outside"}.items()},
        "flag_counts": flag_counts(result, tracer),
        "fractions": fractions(tracer_flags, random_flags).to_dict(orient="records"),
        "dr7_reference": DR7_REFERENCE,
        "agreement": agreement({a: r.flag[tracer] for a, r in result.items()}),
        "tessellation_groups": {cap: [list(g) for g in cat.tessellation_groups]
                                for cap, cat in catalogues.items()},
        "voidfinder_surface": surface_summary(result["VoidFinder"], tracer, surface_tol,
                                              present),
        "voidfinder_field": field_report(layout, convert_dir, gal, result["VoidFinder"],
                                         tracer, om),
        "voids_not_in_catalogue": {a: int((~counts[counts.algorithm == a].in_catalogue).sum())
                                   for a in formats.ALGORITHMS},
        "caps": list(present),
        "survey_masks": {f"{a} {c}": v[0] for (a, c), v in masks.items()},
        # galaxies beyond ZLIMU strictly inside a hole that crosses the far limit: 9 here (out
        # of the catalogue's range), 1 in VAST's own classification (methods.md)
        "beyond_zlimu_in_holes": {cap: {"galaxies": int(len(rows)),
                                        "tracers": int(tracer[rows].sum())}
                                  for cap, rows in beyond.items()},
    }
    return report, counts


def _in_key_order(inputs: VoidInputs) -> tuple[VoidInputs, np.ndarray, np.ndarray]:
    """``inputs`` with the galaxies in targetid order, their targetids and which are tracers.
    The order is galaxy_void_assignments' key's: each chunk's rows then follow the table's
    and the file's order, so the stage builds them once, by slices, for both. One chunk per
    column: the numpy arrays of its columns (membership's, the summary's) are views."""
    targetid = inputs.galaxies.column("targetid").to_numpy()
    tracer = _tracer_mask(targetid, inputs.selection)
    if np.all(targetid[1:] >= targetid[:-1]):
        return replace(inputs, galaxies=inputs.galaxies.combine_chunks()), targetid, tracer
    order = idsets.stable_order(targetid)
    return replace(inputs, galaxies=inputs.galaxies.take(order)), targetid[order], tracer[order]


def _membership(inputs: VoidInputs, scheduler_address: str, chunk_rows: int,
                num_workers: int, on_chunk=None) -> dict[str, Assignment]:
    """Every galaxy, every algorithm, as Dask tasks over chunks of ``chunk_rows`` galaxies.
    ``on_chunk(rows, result)``, if given, is called as soon as each chunk is ready, once its
    rows (``rows``: the chunk's slice of the galaxies; chunks in the order they finish) are in
    ``result``, the whole result being filled. Each chunk goes into the whole result as it
    arrives, so chunks and result are never held twice. On the local scheduler,
    ``num_workers`` 0 takes every core but one, which the database's insert running beside
    membership needs (on two cores, two membership threads took it from the insert, the
    stage's longest step)."""
    import dask
    from dask.system import CPU_COUNT  # the cores this process may use, as dask counts them

    galaxies, step = inputs.galaxies, max(1, int(chunk_rows))
    starts = list(range(0, max(galaxies.num_rows, 1), step))
    n = galaxies.num_rows
    result = {a: Assignment.outside(a, np.zeros(n, np.int8), n) for a in formats.ALGORITHMS}
    workers = num_workers or max(1, CPU_COUNT - 1)
    with compute.client(scheduler_address) as c:
        cats = compute.scatter(c, inputs.catalogues)
        tasks = [dask.delayed(assign_chunk, pure=False)(galaxies.slice(s, step), cats, inputs.om)
                 for s in starts]
        with closing(compute.as_completed(tasks, c, num_workers=workers)) as done:
            for i, part in done:
                rows = slice(starts[i], starts[i] + step)
                for a in formats.ALGORITHMS:
                    result[a].put(rows, part[a])
                del part
                if on_chunk is not None:
                    on_chunk(rows, result)
    return result


@checked("environment")
def run(data_dir: str = "data/mock", db_url: str = "", scheduler_address: str = "",
        chunk_rows: int = 1_000_000, num_workers: int = 0, randoms: int = 200_000,
        seed: int = 20251201, surface_tol: float = 1e-3, caps: list = ()) -> EnvironmentResult:
    """The environment stage (parameters as the notebook declares them). ``caps``: those to
    classify, among the caps whose DESIVAST files are present (empty: all of them)."""
    layout = paths.RunLayout.of(data_dir)
    inputs, targetid, tracer = _in_key_order(void_inputs(layout, caps, surface_tol=surface_tol))
    url = layout.db_url(db_url)
    out = layout.stage("environment")
    # tables and folder as one unit: the commit, recording the sealed folder, precedes its
    # rename (a load running in another process is waited out first)
    with table_transaction(url, "the environment stage's tables", layout.data_dir) as db, \
            staged(out, commit=db.committing("environment")) as tmp:
        # the table is rebuilt while membership runs, and the file written, from batches of
        # galaxies handed over as soon as every chunk they cover is assigned (built by the
        # publication's feeder as the insert takes them, so membership never waits for the
        # insert); then, on this thread while the insert goes on, the summary: on two cores
        # the insert keeps one to itself
        assignments = AssignmentsPublication(db, ASSIGNMENT_SCHEMA)
        try:
            # the file's batches as write_assignments cuts them, so its row groups are too
            assignments.tee(tmp / f"{ASSIGNMENTS}.parquet", len(formats.ALGORITHMS)
                            * _galaxies_per_batch(formats.ALGORITHMS, ROWS_PER_BATCH))
            stream = None

            def insert(rows: slice, result: dict[str, Assignment]) -> None:
                nonlocal stream
                if stream is None:
                    stream = KeyOrderBatches(targetid, result, assignments.put_later,
                                             ROWS_PER_BATCH)
                stream.done(rows)
            result = _membership(inputs, scheduler_address, chunk_rows, num_workers, insert)
            if stream is None:  # no chunk at all
                stream = KeyOrderBatches(targetid, result, assignments.put_later,
                                         ROWS_PER_BATCH)
            stream.end()
            assignments.end()
            report, counts = summarise(layout, inputs, result, tracer, chunk_rows=chunk_rows,
                                       randoms=randoms, seed=seed, surface_tol=surface_tol,
                                       caps=caps)
            counts.to_parquet(tmp / file_name("environment", "void_counts"), index=False)
            write_surface(tmp / f"{SURFACE_FILE}.parquet", targetid, result["VoidFinder"], tracer)
            assignments.result()
        except BaseException:
            assignments.cancel()
            raise
        db.publish("void_counts", pa.Table.from_pandas(counts, preserve_index=False),
                     key=("algorithm", "cap", "void"))
        write_json(tmp / file_name("environment", "report"), report)
        db.prepare()  # what can fail happens before the commit
    return EnvironmentResult(out, jsonable(report))
