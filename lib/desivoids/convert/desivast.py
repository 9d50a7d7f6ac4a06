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

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .. import cosmology, formats
from .arrays import constant_strings
from .columns import (GALZONE, HOLES, V2_EDGE_AREA_RATIO, VOIDS, ZONEVOID)
from ..errors import FormatError
from .fitstable import TableHDU, check_errors, open_tables, read_rows
from .rejects import NONFINITE, Check, classify, empty_rejects, reject_table, reason_counts
from .reconcile import Ledger

__all__ = ["FILE_RE", "parse_name", "VastResult", "convert_file", "VOIDFINDER_COLUMNS",
           "V2_VOID_COLUMNS"]

FILE_RE = re.compile(r"DESIVAST_BGS_VOLLIM_(?:(VoidFinder)|V2_(REVOLVER|VIDE|ZOBOV))_(NGC|SGC)\.fits$")

def _kinds(kind: str, extname: str) -> dict[str, str]:
    """{column: 'int' | 'float'} of a DESIVAST HDU, from desivoids.formats (K -> int, D -> float)."""
    return {c.name: ("int" if c.tform.endswith(("K", "J", "I", "B")) else "float")
            for c in formats.columns(kind, extname)}


VOIDFINDER_COLUMNS = {h: _kinds("voidfinder", h) for h in ("MAXIMALS", "HOLES")}
V2_VOID_COLUMNS = {h: _kinds("v2", h) for h in ("VOIDS", "ZONEVOID", "GALZONE")}
V2_SKIPPED = ("TRIANGLE", "GALVIZ")


def parse_name(path: str | Path) -> tuple[str, str]:
    """(algorithm, cap) from a DESIVAST file name."""
    m = FILE_RE.search(Path(path).name)
    if not m:
        raise FormatError(path, None, None, "not a DESIVAST BGS_VOLLIM catalogue file name")
    return m.group(1) or m.group(2), m.group(3)


@dataclass
class VastResult:
    tables: dict[str, pa.Table] = field(default_factory=dict)   # voids/holes/zonevoid/galzone
    rejects: pa.Table = field(default_factory=empty_rejects)
    headers: dict = field(default_factory=dict)                # {EXTNAME: header dict}


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
    vf = algorithm == "VoidFinder"
    floats = [c for c, k in (VOIDFINDER_COLUMNS["MAXIMALS"] if vf else V2_VOID_COLUMNS["VOIDS"]).items()
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

    if vf:
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
    vf = algorithm == "VoidFinder"
    spec = VOIDFINDER_COLUMNS if vf else V2_VOID_COLUMNS
    kind = formats.classify(Path(path).name)
    primary, hdus, names = open_tables(path, list(spec), optional=tuple(spec))
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
                        else "HDU not part of the documented tables, not converted")
    rejects = []
    void_hdu = "MAXIMALS" if vf else "VOIDS"
    t = hdus[void_hdu]
    d = _read(t, spec[void_hdu])
    _unique(t, "VOID", d["VOID"])
    voids, n_nonfinite = _voids(algorithm, cap, t, d, source_file, strict)
    res.tables["voids"] = voids
    ledger.add("voids", source_file, void_hdu, t.nrows, voids.num_rows)
    if n_nonfinite:
        ledger.notes.setdefault("voids_with_nonfinite_values", {})[source_file] = n_nonfinite
    if vf:
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

