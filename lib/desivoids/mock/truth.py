"""The planted truth of the mock: membership flags by brute force, with the rules of science.md.

This module must not share code with what it checks (desivoids.environment, desivoids.density):
nothing is imported from there, no KD-tree is used, and the mask and edge rules are written
again here, plainly.

- footprint: RA-Dec grid of shape (360 N, 180 N), N = 1 + int(radians(1) * DLIMU / 10); each
  tracer marks cell (int(N ra), int(N dec) + 90 N), Python's int() truncating toward zero; one
  smoothing pass over the unsmoothed grid fills an empty cell with >= 3 of its 4 neighbours in
  (no wrap, outermost rows/columns never filled). Outside: cell out, or r == 0, r < DLIML or
  r > DLIMU. Near edge: any of the six points 10 Mpc/h away along +-x, +-y, +-z is outside.
- redshift range: a galaxy with Z <= 0 or Z > ZLIMU is 9 (never wall), for every algorithm.
- VoidFinder: 1 when inside a HOLES sphere by more than the surface tolerance (|x - c| <
  RADIUS - SURFACE_TOL, checked before the footprint); void = VOID of the first such HOLES row
  in file order; else 9 outside, 2 near edge, 0 wall. A point within the tolerance of a hole's
  surface and inside no hole by more is a surface galaxy: not void (the mock's holes touch their
  wall tracers, as VoidFinder's do, so it has them).
- V2: ZONE of the nearest GALZONE tracer; void when ZONE >= 0 and ZONEVOID.VOID0 (joined on the
  ZONE value) != -1, each pruning by its own file's ZONEVOID; outside is always 9; void beats
  edge; else 2 near edge, 0 wall.

Brute force means the distances are computed pair by pair, in vectorised batches. To keep the
DR1-scale mock affordable the pairs that cannot matter are skipped with a plain grid of cubic
cells (no tree): a hole is listed in every cell its bounding cube touches, so a galaxy is
tested against every hole that could contain it; the nearest tracer is searched in the cells
around the galaxy's own and accepted only when nothing outside them can be closer.

The planted profile's distance: r / R_eff to the galaxy's own VoidFinder void (flag 1) or the
nearest MAXIMALS centre (flags 0, 2), none outside (9), with the density stage's documented
convention but this module's brute force; and the expected profile per r / R_eff bin from the
latent probabilities.

Also the tracer selection of DESIVAST, applied to the values as written (float32 ABSMAG etc.).
Flags: 0 wall, 1 void, 2 edge, 9 outside.
"""
from __future__ import annotations

import math

import numpy as np

from .. import formats

WALL, VOID, EDGE, OUTSIDE = 0, 1, 2, 9
EDGE_BUFFER = 10.0  # Mpc/h
SURFACE_TOL = 1e-3  # Mpc/h: the environment stage's default surface tolerance (methods.md)


# --------------------------------------------------------------------------------------------
# footprint
# --------------------------------------------------------------------------------------------


def cells_per_degree(dlimu: float) -> int:
    return 1 + int(math.radians(1.0) * dlimu / 10.0)


def footprint_grid(ra, dec, dlimu: float) -> np.ndarray:
    """Boolean (360 N, 180 N) grid rebuilt from tracer positions, with one smoothing pass."""
    n = cells_per_degree(dlimu)
    ni, nj = 360 * n, 180 * n
    marked = set()
    for a, d in zip(np.asarray(ra, dtype=float).tolist(), np.asarray(dec, dtype=float).tolist()):
        a = a % 360.0
        if a >= 360.0:
            a -= 360.0
        marked.add((min(int(n * a), ni - 1), min(int(n * d) + 90 * n, nj - 1)))
    # one pass over the unsmoothed grid: only an empty neighbour of a marked cell can fill
    filled = set()
    for i, j in marked:
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if (a, b) in marked or not (0 < a < ni - 1 and 0 < b < nj - 1):
                continue
            count = sum((c in marked) for c in ((a - 1, b), (a + 1, b), (a, b - 1), (a, b + 1)))
            if count >= 3:
                filled.add((a, b))
    grid = np.zeros((ni, nj), dtype=bool)
    for i, j in marked | filled:
        grid[i, j] = True
    return grid


