"""DESIVAST tables of the mock: VoidFinder (MAXIMALS, HOLES) and V2 (VOIDS, ZONEVOID, GALZONE,
TRIANGLE, GALVIZ) built from the planted voids and the tracer galaxies, and their FITS files.

V2 is one tessellation pruned three ways, by a reduced version of VAST's ZOBOV and sortVoids
(vast/vsquared/classes.py Voids, zobov.py sortVoids): zones are Voronoi cells of the tracers
around zone cores (tracers nearest to the largest planted voids, plus random tracers); each
tracer has a cell volume, zones are linked across their borders, and the watershed of the links
gives ZOBOV's void hierarchy. REVOLVER keeps every zone above a minimum radius, ZOBOV every
zone's whole hierarchy (one void per zone), VIDE a zone and the zones linked to it under 0.2 of
the mean density, then cuts on radius and central density. GALZONE is identical in the three
files; each file has its own VOIDS and its own ZONEVOID (VOID0, VOID1: rows of its own VOIDS).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from .. import cosmology, formats
from . import sky, truth
from .fitsio_stream import FitsStreamWriter


def maximals_ra(x, y):
    """VAST's MAXIMALS RA: atan(y/x) in degrees, +180 where x < 0 (so it lies in (-90, 270])."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ra = np.degrees(np.arctan(y / x))
    return np.where(x < 0, ra + 180.0, ra)


def _fibonacci_sphere(n=64):
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5 ** 0.5) * i
    return np.column_stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)])


def void_edge(voids: sky.Voids, grid) -> np.ndarray:
    """MAXIMALS.EDGE: 1 if a hole reaches outside the footprint, 2 if within 10 Mpc/h, else 0."""
    dirs = _fibonacci_sphere(48)
    edge = np.zeros(voids.n, dtype=np.int64)
    for buf, val in ((0.0, 1), (truth.EDGE_BUFFER, 2)):
        pts = (voids.hole_xyz[:, None, :] + (voids.hole_r[:, None, None] + buf) * dirs[None])
        out = truth.outside(pts.reshape(-1, 3), grid, sky.DLIML, sky.DLIMU).reshape(len(voids.hole_r), -1)
        hole_out = out.any(axis=1)
        void_out = np.zeros(voids.n, dtype=bool)
        np.logical_or.at(void_out, voids.hole_void, hole_out)
        edge[(edge == 0) & void_out] = val
    return edge


def union_volume(rng, voids: sky.Voids, n_mc: int = 800):
    """Monte-Carlo volume of each void's union of holes -> (R_EFF, R_EFF_UNCERT)."""
    r_eff = np.empty(voids.n)
    r_unc = np.empty(voids.n)
    order = np.argsort(voids.hole_void, kind="stable")
    starts = np.searchsorted(voids.hole_void[order], np.arange(voids.n))
    ends = np.searchsorted(voids.hole_void[order], np.arange(voids.n), side="right")
    for v in range(voids.n):
        h = order[starts[v]:ends[v]]
        c, hx, hr = voids.centres[v], voids.hole_xyz[h], voids.hole_r[h]
        rb = float(np.max(np.linalg.norm(hx - c, axis=1) + hr))
        d = rng.normal(size=(n_mc, 3))
        d /= np.linalg.norm(d, axis=1)[:, None]
        p = c + d * (rb * np.cbrt(rng.random(n_mc)))[:, None]
        inside = (np.linalg.norm(p[:, None, :] - hx[None], axis=2) < hr[None]).any(axis=1)
        f = inside.mean()
        vol = f * 4.0 / 3.0 * np.pi * rb ** 3
        r_eff[v] = np.cbrt(3 * vol / (4 * np.pi))
        sig_v = 4.0 / 3.0 * np.pi * rb ** 3 * np.sqrt(max(f * (1 - f), 1e-12) / n_mc)
        r_unc[v] = r_eff[v] / 3.0 * sig_v / max(vol, 1e-9)
    return r_eff, r_unc


