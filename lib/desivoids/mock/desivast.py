"""DESIVAST tables of the mock: VoidFinder (MAXIMALS, HOLES) and V2 (VOIDS, ZONEVOID, GALZONE,
TRIANGLE, GALVIZ) built from the planted voids and the tracer galaxies, and their FITS files.

V2 is one tessellation pruned three ways: zones are Voronoi cells of the tracers around zone
cores (tracers nearest to the largest planted voids, plus random tracers); the densest zones
hold no void (VOID0 = -1); the others are leaf voids, some merged into parent voids (VOID1).
ZOBOV lists every void (as many as zones), REVOLVER and VIDE nested subsets of it; ZONEVOID and
GALZONE are identical in the three files.
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


def v2_tables(rng, voids: sky.Voids, tracer_xyz, tracer_tid, grid, n_zones, n_revolver, n_vide):
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
    from_void = np.zeros(n_zones, dtype=bool)
    from_void[:min(k_void, len(cores))] = True
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

    # zones without a void: the densest cores (never one placed in a planted void)
    dens = np.array([len(h) for h in ttree.query_ball_point(tracer_xyz[cores], 8.0)], float)
    dens[from_void] = -np.inf
    n_wall = max(1, int(round(0.12 * n_zones)))
    wall_zones = np.argsort(-dens, kind="stable")[:n_wall]
    is_void_zone = np.ones(n_zones, dtype=bool)
    is_void_zone[wall_zones] = False
    leaf_zones = np.flatnonzero(is_void_zone)
    # parent voids: merge neighbouring leaf zones, n_parent = n_zones - n_leaf (ZOBOV = zones)
    n_parent = n_zones - len(leaf_zones)
    parent_of_zone = np.full(n_zones, -1, dtype=np.int64)
    ctree = cKDTree(tracer_xyz[cores[leaf_zones]])
    free = np.ones(len(leaf_zones), dtype=bool)
    parents = []
    for seed_i in rng.permutation(len(leaf_zones)):
        if len(parents) >= n_parent:
            break
        if not free[seed_i]:
            continue
        k = int(rng.integers(2, 5))
        _, nb = ctree.query(tracer_xyz[cores[leaf_zones[seed_i]]], k=min(k, len(leaf_zones)))
        members = [j for j in np.atleast_1d(nb) if free[j]]
        if len(members) < 2:
            continue
        free[members] = False
        parents.append(leaf_zones[members])
    while len(parents) < n_parent:  # not enough neighbours left: single-zone parents
        j = int(rng.choice(leaf_zones))
        parents.append(np.array([j]))
    # void members and properties; leaf voids first, then parents; ids sorted by radius
    zorder = np.argsort(zone, kind="stable")
    bounds = np.searchsorted(zone[zorder], np.arange(n_zones + 1))
    zone_members = [zorder[bounds[zz]:bounds[zz + 1]] for zz in range(n_zones)]
    groups = [np.array([zz]) for zz in leaf_zones] + parents
    props = [_void_props(tracer_xyz, zone_members, g, edge5) for g in groups]
    radius = np.array([p["RADIUS"] for p in props])
    order = np.argsort(-radius, kind="stable")
    new_id = np.empty(len(groups), dtype=np.int64)
    new_id[order] = np.arange(len(groups))
    void0 = np.full(n_zones, -1, dtype=np.int64)
    void1 = np.full(n_zones, -1, dtype=np.int64)
    for gi, zz in enumerate(leaf_zones):
        void0[zz] = new_id[gi]
        void1[zz] = new_id[gi]
    for pj, g in enumerate(parents):
        gid = new_id[len(leaf_zones) + pj]
        void1[g] = gid
    voids_all = {k: np.array([props[i][k] for i in order]) for k in props[0]}
    voids_all["VOID"] = np.arange(len(groups), dtype=np.int64)
    # nested prunings by a significance score: ZOBOV all, REVOLVER subset, VIDE subset of that
    score = voids_all["RADIUS"] * np.exp(rng.normal(0, 0.25, len(groups)))
    rank = np.argsort(-score, kind="stable")
    revolver = np.sort(rank[:n_revolver])
    vide = np.sort(rank[:n_vide])
    galzone = {"GAL": np.arange(n_t, dtype=np.int64), "TARGET": tracer_tid.astype(np.int64),
               "X": tracer_xyz[:, 0], "Y": tracer_xyz[:, 1], "Z": tracer_xyz[:, 2],
               "ZONE": zone, "DEPTH": depth, "EDGE": gal_edge, "OUT": out}
    zonevoid = {"ZONE": np.arange(n_zones, dtype=np.int64), "VOID0": void0, "VOID1": void1}
    zsafe = np.maximum(zone, 0)
    galviz = {"GID": np.arange(n_t, dtype=np.int64),
              "G2V": np.where(zone >= 0, void0[zsafe], -1),
              "G2V2": np.where(zone >= 0, void1[zsafe], -1)}
    tables = {}
    for alg, sel in (("ZOBOV", np.arange(len(groups))), ("REVOLVER", revolver), ("VIDE", vide)):
        vt = {k: v[sel] for k, v in voids_all.items()}
        tables[alg] = {"VOIDS": vt, "ZONEVOID": zonevoid, "GALZONE": galzone}
        if alg != "ZOBOV":
            tables[alg]["TRIANGLE"] = _triangles(vt)
            tables[alg]["GALVIZ"] = galviz
    return tables


def _void_props(xyz, zone_members, zones, edge5):
    idx = np.concatenate([zone_members[z] for z in zones])
    p = xyz[idx]
    c = p.mean(axis=0) if len(p) else np.zeros(3)
    vol = 0.0
    for z in zones:
        q = xyz[zone_members[z]]
        if len(q):
            rms = np.sqrt(np.mean(np.sum((q - q.mean(axis=0)) ** 2, axis=1)))
            vol += 4.0 / 3.0 * np.pi * (np.sqrt(5.0 / 3.0) * max(rms, 1.0)) ** 3
    radius = np.cbrt(3 * vol / (4 * np.pi))
    if len(p) >= 4:
        w, v = np.linalg.eigh(np.cov((p - c).T))
        w = np.clip(w, 1e-6, None)[::-1]
        v = v[:, ::-1]
    else:
        w, v = np.full(3, radius ** 2 / 5), np.eye(3)
    axes = (v * np.sqrt(5 * w)[None, :]).T  # rows: major, middle, minor semi-axis vectors
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
