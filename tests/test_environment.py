"""Void membership (desivoids.environment) on tiny skies built by hand, one rule per test.

Every position is chosen so that the expected flag follows from science.md by hand: a galaxy on
a hole's surface, two overlapping holes of different voids, a void across RA 0/360, galaxies
9.9 and 10.1 Mpc/h from the footprint's edge, zones joined on their value, the catalogue's
redshift range and cap, and the mask's integer truncation and smoothing.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from desivoids import cosmology, environment as env, formats
from desivoids.mock import truth

OM, ZLIMU = 0.315, 0.24
DLIML, DLIMU = 0.0, float(cosmology.comoving_distance(ZLIMU, OM))
LIMITS = {(a, c): env.Limits(DLIML, DLIMU, ZLIMU, OM)
          for a in formats.ALGORITHMS for c in formats.CAPS}
V2 = formats.V2_ALGORITHMS
TAN20 = np.tan(np.radians(20.0))


def xyz(ra, dec, r):
    return np.array(cosmology.radec_to_xyz(ra, dec, r), dtype=float)


def lattice(ra_lo, ra_hi, dec_lo, dec_hi, r=200.0, step=0.25):
    """Tracers on a grid finer than the mask's 0.5-degree cells: every cell of the box is in."""
    ra, dec = np.meshgrid(np.arange(ra_lo + step / 2, ra_hi, step),
                          np.arange(dec_lo + step / 2, dec_hi, step), indexing="ij")
    return np.column_stack(cosmology.radec_to_xyz(ra.ravel() % 360, dec.ravel(), r))


# --------------------------------------------------------------------------------------------
# the hand-built sky
# --------------------------------------------------------------------------------------------

HOLE_A = np.array([-380.0, 130.0, 70.0])  # NGC, RA 161.1, Dec 9.9, r 407.6
B = np.array([-390.0, 140.0, 75.0])       # NGC, where the special V2 tracers sit
RHO = 380.0
U160 = np.array([np.cos(np.radians(160)), np.sin(np.radians(160)), 0.0])
P_EDGE = RHO * U160 + np.array([0, 0, RHO * TAN20 - 9.9])   # +10 along z crosses Dec 20
P_WALL = RHO * U160 + np.array([0, 0, RHO * TAN20 - 10.1])  # every shifted point stays in
T3 = xyz(160.2, 25.2, 400.0)      # a lone tracer outside the lattice: one marked cell
G_OUT = xyz(160.2, 25.7, 400.0)   # next cell, empty: outside the mask; nearest tracer T3
T4 = RHO * np.array([np.cos(np.radians(152)), np.sin(np.radians(152)), 0]) \
    + np.array([0, 0, RHO * TAN20 - 5.0])  # void zone within 10 Mpc/h of the Dec-20 edge
NEAR_LIMIT = xyz(160.0, 10.0, DLIMU - 3.0)  # a hole reaching beyond DLIMU
C_304 = xyz(306.0, 10.0, 400.0)  # an SGC hole spilling over the cap boundary at RA 304

# special V2 tracers: (position, zone); zone 5 -> void 50, 2 -> void 20, 7 -> no void,
# 99 -> not in ZONEVOID
TRACERS_NGC = [(B, 5), (B + [2.0, 0, 0], 2), (B + [0, 0, 4.0], 7), (T3, 5), (T4, 5),
               (P_WALL + [0, 0, -3.0], 7), (B + [0, 30.0, 0], 99)]
# ZONEVOID rows in an order where the row index is not the zone: a join on the row index
# would give zone 2 the VOID0 of zone 7 (-1)
ZONEVOID_NGC = [(5, 50), (2, 20), (7, -1)]


def holes_ngc(first_void=7, second_void=3):
    """(void, hole_index, centre, radius); the table rows are not in hole_index order."""
    return [(second_void, 1, HOLE_A + [5.0, 0, 0], 10.0),
            (first_void, 0, HOLE_A, 10.0),
            (9, 2, G_OUT, 5.0),
            (4, 3, NEAR_LIMIT, 8.0)]


