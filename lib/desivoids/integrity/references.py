"""Stage-1 checks of the references between the DESIVAST tables and the galaxies.

- every GALZONE TARGET is a galaxy of the catalogue (those that are not are counted and listed);
- every hole's VOID is a void of MAXIMALS (same cap);
- every ZONEVOID VOID0 and VOID1 is -1 or a void of the same file's own VOIDS table: each V2
  file is one pruning of the cap's tessellation, with its own voids and its own ZONEVOID (VAST's
  sortVoids), so the three ZONEVOIDs differ;
- every GALZONE ZONE is -1 or a zone of the file's ZONEVOID;
- the three V2 files of a cap are one tessellation: identical GALZONE, the same ZONE set in the
  three ZONEVOIDs; the check reports per file the share of zones and of tracers (GALZONE rows
  with ZONE >= 0) in that pruning's voids.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import idsets
from ..formats import CAPS, V2_ALGORITHMS
from .checks import Check, verdict
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


class _Rows:
    """A table's rows by column values, ``rows(algorithm=..., cap=...)``, each selection
    filtered once (the V2 checks ask for one file's GALZONE rows up to four times)."""

    def __init__(self, table: pa.Table):
        self.table, self._memo = table, {}

    def __call__(self, **eq) -> pa.Table:
        key = tuple(eq.items())
        if key not in self._memo:
            self._memo[key] = _rows(self.table, **eq)
        return self._memo[key]


def _missing(values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    return idsets.missing(values, allowed)


def references(convert_dir: Path, caps=CAPS, galaxies: tuple[pa.Table, np.ndarray | None] | None
               = None) -> list[Check]:
    """The reference checks, per cap whose DESIVAST files are present (``caps``).
    ``galaxies``: the galaxies' TARGETID column as read and sorted
    (:func:`desivoids.integrity.tables.sorted_key`; None: not sortable), when already read."""
    gal, gal_sorted = galaxies if galaxies is not None else (
        read(convert_dir, "galaxies", ["targetid"]), None)
    voids = read(convert_dir, "voids", ["algorithm", "cap", "void"])
    holes = read(convert_dir, "holes", ["cap", "void"])
    zv = _Rows(read(convert_dir, "zonevoid", ["algorithm", "cap", "zone", "void0", "void1"]))
    gz = _Rows(read(convert_dir, "galzone", ["algorithm", "cap", "gal", "targetid", "x", "y",
                                             "z", "zone", "depth", "edge", "out"]))
    voids = _Rows(voids)
    out = []
    targets = idsets.unique(_np(gz.table, "targetid"))
    if gal_sorted is None:
        missing = _missing(targets, _np(gal, "targetid"))
    else:  # the distinct targets (``targets``) absent from the sorted TARGETIDs
        missing = targets[~idsets.isin(targets, gal_sorted, allowed_sorted=True)]
    out.append(Check("refs.galzone_targets", "every GALZONE TARGET is a galaxy of the catalogue",
                     verdict(len(missing) > 0),
                     {"targets": int(len(targets)), "not_in_galaxies": int(len(missing)),
                      "examples": missing[:_LIMIT].tolist()}))
    for cap in caps:
        vf = _np(voids(algorithm="VoidFinder", cap=cap), "void")
        bad = _missing(_np(_rows(holes, cap=cap), "void"), vf)
        out.append(Check(f"refs.holes_voids.{cap}", f"{cap}: every hole's VOID is a VoidFinder "
                         "void", verdict(len(bad) > 0),
                         {"missing_voids": int(len(bad)), "examples": bad[:_LIMIT].tolist()}))
        for alg in V2_ALGORITHMS:
            z = zv(algorithm=alg, cap=cap)
            own = np.concatenate([[-1], _np(voids(algorithm=alg, cap=cap), "void")])
            v0, v1 = _np(z, "void0"), _np(z, "void1")
            bad = _missing(np.concatenate([v0, v1]), own)
            hit = np.isin(v0, bad) | np.isin(v1, bad)
            out.append(Check(f"refs.zonevoid_voids.{alg}.{cap}", f"{alg} {cap}: ZONEVOID VOID0 "
                             f"and VOID1 are -1 or voids of {alg}'s own VOIDS table",
                             verdict(len(bad) > 0),
                             {"zones": z.num_rows, "own_voids": int(len(own) - 1),
                              "unknown_void_ids": int(len(bad)), "zones_affected": int(hit.sum()),
                              "examples": [{"zone": int(a), "void0": int(b), "void1": int(c)}
                                           for a, b, c in zip(_np(z, "zone")[hit][:_LIMIT],
                                                              v0[hit][:_LIMIT],
                                                              v1[hit][:_LIMIT])]}))
            g = gz(algorithm=alg, cap=cap)
            bad = _missing(_np(g, "zone"), np.concatenate([[-1], _np(z, "zone")]))
            out.append(Check(f"refs.galzone_zones.{alg}.{cap}", f"{alg} {cap}: every GALZONE "
                             "ZONE is -1 or a zone of ZONEVOID", verdict(len(bad) > 0),
                             {"tracers": g.num_rows, "unknown_zones": int(len(bad)),
                              "examples": bad[:_LIMIT].tolist()}))
        out.append(_same_tessellation(gz, zv, voids, cap))
    return out


def _canonical(t: pa.Table, cols: list[str], order: str) -> pa.Table:
    return t.select(cols).sort_by(order)


def _labelling(g: pa.Table, z: pa.Table) -> dict:
    """One file's labelling: its zones and tracers (GALZONE rows with ZONE >= 0) in its voids,
    the zone joined to ZONEVOID on the ZONE value."""
    zone, void0 = _np(z, "zone"), _np(z, "void0")
    order = np.argsort(zone, kind="stable")
    gzone = _np(g, "zone")
    zoned = gzone[gzone >= 0]
    pos = np.clip(np.searchsorted(zone[order], zoned), 0, max(len(zone) - 1, 0))
    found = (zone[order][pos] == zoned) if len(zone) else np.zeros(len(zoned), bool)
    in_void = found & (void0[order][pos] != -1) if len(zone) else found
    return {"zones": int(len(zone)), "zones_in_voids": int((void0 != -1).sum()),
            "zone_share": float((void0 != -1).mean()) if len(zone) else None,
            "tracers": int(g.num_rows), "tracers_in_zones": int(len(zoned)),
            "tracers_in_voids": int(in_void.sum()),
            "tracer_share": float(in_void.mean()) if len(zoned) else None}


def _same_tessellation(gz: _Rows, zv: _Rows, voids: _Rows, cap: str) -> Check:
    gcols = ["gal", "targetid", "x", "y", "z", "zone", "depth", "edge", "out"]
    present = [a for a in V2_ALGORITHMS if gz(algorithm=a, cap=cap).num_rows
               or zv(algorithm=a, cap=cap).num_rows]
    ref = present[0] if present else None
    differ = {}
    labellings = {}
    for alg in present:
        g, z = gz(algorithm=alg, cap=cap), zv(algorithm=alg, cap=cap)
        labellings[alg] = {"voids": voids(algorithm=alg, cap=cap).num_rows,
                           **_labelling(g, z)}
        if alg == ref:
            continue
        what = []
        if not _canonical(g, gcols, "gal").equals(
                _canonical(gz(algorithm=ref, cap=cap), gcols, "gal")):
            what.append("GALZONE")
        if not np.array_equal(np.unique(_np(z, "zone")),
                              np.unique(_np(zv(algorithm=ref, cap=cap), "zone"))):
            what.append("ZONEVOID ZONE set")
        if what:
            differ[alg] = what
    missing = [a for a in V2_ALGORITHMS if a not in present]
    return Check(f"tessellation.{cap}", f"{cap}: the V2 files are one tessellation (identical "
                 "GALZONE, the same zones in their ZONEVOIDs)",
                 verdict(bool(differ) or bool(missing)),
                 {"compared_with": ref, "differ": differ, "files_missing": missing,
                  "labellings": labellings})