def outside(xyz: np.ndarray, grid: np.ndarray, dliml: float, dlimu: float) -> np.ndarray:
    """Outside the rebuilt footprint or the radial limits."""
    xyz = np.asarray(xyz, dtype=float)
    n = grid.shape[0] // 360
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    r = np.sqrt(x ** 2 + y ** 2 + z ** 2)
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    ra = np.where(ra >= 360.0, ra - 360.0, ra)
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    bad = ~np.isfinite(r)
    ra, dec = np.where(bad, 0.0, ra), np.where(bad, 0.0, dec)
    i = np.minimum((n * ra).astype(np.int64), 360 * n - 1)  # astype truncates toward zero
    j = np.minimum((n * dec).astype(np.int64) + 90 * n, 180 * n - 1)
    return bad | ~grid[i, j] | (r == 0) | (r < dliml) | (r > dlimu)


def near_edge(xyz: np.ndarray, grid, dliml, dlimu, buffer: float = EDGE_BUFFER) -> np.ndarray:
    """Any of the six points ``buffer`` away along +-x, +-y, +-z is outside."""
    xyz = np.asarray(xyz, dtype=float)
    near = np.zeros(len(xyz), dtype=bool)
    for step in ((buffer, 0, 0), (-buffer, 0, 0), (0, buffer, 0), (0, -buffer, 0),
                 (0, 0, buffer), (0, 0, -buffer)):
        near |= outside(xyz + np.asarray(step, dtype=float), grid, dliml, dlimu)
    return near


def in_redshift_range(redshift, zlimu: float) -> np.ndarray:
    z = np.asarray(redshift, dtype=float)
    return (z > 0) & (z <= zlimu)


# --------------------------------------------------------------------------------------------
# brute force over the pairs that can matter, found with a grid of cubic cells
# --------------------------------------------------------------------------------------------


def _ranges(start: np.ndarray, count: np.ndarray):
    """(owner, position): position runs over start[o] .. start[o] + count[o] - 1 for each o."""
    owner = np.repeat(np.arange(len(count)), count)
    first = np.cumsum(count) - count
    return owner, np.repeat(start, count) + np.arange(int(count.sum())) - np.repeat(first, count)


class _Cells:
    """A cubic grid of cells of side ``size`` covering a box; a cell is one int64 id."""

    def __init__(self, lo, hi, size: float):
        self.lo = np.asarray(lo, dtype=float) - size
        self.size = float(size)
        self.shape = (np.floor((np.asarray(hi, dtype=float) - self.lo) / size) + 2).astype(np.int64)

    def ijk(self, xyz):
        return np.floor((np.asarray(xyz) - self.lo) / self.size).astype(np.int64)

    def id(self, ijk):
        """Cell id of integer cell coordinates; -1 outside the grid."""
        ok = np.all((ijk >= 0) & (ijk < self.shape), axis=-1)
        ids = (ijk[..., 0] * self.shape[1] + ijk[..., 1]) * self.shape[2] + ijk[..., 2]
        return np.where(ok, ids, -1)

    def listing(self, sorted_ids):
        """Where each cell's entries start in ``sorted_ids`` and how many there are; the last
        slot (id -1) is an empty cell."""
        count = np.bincount(sorted_ids[sorted_ids >= 0], minlength=int(np.prod(self.shape)) + 1)
        count[-1] = 0
        start = np.cumsum(count) - count + np.count_nonzero(sorted_ids < 0)
        return start, count

    def around(self, ijk, m: int):
        """Ids of the (2m+1)^3 cells around each cell (n, 3) -> (n, (2m+1)^3); -1 outside."""
        r = np.arange(-m, m + 1)
        i, j, k = (ijk[:, d, None] + r[None] for d in range(3))
        ids = (i[:, :, None, None] * self.shape[1] + j[:, None, :, None]) * self.shape[2] \
            + k[:, None, None, :]
        ok = ((i >= 0) & (i < self.shape[0]))[:, :, None, None] \
            & ((j >= 0) & (j < self.shape[1]))[:, None, :, None] \
            & ((k >= 0) & (k < self.shape[2]))[:, None, None, :]
        return np.where(ok, ids, -1).reshape(len(ijk), -1)