HOLES_SGC = [(11, 0, np.array([400.0, 0.0, 0.0]), 15.0), (12, 1, C_304, 20.0)]

GALAXIES = {  # name: (position, redshift or None for the one of its distance)
    "surface": (HOLE_A + [-10.0, 0, 0], None),
    "just_inside": (HOLE_A + [-10.0 + 1e-6, 0, 0], None),
    "inside_2e-3": (HOLE_A + [-10.0 + 2e-3, 0, 0], None),
    "overlap": (HOLE_A + [3.0, 0, 0], None),
    "ra_359": (np.array([400.0, -5.0, 3.0]), None),
    "ra_001": (np.array([400.0, 5.0, 3.0]), None),
    "ra_0_outside_hole": (np.array([400.0, 0.0, 15.0]), None),
    "edge_9.9": (P_EDGE, None),
    "wall_10.1": (P_WALL, None),
    "self_tracer": (B + [2.0, 0, 0], None),
    "near_zone5": (B + [0.5, 0, 0], None),
    "zone_no_void": (B + [0, 0, 4.5], None),
    "zone_missing": (B + [0, 30.5, 0], None),
    "hole_outside_mask": (G_OUT, None),
    "void_near_edge": (T4 + [0.3, 0, 0], None),
    "in_hole_in_range": (xyz(160.0, 10.0, DLIMU - 6.0), None),
    "beyond_zlimu": (xyz(160.0, 10.0, DLIMU + 2.0), None),
    "z_zero_in_hole": (HOLE_A + [1.0, 0, 0], 0.0),
    "z_negative": (np.full(3, np.nan), -0.01),
    "other_cap_in_sgc_hole": (xyz(303.5, 10.0, 400.0), None),
    "sgc_in_hole_304": (xyz(305.0, 10.0, 400.0), None),
}
NAMES = list(GALAXIES)
ROW = {n: i for i, n in enumerate(NAMES)}


def galaxy_table():
    pos = np.array([p for p, _ in GALAXIES.values()])
    ra, dec, r = cosmology.xyz_to_radec_r(pos[:, 0], pos[:, 1], pos[:, 2])
    z = np.array([cosmology.z_at_distance(rr, OM) if zz is None else zz
                  for rr, (_, zz) in zip(r, GALAXIES.values())])
    ra = np.where(np.isnan(ra), 10.0, ra)
    dec = np.where(np.isnan(dec), 0.0, dec)
    return {"targetid": np.arange(len(pos)), "ra": ra, "dec": dec, "z": z,
            "comoving_x": pos[:, 0], "comoving_y": pos[:, 1], "comoving_z": pos[:, 2]}


