"""The density stage's measures on inputs built here (numpy, astropy, the VAST fixture), each
against a brute-force computation or an analytic answer: k-NN distance, edge fraction and
delta_k; the survey volume; the T-Web class of hand-built fields; cloud-in-cell; the
void-centric distance of the VAST DR7 voids."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import scipy.fft
from astropy.io import fits
from scipy import ndimage
from scipy.spatial import cKDTree

from desivoids import formats
from desivoids.density import (Box, CapDensity, ball_points, cic_density, edge_fraction,
                               footprint_volume, knn_radius, local_density, tidal_classes,
                               void_centric, web_grid)
from desivoids.density.tweb import WEB_CLASSES, WebGrid, positive_count, survey_cells
from desivoids.environment.flags import NO_VOID, OUTSIDE, VOID, WALL
from desivoids.environment.mask import Footprint
from desivoids.environment.summary import footprint_randoms
from desivoids.environment.voids import VoidTable

from vast_fixtures import fixture_dir


# ------------------------------------------------------------------------------- k-NN density
def _brute_knn(tracers, points, k, is_tracer):
    d = np.sqrt(((points[:, None, :] - tracers[None, :, :]) ** 2).sum(-1))
    d.sort(axis=1)
    return np.where(is_tracer, d[:, k], d[:, k - 1])  # a tracer's own distance 0 is d[:, 0]


def test_knn_radius_and_delta_k_equal_brute_force():
    rng = np.random.default_rng(4)
    tracers = rng.uniform(0, 100, (400, 3))
    others = rng.uniform(0, 100, (150, 3))
    points = np.concatenate([tracers[:50], others])
    is_tracer = np.r_[np.ones(50, bool), np.zeros(150, bool)]
    for k in (1, 5):
        r = knn_radius(cKDTree(tracers), points, k, is_tracer)
        np.testing.assert_allclose(r, _brute_knn(tracers, points, k, is_tracer), rtol=1e-12)
    fp = _half_sky()  # y >= 0: the spheres of points near y = 0 cross the survey's edge
    unit = ball_points(64, 3)
    cap = CapDensity("NGC", cKDTree(tracers), mean_density=400 / 100 ** 3, footprint=fp,
                     points=unit)
    got = local_density(cap, points, is_tracer, 5)
    r = _brute_knn(tracers, points, 5, is_tracer)
    # brute force: each sphere's share of the unit-ball points the footprint keeps, one by one
    f = np.array([np.mean(~fp.outside(p + ri * unit)) for p, ri in zip(points, r)])
    assert 0 < (f < 1).sum() < len(f) - 50  # spheres both inside and across the edge
    np.testing.assert_allclose(got["edge_fraction"], f, rtol=1e-12)
    delta = 5 / (f * 4 / 3 * np.pi * r ** 3) / (400 / 100 ** 3) - 1
    np.testing.assert_allclose(got["delta_k"], delta, rtol=1e-10)
    assert np.array_equal(got["edge_flag"], f < 0.5)


def test_a_position_without_redshift_gets_no_density():
    tracers = np.random.default_rng(0).uniform(0, 10, (50, 3))
    r = knn_radius(cKDTree(tracers), np.array([[5.0, 5, 5], [np.nan, 1, 1]]), 3,
                   np.zeros(2, bool))
    assert np.isfinite(r[0]) and np.isnan(r[1])


def _half_sky(dlimu=400.0) -> Footprint:
    """RA in [0, 180), every Dec: the half space y >= 0 within DLIMU, whose boundary is the
    flat plane y = 0."""
    grid = np.zeros((360, 180), bool)
    grid[:180] = True
    return Footprint(grid, 0.0, dlimu)


def test_footprint_volume_is_the_analytic_volume():
    fp = _half_sky()
    assert footprint_volume(fp) == pytest.approx(2 / 3 * np.pi * 400.0 ** 3, rel=1e-9)
    band = np.zeros((360, 180), bool)
    band[:, 90:120] = True  # Dec 0 .. 30 (the row at Dec 0 holds (-1, 1): cell_index truncates)
    fp = Footprint(band, 100.0, 300.0)
    omega = 2 * np.pi * (np.sin(np.radians(30)) - np.sin(np.radians(-1)))
    assert footprint_volume(fp) == pytest.approx(omega * (300 ** 3 - 100 ** 3) / 3, rel=1e-9)


def test_edge_fraction_is_one_inside_and_one_half_on_a_flat_boundary():
    fp = _half_sky()
    centres = np.array([[0.0, 150, 0], [50, 120, -30],     # far from every edge
                        [0.0, 0, 0.1], [100, 0, 50], [-80, 0, 20]])  # on the plane y = 0
    f = edge_fraction(fp, ball_points(64, 20251202), centres, np.full(len(centres), 40.0))
    np.testing.assert_allclose(f[:2], 1.0, atol=0.05)
    np.testing.assert_allclose(f[2:], 0.5, atol=0.04)


def test_a_galaxy_outside_the_survey_gets_no_density():
    fp = _half_sky()
    rng = np.random.default_rng(5)
    tracers = np.column_stack([rng.uniform(-100, 100, 3000), rng.uniform(0, 100, 3000),
                               rng.uniform(-100, 100, 3000)])
    cap = CapDensity("NGC", cKDTree(tracers), 3000 / 200 / 100 / 200, footprint=fp,
                     points=ball_points(64, 1))
    got = local_density(cap, np.array([[0.0, 50, 0], [0, -50, 0]]), np.zeros(2, bool), 5)
    assert np.isfinite(got["delta_k"][0]) and got["edge_fraction"][0] > 0.5
    assert np.isnan(got["delta_k"][1]) and np.isnan(got["edge_fraction"][1])
    assert np.isnan(got["r_k"][1]) and got["edge_flag"][1]
    assert np.isfinite(got["r_k"][0])


def test_a_sphere_wholly_inside_the_survey_has_edge_fraction_one_without_counting():
    """f = 1 exactly where the k-NN sphere lies wholly in the survey; counted, as
    edge_fraction counts it, where it crosses."""
    fp = _half_sky()
    rng = np.random.default_rng(6)
    tracers = np.column_stack([rng.uniform(-150, 150, 20000), rng.uniform(0, 150, 20000),
                               rng.uniform(-150, 150, 20000)])
    tracers = tracers[~fp.outside(tracers)]
    cap = CapDensity("NGC", cKDTree(tracers), 1.0, footprint=fp, points=ball_points(64, 2))
    pts = np.array([[0.0, 100, 0], [40, 90, -30], [0.0, 1.0, 0.5], [60, 2.0, 40]])
    got = local_density(cap, pts, np.zeros(len(pts), bool), 5)
    r = got["r_k"]
    assert np.all(r[:2] < 30) and np.all(got["edge_fraction"][:2] == 1.0)
    np.testing.assert_allclose(got["edge_fraction"][2:],
                               edge_fraction(fp, cap.points, pts[2:], r[2:]))
    assert np.all(got["edge_fraction"][2:] < 0.8)


def test_ball_points_fill_the_unit_ball_evenly():
    p = ball_points(4096, 11)
    r = np.linalg.norm(p, axis=1)
    assert p.shape == (4096, 3) and r.max() <= 1.0
    assert np.mean(r ** 2) == pytest.approx(3 / 5, abs=2e-3)  # a uniform ball's <r^2>
    np.testing.assert_allclose(p.mean(0), 0.0, atol=2e-3)
    # the same points in every process: a Dask task's edge fraction does not depend on chunking
    np.testing.assert_array_equal(ball_points(64, 5), ball_points(64, 5))


def _cap_fraction(h):
    """Share of the unit ball on the centre's side of a plane at signed distance h."""
    a = np.abs(h)
    beyond = (1 - a) ** 2 * (2 + a) / 4
    return np.where(h >= 0, 1 - beyond, beyond)


