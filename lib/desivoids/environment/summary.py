"""What the membership of every galaxy says about the catalogues: galaxies per void, the
fractions of tracers and of volume in voids per algorithm (volume by random points inside each
cap's footprint and radial limits), and how far the algorithms' void/wall labels agree.

The reference fractions are VAST's on SDSS DR7 (science.md): galaxies in voids 20.6% with
VoidFinder and 98.7% with V2/REVOLVER, volume in voids 65.0% and 99.3%, counted as
void / (void + wall) after cutting 30 Mpc/h inside the survey boundary and applying MAGLIM.
Ours count void / (void + wall) with edge galaxies (within 10 Mpc/h of the boundary) left out.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .. import cosmology, formats
from .flags import EDGE, NOT_SURFACE, OUTSIDE, SURFACE_STRICT_VOID, VOID, WALL, Assignment
from .mask import Footprint, cell_index

__all__ = ["DR7_REFERENCE", "footprint_randoms", "fractions", "agreement", "flag_counts",
           "void_counts",
           "surface_as_void", "surface_summary", "surface_table"]

#: VAST's example analysis on SDSS DR7 (science.md): percent of galaxies / volume in voids
DR7_REFERENCE = {"VoidFinder": {"galaxies": 20.6, "volume": 65.0},
                 "REVOLVER": {"galaxies": 98.7, "volume": 99.3}}


def footprint_randoms(fp: Footprint, n: int, omega_m: float, rng: np.random.Generator,
                      batch: int = 200_000) -> dict[str, np.ndarray]:
    """``n`` points uniform in volume inside the footprint and between DLIML and DLIMU, as a
    galaxies-like mapping (ra, dec, z, comoving_x/y/z) that the membership functions accept.

    Directions are drawn uniformly on the sphere within the RA/Dec box of the footprint's cells
    and kept where the mask holds the cell (rejection: exact for any mask shape); distances
    have r^3 uniform between the radial limits."""
    i, j = np.nonzero(fp.grid)
    if len(i) == 0 or n <= 0:
        return {k: np.zeros(0) for k in ("ra", "dec", "z", "comoving_x", "comoving_y",
                                         "comoving_z")}
    cells = fp.n
    ra_lo, ra_hi = i.min() / cells, (i.max() + 1) / cells
    dec_lo = max(-90.0, (j.min() - 90 * cells - 1) / cells)
    dec_hi = min(90.0, (j.max() - 90 * cells + 1) / cells)
    s_lo, s_hi = np.sin(np.radians(dec_lo)), np.sin(np.radians(dec_hi))
    got = {"ra": [], "dec": []}
    have = 0
    while have < n:
        ra = rng.uniform(ra_lo, ra_hi, batch)
        dec = np.degrees(np.arcsin(rng.uniform(s_lo, s_hi, batch)))
        ci, cj = cell_index(ra, dec, cells)
        keep = fp.grid[ci, cj]
        got["ra"].append(ra[keep])
        got["dec"].append(dec[keep])
        have += int(keep.sum())
    ra = np.concatenate(got["ra"])[:n]
    dec = np.concatenate(got["dec"])[:n]
    r = np.cbrt(rng.uniform(fp.dliml ** 3, fp.dlimu ** 3, n))
    x, y, z = cosmology.radec_to_xyz(ra, dec, r)
    return {"ra": ra, "dec": dec, "z": cosmology.z_at_distance(r, omega_m), "comoving_x": x,
            "comoving_y": y, "comoving_z": z}


def _shares(flag: np.ndarray) -> dict:
    n = {name: int((flag == code).sum()) for name, code in
         (("void", VOID), ("wall", WALL), ("edge", EDGE), ("outside", OUTSIDE))}
    inside = n["void"] + n["wall"] + n["edge"]
    return {**n, "void_of_void_and_wall": n["void"] / (n["void"] + n["wall"])
            if n["void"] + n["wall"] else float("nan"),
            "void_of_footprint": n["void"] / inside if inside else float("nan")}


def fractions(tracer_flags: dict[tuple[str, str], np.ndarray],
              random_flags: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Per algorithm and cap (and both caps): tracers and random points in voids, walls, near
    the edge and outside, with the fractions void / (void + wall) and void / footprint, beside
    VAST's DR7 reference."""
    rows = []
    present = [c for c in formats.CAPS if any(k[1] == c for k in tracer_flags)]
    for alg in formats.ALGORITHMS:
        for cap in (*present, "both"):  # the caps whose catalogues are present
            caps = formats.CAPS if cap == "both" else (cap,)
            for what, flags in (("tracers", tracer_flags), ("volume", random_flags)):
                f = np.concatenate([flags[(alg, c)] for c in caps if (alg, c) in flags] or
                                   [np.zeros(0, np.int8)])
                ref = DR7_REFERENCE.get(alg, {}).get("galaxies" if what == "tracers" else
                                                     "volume")
                rows.append({"algorithm": alg, "cap": cap, "of": what, **_shares(f),
                             "dr7_percent": ref})
    return pd.DataFrame(rows)


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two void/wall labellings (statsmodels)."""
    from statsmodels.stats.inter_rater import cohens_kappa

    table = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    if table.sum() == 0:
        return float("nan")
    # a labelling that calls every galaxy void (ZOBOV on VAST's DR7 files) leaves statsmodels'
    # kappa_max at 0/0; kappa itself is defined (0 when agreement is what chance gives)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(cohens_kappa(table).kappa)


def agreement(flags: dict[str, np.ndarray]) -> list[dict]:
    """Every pair of algorithms: of the galaxies both call void or wall, the share with the
    same label, and Cohen's kappa (chance-corrected agreement)."""
    out = []
    for a, b in itertools.product(formats.ALGORITHMS, repeat=2):
        fa, fb = flags[a], flags[b]
        both = np.isin(fa, (VOID, WALL)) & np.isin(fb, (VOID, WALL))
        va, vb = fa[both] == VOID, fb[both] == VOID
        out.append({"a": a, "b": b, "galaxies": int(both.sum()),
                    "same_label": float(np.mean(va == vb)) if both.any() else float("nan"),
                    "both_void": int(np.sum(va & vb)), "kappa": _kappa(va, vb)})
    return out