def tables(holes=None, galzone_override=None):
    """voids, holes, zonevoid, galzone as mappings of numpy arrays (like the convert tables)."""
    holes = holes_ngc() if holes is None else holes
    h = [("NGC",) + row for row in holes] + [("SGC",) + row for row in HOLES_SGC]
    holes_t = {"cap": np.array([r[0] for r in h]), "void": np.array([r[1] for r in h]),
               "hole_index": np.array([r[2] for r in h]),
               **{a: np.array([r[3][k] for r in h]) for k, a in enumerate("xyz")},
               "radius": np.array([r[4] for r in h])}
    tr = {"NGC": (np.vstack([lattice(150, 170, 0, 20)] + [t[0][None] for t in TRACERS_NGC]),
                  np.r_[np.full(len(lattice(150, 170, 0, 20)), -1), [t[1] for t in TRACERS_NGC]]),
          "SGC": (lattice(-10, 10, -10, 10), np.full(len(lattice(-10, 10, -10, 10)), -1))}
    gz = {k: [] for k in ("algorithm", "cap", "x", "y", "z", "zone", "source_row")}
    for alg in V2:
        for cap, (pos, zone) in tr.items():
            if galzone_override and (alg, cap) in galzone_override:
                pos, zone = galzone_override[(alg, cap)]
            n = len(zone)
            gz["algorithm"] += [alg] * n
            gz["cap"] += [cap] * n
            for k, a in enumerate("xyz"):
                gz[a] += list(pos[:, k])
            gz["zone"] += list(zone)
            gz["source_row"] += list(range(n))
    zv = {"algorithm": [], "cap": [], "zone": [], "void0": []}
    for alg in V2:
        for zone, void0 in ZONEVOID_NGC:
            zv["algorithm"].append(alg), zv["cap"].append("NGC")
            zv["zone"].append(zone), zv["void0"].append(void0)
    vf_voids = [("NGC", 7, HOLE_A, 12.0, 0), ("NGC", 3, HOLE_A + [5.0, 0, 0], 11.0, 1),
                ("NGC", 9, G_OUT, 5.0, 1), ("NGC", 4, NEAR_LIMIT, 8.0, 2),
                ("SGC", 11, np.array([400.0, 0, 0]), 15.0, 0), ("SGC", 12, C_304, 20.0, 1)]
    rows = [("VoidFinder", c, v, p, reff, float(e), np.nan) for c, v, p, reff, e in vf_voids]
    v2_voids = {"REVOLVER": [(50, 0.05), (20, 0.5)], "VIDE": [(50, 0.05)],
                "ZOBOV": [(50, 0.05), (20, np.nan)]}
    for alg, vs in v2_voids.items():
        rows += [(alg, "NGC", v, B + [1.0, 0, 0], 5.0, np.nan, q) for v, q in vs]
    voids_t = {"algorithm": np.array([r[0] for r in rows]), "cap": np.array([r[1] for r in rows]),
               "void": np.array([r[2] for r in rows]),
               **{a: np.array([r[3][k] for r in rows]) for k, a in enumerate("xyz")},
               "r_eff": np.array([r[4] for r in rows]), "edge": np.array([r[5] for r in rows]),
               "edge_area_ratio": np.array([r[6] for r in rows])}
    return (voids_t, holes_t, {k: np.asarray(v) for k, v in zv.items()},
            {k: np.asarray(v) for k, v in gz.items()})


@pytest.fixture(scope="module")
def result():
    return env.assign_all(galaxy_table(), *tables(), LIMITS)


def flag(result, alg, name):
    return int(result[alg].flag[ROW[name]])


def void(result, alg, name):
    return int(result[alg].void[ROW[name]])


# --------------------------------------------------------------------------------------------
# VoidFinder
# --------------------------------------------------------------------------------------------


def test_galaxy_on_a_hole_surface_is_not_inside(result):
    """Within the surface tolerance (1e-3 Mpc/h) of a hole's surface and inside no hole by
    more: a surface galaxy, not a void galaxy; inside by 2e-3 Mpc/h: a void galaxy."""
    assert np.linalg.norm(GALAXIES["surface"][0] - HOLE_A) == 10.0  # exactly on the surface
    others = [(c, r) for _, _, c, r in holes_ngc() if not np.array_equal(c, HOLE_A)]
    assert len(others) == 3
    for name in ("surface", "just_inside", "inside_2e-3"):
        assert all(np.linalg.norm(GALAXIES[name][0] - c) > r for c, r in others)
    vf = result["VoidFinder"]
    for name in ("surface", "just_inside"):
        assert flag(result, "VoidFinder", name) == env.WALL, name
        assert void(result, "VoidFinder", name) == env.NO_VOID, name
    assert flag(result, "VoidFinder", "inside_2e-3") == env.VOID
    assert void(result, "VoidFinder", "inside_2e-3") == 7
    assert vf.surface[ROW["surface"]] == env.SURFACE  # VAST's strict rule: not inside either
    assert vf.surface[ROW["just_inside"]] == env.SURFACE_STRICT_VOID  # VAST: inside
    assert vf.surface[ROW["inside_2e-3"]] == env.NOT_SURFACE
    assert np.all(result["REVOLVER"].surface == env.NOT_SURFACE)