def test_edge_fraction_of_planar_cuts_is_five_times_closer_than_the_randoms_noise():
    """64 points against the exact share of a ball cut by a plane (the mask's edge seen from
    a k-NN sphere) in 500 orientations and offsets: rms under 0.02 and never off by 0.08. The
    random catalogue it replaces (20 per tracer: ~50 points in a DR1 k-NN sphere) counted
    with a Poisson noise of 0.1 at f = 1/2."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.random(500, random_state=9).as_matrix()
    h = np.random.default_rng(9).uniform(-1, 1, 500)
    unit = ball_points(64, 20251202)
    fp = _half_sky(dlimu=1e4)  # inside: y >= 0, a plane at signed distance h from the centre
    got = np.array([edge_fraction(fp, unit @ m.T, np.array([[0.0, 50 * hi, 0]]), [50.0])[0]
                    for m, hi in zip(rot, h)])  # the points turned: the plane in any direction
    err = got - _cap_fraction(h)
    assert np.sqrt(np.mean(err ** 2)) < 0.02 and np.abs(err).max() < 0.08


def test_edge_fraction_at_the_radial_limit_is_the_two_sphere_intersection():
    """Spheres of radius 20 around points 380-420 Mpc/h from the observer, the survey a full
    sky to DLIMU = 400: the exact fraction is the volume the two spheres share."""
    fp = Footprint(np.ones((360, 180), bool), 0.0, 400.0)
    d = np.linspace(381.0, 419.0, 39)
    rng = np.random.default_rng(3)
    u = rng.normal(size=(len(d), 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    u = u[np.abs(u[:, 2]) < 0.9]  # away from the poles, where the mask's cells are thin
    d = d[:len(u)]
    R, r = 400.0, 20.0
    lens = np.pi * (R + r - d) ** 2 * (d ** 2 + 2 * d * r - 3 * r ** 2 + 2 * d * R + 6 * r * R
                                       - 3 * R ** 2) / (12 * d)
    expect = lens / (4 / 3 * np.pi * r ** 3)
    got = edge_fraction(fp, ball_points(64, 20251202), u * d[:, None], np.full(len(d), r))
    err = got - expect
    assert np.sqrt(np.mean(err ** 2)) < 0.02 and np.abs(err).max() < 0.08


def test_the_cap_density_sent_to_the_workers_holds_no_random_catalogue():
    """The edge fraction needs the footprint and 64 points, not 20 random points per tracer
    and their tree (1.5 GB at DR1, scattered to every Dask worker)."""
    import pickle

    from desivoids.density.stage import _cap_density

    fp = _half_sky()
    rng = np.random.default_rng(8)
    tracers = np.column_stack([rng.uniform(-100, 100, 20000), rng.uniform(0, 100, 20000),
                               rng.uniform(-100, 100, 20000)])
    cd, info = _cap_density("NGC", fp, tracers, 64, 1)
    tree = len(pickle.dumps(cKDTree(tracers)))
    assert len(pickle.dumps(cd)) < tree + fp.grid.nbytes + 64 * 3 * 8 + 10_000
    assert info["tracers"] == 20000 and info["volume"] == pytest.approx(footprint_volume(fp))


@pytest.mark.parametrize("rows", [slice(None), slice(100, 180)])
def test_the_survey_box_holds_the_survey_and_little_more(rows):
    """Every point of the survey (random points drawn in it) lies in the box, which exceeds
    their extent by no more than a cell's chord at DLIMU."""
    from desivoids.density.stage import survey_box

    grid = np.zeros((720, 360), bool)
    grid[rows, 200:330] = True  # N = 2: RA 0-180 or 50-90 deg, Dec 10-75 deg
    grid[300:310, 150:200] = True  # a strip crossing Dec 0
    fp = Footprint(grid, 100.0, 600.0)
    pts = footprint_randoms(fp, 400_000, 0.315, np.random.default_rng(2))
    xyz = np.column_stack([pts[f"comoving_{a}"] for a in "xyz"])
    lo, hi = survey_box(fp)
    assert np.all(xyz >= lo) and np.all(xyz <= hi)
    assert np.all(xyz.min(0) - lo < 12.0) and np.all(hi - xyz.max(0) < 12.0)


