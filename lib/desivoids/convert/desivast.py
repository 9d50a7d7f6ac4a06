"""DESIVAST void catalogues -> voids, holes, zonevoid and galzone tables.

The files are small (MAXIMALS, VOIDS: thousands of rows; HOLES ~1e5; GALZONE ~6e5 per cap), so
each HDU is read whole, by EXTNAME, with the same byte reader as the galaxies. A file is judged
by desivoids.formats.check_file, as recon judges it: the descriptive columns
(formats.DESIVAST_OPTIONAL_COLUMNS) may be absent (null, and listed in the reconciliation). The V2
visualisation HDUs (TRIANGLE, GALVIZ) are not converted: listed as skipped with their row counts
where present, and as a note where absent.

NaN policy (see columns.py): a void row is never rejected (its non-finite values become null and
are named in ``nonfinite_columns``); holes and galzone rows without a finite position or radius
are rejected with the reason, because no membership test can use them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import cosmology, formats
from .arrays import constant_strings
from .columns import (GALZONE, HOLES, V2_EDGE_AREA_RATIO, VOIDS, ZONEVOID)
from ..errors import FormatError
from .fitstable import TableHDU, check_errors, open_tables, read_rows, upper_case
from .reff import REFF_SAMPLES, REFF_SEED, effective_radii
from .rejects import NONFINITE, Check, classify, empty_rejects, reject_table, reason_counts
from .reconcile import Ledger
from ..stages import file_name

__all__ = ["parse_name", "VastResult", "convert_file", "VOIDFINDER_COLUMNS",
           "V2_VOID_COLUMNS"]


def _kinds(kind: str, extname: str) -> dict[str, str]:
    """{column: 'int' | 'float'} of a DESIVAST HDU, from desivoids.formats (K -> int, D -> float)."""
    return {c.name: ("int" if c.tform.endswith(("K", "J", "I", "B")) else "float")
            for c in formats.columns(kind, extname)}


VOIDFINDER_COLUMNS = {h: _kinds("voidfinder", h) for h in ("MAXIMALS", "HOLES")}
V2_VOID_COLUMNS = {h: _kinds("v2", h) for h in ("VOIDS", "ZONEVOID", "GALZONE")}
#: the converted HDUs and their columns, per family kind (formats.Family.kind)
_SPEC = {formats.VOIDFINDER.kind: VOIDFINDER_COLUMNS, formats.V2.kind: V2_VOID_COLUMNS}
V2_SKIPPED = ("TRIANGLE", "GALVIZ")


def parse_name(path: str | Path) -> tuple[str, str]:
    """(algorithm, cap) from a DESIVAST file name."""
    c = formats.catalogue_of(Path(path).name)
    if c is None:
        raise FormatError(path, None, None, "not a DESIVAST BGS_VOLLIM catalogue file name")
    return c.algorithm, c.cap


#: survey_masks.parquet: the in-survey cells of each file's MASK HDU (formats.MASK_HDU), one
#: row per cell; scheme "radec" (VoidFinder: cell = i * 180 resolution + j of the RA-Dec grid,
#: resolution = MSKRES cells per degree) or "healpix_ring" (V2: cell = RING pixel, resolution =
#: NSIDE)
SURVEY_MASKS_FILE = file_name("convert", "survey_masks")
SURVEY_MASKS = pa.schema([("algorithm", pa.string()), ("cap", pa.string()),
                          ("scheme", pa.string()), ("resolution", pa.int64()),
                          ("cell", pa.int64()), ("source_file", pa.string())])


@dataclass
class VastResult:
    tables: dict[str, pa.Table] = field(default_factory=dict)   # voids/holes/zonevoid/galzone
    rejects: pa.Table = field(default_factory=empty_rejects)
    headers: dict = field(default_factory=dict)                # {EXTNAME: header dict}
    mask: pa.Table | None = None                               # SURVEY_MASKS rows, if a MASK


def _survey_mask(path: str, algorithm: str, cap: str, primary: dict,
                 source_file: str) -> pa.Table:
    """The MASK HDU's in-survey cells as SURVEY_MASKS rows (FormatError if its shape does not
    match its stated resolution)."""
    from astropy.io import fits

    with fits.open(path, memmap=False) as h:
        hdu = h[formats.MASK_HDU]
        data, hdr = np.asarray(hdu.data), hdu.header
    if formats.family(algorithm).mask_scheme == "radec":
        res = hdr.get(formats.MASK_RESOLUTION_KEY, primary.get(formats.MASK_RESOLUTION_KEY))
        scheme = "radec"
        shape = (360 * int(res or 0), 180 * int(res or 0))
        cells = np.flatnonzero(data.reshape(-1)) if data.shape == shape else None
    else:
        res = primary.get(formats.V2_MASK_NSIDE_KEY)
        scheme = "healpix_ring"
        shape = (12 * int(res or 0) ** 2,)
        cells = np.flatnonzero(data) if data.shape == shape else None
    if not res or cells is None:
        raise FormatError(path, formats.MASK_HDU, None,
                          f"mask of shape {data.shape} does not match its resolution "
                          f"({formats.MASK_RESOLUTION_KEY if scheme == 'radec' else 'NSIDE'} = "
                          f"{res!r}: expected {shape})")
    n = len(cells)
    return pa.table({"algorithm": _strs(algorithm, n), "cap": _strs(cap, n),
                     "scheme": _strs(scheme, n), "resolution": pa.array(np.full(n, int(res))),
                     "cell": pa.array(cells.astype(np.int64)),
                     "source_file": _strs(source_file, n)}, schema=SURVEY_MASKS)


def _read(t: TableHDU, spec: dict[str, str]) -> dict[str, np.ndarray]:
    """The documented columns of a DESIVAST HDU that the file has (formats.check_file has
    checked their types, that the needed ones are there and that the table has rows)."""
    return read_rows(t, 0, t.nrows, [c for c in spec if c in t.columns])


def _unique(t: TableHDU, name: str, values: np.ndarray) -> None:
    u, k = np.unique(values, return_counts=True)
    if (k > 1).any():
        dup = u[k > 1]
        raise FormatError(t.path, t.extname, name,
                          f"{dup.size} duplicate value(s), e.g. {dup[:5].tolist()}")


def _f(values: np.ndarray | None, n: int = 0) -> pa.Array:
    """float64 with non-finite values as null; all null for a column the file lacks."""
    if values is None:
        return pa.nulls(n, pa.float64())
    v = np.asarray(values, dtype=np.float64)
    return pa.array(v, mask=~np.isfinite(v))


def _i(values: np.ndarray | None, n: int = 0) -> pa.Array:
    """int64; all null for a column the file lacks."""
    return pa.nulls(n, pa.int64()) if values is None else pa.array(values.astype(np.int64))


def _strs(value: str, n: int) -> pa.Array:
    return constant_strings(value, n)


def _voids(algorithm: str, cap: str, t: TableHDU, d: dict[str, np.ndarray], source_file: str,
           strict: bool) -> tuple[pa.Table, int]:
    n = t.nrows
    fam = formats.family(algorithm)
    floats = [c for c, k in _SPEC[fam.kind][fam.void_hdu].items()
              if k == "float" and c in d]
    nonfinite = {c: ~np.isfinite(d[c]) for c in floats}
    if strict:
        for c, bad in nonfinite.items():
            if bad.any():
                raise FormatError(t.path, t.extname, c,
                                  f"{int(bad.sum())} void row(s) non-finite (first at row "
                                  f"{int(np.flatnonzero(bad)[0])}); strict mode")
    listed = [",".join(c for c in floats if nonfinite[c][i]) or None for i in range(n)] \
        if any(b.any() for b in nonfinite.values()) else [None] * n
    n_nonfinite = sum(1 for s in listed if s)
    null = pa.nulls(n, pa.float64())

    def f(c: str) -> pa.Array:
        return _f(d.get(c), n)

    if fam.holes:
        edge = d["EDGE"].astype(np.int64)
        cols = {"r": f("R"), "redshift": null, "radius": f("RADIUS"),
                "r_eff": f("R_EFF"), "r_eff_uncert": f("R_EFF_UNCERT"),
                "edge": pa.array(edge), "tot_area": null, "edge_area": null,
                "edge_area_ratio": null, "is_edge": pa.array(edge != 0),
                **{f"{a}{i}": null for i in (1, 2, 3) for a in "xyz"}}
    else:
        tot, edge_area = (np.asarray(d[c], dtype=np.float64) for c in ("TOT_AREA", "EDGE_AREA"))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = edge_area / tot
        ok = np.isfinite(ratio)
        cols = {"r": null, "redshift": f("REDSHIFT"), "radius": f("RADIUS"),
                "r_eff": f("RADIUS"), "r_eff_uncert": null,
                "edge": pa.nulls(n, pa.int64()), "tot_area": _f(tot), "edge_area": _f(edge_area),
                "edge_area_ratio": pa.array(ratio, mask=~ok),
                "is_edge": pa.array(np.where(ok, ratio, 0) > V2_EDGE_AREA_RATIO, mask=~ok),
                **{f"{a}{i}".lower(): f(f"{a}{i}") for i in (1, 2, 3) for a in "XYZ"}}
    # VoidFinder's RA is atan(y/x) (+180 where x < 0): wrap to [0, 360) as the galaxies' RA
    ra = cosmology.wrap_ra(d["RA"]) if "RA" in d else None
    cols.update({"algorithm": _strs(algorithm, n), "cap": _strs(cap, n),
                 "void": pa.array(d["VOID"].astype(np.int64)),
                 "x": f("X"), "y": f("Y"), "z": f("Z"), "ra": _f(ra, n),
                 "dec": f("DEC"), "nonfinite_columns": pa.array(listed, pa.string()),
                 "source_file": _strs(source_file, n),
                 "source_row": pa.array(np.arange(n, dtype=np.int64))})
    return pa.Table.from_arrays([cols[f.name] for f in VOIDS], schema=VOIDS), n_nonfinite


_VAST_EXTRA = {
    "MASK": "VAST's survey mask (an image): its in-survey cells go to survey_masks.parquet",
    "WALL": "VAST's wall galaxies (X, Y, Z of VoidFinder's input): not converted",
    "FIELD": "VAST's field galaxies (X, Y, Z of VoidFinder's input): not converted",
}


def _compute_reff(path: str, d: dict, holes: TableHDU, spec: dict, source_file: str,
                  ledger: Ledger) -> None:
    """R_EFF and R_EFF_UNCERT of every void from its holes (desivoids.convert.reff), for a
    file written without VAST's calculate_r_eff; recorded in the reconciliation."""
    h = _read(holes, spec)
    ok = np.isfinite(h["X"]) & np.isfinite(h["Y"]) & np.isfinite(h["Z"]) & \
        np.isfinite(h["RADIUS"])
    reff, uncert = effective_radii(d["VOID"], h["VOID"][ok],
                                   np.column_stack([h[c][ok] for c in "XYZ"]), h["RADIUS"][ok])
    d["R_EFF"], d["R_EFF_UNCERT"] = reff, uncert
    rel = uncert / reff
    ledger.notes.setdefault("computed_columns", {})[source_file] = {
        "columns": ["MAXIMALS.R_EFF", "MAXIMALS.R_EFF_UNCERT"],
        "why": "the file has no R_EFF (VAST adds it only with calculate_r_eff)",
        "how": "volume of the union of each void's holes by Monte Carlo, as VAST's "
               f"calculate_r_eff: {REFF_SAMPLES} uniform points in the holes' bounding box per "
               f"void, seeded ({REFF_SEED}, VOID); R_EFF_UNCERT is the Monte Carlo error",
        "voids": int(len(reff)), "voids_without_holes": int(np.isnan(reff).sum()),
        "median_relative_uncertainty": float(np.nanmedian(rel)) if len(rel) else None,
    }