def test_surface_tolerance_zero_is_vasts_strict_rule():
    res = env.assign_all(galaxy_table(), *tables(), LIMITS, surface_tol=0.0)
    assert flag(res, "VoidFinder", "surface") == env.WALL
    assert flag(res, "VoidFinder", "just_inside") == env.VOID
    assert flag(res, "VoidFinder", "inside_2e-3") == env.VOID
    with pytest.raises(ValueError, match="surface_tol"):
        env.assign_all(galaxy_table(), *tables(), LIMITS, surface_tol=-1.0)


def test_first_hole_in_file_order_wins():
    both = GALAXIES["overlap"][0]
    assert all(np.linalg.norm(both - c) < r for _, _, c, r in holes_ngc()[:2])
    for first, second in ((7, 3), (3, 7)):
        res = env.assign_all(galaxy_table(), *tables(holes_ngc(first, second)), LIMITS)
        assert int(res["VoidFinder"].void[ROW["overlap"]]) == first


def test_void_straddling_ra_0(result):
    ra, _, _ = cosmology.xyz_to_radec_r(*np.array([GALAXIES["ra_359"][0],
                                                   GALAXIES["ra_001"][0]]).T)
    assert ra[0] > 359 and ra[1] < 1
    for name in ("ra_359", "ra_001"):
        assert flag(result, "VoidFinder", name) == env.VOID
        assert void(result, "VoidFinder", name) == 11
        assert result["VoidFinder"].cap[ROW[name]] == "SGC"
    assert flag(result, "VoidFinder", "ra_0_outside_hole") in (env.WALL, env.EDGE)


def test_edge_versus_wall_at_9_9_and_10_1_mpc(result):
    for alg in formats.ALGORITHMS:
        assert flag(result, alg, "edge_9.9") == env.EDGE, alg
        assert flag(result, alg, "wall_10.1") == env.WALL, alg


def test_hole_galaxy_outside_the_mask_is_void_for_voidfinder_only(result):
    fp = env.build_catalogues(*tables(), LIMITS)["NGC"].members["VoidFinder"].footprint
    assert fp.outside(G_OUT[None])[0] and not fp.outside(T3[None])[0]
    assert flag(result, "VoidFinder", "hole_outside_mask") == env.VOID
    assert void(result, "VoidFinder", "hole_outside_mask") == 9
    for alg in V2:  # nearest tracer T3 sits in a void zone, but an outside point stays 9
        assert flag(result, alg, "hole_outside_mask") == env.OUTSIDE
        assert void(result, alg, "hole_outside_mask") == env.NO_VOID


def test_void_distance_and_interior(result):
    vf = result["VoidFinder"]
    i = ROW["overlap"]
    assert vf.void_distance[i] == pytest.approx(3.0 / 12.0)
    assert vf.void_interior[i] == env.flags.INTERIOR
    j = ROW["hole_outside_mask"]
    assert vf.void_distance[j] == 0.0 and vf.void_interior[j] == env.flags.EDGE_VOID
    assert vf.interior_flag()[j] == env.EDGE and vf.interior_flag()[i] == env.VOID
    wall = ROW["wall_10.1"]
    assert np.isnan(vf.void_distance[wall]) and vf.void_interior[wall] == env.flags.UNKNOWN
    # V2: void 50 interior (0.05 <= 0.1), void 20 an edge void (0.5) for REVOLVER, missing from
    # VIDE's voids table, with a null edge area for ZOBOV
    k, s = ROW["near_zone5"], ROW["self_tracer"]
    d50 = np.linalg.norm(GALAXIES["near_zone5"][0] - (B + [1.0, 0, 0])) / 5.0
    assert result["REVOLVER"].void_distance[k] == pytest.approx(d50)
    assert result["REVOLVER"].void_interior[k] == env.flags.INTERIOR
    assert result["REVOLVER"].void_interior[s] == env.flags.EDGE_VOID
    assert result["VIDE"].void[s] == 20 and np.isnan(result["VIDE"].void_distance[s])
    assert result["VIDE"].void_interior[s] == env.flags.UNKNOWN
    assert result["ZOBOV"].void_interior[s] == env.flags.UNKNOWN
    assert result["VIDE"].interior_flag()[s] == env.EDGE
    t = result["VIDE"].to_arrow(targetid=np.arange(len(NAMES)))
    assert t.column("r_over_reff").null_count == int(np.isnan(result["VIDE"].void_distance).sum())
    assert t.column("void")[ROW["wall_10.1"]].as_py() is None
    assert t.column("interior")[s].as_py() is None
    assert t.column("interior")[k].as_py() is True