#: how far (Mpc/h) a grown hole's surface may miss its touching tracer: VAST's holes are bounded
#: by their tracers to about this, so its strict |x - c| < RADIUS decides them by rounding
CONTACT = 1e-12


def grow_holes(rng, voids: sky.Voids, tracer_xyz) -> tuple[sky.Voids, np.ndarray]:
    """(voids with grown holes, field): as VoidFinder's, each hole grows until it touches a
    wall tracer. The tracers inside a planted hole are the field galaxies (VoidFinder removes
    isolated tracers before growing holes, so field galaxies may lie inside holes); each hole's
    radius becomes the distance from its centre to the nearest other (wall) tracer, to within
    CONTACT either way, so that tracer lies on the surface. Each void's holes are then ordered
    largest first, and its maximal sphere is the largest."""
    tracer_xyz = np.asarray(tracer_xyz, float).reshape(-1, 3)
    field = truth.first_containing_hole(tracer_xyz, voids.hole_xyz, voids.hole_r) >= 0
    wall = tracer_xyz[~field]
    if len(wall) == 0 or voids.n == 0:
        return voids, field
    d, _ = cKDTree(wall).query(voids.hole_xyz, k=1)
    hole_r = d + rng.uniform(-CONTACT, CONTACT, len(d))
    order = np.lexsort((-hole_r, voids.hole_void))  # per void, largest first (VoidFinder's order)
    hole_xyz, hole_r, hole_void = voids.hole_xyz[order], hole_r[order], voids.hole_void[order]
    _, first = np.unique(hole_void, return_index=True)
    return sky.Voids(hole_xyz[first], hole_r[first], hole_xyz, hole_r, hole_void), field


def voidfinder_tables(rng, voids: sky.Voids, grid, tracer_xyz, area_deg2):
    """MAXIMALS, HOLES and the primary header's counts, the holes grown to touch the tracers
    (:func:`grow_holes`)."""
    voids, field = grow_holes(rng, voids, tracer_xyz)
    c = voids.centres
    x, y, z = c[:, 0], c[:, 1], c[:, 2]
    r = np.linalg.norm(c, axis=1)
    r_eff, r_unc = union_volume(rng, voids)
    maximals = {
        "X": x, "Y": y, "Z": z, "RADIUS": voids.radius.astype(float),
        "VOID": np.arange(voids.n, dtype=np.int64), "EDGE": void_edge(voids, grid),
        "R": r, "RA": maximals_ra(x, y), "DEC": np.degrees(np.arcsin(z / r)),
        "R_EFF": r_eff, "R_EFF_UNCERT": r_unc,
    }
    holes = {"X": voids.hole_xyz[:, 0], "Y": voids.hole_xyz[:, 1], "Z": voids.hole_xyz[:, 2],
             "RADIUS": voids.hole_r, "VOID": voids.hole_void}
    volume = area_deg2 / (4 * np.pi * (180 / np.pi) ** 2) * 4 / 3 * np.pi * (sky.DLIMU ** 3 - sky.DLIML ** 3)
    n = len(tracer_xyz)
    density = n / volume
    header = {"VOLUME": float(volume), "GALAXY": int(n), "WALLNUM": int(n - field.sum()),
              "FIELDNUM": int(field.sum()), "DENSITY": float(density),
              "AVSEP": float(density ** (-1 / 3)), "VOID": int(voids.n)}
    return maximals, holes, header


# ------------------------------------------------------------------------------------------
# V2
# ------------------------------------------------------------------------------------------


#: VAST's sortVoids cuts (DESIVAST's settings): zones are linked (VIDE) while the density of
#: their link stays under this fraction of the mean, and a VIDE void is kept only when the density
#: within a quarter of its radius of its centre is under ``CENTRAL_DENSITY_CUT`` of the mean
ZONE_LINKING_CUT = 0.2
CENTRAL_DENSITY_CUT = 0.2
#: neighbours of a tracer: its cell volume is estimated from the distance to the K-th, and
#: two tracers among each other's K nearest are adjacent (a zone link runs between them)
K_NEIGHBOURS = 6


