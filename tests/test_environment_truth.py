"""Membership from desivoids.environment equals the mock's planted truth, row by row.

The truth (desivoids.mock.truth) is an independent brute-force implementation; the library
reads the convert stage's Parquet tables of the same mock. Seeds differ from the default run
(params/mock.yml: 20251125). A deliberate bug on either side must make the comparison differ.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import environment as env, formats, mock
from desivoids.convert import convert_files, discover
from desivoids.mock import truth

TINY = {"scale": "tiny", "fastspec_version": "v3.0", "tiles": 0}


def convert(root, out):
    fast, vast = discover(root)
    convert_files(fast, vast, out, base=root, chunk_rows=5000)
    gal = pq.read_table(out / "galaxies", columns=list(env.GALAXY_COLUMNS))
    tabs = [pq.read_table(out / f"{t}.parquet", columns=list(env.TABLE_COLUMNS[t]))
            for t in ("voids", "holes", "zonevoid", "galzone")]
    return gal, tabs


def planted(root, targetid):
    t = pq.read_table(root / "truth" / "galaxies.parquet").to_pandas().set_index("TARGETID")
    return t.loc[np.asarray(targetid)]


def mismatches(res, t) -> dict:
    return {a: int(np.sum((res[a].flag != t[f"FLAG_{a.upper()}"].to_numpy())
                          | (res[a].void != t[f"VOID_{a.upper()}"].to_numpy())))
            for a in formats.ALGORITHMS}


@pytest.fixture(scope="module")
def converted(tiny_sky, tmp_path_factory):
    root, _ = tiny_sky
    gal, tabs = convert(root, tmp_path_factory.mktemp("env_truth") / "convert")
    return root, gal, tabs


def test_membership_equals_the_planted_truth(converted):
    root, gal, tabs = converted
    limits = env.header_limits(*tabs)
    assert set(limits) == {(a, c) for a in formats.ALGORITHMS for c in formats.CAPS}
    res = env.assign_all(gal, *tabs, limits)
    t = planted(root, gal["targetid"].to_numpy())
    assert mismatches(res, t) == {a: 0 for a in formats.ALGORITHMS}
    caps = formats.cap_of_ra(gal["ra"].to_numpy())
    for alg in formats.ALGORITHMS:
        assert np.array_equal(res[alg].cap, caps)
        for cap in formats.CAPS:  # every flag occurs in each cap: the comparison is not vacuous
            assert set(np.unique(res[alg].flag[caps == cap])) == {0, 1, 2, 9}, (alg, cap)


def test_the_three_v2_labellings_differ_and_each_equals_the_truth(converted):
    """One tessellation pruned three ways: three labellings (Cohen's kappa < 1 between each
    pair), each the truth's, which reads its own file's ZONEVOID."""
    root, gal, tabs = converted
    res = env.assign_all(gal, *tabs, env.header_limits(*tabs), algorithms=formats.V2_ALGORITHMS)
    t = planted(root, gal["targetid"].to_numpy())
    tracer = t.IS_TRACER.to_numpy()
    for alg in formats.V2_ALGORITHMS:
        assert np.array_equal(res[alg].flag, t[f"FLAG_{alg.upper()}"].to_numpy()), alg
        assert np.array_equal(res[alg].void, t[f"VOID_{alg.upper()}"].to_numpy()), alg

    def kappa(a, b):  # void (1) against wall (0), where both call the tracer one or the other
        fa, fb = res[a].flag[tracer], res[b].flag[tracer]
        both = np.isin(fa, (0, 1)) & np.isin(fb, (0, 1))
        va, vb = fa[both] == 1, fb[both] == 1
        po = np.mean(va == vb)
        pe = va.mean() * vb.mean() + (1 - va.mean()) * (1 - vb.mean())
        return (po - pe) / (1 - pe) if pe < 1 else 1.0

    for a, b in (("REVOLVER", "VIDE"), ("REVOLVER", "ZOBOV"), ("VIDE", "ZOBOV")):
        assert kappa(a, b) < 1.0, (a, b)
        assert not np.array_equal(res[a].flag, res[b].flag), (a, b)


def test_each_cap_catalogue_calls_the_other_cap_outside(converted):
    root, gal, tabs = converted
    cats = env.build_catalogues(*tabs, env.header_limits(*tabs))
    t = planted(root, gal["targetid"].to_numpy())
    caps = formats.cap_of_ra(gal["ra"].to_numpy())
    for cap, cat in cats.items():
        res = env.assign_cap(gal, cat)
        for alg, r in res.items():
            assert np.all(r.flag[caps != cap] == env.OUTSIDE), (cap, alg)
            own = caps == cap
            assert np.array_equal(r.flag[own], t[f"FLAG_{alg.upper()}"].to_numpy()[own])


def test_void_distances_and_interior_follow_the_voids_table(converted):
    _, gal, tabs = converted
    res = env.assign_all(gal, *tabs, env.header_limits(*tabs))
    voids = tabs[0].to_pandas()
    pos = np.column_stack([gal[f"comoving_{a}"].to_numpy(zero_copy_only=False) for a in "xyz"])
    caps = formats.cap_of_ra(gal["ra"].to_numpy())
    for alg in formats.ALGORITHMS:
        r = res[alg]
        rows = np.flatnonzero(r.flag == env.VOID)
        assert len(rows) > 20, alg
        for i in rows[:: max(1, len(rows) // 50)]:
            v = voids[(voids.algorithm == alg) & (voids.cap == caps[i]) & (voids.void == r.void[i])]
            if len(v) == 0:  # a VOID0 that this algorithm's VOIDS table does not list
                assert np.isnan(r.void_distance[i]) and r.void_interior[i] == -1
                continue
            v = v.iloc[0]
            d = np.linalg.norm(pos[i] - [v.x, v.y, v.z]) / v.r_eff
            assert r.void_distance[i] == pytest.approx(d, rel=1e-12)
            interior = (v.edge == 0) if alg == "VoidFinder" else (v.edge_area_ratio <= 0.1)
            assert r.void_interior[i] == int(interior)


def test_a_bug_in_the_library_is_caught(converted):
    root, gal, tabs = converted
    t = planted(root, gal["targetid"].to_numpy())
    good = env.header_limits(*tabs)
    moved = {k: env.Limits(v.dliml, v.dlimu - 30.0, v.zlimu, v.omega_m) for k, v in good.items()}
    bad = mismatches(env.assign_all(gal, *tabs, moved), t)
    assert all(n > 0 for n in bad.values()), bad


def test_a_bug_in_the_truth_is_caught(tmp_path, monkeypatch):
    outside = truth.outside
    monkeypatch.setattr(truth, "outside",
                        lambda xyz, grid, dliml, dlimu: outside(xyz, grid, dliml, dlimu - 30.0))
    root = tmp_path / "sky"
    mock.generate(root, seed=777, **TINY)
    monkeypatch.undo()
    gal, tabs = convert(root, tmp_path / "convert")
    bad = mismatches(env.assign_all(gal, *tabs, env.header_limits(*tabs)),
                     planted(root, gal["targetid"].to_numpy()))
    assert all(n > 0 for n in bad.values()), bad


def test_planted_offset_zero_gives_a_null_mock(tiny_sky, tmp_path):
    """Same seed as the tiny sky, offset 0: the same membership, no shift of the quenched
    probability anywhere, and quenching changes only where the tiny sky's planted shift is
    nonzero (within 1.5 R_eff of a VoidFinder void centre), at the rate the shift gives (same
    random draws)."""
    root, _ = tiny_sky
    null = tmp_path / "sky"
    seed = json.loads((root / "truth" / "truth.json").read_text())["seed"]
    mock.generate(null, seed=seed, planted_offset=0.0, **TINY)
    doc = json.loads((null / "truth" / "truth.json").read_text())
    assert doc["planted_offset"] == {"VoidFinder": 0.0}
    assert doc["planted_profile"]["amplitude"] == 0.0
    a = pq.read_table(root / "truth" / "galaxies.parquet").to_pandas()
    b = pq.read_table(null / "truth" / "galaxies.parquet").to_pandas()
    assert a.TARGETID.equals(b.TARGETID)
    for alg in formats.ALGORITHMS:
        assert a[f"FLAG_{alg.upper()}"].equals(b[f"FLAG_{alg.upper()}"])
    lowered = (b.P_QUENCHED - a.P_QUENCHED).to_numpy(np.float64)
    near = (a.R_OVER_REFF_VOIDFINDER < 1.5).to_numpy()
    assert np.all(lowered[~near] == 0) and np.all(lowered[near] >= 0)
    assert (lowered[(a.FLAG_VOIDFINDER != env.VOID).to_numpy()] > 0).sum() > 100  # not a step
    changed = (a.QUENCHED != b.QUENCHED).to_numpy()
    assert not changed[lowered == 0].any()
    assert not (a.QUENCHED & ~b.QUENCHED).any()  # lowering p only ever removes quenched ones
    n = int((lowered > 0).sum())
    rate = lowered[lowered > 0].mean()
    assert abs(changed[lowered > 0].mean() - rate) < 4 * np.sqrt(rate * (1 - rate) / n), \
        (changed.sum(), n, rate)
    gal, tabs = convert(null, tmp_path / "convert")
    t = planted(null, gal["targetid"].to_numpy())
    assert mismatches(env.assign_all(gal, *tabs, env.header_limits(*tabs)), t) == \
        {a: 0 for a in formats.ALGORITHMS}


def test_surface_galaxies_are_decided_as_the_truth_decides_them(converted):
    """The mock's holes touch their wall tracers (as VoidFinder's do), so it has surface
    galaxies. With the default tolerance the library marks exactly the truth's surface
    galaxies and agrees with the truth on every galaxy; with surface_tol = 0 (VAST's strict
    rule) rounding calls some of them void, and only they differ from the truth."""
    root, gal, tabs = converted
    t = planted(root, gal["targetid"].to_numpy())
    surface = t["SURFACE_VOIDFINDER"].to_numpy()
    caps = formats.cap_of_ra(gal["ra"].to_numpy())
    for cap in formats.CAPS:
        assert (surface & t["IS_TRACER"].to_numpy() & (caps == cap)).sum() > 10, cap
    doc = json.loads((root / "truth" / "truth.json").read_text())["voidfinder_surface"]
    assert doc["surface_tol"] == 1e-3
    assert sum(doc["galaxies"].values()) == int(surface.sum())
    limits = env.header_limits(*tabs)
    vf = env.assign_all(gal, *tabs, limits)["VoidFinder"]
    assert np.array_equal(vf.surface != env.NOT_SURFACE, surface)
    assert np.array_equal(vf.flag, t["FLAG_VOIDFINDER"].to_numpy())
    assert not np.any(vf.flag[surface] == env.VOID)
    strict = env.assign_all(gal, *tabs, limits, surface_tol=0.0)["VoidFinder"]
    differ = strict.flag != t["FLAG_VOIDFINDER"].to_numpy()
    assert differ.sum() > 0 and np.all(surface[differ])
    assert np.all(strict.flag[differ] == env.VOID)
    assert np.array_equal(differ, vf.surface == env.SURFACE_STRICT_VOID)