# --------------------------------------------------------------------------------------------
# V2
# --------------------------------------------------------------------------------------------


def test_a_tracer_is_its_own_nearest_neighbour(result):
    for alg in V2:
        assert void(result, alg, "self_tracer") == 20  # its own zone 2, not zone 5 two Mpc away
        assert void(result, alg, "near_zone5") == 50


def test_zone_join_on_value_and_void0_minus_one(result):
    # zone 2 sits at ZONEVOID row 1; row 2 holds zone 7 (VOID0 = -1)
    assert ZONEVOID_NGC[2] == (7, -1) and ZONEVOID_NGC[1][0] == 2
    for alg in V2:
        assert flag(result, alg, "self_tracer") == env.VOID
        assert flag(result, alg, "zone_no_void") == env.WALL
        assert flag(result, alg, "zone_missing") == env.WALL  # zone 99 has no ZONEVOID row
        assert void(result, alg, "zone_no_void") == env.NO_VOID


def test_v2_void_galaxy_near_the_edge_stays_void(result):
    for alg in V2:
        assert flag(result, alg, "void_near_edge") == env.VOID
    assert flag(result, "VoidFinder", "void_near_edge") == env.EDGE


def test_identical_galzone_is_one_tessellation_and_differing_is_not():
    cats = env.build_catalogues(*tables(), LIMITS)
    assert cats["NGC"].tessellation_groups == [V2]
    m = cats["NGC"].members
    assert m["REVOLVER"].tessellation is m["ZOBOV"].tessellation
    pos = np.vstack([lattice(150, 170, 0, 20)] + [t[0][None] for t in TRACERS_NGC])
    zone = np.r_[np.full(len(pos) - len(TRACERS_NGC), -1), [t[1] for t in TRACERS_NGC]]
    zone[-6] = 5  # VIDE's copy: the tracer of zone 2 moved to zone 5
    cats = env.build_catalogues(*tables(galzone_override={("VIDE", "NGC"): (pos, zone)}), LIMITS)
    assert cats["NGC"].tessellation_groups == [("REVOLVER", "ZOBOV"), ("VIDE",)]
    res = env.assign_chunk(galaxy_table(), cats)
    assert res["REVOLVER"].void[ROW["self_tracer"]] == 20
    assert res["VIDE"].void[ROW["self_tracer"]] == 50