def flag_counts(result: dict, tracer: np.ndarray) -> list[dict]:
    """Per algorithm (in ``result``'s order) and flag present (ascending): the galaxies and the
    tracers with that flag. One bincount per algorithm (flags are small integers), not a sort
    of every galaxy's flag and a pass per flag."""
    rows = []
    for alg, r in result.items():
        flag = np.asarray(r.flag, np.int64)
        if not len(flag):
            continue
        lo = int(flag.min())
        n = np.bincount(flag - lo)
        t = np.bincount(flag[np.asarray(tracer, bool)] - lo, minlength=len(n))
        rows += [{"algorithm": alg, "flag": int(f + lo), "galaxies": int(n[f]),
                  "tracers": int(t[f])} for f in np.flatnonzero(n)]
    return rows


def void_counts(voids: pd.DataFrame, result: dict, tracer: np.ndarray) -> pd.DataFrame:
    """Galaxies (and tracers) per void of every algorithm: every void of the catalogue, zero
    counts included, and every other void id the membership names (``in_catalogue`` False: a
    ZONEVOID VOID0 missing from its own file's VOIDS, which integrity reports as a failure).
    ``result``: algorithm -> Assignment of every galaxy; ``tracer``: which galaxies are tracers."""
    parts = []
    for alg in formats.ALGORITHMS:
        cat = voids[voids.algorithm == alg][["cap", "void", "r_eff", "is_edge"]].assign(
            in_catalogue=True)
        r = result[alg]
        v = r.flag == VOID
        g = (pd.DataFrame({"cap_code": r.cap_code[v], "void": r.void[v], "tracer": tracer[v]})
             .groupby(["cap_code", "void"]).agg(n_galaxies=("tracer", "size"),
                                                n_tracers=("tracer", "sum")).reset_index())
        g.insert(0, "cap", np.asarray(formats.CAPS)[g.pop("cap_code").to_numpy()])
        m = cat.merge(g, on=["cap", "void"], how="outer")
        m["in_catalogue"] = m["in_catalogue"].fillna(False).astype(bool)
        m[["n_galaxies", "n_tracers"]] = m[["n_galaxies", "n_tracers"]].fillna(0).astype("int64")
        parts.append(m.assign(algorithm=alg))
    out = pd.concat(parts, ignore_index=True)
    out["void"] = out["void"].astype("int64")
    return out[["algorithm", "cap", "void", "in_catalogue", "r_eff", "is_edge", "n_galaxies",
                "n_tracers"]].sort_values(["algorithm", "cap", "void"], ignore_index=True)


def surface_as_void(flag: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """VoidFinder flags with every surface galaxy counted as void (VAST's rounding calls most
    of them void): the other answer of the surface rule, beside the default (flag)."""
    return np.where(np.asarray(surface) != NOT_SURFACE, VOID, flag).astype(np.int8)


def surface_summary(result: Assignment, tracer: np.ndarray, surface_tol: float,
                    caps=formats.CAPS) -> list[dict]:
    """Per cap and both: VoidFinder's surface galaxies (within ``surface_tol`` of a hole's
    surface, inside no hole by more), of all galaxies and of the tracers; how many of them
    VAST's strict |x - c| < RADIUS would call void; and the tracers' void / (void + wall) with
    the tolerance and with the surface galaxies counted as void. ``caps``: those classified."""
    rows = []
    for cap in (*caps, "both"):
        own = np.ones(len(result), bool) if cap == "both" \
            else result.cap_code == formats.CAPS.index(cap)
        surf = own & (result.surface != NOT_SURFACE)
        strict = own & (result.surface == SURFACE_STRICT_VOID)
        t = own & tracer

        def share(flag, t=t):
            void, wall = int((flag[t] == VOID).sum()), int((flag[t] == WALL).sum())
            return void / (void + wall) if void + wall else float("nan")

        rows.append({"cap": cap, "surface_tol": float(surface_tol),
                     "galaxies": int(surf.sum()), "tracers": int((surf & tracer).sum()),
                     "galaxies_strict_void": int(strict.sum()),
                     "tracers_strict_void": int((strict & tracer).sum()),
                     "tracer_void_fraction": share(result.flag),
                     "tracer_void_fraction_surface_as_void":
                         share(surface_as_void(result.flag, result.surface))})
    return rows


def surface_table(report: dict) -> pd.DataFrame:
    """The environment report's surface counts as the book shows them (percentages)."""
    t = pd.DataFrame(report.get("voidfinder_surface", []))
    if t.empty:
        return t
    out = t.set_index("cap")[["galaxies", "tracers", "galaxies_strict_void",
                              "tracers_strict_void"]].copy()
    out["tracers in voids (%)"] = (100 * t.set_index("cap").tracer_void_fraction).round(2)
    out["surface as void (%)"] = (
        100 * t.set_index("cap").tracer_void_fraction_surface_as_void).round(2)
    return out.rename(columns={"galaxies": "surface galaxies", "tracers": "surface tracers",
                               "galaxies_strict_void": "galaxies VAST calls void",
                               "tracers_strict_void": "tracers VAST calls void"})
