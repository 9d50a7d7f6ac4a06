"""Row lookups by targetid, exploiting the documented order of the run's tables.

The release joins its tables on targetid: the tracer sample (sorted by targetid) against
environment's galaxy_void_assignments (ordered by (targetid, algorithm)) and density's
galaxy_environment (ordered by targetid). Arrow's ``is_in`` / ``index_in`` hash the value set
and probe it once per row: at DR1 scale 25.8 million probes of a 0.7-million-key table, and
0.7 million probes of a 6.4-million-key table, most of them cache misses. On keys already in
order a binary search of the smaller side gives the same answer for a fraction of that.
:func:`rows_of` reads a file's rows of given targetids with them, batch by batch (the
release's tables, and the galaxies that environment's figures draw).

Each function returns the values its Arrow kernel returns (as one array: how a result is
chunked changes no Parquet byte written from it), and falls back to that kernel when its input
is not in the order it relies on: a table written in another order is joined correctly, only
more slowly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["is_in", "index_in", "sorted_distinct", "rows_of"]


def _ascending(a: np.ndarray) -> bool:
    return bool(np.all(a[1:] >= a[:-1]))


def _numpy(values) -> np.ndarray | None:
    """An integer Arrow array or chunked array without nulls as numpy (None otherwise: the
    kernels' own null semantics then apply)."""
    if values.null_count or not pa.types.is_integer(values.type):
        return None
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.to_numpy()


def sorted_distinct(values: pa.ChunkedArray | pa.Array | np.ndarray) -> np.ndarray:
    """``values`` sorted and distinct, as :func:`is_in` searches them: as they are when they
    already are (the release's targetids, sorted by galaxies_core), without numpy's unique,
    which hashes every value (0.65 CPU s for DR1's 694,642 targetids, measured)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        values = values.to_numpy()
    return values if (values[1:] > values[:-1]).all() else np.unique(values)


def is_in(keys: pa.ChunkedArray | pa.Array, value_set: pa.Array) -> pa.Array | pa.ChunkedArray:
    """``pc.is_in(keys, value_set=value_set)``: for keys in ascending order (several rows may
    share one), each of the value set's keys' run of rows is found by binary search."""
    k, v = _numpy(keys), _numpy(value_set)
    if k is None or v is None or not _ascending(k):
        return pc.is_in(keys, value_set=value_set)
    v = sorted_distinct(v)  # a repeated value marks its rows once
    if len(k):  # the values within the keys' range (a part of a file: few of a long set)
        v = v[np.searchsorted(v, k[0], "left"):np.searchsorted(v, k[-1], "right")]
    lo, hi = np.searchsorted(k, v, "left"), np.searchsorted(k, v, "right")
    hit = hi > lo  # the value set's keys present; their runs are disjoint
    edges = np.zeros(len(k) + 1, np.int8)
    edges[lo[hit]] = 1
    edges[hi[hit]] -= 1
    return pa.array(np.cumsum(edges[:-1], dtype=np.int8).view(np.bool_))


def index_in(values: pa.ChunkedArray | pa.Array, keys: pa.ChunkedArray | pa.Array
             ) -> pa.Array | pa.ChunkedArray:
    """``pc.index_in(values, value_set=keys)``: each value's first row in ``keys`` (null where
    absent), by binary search when ``keys`` are in ascending order."""
    v, k = _numpy(values), _numpy(keys)
    if v is None or k is None or len(k) > np.iinfo(np.int32).max or not _ascending(k):
        return pc.index_in(values, value_set=keys)
    pos = np.searchsorted(k, v, "left")
    found = pos < len(k)
    found[found] = k[pos[found]] == v[found]
    return pa.array(pos.astype(np.int32), mask=~found)


def rows_of(path: Path, targetids: pa.ChunkedArray | pa.Array | np.ndarray,
            columns: list[str] | None = None, dictionary: tuple[str, ...] = ()) -> pa.Table:
    """The rows of Parquet file ``path`` whose targetid is one of ``targetids``, in the file's
    order: its ``columns`` (all when None; they include targetid), those named in
    ``dictionary`` read dictionary-encoded, as Parquet stores them.

    Read and filtered batch by batch, the batches ``pq.read_table`` reads (so the rows kept are
    chunked as that read's and written as the same bytes): the release keeps a tenth of
    environment's assignments (25.8 million rows, 0.9 GB at DR1 scale) and of density's
    galaxy_environment (6.4 million), and reading a file whole first touched that much memory,
    whose page faults cost more than the read (1.5-4.8 s of system time against 0.2-0.9 s,
    measured). Decoding strings only for the kept rows: DR1's assignments' algorithm and cap
    decoded for all rows cost most of their read (6.5 CPU s against 1.2, measured)."""
    import pyarrow.dataset as ds

    source = ds.dataset(path, format=ds.ParquetFileFormat(
        read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary))))
    schema = source.schema if columns is None else pa.schema(
        [source.schema.field(c) for c in columns])
    wanted = pa.array(sorted_distinct(targetids))  # sorted once for every batch
    return pa.Table.from_batches([b.filter(is_in(b.column("targetid"), wanted))
                                  for b in source.to_batches(columns=columns)], schema=schema)