def cell_volumes(xyz: np.ndarray, survey_volume: float, k: int = K_NEIGHBOURS):
    """A Voronoi-like volume per tracer (k-nearest-neighbour estimate, scaled so that the volumes
    fill the survey as Voronoi cells do) and the adjacent pairs (i < j) of the k-NN graph."""
    k = min(k, len(xyz) - 1)
    d, nb = cKDTree(xyz).query(xyz, k=k + 1)
    vol = 4.0 / 3.0 * np.pi * d[:, -1] ** 3 / k
    vol *= survey_volume / vol.sum()
    i = np.repeat(np.arange(len(xyz)), k)
    j = nb[:, 1:].ravel()
    pairs = np.unique(np.column_stack([np.minimum(i, j), np.maximum(i, j)]), axis=0)
    return vol, pairs


def zone_links(zone: np.ndarray, vol: np.ndarray, pairs: np.ndarray, n_zones: int):
    """ZOBOV's zone links: for two zones that touch, the largest over their bordering pairs of the
    smaller cell volume of the pair (the least dense point of the ridge between them).
    Returns (zone a, zone b, link volume) with a < b."""
    za, zb = zone[pairs[:, 0]], zone[pairs[:, 1]]
    ok = (za >= 0) & (zb >= 0) & (za != zb)
    a, b = np.minimum(za, zb)[ok], np.maximum(za, zb)[ok]
    lv = np.minimum(vol[pairs[ok, 0]], vol[pairs[ok, 1]])
    key = a * n_zones + b
    order = np.lexsort((-lv, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    sel = order[first]
    return a[sel], b[sel], lv[sel]


def watershed(zvol: np.ndarray, links) -> list[tuple[list[np.ndarray], list[float]]]:
    """ZOBOV's void hierarchy (VAST's classes.Voids), one record per merge.

    Links are taken by decreasing link volume; when two groups of zones meet, the group whose
    deepest core (largest core cell volume) is shallower becomes a void record, then flows into
    the other. A record lists its zones by the volume at which each joined (its core first,
    descending) with those volumes, then the volume at which it overflowed; the last record holds
    every zone (overflow 0). One record per zone when the zones are connected."""
    n = len(zvol)
    label = np.arange(n)
    members = [[z] for z in range(n)]
    deepest = zvol.astype(float).copy()   # per group label
    joined = zvol.astype(float).copy()    # per zone: volume at which it joined its group
    records = []

    def record(zones, overflow):
        zones = np.asarray(zones, dtype=np.int64)
        levels = np.sort(np.unique(joined[zones]))[::-1]
        records.append(([zones[joined[zones] == v] for v in levels], [*levels.tolist(), overflow]))

    a, b, lv = links
    for k in np.argsort(-lv, kind="stable"):
        ga, gb = label[a[k]], label[b[k]]
        if ga == gb:
            continue
        shallow, deep = (ga, gb) if deepest[ga] < deepest[gb] else (gb, ga)
        if deepest[shallow] == deepest[deep]:
            continue  # equal cores: neither flows into the other (as in VAST)
        zones = members[shallow]
        record(zones, float(lv[k]))
        joined[zones] = lv[k]
        label[zones] = deep
        members[deep].extend(zones)
        members[shallow] = []
    record(np.arange(n), 0.0)
    return records


def prune(method: str, records, zone_vol: np.ndarray, minrad: float, minvol: float,
          dense_centre) -> list[np.ndarray]:
    """The zones of each kept void, in VAST's sortVoids order, for one pruning method.

    REVOLVER: every zone is a candidate; ZOBOV: every record's whole hierarchy; VIDE: a record's
    core and the zones linked to it while the link volume stays >= ``minvol`` (density under
    ZONE_LINKING_CUT of the mean). REVOLVER and VIDE drop voids whose effective radius is not
    above ``minrad``; VIDE also those where ``dense_centre(zones, volume, radius)`` (the
    central-density cut). ZOBOV keeps every void, as DESIVAST's files do (one per zone)."""
    if method == "REVOLVER":
        cand = [np.array([z]) for z in range(len(zone_vol))]
    elif method == "ZOBOV":
        return [np.concatenate(levels) for levels, _ in records]
    elif method == "VIDE":
        cand = []
        for levels, vols in records:
            keep = [levels[0]]
            for j in range(1, len(levels)):
                if vols[j] < minvol:
                    break
                keep.append(levels[j])
            cand.append(np.concatenate(keep))
    else:
        raise ValueError(method)
    out = []
    for zones in cand:
        v = float(zone_vol[zones].sum())
        r = np.cbrt(3 * v / (4 * np.pi))
        if r <= minrad:
            continue
        if method == "VIDE" and dense_centre(zones, v, r):
            continue
        out.append(zones)
    return out


def zonevoid_of(voids_zones: list[np.ndarray], n_zones: int):
    """VAST's ZONEVOID: VOID0 the smallest (fewest zones) kept void holding the zone, VOID1 the
    largest, the first in void order among equals; -1 for a zone in no kept void."""
    void0 = np.full(n_zones, -1, dtype=np.int64)
    void1 = np.full(n_zones, -1, dtype=np.int64)
    if not voids_zones:
        return void0, void1
    size = np.array([len(z) for z in voids_zones])
    vid = np.repeat(np.arange(len(voids_zones)), size)
    zone = np.concatenate(voids_zones)
    for target, key in ((void0, size[vid]), (void1, -size[vid])):
        order = np.lexsort((vid, key, zone))
        first = np.ones(len(order), dtype=bool)
        first[1:] = zone[order][1:] != zone[order][:-1]
        target[zone[order][first]] = vid[order][first]
    return void0, void1


def v2_tables(rng, voids: sky.Voids, tracer_xyz, tracer_tid, grid, n_zones, n_revolver,
              survey_volume):
    """The three V2 files of one cap: one tessellation (GALZONE), pruned three ways."""
    n_t = len(tracer_xyz)
    ttree = cKDTree(tracer_xyz)
    # zone cores: tracers nearest to the largest planted voids, then random distinct tracers
    k_void = min(n_zones, int(0.75 * n_zones), voids.n)
    _, core_from_voids = ttree.query(voids.centres[:k_void], k=1)
    cores = list(dict.fromkeys(np.asarray(core_from_voids, dtype=np.int64).tolist()))
    pool = rng.permutation(n_t)
    taken = set(cores)
    for t in pool:
        if len(cores) >= n_zones:
            break
        if t not in taken:
            cores.append(int(t))
            taken.add(int(t))
    cores = np.asarray(cores[:n_zones], dtype=np.int64)
    _, zone = cKDTree(tracer_xyz[cores]).query(tracer_xyz, k=1)
    zone = zone.astype(np.int64)
    zone[cores] = np.arange(n_zones)
    # boundary cells and outside-the-mask flags
    edge5 = truth.near_edge(tracer_xyz, grid, sky.DLIML, sky.DLIMU, buffer=5.0)
    gal_edge = edge5.astype(np.int64)
    zone = np.where(edge5 & (rng.random(n_t) < 0.5), -1, zone)
    zone[cores] = np.arange(n_zones)
    out = (rng.random(n_t) < 0.001).astype(np.int64)
    dcore = np.linalg.norm(tracer_xyz - tracer_xyz[cores[np.maximum(zone, 0)]], axis=1)
    depth = np.where(zone >= 0, (dcore / 4.0).astype(np.int64), 0)

    # ZOBOV's density field on the zones: cell volumes, zone cores, links; the hierarchy
    vol, pairs = cell_volumes(tracer_xyz, survey_volume)
    inz = zone >= 0
    zone_vol = np.bincount(zone[inz], weights=vol[inz], minlength=n_zones)
    zcore = np.zeros(n_zones)
    np.maximum.at(zcore, zone[inz], vol[inz])
    records = watershed(zcore, zone_links(zone, vol, pairs, n_zones))
    mean_vol = float(vol.mean())
    minvol = mean_vol / ZONE_LINKING_CUT
    # the minimum radius: VAST reads it from its configuration; the mock takes the value that
    # keeps DESIVAST's share of zones as REVOLVER voids (scales.revolver)
    zrad = np.sort(np.cbrt(3 * zone_vol / (4 * np.pi)))[::-1]
    minrad = float(0.5 * (zrad[n_revolver - 1] + zrad[n_revolver])) if n_revolver < n_zones \
        else 0.0
    zorder = np.argsort(zone, kind="stable")
    bounds = np.searchsorted(zone[zorder], np.arange(n_zones + 1))
    zone_members = [zorder[bounds[zz]:bounds[zz + 1]] for zz in range(n_zones)]

    def members(zones):
        return np.concatenate([zone_members[z] for z in zones])

    def centre(zones):
        idx = members(zones)
        return (vol[idx, None] * tracer_xyz[idx]).sum(axis=0) / vol[idx].sum()

    def dense_centre(zones, v, r):
        """VAST's central-density test: 64 N(< r/4) / V (the tracers within a quarter of the
        radius, per volume) not under CENTRAL_DENSITY_CUT of the mean density."""
        n_in = len(ttree.query_ball_point(centre(zones), r / 4.0))
        return not 64.0 * n_in / v < CENTRAL_DENSITY_CUT / mean_vol

    galzone = {"GAL": np.arange(n_t, dtype=np.int64), "TARGET": tracer_tid.astype(np.int64),
               "X": tracer_xyz[:, 0], "Y": tracer_xyz[:, 1], "Z": tracer_xyz[:, 2],
               "ZONE": zone, "DEPTH": depth, "EDGE": gal_edge, "OUT": out}
    zsafe = np.maximum(zone, 0)
    tables = {}
    for alg in ("REVOLVER", "VIDE", "ZOBOV"):
        kept = prune(alg, records, zone_vol, minrad, minvol, dense_centre)
        props = [_void_props(tracer_xyz, vol, members(z), edge5) for z in kept]
        vt = {k: np.array([p[k] for p in props], dtype=float) for k in formats.column_names("v2", "VOIDS")
              if k != "VOID"}
        vt["VOID"] = np.arange(len(kept), dtype=np.int64)
        void0, void1 = zonevoid_of(kept, n_zones)
        zonevoid = {"ZONE": np.arange(n_zones, dtype=np.int64), "VOID0": void0, "VOID1": void1}
        tables[alg] = {"VOIDS": vt, "ZONEVOID": zonevoid, "GALZONE": galzone}
        if alg != "ZOBOV":
            tables[alg]["TRIANGLE"] = _triangles(vt)
            tables[alg]["GALVIZ"] = {"GID": np.arange(n_t, dtype=np.int64),
                                     "G2V": np.where(zone >= 0, void0[zsafe], -1),
                                     "G2V2": np.where(zone >= 0, void1[zsafe], -1)}
    return tables


def _void_props(xyz, vol, idx, edge5):
    """VOIDS columns of one void from its tracers ``idx``: volume-weighted centre, effective
    radius of the summed cell volumes, ellipsoid axes, surface areas."""
    p, w = xyz[idx], vol[idx]
    c = (w[:, None] * p).sum(axis=0) / w.sum()
    radius = float(np.cbrt(3 * w.sum() / (4 * np.pi)))
    if len(p) >= 4:
        ev, v = np.linalg.eigh(np.cov((p - c).T))
        ev = np.clip(ev, 1e-6, None)[::-1]
        v = v[:, ::-1]
    else:
        ev, v = np.full(3, radius ** 2 / 5), np.eye(3)
    axes = (v * np.sqrt(5 * ev)[None, :]).T  # rows: major, middle, minor semi-axis vectors
    ra, dec, r = cosmology.xyz_to_radec_r(*c)
    tot = 4 * np.pi * radius ** 2 * 1.25
    frac_edge = float(edge5[idx].mean()) if len(idx) else 0.0
    return {"X": c[0], "Y": c[1], "Z": c[2],
            "REDSHIFT": float(cosmology.z_at_distance(r, sky.OMEGA_M)),
            "RA": float(ra), "DEC": float(dec), "RADIUS": radius,
            "X1": axes[0, 0], "Y1": axes[0, 1], "Z1": axes[0, 2],
            "X2": axes[1, 0], "Y2": axes[1, 1], "Z2": axes[1, 2],
            "X3": axes[2, 0], "Y3": axes[2, 1], "Z3": axes[2, 2],
            "TOT_AREA": tot, "EDGE_AREA": tot * min(1.0, 1.5 * frac_edge)}


def _triangles(vt):
    """A few visualisation triangles per void (an octahedron spanned by the ellipsoid axes)."""
    n = len(vt["VOID"])
    c = np.column_stack([vt["X"], vt["Y"], vt["Z"]])
    a = [np.column_stack([vt[f"X{i}"], vt[f"Y{i}"], vt[f"Z{i}"]]) for i in (1, 2, 3)]
    faces = [(s1, s2, s3) for s1 in (1, -1) for s2 in (1, -1) for s3 in (1, -1)]
    rows = {k: [] for k in formats.column_names("v2", "TRIANGLE")}
    for s1, s2, s3 in faces:
        p1, p2, p3 = c + s1 * a[0], c + s2 * a[1], c + s3 * a[2]
        nrm = np.cross(p2 - p1, p3 - p1)
        nrm /= np.maximum(np.linalg.norm(nrm, axis=1), 1e-12)[:, None]
        rows["VOID"].append(vt["VOID"])
        for name, arr in (("N", nrm), ("P1", p1), ("P2", p2), ("P3", p3)):
            for j, ax in enumerate("XYZ"):
                rows[f"{name}_{ax}"].append(arr[:, j])
    out = {k: np.concatenate(v) if n else np.empty(0) for k, v in rows.items()}
    order = np.argsort(out["VOID"], kind="stable")
    return {k: v[order] for k, v in out.items()}


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def _primary_cards(extra=None):
    cards = [("OMEGAM", sky.OMEGA_M), ("HP", 1), ("ZLIML", sky.ZLIML), ("ZLIMU", sky.ZLIMU),
             ("DLIML", sky.DLIML), ("DLIMU", sky.DLIMU), ("MAGLIM", sky.MAGLIM)]
    for k, v in (extra or {}).items():
        cards.append((k, v))
    return cards


def write_voidfinder(path: Path, maximals, holes, header) -> None:
    with FitsStreamWriter(path) as w:
        w.primary(_primary_cards(header))
        w.write_table("MAXIMALS", formats.columns("voidfinder", "MAXIMALS"), maximals,
                      cards=[("VOID", int(len(maximals["VOID"])))])
        w.write_table("HOLES", formats.columns("voidfinder", "HOLES"), holes,
                      cards=[("VOID", int(len(maximals["VOID"]))), ("HOLE", int(len(holes["VOID"])))])


def write_v2(path: Path, algorithm: str, tables) -> None:
    kind = "v2_zobov" if algorithm == "ZOBOV" else "v2"
    with FitsStreamWriter(path) as w:
        w.primary(_primary_cards())
        for ext in formats.expected_hdus(kind)[1:]:
            w.write_table(ext, formats.columns(kind, ext), tables[ext])
