"""Stage-1 checks of the references between the DESIVAST tables and the galaxies.

- every GALZONE TARGET is a galaxy of the catalogue (those that are not are counted and listed);
- every hole's VOID is a void of MAXIMALS (same cap);
- every ZONEVOID VOID0 and VOID1 is -1 or a void of the cap's V2 tessellation; the three V2
  files of a cap share one ZONEVOID while REVOLVER and VIDE keep fewer voids than ZOBOV, so ids
  that are not in the file's own VOIDS table are reported per algorithm, as a warning;
- every GALZONE ZONE is -1 or a zone of the file's ZONEVOID;
- the three V2 files of a cap carry identical GALZONE and ZONEVOID (one tessellation).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..formats import CAPS, V2_ALGORITHMS
from .checks import WARN, Check, verdict
from .tables import _LIMIT, read

__all__ = ["references"]


def _np(t: pa.Table, name: str) -> np.ndarray:
    return t.column(name).to_numpy(zero_copy_only=False)


def _rows(t: pa.Table, **eq) -> pa.Table:
    mask = None
    for k, v in eq.items():
        m = pc.equal(t[k], v)
        mask = m if mask is None else pc.and_(mask, m)
    return t.filter(mask) if mask is not None else t


def _missing(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return np.unique(values[~np.isin(values, allowed)])


def references(convert_dir: Path, caps=CAPS) -> list[Check]:
    """The reference checks, per cap whose DESIVAST files are present (``caps``)."""
    gal = read(convert_dir, "galaxies", ["targetid"])
    voids = read(convert_dir, "voids", ["algorithm", "cap", "void"])
    holes = read(convert_dir, "holes", ["cap", "void"])
    zv = read(convert_dir, "zonevoid", ["algorithm", "cap", "zone", "void0", "void1"])
    gz = read(convert_dir, "galzone", ["algorithm", "cap", "gal", "targetid", "x", "y", "z",
                                       "zone", "depth", "edge", "out"])
    out = []
    targets = np.unique(_np(gz, "targetid"))
    missing = _missing(targets, _np(gal, "targetid"))
    out.append(Check("refs.galzone_targets", "every GALZONE TARGET is a galaxy of the catalogue",
                     verdict(len(missing) > 0),
                     {"targets": int(len(targets)), "not_in_galaxies": int(len(missing)),
                      "examples": missing[:_LIMIT].tolist()}))
    for cap in caps:
        vf = _np(_rows(voids, algorithm="VoidFinder", cap=cap), "void")
        bad = _missing(_np(_rows(holes, cap=cap), "void"), vf)
        out.append(Check(f"refs.holes_voids.{cap}", f"{cap}: every hole's VOID is a VoidFinder "
                         "void", verdict(len(bad) > 0),
                         {"missing_voids": int(len(bad)), "examples": bad[:_LIMIT].tolist()}))
        tess = np.concatenate([[-1]] + [_np(_rows(voids, algorithm=a, cap=cap), "void")
                                        for a in V2_ALGORITHMS])
        for alg in V2_ALGORITHMS:
            z = _rows(zv, algorithm=alg, cap=cap)
            ids = np.concatenate([_np(z, "void0"), _np(z, "void1")])
            bad = _missing(ids, tess)
            out.append(Check(f"refs.zonevoid_voids.{alg}.{cap}", f"{alg} {cap}: ZONEVOID VOID0 "
                             "and VOID1 are -1 or voids of the cap's V2 tessellation",
                             verdict(len(bad) > 0),
                             {"zones": z.num_rows, "unknown_void_ids": int(len(bad)),
                              "examples": bad[:_LIMIT].tolist()}))
            own = np.concatenate([[-1], _np(_rows(voids, algorithm=alg, cap=cap), "void")])
            v0 = _np(z, "void0")
            not_own = _missing(v0, own)
            out.append(Check(f"refs.zonevoid_own_voids.{alg}.{cap}", f"{alg} {cap}: ZONEVOID "
                             f"VOID0 ids that are not in {alg}'s own VOIDS table",
                             verdict(len(not_own) > 0, WARN),
                             {"void0_ids": int(len(np.unique(v0[v0 >= 0]))),
                              "not_in_own_voids": int(len(not_own)),
                              "zones_affected": int(np.isin(v0, not_own).sum()),
                              "examples": not_own[:_LIMIT].tolist()}))
            g = _rows(gz, algorithm=alg, cap=cap)
            bad = _missing(_np(g, "zone"), np.concatenate([[-1], _np(z, "zone")]))
            out.append(Check(f"refs.galzone_zones.{alg}.{cap}", f"{alg} {cap}: every GALZONE "
                             "ZONE is -1 or a zone of ZONEVOID", verdict(len(bad) > 0),
                             {"tracers": g.num_rows, "unknown_zones": int(len(bad)),
                              "examples": bad[:_LIMIT].tolist()}))
        out.append(_same_tessellation(gz, zv, cap))
    return out


def _canonical(t: pa.Table, cols: list[str], order: str) -> pa.Table:
    return t.select(cols).sort_by(order)


def _same_tessellation(gz: pa.Table, zv: pa.Table, cap: str) -> Check:
    gcols = ["gal", "targetid", "x", "y", "z", "zone", "depth", "edge", "out"]
    zcols = ["zone", "void0", "void1"]
    present = [a for a in V2_ALGORITHMS if _rows(gz, algorithm=a, cap=cap).num_rows
               or _rows(zv, algorithm=a, cap=cap).num_rows]
    ref = present[0] if present else None
    differ = {}
    for alg in present[1:]:
        what = []
        if not _canonical(_rows(gz, algorithm=alg, cap=cap), gcols, "gal").equals(
                _canonical(_rows(gz, algorithm=ref, cap=cap), gcols, "gal")):
            what.append("GALZONE")
        if not _canonical(_rows(zv, algorithm=alg, cap=cap), zcols, "zone").equals(
                _canonical(_rows(zv, algorithm=ref, cap=cap), zcols, "zone")):
            what.append("ZONEVOID")
        if what:
            differ[alg] = what
    missing = [a for a in V2_ALGORITHMS if a not in present]
    return Check(f"tessellation.{cap}", f"{cap}: the V2 files carry identical GALZONE and "
                 "ZONEVOID (one tessellation)", verdict(bool(differ) or bool(missing)),
                 {"compared_with": ref, "differ": differ, "files_missing": missing})