def _positions_checked(table: str, t: TableHDU, d: dict, names: list[str], key: str,
                       source_file: str, strict: bool):
    n = t.nrows
    checks = [Check(c, NONFINITE, ~np.isfinite(d[c])) for c in names]
    keep, which, bad = classify(checks, n, strict=strict, file=t.path, hdu=t.extname)
    rej = reject_table(table, source_file, t.extname, np.flatnonzero(~keep), d[key][bad],
                       checks, which[bad])
    return keep, rej


def convert_file(path: str | Path, source_file: str, ledger: Ledger,
                 strict: bool = False) -> VastResult:
    """Convert one DESIVAST file; record every HDU's rows in ``ledger``."""
    path = str(path)
    algorithm, cap = parse_name(path)
    fam = formats.family(algorithm)
    spec = _SPEC[fam.kind]
    kind = formats.classify(Path(path).name)
    primary, hdus, names = open_tables(path, list(spec), optional=tuple(spec))
    hdus = {n: upper_case(t) for n, t in hdus.items()}  # VAST's default is lower case
    check = formats.check_file(kind, {**{n: formats.HDUFacts(rows, {}) for n, rows in names.items()},
                                      **{n: t.facts() for n, t in hdus.items()}})
    if check.faults:
        raise FormatError.all(check_errors(path, check, names))
    if check.absent_columns:
        ledger.notes.setdefault("absent_columns", {})[source_file] = check.absent_columns
    notes = [str(x) for x in check.notes if x.code != "absent_column"]
    if notes:
        ledger.notes.setdefault("file_notes", {})[source_file] = notes
    res = VastResult(headers={"PRIMARY": primary, **{h: hdus[h].header for h in spec}})
    for extra, rows in list(names.items())[1:]:
        if extra not in spec:
            ledger.skip(source_file, extra, rows,
                        "visualisation HDU, not converted" if extra in V2_SKIPPED
                        else _VAST_EXTRA[extra] if extra in formats.VAST_EXTRA_HDUS[kind]
                        else "HDU not part of the documented tables, not converted")
    if formats.MASK_HDU in names:
        res.mask = _survey_mask(path, algorithm, cap, primary, source_file)
    rejects = []
    void_hdu = fam.void_hdu
    t = hdus[void_hdu]
    d = _read(t, spec[void_hdu])
    _unique(t, "VOID", d["VOID"])
    if fam.holes and "R_EFF" not in d:
        _compute_reff(path, d, hdus["HOLES"], spec["HOLES"], source_file, ledger)
    voids, n_nonfinite = _voids(algorithm, cap, t, d, source_file, strict)
    res.tables["voids"] = voids
    ledger.add("voids", source_file, void_hdu, t.nrows, voids.num_rows)
    if n_nonfinite:
        ledger.notes.setdefault("voids_with_nonfinite_values", {})[source_file] = n_nonfinite
    if fam.holes:
        t = hdus["HOLES"]
        d = _read(t, spec["HOLES"])
        keep, rej = _positions_checked("holes", t, d, ["X", "Y", "Z", "RADIUS"], "VOID",
                                       source_file, strict)
        m = int(keep.sum())
        cols = {"cap": _strs(cap, m), "void": pa.array(d["VOID"][keep].astype(np.int64)),
                "hole_index": pa.array(np.flatnonzero(keep).astype(np.int64)),
                **{c.lower(): pa.array(np.asarray(d[c][keep], dtype=np.float64))
                   for c in ("X", "Y", "Z", "RADIUS")},
                "source_file": _strs(source_file, m)}
        res.tables["holes"] = pa.Table.from_arrays([cols[f.name] for f in HOLES], schema=HOLES)
        ledger.add("holes", source_file, "HOLES", t.nrows, m, reason_counts(rej))
        rejects.append(rej)
    else:
        t = hdus["ZONEVOID"]
        d = _read(t, spec["ZONEVOID"])
        _unique(t, "ZONE", d["ZONE"])
        n = t.nrows
        cols = {"algorithm": _strs(algorithm, n), "cap": _strs(cap, n),
                **{c.lower(): pa.array(d[c].astype(np.int64)) for c in ("ZONE", "VOID0", "VOID1")},
                "source_file": _strs(source_file, n), "source_row": pa.array(np.arange(n, dtype=np.int64))}
        res.tables["zonevoid"] = pa.Table.from_arrays([cols[f.name] for f in ZONEVOID],
                                                      schema=ZONEVOID)
        ledger.add("zonevoid", source_file, "ZONEVOID", n, n)
        t = hdus["GALZONE"]
        d = _read(t, spec["GALZONE"])
        _unique(t, "GAL", d["GAL"])
        keep, rej = _positions_checked("galzone", t, d, ["X", "Y", "Z"], "TARGET", source_file,
                                       strict)
        m = int(keep.sum())
        cols = {"algorithm": _strs(algorithm, m), "cap": _strs(cap, m),
                "gal": pa.array(d["GAL"][keep].astype(np.int64)),
                "targetid": pa.array(d["TARGET"][keep].astype(np.int64)),
                **{c.lower(): pa.array(np.asarray(d[c][keep], dtype=np.float64))
                   for c in ("X", "Y", "Z")},
                "zone": pa.array(d["ZONE"][keep].astype(np.int64)),
                **{c.lower(): _i(d[c][keep] if c in d else None, m)
                   for c in ("DEPTH", "EDGE", "OUT")},
                "source_file": _strs(source_file, m), "source_row": pa.array(np.flatnonzero(keep).astype(np.int64))}
        res.tables["galzone"] = pa.Table.from_arrays([cols[f.name] for f in GALZONE],
                                                     schema=GALZONE)
        ledger.add("galzone", source_file, "GALZONE", t.nrows, m, reason_counts(rej))
        rejects.append(rej)
    if rejects:
        res.rejects = pa.concat_tables(rejects)
    return res