def test_nearest_zone_asks_in_spatial_order_and_answers_in_the_points_order():
    """The KD-tree is asked cell by cell (cache locality), each point still gets its own
    nearest tracer's zone: the same as one query in the points' own order."""
    from scipy.spatial import cKDTree

    from desivoids.points import spatial_order

    rng = np.random.default_rng(5)
    tess = env.Tessellation(rng.uniform(0, 200, (3000, 3)), rng.integers(0, 40, 3000))
    pts = rng.uniform(-10, 210, (20_000, 3))
    _, want = cKDTree(tess.xyz).query(pts, k=1)
    asked = []

    class Recording:  # the tree, recording the points it is asked about
        def __init__(self, tree):
            self.tree = tree

        def query(self, x, *args, **kwargs):
            asked.append(np.array(x))
            return self.tree.query(x, *args, **kwargs)
    tess.tree = Recording(tess.build().tree)
    got = tess.nearest_zone(pts)
    np.testing.assert_array_equal(got, tess.zone[want])
    order = spatial_order(pts)
    np.testing.assert_array_equal(np.sort(order), np.arange(len(pts)))
    np.testing.assert_array_equal(asked[0], pts[order])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    cell = np.clip(((pts[order] - lo) * (128 / (hi - lo))).astype(np.int64), 0, 127)
    runs = 1 + np.count_nonzero(np.any(cell[1:] != cell[:-1], axis=1))
    assert runs == len(np.unique(cell, axis=0))  # every cell's points are contiguous


# --------------------------------------------------------------------------------------------
# redshift range and cap
# --------------------------------------------------------------------------------------------


def test_beyond_zlimu_and_z_not_positive_are_outside(result):
    assert galaxy_table()["z"][ROW["beyond_zlimu"]] > ZLIMU
    assert np.linalg.norm(GALAXIES["beyond_zlimu"][0] - NEAR_LIMIT) < 8.0  # inside hole 4
    assert flag(result, "VoidFinder", "in_hole_in_range") == env.VOID
    for alg in formats.ALGORITHMS:
        for name in ("beyond_zlimu", "z_zero_in_hole", "z_negative"):
            assert flag(result, alg, name) == env.OUTSIDE, (alg, name)
            assert void(result, alg, name) == env.NO_VOID


def test_other_cap_is_outside_for_that_catalogue():
    gal = galaxy_table()
    cats = env.build_catalogues(*tables(), LIMITS)
    a, b = ROW["other_cap_in_sgc_hole"], ROW["sgc_in_hole_304"]
    assert formats.cap_of_ra(gal["ra"][[a, b]]).tolist() == ["NGC", "SGC"]
    assert np.linalg.norm(GALAXIES["other_cap_in_sgc_hole"][0] - C_304) < 20.0
    sgc = env.assign_cap(gal, cats["SGC"])["VoidFinder"]
    assert sgc.flag[a] == env.OUTSIDE and sgc.flag[b] == env.VOID and sgc.void[b] == 12
    ngc_rows = formats.cap_of_ra(gal["ra"]) == "NGC"
    for alg, res in env.assign_cap(gal, cats["SGC"]).items():
        assert np.all(res.flag[ngc_rows] == env.OUTSIDE), alg
    own = env.assign_chunk(gal, cats)["VoidFinder"]
    assert own.cap[a] == "NGC" and own.cap[b] == "SGC" and own.flag[b] == env.VOID


# --------------------------------------------------------------------------------------------
# the mask
# --------------------------------------------------------------------------------------------


def test_mask_truncates_toward_zero_at_negative_dec():
    g = env.footprint_grid([10.2], [-0.3], 677.0)
    assert g.shape == (720, 360) and g.sum() == 1 and g[20, 180]  # int(-0.6) = 0, not -1
    assert env.footprint_grid([10.2], [-0.6], 677.0)[20, 179]     # int(-1.2) = -1
    fp = env.Footprint(env.footprint_grid([10.2], [0.3], 677.0), DLIML, DLIMU)
    inside_pos, below = xyz(10.2, -0.3, 300.0), xyz(10.2, -0.6, 300.0)
    assert fp.outside(np.array([inside_pos, below])).tolist() == [False, True]
    assert env.cells_per_degree(677.0) == 2 and env.cells_per_degree(DLIMU) == 2


