"""The planted truth of the mock: membership flags computed with the exact rules of science.md.

A small, independent implementation (the environment stage is tested against it):

- footprint: RA-Dec grid of shape (360 N, 180 N), N = 1 + int(radians(1) * DLIMU / 10); a tracer
  marks cell (int(N ra), int(N dec) + 90 N) with int() truncating toward zero; one smoothing
  pass over the unsmoothed grid fills an empty cell with >= 3 of its 4 neighbours in (no wrap,
  outermost rows/columns never filled). Outside: cell out, or r == 0, r < DLIML or r > DLIMU.
  Near edge: any of the six points 10 Mpc/h away along +-x, +-y, +-z is outside.
- VoidFinder: 1 when strictly inside a HOLES sphere (checked first); void = VOID of the first
  such HOLES row in file order; else 9 outside, 2 near edge, 0 wall.
- V2: ZONE of the nearest GALZONE tracer; void when ZONE >= 0 and ZONEVOID.VOID0 (joined on the
  ZONE value) != -1; outside is always 9; void beats edge; else 2 near edge, 0 wall.

Also the tracer selection of DESIVAST, applied to the values as written (float32 ABSMAG etc.).
Flags: 0 wall, 1 void, 2 edge, 9 outside.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .. import cosmology, formats

WALL, VOID, EDGE, OUTSIDE = 0, 1, 2, 9
EDGE_BUFFER = 10.0  # Mpc/h


def cells_per_degree(dlimu: float) -> int:
    return 1 + int(np.radians(1.0) * dlimu / 10.0)


def _cell_index(ra, dec, n: int):
    ra = np.asarray(ra, dtype=float) % 360.0
    i = np.trunc(n * ra).astype(np.int64)
    j = np.trunc(n * np.asarray(dec, dtype=float)).astype(np.int64) + 90 * n
    i = np.clip(i, 0, 360 * n - 1)
    j = np.clip(j, 0, 180 * n - 1)
    return i, j


def footprint_grid(ra, dec, dlimu: float) -> np.ndarray:
    """Boolean (360 N, 180 N) grid rebuilt from tracer positions, with one smoothing pass."""
    n = cells_per_degree(dlimu)
    grid = np.zeros((360 * n, 180 * n), dtype=bool)
    i, j = _cell_index(ra, dec, n)
    grid[i, j] = True
    nb = np.zeros_like(grid, dtype=np.int8)
    g = grid.astype(np.int8)
    nb[1:-1, 1:-1] = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    fill = (~grid) & (nb >= 3)
    fill[0, :] = fill[-1, :] = False
    fill[:, 0] = fill[:, -1] = False
    return grid | fill


def outside(xyz: np.ndarray, grid: np.ndarray, dliml: float, dlimu: float) -> np.ndarray:
    n = grid.shape[0] // 360
    ra, dec, r = cosmology.xyz_to_radec_r(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    i, j = _cell_index(ra, dec, n)
    return (~grid[i, j]) | (r == 0) | (r < dliml) | (r > dlimu)


def near_edge(xyz: np.ndarray, grid, dliml, dlimu, buffer: float = EDGE_BUFFER) -> np.ndarray:
    out = np.zeros(len(xyz), dtype=bool)
    for axis in range(3):
        for sign in (1.0, -1.0):
            p = xyz.copy()
            p[:, axis] += sign * buffer
            out |= outside(p, grid, dliml, dlimu)
    return out


def first_containing_hole(xyz: np.ndarray, hole_xyz: np.ndarray, hole_r: np.ndarray,
                          chunk: int = 250_000) -> np.ndarray:
    """Index (file order) of the first hole strictly containing each point, -1 if none.

    Exact and vectorised: holes are split into radius classes; within a class, every
    (point, hole) pair closer than the class's largest radius comes from a KD-tree
    sparse distance matrix, then the strict test |x - centre| < RADIUS is applied.
    """
    xyz = np.asarray(xyz, dtype=float)
    first = np.full(len(xyz), -1, dtype=np.int64)
    nh = len(hole_r)
    if nh == 0 or len(xyz) == 0:
        return first
    hole_r = np.asarray(hole_r, dtype=float)
    hole_xyz = np.asarray(hole_xyz, dtype=float)
    edges = np.unique(np.quantile(hole_r, [0, 0.25, 0.5, 0.75, 0.9, 1.0]))
    classes = [np.flatnonzero((hole_r >= lo) & ((hole_r < hi) | (hi == edges[-1])))
               for lo, hi in zip(edges[:-1], edges[1:])] if len(edges) > 1 else [np.arange(nh)]
    trees = [(cKDTree(hole_xyz[c]), c, float(hole_r[c].max())) for c in classes if len(c)]
    big = np.iinfo(np.int64).max
    for s in range(0, len(xyz), chunk):
        p = xyz[s:s + chunk]
        tp = cKDTree(p)
        best = np.full(len(p), big, dtype=np.int64)
        for th, members, rcls in trees:
            m = th.sparse_distance_matrix(tp, rcls * (1 + 1e-9) + 1e-9, output_type="ndarray")
            if len(m) == 0:
                continue
            hole = members[m["i"]]
            pt = m["j"]
            d = np.sqrt(np.sum((p[pt] - hole_xyz[hole]) ** 2, axis=1))
            ok = d < hole_r[hole]
            np.minimum.at(best, pt[ok], hole[ok])
        has = best != big
        first[s:s + chunk][has] = best[has]
    return first


def voidfinder_flags(xyz, holes: dict, grid, dliml, dlimu):
    """(flag, void) per point; ``holes`` has X, Y, Z, RADIUS, VOID arrays in file order."""
    hxyz = np.column_stack([holes["X"], holes["Y"], holes["Z"]]).astype(float)
    first = first_containing_hole(xyz, hxyz, np.asarray(holes["RADIUS"], float))
    inside = first >= 0
    void = np.where(inside, np.asarray(holes["VOID"], np.int64)[np.maximum(first, 0)], -1)
    out = outside(xyz, grid, dliml, dlimu)
    rest = np.flatnonzero(~inside & ~out)
    edge = np.zeros(len(xyz), dtype=bool)
    edge[rest] = near_edge(xyz[rest], grid, dliml, dlimu)
    flag = np.where(inside, VOID, np.where(out, OUTSIDE, np.where(edge, EDGE, WALL)))
    return flag.astype(np.int8), void


def v2_flags(xyz, galzone: dict, zonevoid: dict, grid, dliml, dlimu):
    """(flag, void) per point from GALZONE (X, Y, Z, ZONE) and ZONEVOID (ZONE, VOID0)."""
    txyz = np.column_stack([galzone["X"], galzone["Y"], galzone["Z"]]).astype(float)
    out = outside(xyz, grid, dliml, dlimu)
    inn = np.flatnonzero(~out)  # an outside point is always 9: no need for its nearest tracer
    zone = np.full(len(xyz), -1, dtype=np.int64)
    if len(inn) and len(txyz):
        _, nearest = cKDTree(txyz).query(xyz[inn], k=1, workers=-1)
        zone[inn] = np.asarray(galzone["ZONE"], np.int64)[nearest]
    zv_zone = np.asarray(zonevoid["ZONE"], np.int64)
    zv_void0 = np.asarray(zonevoid["VOID0"], np.int64)
    order = np.argsort(zv_zone)
    pos = np.searchsorted(zv_zone[order], zone)
    pos = np.clip(pos, 0, len(order) - 1)
    matched = (zone >= 0) & (zv_zone[order][pos] == zone)
    void0 = np.where(matched, zv_void0[order][pos], -1)
    invoid = void0 != -1
    rest = np.flatnonzero(~out & ~invoid)
    edge = np.zeros(len(xyz), dtype=bool)
    edge[rest] = near_edge(xyz[rest], grid, dliml, dlimu)
    flag = np.where(out, OUTSIDE, np.where(invoid, VOID, np.where(edge, EDGE, WALL)))
    return flag.astype(np.int8), np.where(out, -1, void0)


def _strip(a):
    a = np.asarray(a)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "ascii")
    return np.char.strip(a.astype(str))


def select_tracers(meta: dict, zlimu: float = 0.24, maglim: float = -20.0) -> np.ndarray:
    """DESIVAST's volume-limited tracer selection on FastSpecFit values (science.md).

    ``meta`` maps column names to arrays: SURVEY, PROGRAM, BGS_TARGET, SPECTYPE, ZWARN,
    DELTACHI2, Z and ABSMAG01_SDSS_R (from SPECPHOT in v3.0, FASTSPEC in v2.1).
    """
    z = np.asarray(meta["Z"], dtype=np.float64)
    mr = np.asarray(meta["ABSMAG01_SDSS_R"], dtype=np.float64) + 0.97 * (z - 0.1)
    return ((_strip(meta["SURVEY"]) == "main") & (_strip(meta["PROGRAM"]) == "bright")
            & ((np.asarray(meta["BGS_TARGET"], np.int64) & formats.BGS_BRIGHT) != 0)
            & (_strip(meta["SPECTYPE"]) == "GALAXY") & (np.asarray(meta["ZWARN"]) == 0)
            & (np.asarray(meta["DELTACHI2"], np.float64) > 40.0)
            & (z > 0) & (z <= zlimu) & (mr <= maglim))


def quenched_definitions(logmstar, sfr, dn4000, absmag_u, absmag_r) -> dict:
    """The three quenched definitions of science.md on the values as written."""
    logm = np.asarray(logmstar, dtype=np.float64)
    sfr = np.asarray(sfr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ssfr = np.where(sfr > 0, np.log10(np.where(sfr > 0, sfr, 1.0)) - logm, -np.inf)
    return {
        "QUENCHED_SSFR": (sfr == 0) | (ssfr < -11.0),
        "QUENCHED_DN4000": np.asarray(dn4000, np.float64) > 1.6,
        "QUENCHED_COLOR": (np.asarray(absmag_u, np.float64) - np.asarray(absmag_r, np.float64))
        >= 2.22,
    }


def offsets_by_mass(logm, quenched, flag, bins, min_count: int = 1) -> dict:
    """Quenched fraction in void (flag 1) minus wall (flag 0) per stellar-mass bin, and their
    average weighted by the wall count of each bin (direct standardisation to the wall mass
    distribution) with its binomial standard error. Bins with fewer than ``min_count`` void or
    wall galaxies are listed without an offset and left out of the average."""
    logm = np.asarray(logm, float)
    quenched = np.asarray(quenched, bool)
    flag = np.asarray(flag)
    out = []
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (logm >= lo) & (logm < hi)
        v, w = m & (flag == VOID), m & (flag == WALL)
        nv, nw = int(v.sum()), int(w.sum())
        pv = float(quenched[v].mean()) if nv else None
        pw = float(quenched[w].mean()) if nw else None
        usable = nv >= min_count and nw >= min_count and nv and nw
        out.append({"logm_lo": float(lo), "logm_hi": float(hi), "n_void": nv, "n_wall": nw,
                    "q_void": pv, "q_wall": pw, "offset": (pv - pw) if usable else None})
    num = den = var = 0.0
    for b in out:
        if b["offset"] is not None:
            pv, pw, nv, nw = b["q_void"], b["q_wall"], b["n_void"], b["n_wall"]
            num += b["offset"] * nw
            den += nw
            var += (pv * (1 - pv) / nv + pw * (1 - pw) / nw) * nw ** 2
    return {"bins": out, "weighted_offset": (num / den) if den else None,
            "weighted_error": (float(np.sqrt(var)) / den) if den else None}
