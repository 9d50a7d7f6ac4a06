"""FastSpecFit catalogues -> galaxies Parquet parts, one Dask task per (file, row range).

Both public layouts are read by EXTNAME: v3.0 (METADATA, SPECPHOT, FASTSPEC, row-matched) and
v2.1 (FASTSPEC, METADATA). Each documented column is read from the HDU desivoids.formats says
(GALAXY_READ), and the file is judged by formats.check_file, the same judgement recon makes: a
file lacking only optional columns converts, with those columns null and listed. An extra column
(parameter) is taken from the first HDU, in the order METADATA, SPECPHOT, FASTSPEC, that has it.
Row matching is verified on TARGETID in every chunk, so a shuffled HDU cannot slip through
however large the file.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import cosmology, formats
from .arrays import constant_strings
from .columns import (DERIVED_COLUMNS, GALAXY_COLUMNS, LINE_COLUMNS, METADATA_KEY,
                      M_R_EVOLUTION, extra_column_name, galaxy_schema)
from ..errors import FormatError
from .fitstable import TableHDU, check_errors, open_tables, read_rows
from .rejects import NONFINITE, OUT_OF_RANGE, Check, classify, reject_table

__all__ = ["VERSIONS", "FilePlan", "ChunkResult", "plan_file", "chunks", "convert_chunk",
           "version_of"]

#: HDUs of each FastSpecFit layout, in the order columns are looked up.
VERSIONS: dict[str, tuple[str, ...]] = {
    "v3.0": ("METADATA", "SPECPHOT", "FASTSPEC"),
    "v2.1": ("METADATA", "FASTSPEC"),
}

#: formats' file kind of each layout
KIND = {"v3.0": "fastspec_v3", "v2.1": "fastspec_v21"}


def version_of(path: str | Path) -> str:
    """The FastSpecFit layout a file should have, from its DESI path or name."""
    p = str(path)
    # The file name decides first (only v3.0 splits by HEALPix); a parent folder may be named anything.
    if re.search(r"-nside\d+-hp\d+\.fits$", p):
        return "v3.0"
    if "/v2.1/" in p or "/v2." in p:
        return "v2.1"
    if "/v3.0/" in p:
        return "v3.0"
    return "v2.1" if p.endswith("fastspec-iron-main-bright.fits") else "v3.0"


@dataclass(frozen=True)
class FilePlan:
    """Everything a chunk task needs to convert rows of one file (picklable)."""

    path: str
    source_file: str           # relative to the raw directory: the provenance string
    version: str
    hdus: dict[str, TableHDU]
    nrows: int
    # output column -> (EXTNAME, FITS column), or None when optional and absent
    sources: dict[str, tuple[str, str] | None]
    extra_types: dict[str, pa.DataType]
    headers: dict              # {"PRIMARY": {...}, EXTNAME: {...}} informative header cards
    absent: tuple[str, ...] = ()   # optional FITS columns the file lacks (output null)
    notes: tuple[str, ...] = ()    # accepted but lossy encodings, e.g. ZWARN as a logical

    @property
    def schema(self) -> pa.Schema:
        return galaxy_schema(self.extra_types)


def _arrow_type_of(t: TableHDU, name: str) -> pa.DataType:
    c = t.columns[name]
    scalar = {"int": pa.int64(), "uint": pa.int64(), "float": pa.float64(),
              "str": pa.string(), "bool": pa.bool_()}.get(c.kind)
    if scalar is None:
        raise FormatError(t.path, t.extname, name, f"unsupported FITS column format {c.code}")
    if c.kind == "uint" and c.code == "K":
        raise FormatError(t.path, t.extname, name, "unsigned 64-bit column cannot be stored as int64")
    return scalar if not c.shape else pa.list_(scalar)


def plan_file(path: str | Path, source_file: str, version: str | None = None,
              extra_columns: tuple[str, ...] | list[str] = (), strict: bool = False) -> FilePlan:
    """Read the headers of one FastSpecFit file and resolve every output column to its HDU.

    Raises one FormatError carrying every problem of the file (file, HDU, column each): a
    missing HDU, a missing needed or mistyped column, HDUs of different lengths (not
    row-matched), an extra column that is nowhere, or, with ``strict``, an empty file. A file
    whose HDUs are all empty is otherwise accepted (a HEALPix pixel can hold no galaxy: the
    mock's small footprints have such pixels) and listed in the reconciliation; convert still
    fails when every FastSpecFit file is empty.
    """
    path = str(path)
    version = version or version_of(path)
    if version not in VERSIONS:
        raise ValueError(f"unknown FastSpecFit version {version!r}; known: {list(VERSIONS)}")
    order = VERSIONS[version]
    kind = KIND[version]
    primary, hdus, names = open_tables(path, order, optional=order)
    check = formats.check_file(kind, {n: t.facts() for n, t in hdus.items()})
    errors = check_errors(path, check, names)
    nrows = hdus[order[0]].nrows if order[0] in hdus else 0
    if not errors and nrows == 0 and strict:
        errors.append(FormatError(path, order[0], None, "empty table: 0 rows (strict mode)"))

    def find(fits_name: str) -> str | None:
        return next((n for n in order if n in hdus and fits_name in hdus[n].columns), None)

    taken = {c.name for c in GALAXY_COLUMNS + LINE_COLUMNS + DERIVED_COLUMNS}
    extra_types: dict[str, pa.DataType] = {}
    extra_sources: dict[str, tuple[str, str]] = {}
    for fits_name in extra_columns:
        fits_name = fits_name.strip().upper()
        out = extra_column_name(fits_name)
        if out in taken or out in extra_types:
            continue  # already part of the documented set
        hdu = find(fits_name)
        if hdu is None:
            errors.append(FormatError(path, "/".join(order), fits_name,
                                      f"extra column not found in any of the HDUs {list(order)}"))
            continue
        try:
            extra_types[out] = _arrow_type_of(hdus[hdu], fits_name)
        except FormatError as exc:
            errors.append(exc)
            continue
        extra_sources[out] = (hdu, fits_name)
    if errors:
        raise FormatError.all(errors)
    read = formats.GALAXY_READ[kind]
    sources: dict[str, tuple[str, str] | None] = {}
    for col in GALAXY_COLUMNS + LINE_COLUMNS:
        hdu = read[col.source]
        sources[col.name] = (hdu, col.source) if col.source in hdus[hdu].columns else None
    sources.update(extra_sources)
    notes = tuple(str(f) for f in check.notes if f.code != "absent_column")
    headers = {"PRIMARY": primary, **{n: hdus[n].header for n in order}}
    return FilePlan(path, source_file, version, hdus, nrows, sources, extra_types, headers,
                    tuple(check.absent_columns), notes)


def chunks(plan: FilePlan, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges [a, b) covering the file, each at most ``chunk_rows`` long."""
    return [(a, min(plan.nrows, a + chunk_rows)) for a in range(0, plan.nrows, chunk_rows)]


@dataclass
class ChunkResult:
    source_file: str
    start: int
    stop: int
    rows_out: int
    rejects: pa.Table
    targetids: np.ndarray       # every source row's TARGETID (kept or rejected), for duplicates
    part: str | None            # Parquet file written (None when every row was rejected)


#: Parquet compression of the outputs. LZ4 over byte-stream-split floats: the FITS E columns,
#: widened to float64, end in three zero bytes that the split lines up, so the galaxies take
#: 1.7 GB instead of 2.9 GB at DR1 scale for about the same encoding time (measured). Writing
#: the bytes was the dearer part here: the kernel's copy into the page cache and the write-back
#: that competes with the reads. zstd is ~10% smaller and slower to encode.
DEFAULT_COMPRESSION = "lz4"


def write_parquet(table: pa.Table, path, compression: str = DEFAULT_COMPRESSION,
                  **kwargs) -> None:
    """Dictionary encoding only for strings: dictionary-encoding every float column (pyarrow's
    default) made the galaxies write 4x slower for no size gain (measured). Floats are written
    BYTE_STREAM_SPLIT (Parquet format 2.8, read by pyarrow, DuckDB, Spark, polars)."""
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    floats += [f"{f.name}.list.element" for f in table.schema  # vector columns: leaf paths
               if pa.types.is_list(f.type) and pa.types.is_floating(f.type.value_type)]
    pq.write_table(table, path, compression=compression, use_dictionary=strings,
                   use_byte_stream_split=floats, **kwargs)


def _to_arrow(values, typ: pa.DataType) -> pa.Array:
    """A source column as an arrow array of the schema type (vector columns become lists)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(typ) if values.type != typ else values
    if isinstance(typ, pa.ListType):
        flat = values.reshape(len(values), -1)
        inner = pa.array(flat.reshape(-1).astype(typ.value_type.to_pandas_dtype()))
        offsets = pa.array(np.arange(0, flat.size + 1, max(1, flat.shape[1]), dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, inner)
    return pa.array(np.asarray(values).astype(typ.to_pandas_dtype(), copy=False), type=typ)


def _err(ivar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1/sqrt(ivar), null mask): null where the IVAR is 0, negative or non-finite."""
    ok = np.isfinite(ivar) & (ivar > 0)
    out = np.zeros(len(ivar))
    np.divide(1.0, np.sqrt(ivar, where=ok, out=np.ones(len(ivar))), out=out, where=ok)
    return out, ~ok


def convert_chunk_or_error(*args, **kwargs) -> "ChunkResult | FormatError":
    """convert_chunk, returning a FormatError instead of raising it: the caller then reports the
    error of the first chunk in file order, whatever order parallel workers finished in."""
    try:
        return convert_chunk(*args, **kwargs)
    except FormatError as exc:
        return exc


def convert_chunk(plan: FilePlan, start: int, stop: int, part_path: str | None,
                  omega_m: float, strict: bool = False, metadata: dict | None = None,
                  compression: str = DEFAULT_COMPRESSION, direct_io: bool = True) -> ChunkResult:
    """Convert rows [start, stop) of one file; write the kept rows to ``part_path``.
    ``direct_io``: read the rows around the page cache where the file system allows it
    (fitstable.read_rows).

    Raises FormatError if the HDUs' TARGETIDs differ in any row of the range (not row-matched),
    or, with ``strict``, if any row would be rejected.
    """
    order = VERSIONS[plan.version]
    wanted: dict[str, list[str]] = {n: ["TARGETID"] for n in order}
    for src in plan.sources.values():
        if src is not None and src[1] not in wanted[src[0]]:
            wanted[src[0]].append(src[1])
    schema = plan.schema
    want: dict[str, dict[str, np.dtype]] = {n: {} for n in order}
    for f in schema:
        src = plan.sources.get(f.name)
        typ = f.type.value_type if isinstance(f.type, pa.ListType) else f.type
        if src is not None and (pa.types.is_integer(typ) or pa.types.is_floating(typ)):
            want[src[0]][src[1]] = np.dtype(typ.to_pandas_dtype())
    data = {n: read_rows(plan.hdus[n], start, stop, cols, want[n], ahead=stop - start,
                          direct=direct_io)
            for n, cols in wanted.items()}
    n = stop - start
    tid = data[order[0]]["TARGETID"]
    for other in order[1:]:
        t2 = data[other]["TARGETID"]
        if not np.array_equal(tid, t2):
            i = int(np.flatnonzero(tid != t2)[0])
            raise FormatError(plan.path, f"{order[0]}/{other}", "TARGETID",
                              f"HDUs not row-matched: row {start + i} has TARGETID {tid[i]} in "
                              f"{order[0]} but {t2[i]} in {other}")

    def col(name: str):
        src = plan.sources.get(name)
        return None if src is None else data[src[0]][src[1]]

    def src_of(name: str) -> tuple[str, str]:
        return plan.sources[name]

    ra, dec, z = (np.asarray(col(c), dtype=np.float64) for c in ("ra", "dec", "z"))
    (h_ra, c_ra), (h_dec, c_dec), (h_z, c_z) = (src_of(c) for c in ("ra", "dec", "z"))
    with np.errstate(invalid="ignore"):
        checks = [Check(c_ra, NONFINITE, ~np.isfinite(ra), h_ra),
                  Check(c_dec, NONFINITE, ~np.isfinite(dec), h_dec),
                  Check(c_z, NONFINITE, ~np.isfinite(z), h_z),
                  Check(c_ra, OUT_OF_RANGE, (ra < 0) | (ra > 360), h_ra),
                  Check(c_dec, OUT_OF_RANGE, np.abs(dec) > 90, h_dec)]
    keep, which, bad = classify(checks, n, strict=strict, file=plan.path, hdu=h_ra,
                                first_row=start)
    rows = np.arange(start, stop, dtype=np.int64)
    rejects = reject_table("galaxies", plan.source_file, h_ra, rows[bad], tid[bad],
                           checks, which[bad])
    targetids = tid.copy()
    if not keep.all():
        data = {h: {k: (v.filter(pa.array(keep)) if isinstance(v, pa.Array) else v[keep])
                    for k, v in d.items()} for h, d in data.items()}
        ra, dec, z, rows = ra[keep], dec[keep], z[keep], rows[keep]
    m = int(keep.sum())
    if m == 0 or part_path is None:
        return ChunkResult(plan.source_file, start, stop, m if part_path else 0, rejects,
                           targetids, None)
    # RA in [0, 360) like the voids' (360.0 and -0.0 are accepted above and stored as 0.0)
    ra = cosmology.wrap_ra(ra)
    data[h_ra][c_ra] = ra

    arrays: dict[str, pa.Array] = {}
    for f in schema:
        if f.name in plan.sources:
            v = col(f.name)
            arrays[f.name] = pa.nulls(m, f.type) if v is None else _to_arrow(v, f.type)
    # derived columns
    for base in ("logmstar", "sfr", "dn4000"):
        ivar = col(f"{base}_ivar")
        if ivar is None:
            arrays[f"{base}_err"] = pa.nulls(m, pa.float64())
        else:
            e, null = _err(np.asarray(ivar, dtype=np.float64))
            arrays[f"{base}_err"] = pa.array(e, mask=null)
    sfr = np.asarray(col("sfr"), dtype=np.float64)
    logm = np.asarray(col("logmstar"), dtype=np.float64)
    arrays["sfr_zero"] = pa.array(sfr == 0, mask=~np.isfinite(sfr))
    ok = np.isfinite(sfr) & (sfr > 0) & np.isfinite(logm)
    lss = np.zeros(m)
    np.log10(sfr, where=ok, out=lss)
    lss -= np.where(ok, logm, 0.0)
    arrays["log_ssfr"] = pa.array(lss, mask=~ok)
    m_r = np.asarray(col("absmag01_sdss_r"), dtype=np.float64) + M_R_EVOLUTION * (z - 0.1)
    arrays["m_r"] = pa.array(m_r, mask=~np.isfinite(m_r))
    r = np.asarray(cosmology.comoving_distance(z, omega_m), dtype=np.float64).reshape(-1)
    neg = z < 0
    x, y, zc = cosmology.radec_to_xyz(ra, dec, r)
    arrays["comoving_distance"] = pa.array(r, mask=neg)
    arrays["comoving_x"] = pa.array(x, mask=neg)
    arrays["comoving_y"] = pa.array(y, mask=neg)
    arrays["comoving_z"] = pa.array(zc, mask=neg)
    arrays["source_file"] = constant_strings(plan.source_file, m)
    arrays["source_row"] = pa.array(rows)
    table = pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)
    meta = {"table": "galaxies", "source_file": plan.source_file,
            "fastspec_version": plan.version, "omega_m": omega_m,
            "sources": {plan.source_file: plan.headers}, **(metadata or {})}
    table = table.replace_schema_metadata({**(schema.metadata or {}),
                                           METADATA_KEY: json.dumps(meta).encode()})
    write_parquet(table, part_path, compression, row_group_size=max(1, m))
    return ChunkResult(plan.source_file, start, stop, m, rejects, targetids, part_path)