def test_mask_smoothing_rule():
    grid = env.footprint_grid
    # (101,200): neighbours (100,200), (102,200), (101,199), (101,201)
    assert grid([50.25, 51.25, 50.75], [10.25, 10.25, 10.75], 677.0)[101, 200]  # 3 of 4
    assert not grid([50.25, 51.25], [10.25, 10.25], 677.0)[101, 200]            # 2 of 4
    # one pass over the UNSMOOTHED grid: (101,199) sees 2 tracer cells plus the just-filled
    # (101,200), and stays empty
    g = grid([50.25, 51.25, 50.75, 50.25, 51.25], [10.25, 10.25, 10.75, 9.75, 9.75], 677.0)
    assert g[101, 200] and not g[101, 199]
    # the outermost column is never filled, not even with a fourth neighbour across RA 0/360
    assert not grid([0.75, 0.25, 0.25], [10.25, 9.75, 10.75], 677.0)[0, 200]
    assert not grid([0.75, 0.25, 0.25, 359.75], [10.25, 9.75, 10.75, 10.25], 677.0)[0, 200]
    g = grid([1.25, 0.25, 0.75, 0.75], [10.25, 10.25, 9.75, 10.75], 677.0)
    assert g[1, 20 + 180]  # an inner cell with 4 neighbours in is filled


def test_radial_limits():
    fp = env.Footprint(np.ones((720, 360), dtype=bool), 100.0, 600.0)
    pts = np.array([[0.0, 0, 0], [99.0, 0, 0], [100.0, 0, 0], [600.0, 0, 0], [600.01, 0, 0]])
    assert fp.outside(pts).tolist() == [True, True, False, False, True]


# --------------------------------------------------------------------------------------------
# the interface
# --------------------------------------------------------------------------------------------


def test_input_types_chunks_and_pickling_give_the_same_answer(result):
    voids, holes, zonevoid, galzone = tables()
    gal = galaxy_table()
    as_arrow = [pa.table(t) for t in (voids, holes, zonevoid, galzone)]
    as_pandas = [pd.DataFrame(t) for t in (voids, holes, zonevoid, galzone)]
    cats = env.build_catalogues(*as_arrow, LIMITS)
    again = pickle.loads(pickle.dumps(cats))
    runs = [env.assign_all(pa.table(gal), *as_arrow, LIMITS),
            env.assign_all(pd.DataFrame(gal), *as_pandas, LIMITS),
            env.assign_all(gal, voids, holes, zonevoid, galzone, LIMITS, chunk_rows=3),
            env.assign_chunk(gal, again)]
    for res in runs:
        for alg in formats.ALGORITHMS:
            for name in ("flag", "void", "void_interior", "cap_code"):
                assert np.array_equal(getattr(res[alg], name), getattr(result[alg], name))
            assert np.array_equal(res[alg].void_distance, result[alg].void_distance,
                                  equal_nan=True)


def test_header_limits_come_from_the_schema_metadata():
    sources = {f"dr1/vac/dr1/desivast/v1.0/{formats.voidfinder_filename('NGC')}":
               {"PRIMARY": {"OMEGAM": 0.3, "DLIML": 5.0, "DLIMU": 600.0, "ZLIMU": 0.2}},
               f"dr1/vac/dr1/desivast/v1.0/{formats.v2_filename('VIDE', 'SGC')}":
               {"PRIMARY": {"OMEGAM": 0.3, "DLIML": 5.0, "DLIMU": 610.0, "ZLIMU": 0.21}}}
    t = pa.table({"cap": ["NGC"]}).replace_schema_metadata(
        {b"desivoids": json.dumps({"sources": sources}).encode()})
    lim = env.header_limits(t)
    assert lim == {("VoidFinder", "NGC"): env.Limits(5.0, 600.0, 0.2, 0.3),
                   ("VIDE", "SGC"): env.Limits(5.0, 610.0, 0.21, 0.3)}