def _registry(cells: _Cells, lo_ijk, hi_ijk):
    """Items listed in every cell of their index box [lo_ijk, hi_ijk]: (cell ids sorted, items
    in ascending order within a cell)."""
    n = hi_ijk - lo_ijk + 1
    per = n[:, 0] * n[:, 1] * n[:, 2]
    item, k = _ranges(np.zeros(len(per), np.int64), per)
    nj, nk = n[item, 1], n[item, 2]
    ijk = lo_ijk[item] + np.column_stack([k // (nj * nk), (k // nk) % nj, k % nk])
    ids = cells.id(ijk)
    order = np.lexsort((item, ids))
    return ids[order], item[order]


_BATCH = 100_000  # points per vectorised batch


def strictly_inside(distance, radius):
    """|x - centre| < RADIUS: a point on the surface is not inside."""
    return distance < radius


def hole_hits(xyz: np.ndarray, hole_xyz: np.ndarray, hole_r: np.ndarray,
              surface_tol: float = 0.0, cell: float = 16.0):
    """(first, surface) per point: the index (file order) of the first hole containing it by
    more than ``surface_tol`` (|x - centre| < RADIUS - surface_tol; -1 if none), and whether it
    lies within ``surface_tol`` of some hole's surface while inside none by more.

    Every hole is listed in every cell its bounding cube (grown by the tolerance) touches; a
    point is tested against every hole listed in its own cell (all that can hold it).
    """
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    hole_xyz = np.asarray(hole_xyz, dtype=float).reshape(-1, 3)
    hole_r = np.asarray(hole_r, dtype=float)
    first = np.full(len(xyz), -1, dtype=np.int64)
    surface = np.zeros(len(xyz), dtype=bool)
    if len(xyz) == 0 or len(hole_r) == 0:
        return first, surface
    reach = hole_r + surface_tol
    cells = _Cells(np.minimum(xyz.min(0), (hole_xyz - reach[:, None]).min(0)),
                   np.maximum(xyz.max(0), (hole_xyz + reach[:, None]).max(0)), cell)
    reg_id, reg_hole = _registry(cells, cells.ijk(hole_xyz - reach[:, None]),
                                 cells.ijk(hole_xyz + reach[:, None]))
    cell_start, cell_count = cells.listing(reg_id)
    for s in range(0, len(xyz), _BATCH):
        p = xyz[s:s + _BATCH]
        pid = cells.id(cells.ijk(p))
        owner, pos = _ranges(cell_start[pid], cell_count[pid])
        hole = reg_hole[pos]
        d = np.sqrt(((p[owner] - hole_xyz[hole]) ** 2).sum(axis=1))
        inside = strictly_inside(d, hole_r[hole] - surface_tol)
        best = np.full(len(p), len(hole_r), dtype=np.int64)
        np.minimum.at(best, owner[inside], hole[inside])
        near = np.zeros(len(p), dtype=bool)
        near[owner[np.abs(d - hole_r[hole]) <= surface_tol]] = True
        first[s:s + _BATCH] = np.where(best < len(hole_r), best, -1)
        surface[s:s + _BATCH] = near & (best == len(hole_r))
    return first, surface


def first_containing_hole(xyz: np.ndarray, hole_xyz: np.ndarray, hole_r: np.ndarray,
                          cell: float = 16.0, surface_tol: float = 0.0) -> np.ndarray:
    """Index (file order) of the first hole containing each point by more than
    ``surface_tol`` (0: strictly, |x - centre| < RADIUS), -1 if none."""
    return hole_hits(xyz, hole_xyz, hole_r, surface_tol, cell)[0]


def nearest_tracer(xyz: np.ndarray, tracer_xyz: np.ndarray, cell: float = 5.0) -> np.ndarray:
    """Row of the nearest tracer of each point (the lowest row among equal distances).

    Tracers are listed in their cell; a point computes its distance to every tracer of the
    (2m+1)^3 cells around its own, m = 1, 2, ...: the best is final once it is closer than
    m * cell (every unlisted tracer is farther), else m grows.
    """
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    tracer_xyz = np.asarray(tracer_xyz, dtype=float).reshape(-1, 3)
    best = np.full(len(xyz), -1, dtype=np.int64)
    if len(tracer_xyz) == 0 or len(xyz) == 0:
        return best
    cells = _Cells(np.minimum(xyz.min(0), tracer_xyz.min(0)),
                   np.maximum(xyz.max(0), tracer_xyz.max(0)), cell)
    tid = cells.id(cells.ijk(tracer_xyz))
    order = np.lexsort((np.arange(len(tid)), tid))
    reg_id, reg_t = tid[order], order
    cell_start, cell_count = cells.listing(reg_id)
    todo, m = np.arange(len(xyz)), 1
    while len(todo):
        ncell = (2 * m + 1) ** 3
        batch = max(1, _BATCH * 27 // ncell)
        done = np.zeros(len(todo), dtype=bool)
        for s in range(0, len(todo), batch):
            rows = todo[s:s + batch]
            p = xyz[rows]
            nid = cells.around(cells.ijk(p), m).reshape(-1)
            owner, pos = _ranges(cell_start[nid], cell_count[nid])
            owner //= ncell  # (point, cell) pairs back to points; still grouped by point
            t = reg_t[pos]
            d2 = ((p[owner] - tracer_xyz[t]) ** 2).sum(axis=1)
            has = np.bincount(owner, minlength=len(p)) > 0
            heads = np.searchsorted(owner, np.flatnonzero(has))
            dmin = np.full(len(p), np.inf)
            dmin[has] = np.minimum.reduceat(d2, heads)
            tie = np.where(d2 == dmin[owner], t, len(tracer_xyz))
            tmin = np.full(len(p), -1, dtype=np.int64)
            tmin[has] = np.minimum.reduceat(tie, heads)
            ok = dmin < (m * cell) ** 2  # every tracer outside the searched cells is farther
            best[rows[ok]] = tmin[ok]
            done[s:s + batch] = ok
        todo, m = todo[~done], m + 1
    return best


# --------------------------------------------------------------------------------------------
# membership
# --------------------------------------------------------------------------------------------


def voidfinder_flags(xyz, redshift, holes: dict, grid, dliml, dlimu, zlimu,
                     surface_tol: float = SURFACE_TOL):
    """(flag, void, surface) per point; ``holes`` has X, Y, Z, RADIUS, VOID arrays in file
    order; ``surface`` marks the surface galaxies in the redshift range (not void: footprint
    rules decide them)."""
    xyz = np.asarray(xyz, dtype=float)
    flag = np.full(len(xyz), OUTSIDE, dtype=np.int8)
    void = np.full(len(xyz), -1, dtype=np.int64)
    surface = np.zeros(len(xyz), dtype=bool)
    rows = np.flatnonzero(in_redshift_range(redshift, zlimu))
    p = xyz[rows]
    hxyz = np.column_stack([holes["X"], holes["Y"], holes["Z"]]).astype(float)
    first, surface[rows] = hole_hits(p, hxyz, np.asarray(holes["RADIUS"], float), surface_tol)
    inside = first >= 0
    out = outside(p, grid, dliml, dlimu)
    edge = near_edge(p, grid, dliml, dlimu)
    flag[rows] = np.where(inside, VOID, np.where(out, OUTSIDE, np.where(edge, EDGE, WALL)))
    void[rows[inside]] = np.asarray(holes["VOID"], np.int64)[first[inside]]
    return flag, void, surface


def v2_flags(xyz, redshift, galzone: dict, zonevoid: dict, grid, dliml, dlimu, zlimu):
    """(flag, void) per point from GALZONE (X, Y, Z, ZONE) and ZONEVOID (ZONE, VOID0).

    ``zonevoid`` may also map algorithm names to the ZONEVOIDs of the prunings of this one
    GALZONE; then the answer is a dict algorithm -> (flag, void), the nearest tracers found once.
    """
    many = all(isinstance(v, dict) for v in zonevoid.values())
    xyz = np.asarray(xyz, dtype=float)
    rows = np.flatnonzero(in_redshift_range(redshift, zlimu))
    rows = rows[~outside(xyz[rows], grid, dliml, dlimu)]  # outside stays 9
    p = xyz[rows]
    txyz = np.column_stack([galzone["X"], galzone["Y"], galzone["Z"]]).astype(float)
    nearest = nearest_tracer(p, txyz)
    zone = np.where(nearest >= 0, np.asarray(galzone["ZONE"], np.int64)[nearest], -1)
    edge = near_edge(p, grid, dliml, dlimu)
    out = {}
    for alg, zv in (zonevoid.items() if many else [(None, zonevoid)]):
        void0_of = dict(zip(np.asarray(zv["ZONE"], np.int64).tolist(),
                            np.asarray(zv["VOID0"], np.int64).tolist()))
        void0 = np.array([void0_of.get(zn, -1) if zn >= 0 else -1 for zn in zone.tolist()],
                         dtype=np.int64)
        flag = np.full(len(xyz), OUTSIDE, dtype=np.int8)
        void = np.full(len(xyz), -1, dtype=np.int64)
        flag[rows] = np.where(void0 != -1, VOID, np.where(edge, EDGE, WALL))
        void[rows] = void0
        out[alg] = (flag, void)
    return out if many else out[None]


def _strip(a):
    a = np.asarray(a)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "ascii")
    return np.char.strip(a.astype(str))


_SEL = formats.TRACER_SELECTION


def select_tracers(meta: dict, zlimu: float = _SEL["ZLIMU"],
                   maglim: float = _SEL["MAGLIM"]) -> np.ndarray:
    """DESIVAST's volume-limited tracer selection on FastSpecFit values (science.md), with the
    cuts of formats.TRACER_SELECTION.

    ``meta`` maps column names to arrays: SURVEY, PROGRAM, BGS_TARGET, SPECTYPE, ZWARN,
    DELTACHI2, Z and ABSMAG01_SDSS_R (from SPECPHOT in v3.0, FASTSPEC in v2.1).
    """
    z = np.asarray(meta["Z"], dtype=np.float64)
    mr = np.asarray(meta["ABSMAG01_SDSS_R"], dtype=np.float64) \
        + _SEL["KCORR_SLOPE"] * (z - _SEL["KCORR_PIVOT"])
    bit = 1 << formats.BGS_TARGET_BITS[_SEL["BGS_TARGET_BIT"]]
    return ((_strip(meta["SURVEY"]) == _SEL["SURVEY"])
            & (_strip(meta["PROGRAM"]) == _SEL["PROGRAM"])
            & ((np.asarray(meta["BGS_TARGET"], np.int64) & bit) != 0)
            & (_strip(meta["SPECTYPE"]) == _SEL["SPECTYPE"])
            & (np.asarray(meta["ZWARN"]) == _SEL["ZWARN"])
            & (np.asarray(meta["DELTACHI2"], np.float64) > _SEL["DELTACHI2_GT"])
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


def expected_matched_difference(logm, p, flag, edges) -> dict:
    """The expected void-minus-wall difference in quenched fraction at fixed stellar mass, from
    the latent quenched probabilities ``p`` (not the realised draws), weighted as the
    systematics stage's headline statistic is documented (systematics/matching.py: the wall
    galaxies reweighted to the void galaxies' stellar-mass histogram):

        E[rd] = mean_void(p) - sum_b n_void,b mean_wall,b(p) / sum_b n_void,b

    over the bins [e_i, e_i+1) (the last closed) that hold void (flag 1) and wall (flag 0)
    galaxies; a mass outside the edges is in no bin. Given the flags and masses the estimator is
    linear in the quenched draws, so this is its exact expectation. Written again here, not
    imported (the truth must not share code with what it checks)."""
    logm = np.asarray(logm, float)
    p = np.asarray(p, float)
    flag = np.asarray(flag)
    e = np.asarray(edges, float)
    nb = len(e) - 1
    idx = np.searchsorted(e, logm, side="right") - 1
    idx[logm == e[-1]] = nb - 1
    inbin = np.isfinite(logm) & (idx >= 0) & (idx < nb)
    v, w = inbin & (flag == VOID), inbin & (flag == WALL)
    n_v = np.bincount(idx[v], minlength=nb)
    n_w = np.bincount(idx[w], minlength=nb)
    s_v = np.bincount(idx[v], weights=p[v], minlength=nb)
    s_w = np.bincount(idx[w], weights=p[w], minlength=nb)
    kept = (n_v > 0) & (n_w > 0)
    if not kept.any():
        return {"expected_rd": None, "n_void": 0, "n_wall": 0}
    pv = s_v[kept].sum() / n_v[kept].sum()
    pw = (n_v[kept] * s_w[kept] / n_w[kept]).sum() / n_v[kept].sum()
    return {"expected_rd": float(pv - pw), "p_void": float(pv), "p_wall": float(pw),
            "n_void": int(n_v[kept].sum()), "n_wall": int(n_w[kept].sum())}


# --------------------------------------------------------------------------------------------
# the void-centric distance the mock plants its quenching on, and the profile it expects
# --------------------------------------------------------------------------------------------


def void_centric(xyz, flag, void, void_id, centre, r_eff) -> np.ndarray:
    """r / R_eff per point for one VoidFinder catalogue (MAXIMALS VOID, X, Y, Z, R_EFF): to the
    centre of its own void for a void point (flag 1, ``void`` its VOID), to the nearest centre
    for a wall or edge point (flags 0, 2; in units of that void's R_EFF), NaN outside (flag 9)
    and where no void has a positive R_EFF. The density stage's documented convention, written
    again here: the nearest centre is found by :func:`nearest_tracer`'s brute force, no KD-tree."""
    xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
    flag, void = np.asarray(flag), np.asarray(void, np.int64)
    void_id = np.asarray(void_id, np.int64)
    centre = np.asarray(centre, dtype=float).reshape(-1, 3)
    r_eff = np.asarray(r_eff, dtype=float)
    x = np.full(len(xyz), np.nan)
    usable = np.flatnonzero(np.isfinite(r_eff) & (r_eff > 0))
    if len(usable) == 0:
        return x
    row = np.full(len(xyz), -1, dtype=np.int64)
    own = np.flatnonzero(flag == VOID)
    order = np.argsort(void_id, kind="stable")
    at = np.minimum(np.searchsorted(void_id[order], void[own]), len(order) - 1)
    row[own] = np.where(void_id[order][at] == void[own], order[at], -1)
    free = np.flatnonzero((flag == WALL) | (flag == EDGE))
    cell = max(5.0, float(np.median(r_eff[usable])))  # speed only (any cell is exact)
    row[free] = usable[nearest_tracer(xyz[free], centre[usable], cell=cell)]
    has = np.flatnonzero(row >= 0)
    d = np.sqrt(((xyz[has] - centre[row[has]]) ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        x[has] = np.where(r_eff[row[has]] > 0, d / r_eff[row[has]], np.nan)
    return x


def expected_profile(x, logm, p, x_edges, mass_edges) -> list:
    """The expected quenched fraction per bin of ``x`` at fixed stellar mass, from the latent
    probabilities ``p``, weighted as the density stage's profile is documented
    (systematics/profiles.py): f_b = sum_m W_m mean_bm(p) / sum_m W_m over the mass bins m that
    bin b holds, W_m the galaxies of mass bin m among all binned ones (bins [e_i, e_i+1), the last
    closed). Given the bins' members the statistic is linear in the draws, so this is its exact
    expectation. One dict per x bin: x_lo, x_hi, n, expected (None for an empty bin)."""
    def index(v, edges):
        v, e = np.asarray(v, float), np.asarray(edges, float)
        i = np.searchsorted(e, v, side="right") - 1
        i[v == e[-1]] = len(e) - 2
        return np.where(np.isfinite(v) & (i >= 0) & (i < len(e) - 1), i, -1)

    xb, mb = index(x, x_edges), index(logm, mass_edges)
    nx, nm = len(x_edges) - 1, len(mass_edges) - 1
    ok = (xb >= 0) & (mb >= 0)
    cell = xb[ok] * nm + mb[ok]
    n = np.bincount(cell, minlength=nx * nm).reshape(nx, nm)
    s = np.bincount(cell, weights=np.asarray(p, float)[ok], minlength=nx * nm).reshape(nx, nm)
    ref = np.bincount(mb[ok], minlength=nm).astype(float)
    out = []
    for b in range(nx):
        w = np.where(n[b] > 0, ref, 0.0)
        value = float((w * s[b] / np.maximum(n[b], 1)).sum() / w.sum()) if w.sum() else None
        out.append({"x_lo": float(x_edges[b]), "x_hi": float(x_edges[b + 1]),
                    "n": int(n[b].sum()), "expected": value})
    return out