# ------------------------------------------------------------------------------- T-Web
def _axes(n=48, cell=2.0):
    x = (np.arange(n) + 0.5) * cell - n * cell / 2
    return np.meshgrid(x, x, x, indexing="ij"), n


@pytest.mark.parametrize("shape,expected", [("point", 3), ("line", 2), ("plane", 1),
                                            ("hole", 0)])
def test_tweb_classes_of_analytic_fields(shape, expected):
    (x, y, z), n = _axes()
    s = 3.0
    field = {"point": np.exp(-(x ** 2 + y ** 2 + z ** 2) / (2 * s * s)),
             "line": np.exp(-(x ** 2 + y ** 2) / (2 * s * s)),
             "plane": np.exp(-x ** 2 / (2 * s * s)),
             "hole": -(x ** 2 + y ** 2 + z ** 2 < 12 ** 2).astype(float)}[shape]
    delta = 5 * (field - field.mean())
    classes = tidal_classes(delta, 2.0, 4.0, 0.05)
    assert classes[n // 2, n // 2, n // 2] == expected


def test_a_point_mass_of_tracers_is_a_knot_at_its_centre_and_void_far_away():
    rng = np.random.default_rng(3)
    background = rng.uniform(-60, 60, (20_000, 3))
    clump = rng.normal(0, 1.0, (3_000, 3))
    tracers = np.concatenate([background, clump])
    web = web_grid("NGC", tracers, lambda p: np.any(np.abs(p) > 60, axis=1), [-60] * 3,
                   [60] * 3, cell=2.0, smooth=4.0, lambda_th=0.2)
    got = web.classify(np.array([[0.0, 0, 0], [0, 50, 0], [500, 0, 0]]))
    assert got[0] == 3 and got[2] == -1
    assert sum(web.counts().values()) == int(web.inside.sum())


def test_cell_of_is_numpys_ravelled_cell_index_and_off_the_grid_or_not_finite_is_outside():
    box = Box(np.array([-10.0, -20.0, 5.0]), 2.0, (10, 12, 7))
    rng = np.random.default_rng(11)
    xyz = rng.uniform(-30, 40, (5_000, 3))
    xyz[:6] = [[np.nan, 0, 10], [0, np.inf, 10], [0, 0, -np.inf], [-10, -20, 5],
               [9.999, 3.999, 18.999], [10, 0, 10]]  # the box's first corner, last cell, beyond
    ijk = np.floor((xyz - box.origin) / box.cell)
    want_ok = np.all(np.isfinite(ijk), 1) & np.all((ijk >= 0) & (ijk < box.shape), 1)
    want = np.ravel_multi_index(np.where(want_ok[:, None], ijk, 0).astype(np.int64).T, box.shape)
    flat, ok = box.cell_of(xyz)
    np.testing.assert_array_equal(ok, want_ok)
    np.testing.assert_array_equal(flat, want)
    assert ok[:6].tolist() == [False, False, False, True, True, False]
    assert flat[4] == 10 * 12 * 7 - 1


def test_web_counts_are_the_survey_cells_per_class():
    classes = np.random.default_rng(5).integers(-1, 4, (9, 8, 7)).astype(np.int8)
    inside = classes >= 0
    inside[0] = False  # a plane of classified cells outside the survey: not counted
    web = WebGrid("NGC", Box(np.zeros(3), 1.0, (9, 8, 7)), classes, inside)
    n = np.bincount(classes[inside], minlength=4)
    assert web.counts() == dict(zip(WEB_CLASSES, n.tolist()))
    assert web.counts(chunk=17) == web.counts()  # a chunk at a time: the same counts


def test_classify_a_chunk_at_a_time_equals_the_whole():
    classes = np.random.default_rng(6).integers(-1, 4, (9, 8, 7)).astype(np.int8)
    web = WebGrid("NGC", Box(np.array([-1.0, 2.0, 0.5]), 1.5, (9, 8, 7)), classes,
                  classes >= 0)
    xyz = np.random.default_rng(8).uniform(-5, 18, (1_000, 3))
    xyz[::50] = np.nan
    flat, ok = web.box.cell_of(xyz)
    want = np.where(ok, classes.ravel()[flat], -1).astype(np.int8)
    for chunk in (1, 33, 1 << 20):
        assert np.array_equal(web.classify(xyz, chunk=chunk), want)


def _whole_grid_classes(delta, cell, smooth, lambda_th, where):
    """The T-Web as first written: the six components by a whole-grid irfftn each, kept for
    the cells in ``where``, then classified (the reference of the slab-wise version)."""
    shape = delta.shape
    dk = scipy.fft.rfftn(delta.astype(np.float32))
    if smooth > 0:
        dk = ndimage.fourier_gaussian(dk, sigma=smooth / cell, n=shape[-1], axis=-1)
    ks = [2 * np.pi * scipy.fft.fftfreq(n, d=cell) for n in shape[:2]]
    ks.append(2 * np.pi * scipy.fft.rfftfreq(shape[2], d=cell))
    kvec = [k.astype(np.float32) for k in np.meshgrid(*ks, indexing="ij", sparse=True)]
    k2 = kvec[0] ** 2 + kvec[1] ** 2 + kvec[2] ** 2
    k2[0, 0, 0] = 1.0
    phi = (dk / k2).astype(np.complex64)
    comp = {(i, j): scipy.fft.irfftn(phi * (kvec[i] * kvec[j]), s=shape)[where]
            for i in range(3) for j in range(i, 3)}
    classes = np.full(shape, -1, np.int8)
    classes[where] = positive_count(comp, lambda_th)
    return classes


@pytest.mark.parametrize("shape,slab", [((40, 36, 30), 1), ((64, 64, 64), 5_000),
                                        ((45, 40, 38), 1 << 20)])
def test_slab_wise_tidal_classes_equal_the_whole_grid_transform(shape, slab):
    rng = np.random.default_rng(sum(shape))
    delta = rng.poisson(1.0, shape).astype(np.float32) - 1
    where = rng.random(shape) < 0.7
    seen = set()
    for smooth, th in ((4.0, 0.2), (0.0, 0.0), (6.0, -0.1)):
        expected = _whole_grid_classes(delta, 2.0, smooth, th, where)
        got = tidal_classes(delta, 2.0, smooth, th, where=where, slab_cells=slab)
        assert np.array_equal(got, expected), (smooth, th)
        seen |= set(np.unique(expected).tolist())
    assert seen == {-1, 0, 1, 2, 3}  # every class, and the outside


def test_tidal_classes_of_a_survey_that_leaves_whole_rows_out_equal_the_whole_grid_transform():
    """A ball-shaped survey in its box: most y rows of a slab hold no survey cell and are not
    transformed along z (:func:`desivoids.density.tweb._irfft_yz`); the classes are still
    those of the whole-grid transform, both sides of the grid's odd and even last axis."""
    for shape in ((48, 44, 40), (41, 39, 37)):
        rng = np.random.default_rng(sum(shape))
        delta = rng.poisson(1.0, shape).astype(np.float32) - 1
        idx = np.indices(shape) - (np.array(shape) // 2)[:, None, None, None]
        where = (idx ** 2).sum(0) < (min(shape) // 3) ** 2
        assert (~where.any(axis=2)).mean() > 0.5  # rows left out
        for slab in (1, 5_000, 1 << 20):
            expected = _whole_grid_classes(delta, 2.0, 4.0, 0.2, where)
            got = tidal_classes(delta, 2.0, 4.0, 0.2, where=where, slab_cells=slab)
            assert np.array_equal(got, expected), (shape, slab)


@pytest.mark.parametrize("n_last", [40, 37])
def test_the_rows_inverse_transform_is_irfftn_bit_for_bit(n_last):
    from desivoids.density.tweb import _irfft_yz

    rng = np.random.default_rng(n_last)
    x = (rng.normal(size=(3, 30, n_last // 2 + 1))
         + 1j * rng.normal(size=(3, 30, n_last // 2 + 1))).astype(np.complex64)
    whole = scipy.fft.irfftn(x, s=(30, n_last), axes=(1, 2))
    where = rng.random((3, 12, n_last)) < 0.4
    for rows in (np.array([0, 3, 4, 17, 29]), slice(5, 17)):
        want = whole[:, rows]
        got = _irfft_yz(x.copy(), rows, n_last, 1)
        assert got.dtype == want.dtype == np.float32
        assert np.array_equal(got.view(np.int32), want.view(np.int32))
        if isinstance(rows, slice):  # only the cells of a mask
            got = _irfft_yz(x.copy(), rows, n_last, 1, where)
            assert np.array_equal(got.view(np.int32), want[where].view(np.int32))


def _whole_array_count(t, shift):
    """positive_count as first written: the coefficients over the whole arrays at once."""
    f = {p: np.asarray(v, np.float64) for p, v in t.items()}
    xx, yy, zz = (f[(i, i)] - shift for i in range(3))
    xy, xz, yz = f[(0, 1)], f[(0, 2)], f[(1, 2)]
    c2 = xx + yy + zz
    c1 = xx * yy + xx * zz + yy * zz - xy * xy - xz * xz - yz * yz
    c0 = xx * (yy * zz - yz * yz) - xy * (xy * zz - yz * xz) + xz * (xy * yz - yy * xz)
    changes = np.zeros(c2.shape, np.int8)
    last = np.ones(c2.shape, np.int8)
    for c, flip in ((c2, True), (c1, False), (c0, True)):
        sg = np.sign(c).astype(np.int8)
        if flip:
            sg = -sg
        nz = sg != 0
        changes += nz & (sg != last)
        last = np.where(nz, sg, last)
    return changes


def test_the_class_count_by_blocks_equals_the_whole_array_count():
    """Block by block (a last block shorter, several shapes) as over the whole arrays, in the
    tensors' float32 (the T-Web's) with ties: components equal to the shift, zero minors."""
    rng = np.random.default_rng(7)
    n = 70_001
    t = {(i, j): rng.normal(size=n).astype(np.float32) for i in range(3) for j in range(i, 3)}
    for p in ((0, 1), (0, 2), (1, 2)):
        t[p][: n // 10] = 0  # diagonal tensors: eigenvalues on the threshold among them
    t[(0, 0)][::7] = np.float32(0.2)
    for block in (1, 1000, 1 << 14, n + 5):
        got = positive_count(t, 0.2, block=block)
        assert got.dtype == np.int8 and np.array_equal(got, _whole_array_count(t, 0.2)), block
    grid = {p: v[:70_000].reshape(70, 20, 50) for p, v in t.items()}
    assert np.array_equal(positive_count(grid, -0.1, block=999),
                          _whole_array_count(grid, -0.1))


def test_the_tidal_tensor_is_never_held_over_the_whole_grid():
    delta = np.random.default_rng(2).normal(size=(96, 90, 80)).astype(np.float32)
    grid = delta.nbytes
    tracemalloc.start()
    try:
        tidal_classes(delta, 2.0, 4.0, 0.2, slab_cells=20_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # three half-spectra (one float32 grid each), the class grid, a slab: not six components
    assert peak < 5 * grid, peak / grid


def test_web_grid_holds_under_four_float32_grids():
    """The grid's memory: counts accumulated in float32 in place, the contrast made in place,
    the contrast freed once transformed, the smoothing in place: about three half-spectra,
    the survey and class grids and a slab (it was a float64 count grid, its copy over the
    survey, the contrast held through the transforms and a second smoothed spectrum)."""
    rng = np.random.default_rng(1)
    tracers = rng.uniform(-100, 100, (20_000, 3))
    tracemalloc.start()
    try:
        web = web_grid("NGC", tracers, lambda p: np.linalg.norm(p, axis=1) > 100, [-100] * 3,
                       [100] * 3, cell=2.0, smooth=4.0, lambda_th=0.2, slab_cells=20_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grid = 4 * int(np.prod(web.box.shape))
    assert peak < 4.2 * grid, peak / grid


def _counting_survey(ra, dec, r):
    """A footprint of tracers at (ra, dec, r) between 50 and 300 Mpc/h, a 4 Mpc/h box around
    them, and its ``outside`` that records in ``asked`` how many points each call asked for."""
    xyz = np.column_stack([r * np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                           r * np.cos(np.radians(dec)) * np.sin(np.radians(ra)),
                           r * np.sin(np.radians(dec))])
    fp = Footprint.from_tracers(xyz, 50.0, 300.0)
    box = Box.around(xyz.min(0), xyz.max(0), 4.0, pad=12.0)
    asked = []

    def outside(p):
        asked.append(len(p))
        return fp.outside(p)

    return fp, box, outside, asked


def test_the_radial_shell_only_spares_asking_for_cells_beyond_it():
    """survey_cells with the survey's radial limits: the same cells as asking the footprint
    for every cell, having asked it only for the cells between the limits."""
    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(150, 200, 20_000), rng.uniform(0, 40, 20_000)
    r = rng.uniform(50, 300, 20_000)
    fp, box, outside, asked = _counting_survey(ra, dec, r)

    every = survey_cells(box, outside)
    n_every, asked[:] = sum(asked), []
    shell = survey_cells(box, outside, shell=(fp.dliml, fp.dlimu))
    assert np.array_equal(shell, every) and every.sum() > 1000
    assert n_every == int(np.prod(box.shape)) and sum(asked) < 0.9 * n_every


def test_the_masks_sky_window_only_spares_asking_for_cells_off_its_cells():
    """survey_cells given the mask's RA/Dec cells: the same cells as asking the footprint for
    every cell of the shell (a patch crossing RA 0 and one near the pole included), having
    asked it only for cells near the mask's edge (the window drops the cells off the mask, the
    cells whose mask cell and its neighbours are held are inside without asking); the same
    with one thread as with several."""
    rng = np.random.default_rng(6)
    ra = np.concatenate([rng.uniform(-20, 25, 15_000) % 360, rng.uniform(100, 160, 5_000)])
    dec = np.concatenate([rng.uniform(-10, 30, 15_000), rng.uniform(70, 89, 5_000)])
    r = rng.uniform(50, 300, len(ra))
    fp, box, outside, asked = _counting_survey(ra, dec, r)

    shell = survey_cells(box, outside, shell=(fp.dliml, fp.dlimu))
    n_shell, asked[:] = sum(asked), []
    sky = survey_cells(box, outside, shell=(fp.dliml, fp.dlimu), sky=(fp.grid, fp.n))
    assert np.array_equal(sky, shell) and shell.sum() > 1000
    assert 0 < sum(asked) < 0.1 * n_shell
    assert np.array_equal(survey_cells(box, fp.outside, (fp.dliml, fp.dlimu), workers=1,
                                       sky=(fp.grid, fp.n)), shell)


def test_the_class_count_equals_counting_numpys_eigenvalues():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50_000, 3, 3))
    a = a + a.transpose(0, 2, 1)
    lam = np.linalg.eigvalsh(a)
    t = {(i, j): a[:, i, j] for i in range(3) for j in range(i, 3)}
    for th in (0.0, 0.4, -1.3):
        assert np.array_equal(positive_count(t, th), (lam > th).sum(1))


def test_cic_conserves_mass_and_splits_it_linearly():
    box = Box(np.zeros(3), 1.0, (4, 4, 4))
    g = cic_density(np.array([[1.5, 1.5, 1.5], [2.0, 1.5, 1.5], [2.25, 2.0, 1.5]]), box)
    assert g.sum() == pytest.approx(3.0)
    assert g[1, 1, 1] == pytest.approx(1 + 0.5 + 0.25 * 0.5 * 1.0)  # each point's share
    assert g[2, 1, 1] == pytest.approx(0.5 + 0.75 * 0.5)


# ------------------------------------------------------------------------------- void-centric
def _brute_centric(table: VoidTable, xyz, flag, void):
    out = np.full(len(xyz), np.nan)
    usable = np.isfinite(table.r_eff) & (table.r_eff > 0)
    for i, p in enumerate(xyz):
        if flag[i] == OUTSIDE:
            continue
        if void[i] != NO_VOID:
            row = np.flatnonzero(table.void == void[i])[0]
        else:
            d = np.where(usable, np.linalg.norm(table.centre - p, axis=1), np.inf)
            row = int(np.argmin(d))
        out[i] = np.linalg.norm(table.centre[row] - p) / table.r_eff[row]
    return out


def _fixture_tables() -> dict[str, VoidTable]:
    root = fixture_dir()
    out = {}
    with fits.open(root / "DR7_VoidFinder_Output.fits") as h:
        m = h["MAXIMALS"].data
        out["VoidFinder"] = VoidTable.from_columns("VoidFinder", m["VOID"], m["X"], m["Y"],
                                                   m["Z"], m["RADIUS"], edge=m["EDGE"])
    for alg in ("REVOLVER", "VIDE", "ZOBOV"):
        with fits.open(root / f"DR7_V2_{alg}_Output.fits") as h:
            v = h["VOIDS"].data
            out[alg] = VoidTable.from_columns(alg, v["VOID"], v["X"], v["Y"], v["Z"],
                                              v["RADIUS"], edge_area_ratio=v["EDGE_AREA"]
                                              / v["TOT_AREA"])
    return out


def test_void_centric_distance_equals_brute_force_for_the_vast_voids():
    tables = _fixture_tables()
    rng = np.random.default_rng(11)
    for alg, table in tables.items():
        n = 400
        centre = table.centre[rng.integers(0, len(table.void), n)]
        xyz = centre + rng.normal(0, 15, (n, 3))
        flag = rng.choice([WALL, VOID, OUTSIDE, 2], n)
        void = np.where(flag == VOID, table.void[rng.integers(0, len(table.void), n)], NO_VOID)
        dist, used = void_centric(table, xyz, flag, void)
        np.testing.assert_allclose(dist, _brute_centric(table, xyz, flag, void), rtol=1e-12,
                                   err_msg=alg)
        assert np.array_equal(used[flag == VOID], void[flag == VOID])
        assert (used[flag == OUTSIDE] == NO_VOID).all()


def test_the_stage_s_void_centric_distances_by_chunks_equal_one_call(monkeypatch):
    """The stage calls void_centric a chunk of galaxies at a time (its temporaries reused):
    every algorithm's distances and voids equal one call over all the cap's galaxies."""
    import pyarrow as pa

    from desivoids.density import stage
    from desivoids.environment.membership import Limits, _void_table

    rng = np.random.default_rng(17)
    rows = []
    for k, alg in enumerate(formats.ALGORITHMS):
        m = 40 + 10 * k
        rows.append(pd.DataFrame({
            "algorithm": alg, "cap": "NGC", "void": rng.permutation(500)[:m],
            "x": rng.uniform(-100, 100, m), "y": rng.uniform(-100, 100, m),
            "z": rng.uniform(-100, 100, m),
            "r_eff": np.where(rng.random(m) < 0.1, np.nan, rng.uniform(5, 20, m)),
            "edge": rng.integers(0, 2, m).astype(float), "edge_area_ratio": rng.random(m)}))
    voids = pa.Table.from_pandas(pd.concat(rows, ignore_index=True), preserve_index=False)
    n = 1_000
    xyz = rng.uniform(-120, 120, (n, 3))
    xyz[::97] = np.nan
    assigned = {}
    for alg in formats.ALGORITHMS:
        ids = _void_table(voids, alg, "NGC").void
        flag = rng.choice([WALL, VOID, OUTSIDE, 2], n).astype(np.int8)
        void = np.where(flag == VOID, rng.choice(np.append(ids, 9_999), n), NO_VOID)
        assigned[alg] = pd.DataFrame({"flag": flag, "void": void.astype(np.int64)})
    limits = {(alg, "NGC"): Limits(0.0, 300.0, 0.1, 0.315) for alg in formats.ALGORITHMS}
    own = np.arange(n)
    monkeypatch.setattr(stage, "VOID_CENTRIC_ROWS", 37)
    got = dict(stage._void_centric(voids, limits, assigned, "NGC", None, own, 0.315, xyz,
                                   0.315))
    for alg in formats.ALGORITHMS:
        a = assigned[alg]
        dist, near = void_centric(_void_table(voids, alg, "NGC"), xyz, a.flag.to_numpy(),
                                  a.void.to_numpy())
        assert got[alg][0].dtype == dist.dtype and got[alg][1].dtype == near.dtype
        assert np.array_equal(got[alg][0], dist, equal_nan=True), alg
        assert np.array_equal(got[alg][1], near), alg
        assert np.isfinite(dist).sum() > n // 3 and (near == NO_VOID).sum() > 10


# ------------------------------------------------------------------------------- inputs
def _assignments_file(tmp_path, rows: pd.DataFrame, row_group_size: int = 7):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from desivoids import paths

    layout = paths.RunLayout.of(tmp_path)
    path = layout.file("environment", "assignments")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path,
                   row_group_size=row_group_size)
    return layout


def _rows(targetid, rng):
    algs = np.array(["REVOLVER", "VIDE", "VoidFinder", "ZOBOV"])
    n = len(targetid)
    return pd.DataFrame({
        "targetid": np.repeat(targetid, 4), "algorithm": np.tile(algs, n),
        "cap": np.repeat(rng.choice(["NGC", "SGC"], n), 4),
        "flag": rng.choice([0, 1, 2, 9], 4 * n).astype(np.int8),
        "void": pd.array(np.where(rng.random(4 * n) < 0.3, None, rng.integers(0, 50, 4 * n)),
                         dtype="Int64"),
        "r_over_reff": rng.random(4 * n)})


@pytest.mark.parametrize("shuffle", [False, True])
def test_assignments_read_in_one_pass_equal_a_read_per_algorithm(tmp_path, shuffle):
    """Row groups of 7 rows (algorithms split across them), in the documented (targetid,
    algorithm) order or shuffled: each algorithm's flag, void and cap equal pandas' own
    filter-and-sort of the file."""
    from desivoids.density.stage import _assignments

    rng = np.random.default_rng(12)
    tid = np.sort(rng.choice(10 ** 12, 40, replace=False))
    rows = _rows(tid, rng)
    if shuffle:
        rows = rows.sample(frac=1, random_state=3)
    got = _assignments(_assignments_file(tmp_path, rows), tid)
    for alg, a in got.items():
        want = rows[rows.algorithm == alg].sort_values("targetid")
        assert list(a.cap.astype(str)) == list(want.cap)
        np.testing.assert_array_equal(a.flag.to_numpy(), want.flag.to_numpy())
        np.testing.assert_array_equal(a.void.to_numpy(), want.void.fillna(NO_VOID).to_numpy())
        assert a.flag.dtype == np.int8 and a.void.dtype == np.int64
    assert list(got) == list(formats.ALGORITHMS)


def test_assignments_missing_a_galaxy_name_the_file_and_every_algorithm(tmp_path):
    from desivoids.density.stage import _assignments
    from desivoids.errors import InputError

    rng = np.random.default_rng(13)
    tid = np.sort(rng.choice(10 ** 12, 20, replace=False))
    rows = _rows(tid, rng)
    rows = rows[~((rows.targetid == tid[3]) & rows.algorithm.isin(["VIDE", "ZOBOV"]))]
    with pytest.raises(InputError) as e:
        _assignments(_assignments_file(tmp_path, rows), tid)
    text = str(e.value)
    assert "galaxy_void_assignments" in text and "VIDE" in text and "ZOBOV" in text
    assert "REVOLVER" not in text


@pytest.mark.parametrize("catalogue_omega_m, galaxy_omega_m, recomputed",
                         [(0.315, 0.315, False), (0.3, 0.315, True), (0.315, None, False)])
def test_the_stage_gathers_only_the_columns_the_positions_come_from(
        catalogue_omega_m, galaxy_omega_m, recomputed):
    """The galaxies' columns the stage sorts (_position_columns): the comoving positions, and
    RA, Dec and Z only where a catalogue's Omega_m differs from the galaxies' (the positions
    are then recomputed); the positions of either are those from every column."""
    from desivoids.density.stage import _position_columns
    from desivoids.environment.membership import GALAXY_COLUMNS, Limits, _galaxy_xyz

    rng = np.random.default_rng(21)
    n = 50
    every = {"targetid": np.arange(n), "ra": rng.uniform(0, 360, n),
             "dec": rng.uniform(-30, 60, n), "z": rng.uniform(0.01, 0.2, n),
             **{f"comoving_{a}": rng.uniform(-500, 500, n) for a in "xyz"}}
    assert set(every) == set(GALAXY_COLUMNS)
    limits = {("VoidFinder", "NGC"): Limits(0.0, 600.0, 0.2, 0.315),
              ("VIDE", "NGC"): Limits(0.0, 600.0, 0.2, catalogue_omega_m)}
    cols = _position_columns(limits, galaxy_omega_m)
    assert ({"ra", "dec", "z"} <= set(cols)) == recomputed
    assert {"comoving_x", "comoving_y", "comoving_z"} <= set(cols) and "targetid" not in cols
    rows = np.arange(0, n, 2)
    for lim in limits.values():
        want = _galaxy_xyz(every, rows, lim.omega_m, galaxy_omega_m)
        got = _galaxy_xyz({c: every[c] for c in cols}, rows, lim.omega_m, galaxy_omega_m)
        assert np.array_equal(got, want)


def test_galaxy_environment_parquet_keeps_its_rows_with_dictionaries_for_its_codes(tmp_path):
    """galaxy_environment written with the stage's encodings (_dictionary_columns) reads back
    as the table, nulls included; its floats are stored plain, the other columns with a
    dictionary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from desivoids.density.stage import _dictionary_columns, _table

    rng = np.random.default_rng(22)
    n = 5_000
    cols = {"r_k": rng.uniform(1, 9, n), "edge_fraction": rng.random(n),
            "delta_k": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "edge_flag": rng.random(n) < 0.3, "web_class": rng.integers(-1, 4, n)}
    for alg in formats.ALGORITHMS:
        cols[f"void_centric_{alg.lower()}"] = np.where(rng.random(n) < 0.1, np.nan,
                                                       rng.random(n))
        cols[f"nearest_void_{alg.lower()}"] = np.where(rng.random(n) < 0.1, NO_VOID,
                                                       rng.integers(0, 300, n))
    env = _table(np.arange(n) * 7, rng.choice(["NGC", "SGC"], n), cols)
    path = tmp_path / "ge.parquet"
    pq.write_table(env, path, compression="zstd", use_dictionary=_dictionary_columns(env.schema))
    assert pq.read_table(path).equals(env, check_metadata=True)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    for i in range(meta.num_columns):
        c = meta.column(i)
        kind = env.schema.field(c.path_in_schema).type
        if pa.types.is_floating(kind):
            assert not c.has_dictionary_page, c.path_in_schema
        elif not pa.types.is_boolean(kind):  # Parquet keeps booleans as bits
            assert c.has_dictionary_page, c.path_in_schema