def test_positions_are_recomputed_when_omega_m_differs(result):
    gal = galaxy_table()
    moved = dict(gal, comoving_x=gal["comoving_x"] + 1000.0)  # wrong if used
    same = env.assign_all(moved, *tables(), LIMITS, galaxy_omega_m=0.3)
    keep = [ROW[n] for n in ("overlap", "ra_359", "wall_10.1", "in_hole_in_range")]
    flags = same["VoidFinder"].flag[keep]
    assert flags.tolist() == [env.VOID, env.VOID, env.WALL, env.VOID]  # not from comoving_x


def test_surface_rule_is_the_same_in_library_and_truth():
    """Both implementations apply the tolerance rule: on the surface, inside by 1e-6 and by
    2e-3 Mpc/h, outside by 1e-6, deep inside; with the tolerance and without it."""
    centre = HOLE_A[None]
    pts = HOLE_A + np.array([[10.0, 0, 0], [0, 0, -10.0 + 1e-6], [0, 10.0 - 2e-3, 0],
                             [-10.0 - 1e-6, 0, 0], [9.0, 0, 0]])
    holes = env.HoleSpheres(centre, [10.0], [7])
    for tol, first, surface in ((1e-3, [-1, -1, 0, -1, 0], [1, 1, 0, 1, 0]),
                                (0.0, [-1, 0, 0, -1, 0], [1, 0, 0, 0, 0])):
        hits = holes.classify(pts, tol)
        ref_first, ref_surface = truth.hole_hits(pts, centre, [10.0], tol)
        assert hits.first.tolist() == ref_first.tolist() == first, tol
        assert hits.surface.astype(int).tolist() == ref_surface.astype(int).tolist() == surface
    assert holes.classify(pts, 1e-3).strict.tolist() == [False, True, True, False, True]


@pytest.mark.parametrize("key, value", [("DLIMU", None), ("ZLIMU", ""), ("OMEGAM", None),
                                        ("OMEGAM", "   "), ("DLIML", "far")])
def test_a_limit_key_without_a_value_is_an_input_error_naming_file_hdu_and_key(key, value):
    """A VAST header key written without a value (as VAST writes MAGLIM when it made no cut)
    once reached the membership as None: a TypeError instead of a message."""
    from desivoids.errors import InputError

    name = f"dr1/vac/dr1/desivast/v1.0/{formats.voidfinder_filename('NGC')}"
    primary = {"OMEGAM": 0.3, "DLIML": 5.0, "DLIMU": 600.0, "ZLIMU": 0.2, key: value}
    t = pa.table({"cap": ["NGC"]}).replace_schema_metadata(
        {b"desivoids": json.dumps({"sources": {name: {"PRIMARY": primary}}}).encode()})
    with pytest.raises(InputError) as err:
        env.header_limits(t)
    assert formats.voidfinder_filename("NGC") in str(err.value)
    assert "PRIMARY" in str(err.value) and key in str(err.value)


def test_flag_counts_are_the_counts_of_each_flag_present():
    """The report's flag_counts (one bincount per algorithm) against a plain count of every
    value np.unique finds, negative codes and absent flags included."""
    from desivoids.environment.flags import Assignment
    from desivoids.environment.summary import flag_counts

    rng = np.random.default_rng(4)
    n = 5_000
    tracer = rng.random(n) < 0.3
    result = {}
    for alg, codes in (("VoidFinder", [0, 1, 2, 9]), ("REVOLVER", [-3, 1, 9]),
                       ("VIDE", [2])):
        flag = rng.choice(np.array(codes, np.int8), n)
        result[alg] = Assignment(alg, np.zeros(n, np.int8), flag, np.full(n, -1),
                                 np.full(n, np.nan), np.full(n, -1, np.int8))
    result["ZOBOV"] = Assignment.outside("ZOBOV", "NGC", 0)
    want = [{"algorithm": a, "flag": int(f), "galaxies": int((r.flag == f).sum()),
             "tracers": int(((r.flag == f) & tracer[:len(r)]).sum())}
            for a, r in result.items() for f in np.unique(r.flag)]
    assert flag_counts(result, tracer) == want
