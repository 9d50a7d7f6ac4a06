"""The mock plants its quenching as a smooth function of the void-centric distance, and the
density stage recovers that profile, on seeds no other test or run uses.

The mock's truth (truth.json ``planted_profile``) holds the shape, its amplitude and the
expected VoidFinder profile per r / R_eff bin, computed by the mock from its latent quenched
probabilities and its own void geometry (truth.void_centric, not desivoids.density). The tiny
mock's tests check that the plant is the documented raised cosine in r / R_eff, not a step on
membership; the small mock's test runs the pipeline and requires the stage's VoidFinder
profile (observed sSFR definition, jackknife intervals) to cover the planted one bin by bin.
"""
from __future__ import annotations

import inspect
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import convert, density, environment, load, mock, plausibility
from desivoids.load.queries import dispose_engines
from desivoids.mock.generate import quenched_probability

SEED = 4343  # not params/mock.yml's, the tests' tiny 12345 nor systematics' truth seed 4242
STEP_SEED = 4344  # the tiny mock of the planting tests
DEFAULTS = inspect.signature(density.run).parameters


@pytest.fixture(scope="module")
def tiny_truth(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted") / "mirror"
    mock.generate(d, seed=STEP_SEED, scale="tiny", tiles=0)
    doc = json.loads((d / "truth" / "truth.json").read_text())
    return doc, pq.read_table(d / "truth" / "galaxies.parquet").to_pandas()


def _raised_cosine(x, amplitude, x_zero):
    """The shift truth.json documents: A (1 + cos(pi min(x, x0) / x0)) / 2."""
    return amplitude * 0.5 * (1 + np.cos(np.pi * np.minimum(x, x_zero) / x_zero))


def test_the_planted_shift_is_the_documented_function_of_r_over_reff(tiny_truth):
    doc, t = tiny_truth
    plant = doc["planted_profile"]
    a, x0 = plant["amplitude"], plant["x_zero"]
    assert plant["algorithm"] == "VoidFinder" and x0 == 1.5
    assert -0.3 < a < doc["planted_offset"]["VoidFinder"]  # stronger at the centre than on average
    x = t.R_OVER_REFF_VOIDFINDER.to_numpy(np.float64)
    flag = t.FLAG_VOIDFINDER.to_numpy()
    assert np.array_equal(np.isnan(x), flag == 9)  # every galaxy the survey places has a distance
    shift = t.P_QUENCHED.to_numpy(np.float64) - quenched_probability(t.LOGMSTAR_TRUE)
    free = (t.P_QUENCHED > 0) & (t.P_QUENCHED < 1) & (flag != 9)  # not clipped
    np.testing.assert_allclose(shift[free], _raised_cosine(x[free], a, x0), atol=2e-6)
    assert np.all(np.abs(shift[flag == 9]) < 2e-6)
    # not a step on VoidFinder membership: wall galaxies near a void centre are shifted too,
    # and void galaxies near their centre more than those near their edge
    near_wall = (flag == 0) & (x < 1.0)
    assert near_wall.sum() > 20 and shift[near_wall].max() < -0.01
    v = (flag == 1) & free
    inner, outer = shift[v & (x < 0.5)].mean(), shift[v & (x >= 0.75) & (x < 1.0)].mean()
    assert inner - outer < 0.3 * a, (inner, outer)


def test_the_planted_profile_falls_smoothly_to_zero_not_a_step(tiny_truth):
    doc, _ = tiny_truth
    plant = doc["planted_profile"]
    e = plant["expected"]
    assert e["r_edges"] == list(DEFAULTS["r_edges"].default)  # the stage's bins
    assert e["mass_edges"] == list(DEFAULTS["mass_edges"].default)
    bins = [b for b in e["bins"] if b["n"]]
    shift = np.array([b["expected"] - b["without_plant"] for b in bins])
    lo = np.array([b["x_lo"] for b in bins])
    assert np.all(np.diff(shift) > -1e-12) and np.all(shift[lo >= plant["x_zero"]] == 0)
    assert np.all(shift[lo < plant["x_zero"]] < 0)
    # the inner bins differ: a step on membership shifts every galaxy inside a void alike
    inner = {b["x_lo"]: b["expected"] - b["without_plant"] for b in bins if b["x_hi"] <= 0.75}
    assert len(inner) >= 2 and max(inner.values()) - min(inner.values()) > 0.1 * -plant["amplitude"]
    # and the void-minus-wall answer keeps the size of the planted offset
    rd = doc["expected_answers"]["by_algorithm"]["VoidFinder"]["both"]["expected_rd"]
    assert abs(rd - doc["planted_offset"]["VoidFinder"]) < 0.01, rd


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("density_truth") / "run"
    mock.generate(d / "mirror", seed=SEED, scale="small", tiles=0)
    convert.run(data_dir=str(d), input_dir=str(d / "mirror"))
    load.run(data_dir=str(d))
    plausibility.run(data_dir=str(d))
    environment.run(data_dir=str(d), randoms=20_000)
    result = density.run(data_dir=str(d))
    dispose_engines()
    return d, result


def _observed(expected, t):
    """The planted profile as the observed sSFR definition sees it: the mock's realised
    confusion of that definition with the latent state (truth.json's galaxies: a latent quenched
    galaxy is seen quenched with rate a, a latent star-forming one with rate b, at any mass) is
    linear, and so is the mass standardisation: a * e + b * (1 - e)."""
    a = t.QUENCHED_SSFR[t.QUENCHED].mean()
    b = t.QUENCHED_SSFR[~t.QUENCHED].mean()
    return a * expected + b * (1 - expected)


@pytest.mark.slow
def test_the_planted_voidfinder_profile_is_recovered(truth_run):
    d, result = truth_run
    planted = density.planted_profile(str(d))
    prof = result.profiles
    a = prof[(prof.quantity == "r_over_reff") & (prof.algorithm == "VoidFinder")]
    assert np.allclose(a.x_lo, planted.x_lo) and np.allclose(a.x_hi, planted.x_hi)
    # the same galaxies in each bin (the stage's distances against the mock's own)
    assert np.abs(a.n.to_numpy() - planted.n.to_numpy()).max() <= 3, (a.n, planted.n)
    sample = pq.read_table(d / "plausibility" / "sample.parquet", columns=["targetid"]
                           ).to_pandas()
    truth = pq.read_table(d / "mirror" / "truth" / "galaxies.parquet").to_pandas()
    t = truth.set_index("TARGETID").loc[sample.targetid]
    expected = _observed(planted.expected.to_numpy(float), t)
    lo, hi, se = a.jk_lo.to_numpy(), a.jk_hi.to_numpy(), a.se.to_numpy()
    # bin by bin: every bin within 3 standard errors, and the 95% intervals cover it in all but
    # at most one of the eight bins (all eight together happen only two times in three)
    assert np.all(np.abs(a.fraction.to_numpy() - expected) < 3 * se), (a.fraction, expected, se)
    covered = (lo <= expected) & (expected <= hi)
    assert covered.sum() >= len(covered) - 1, (a.fraction.to_numpy(), lo, hi, expected)
    # and the recovered profile tells the smooth plant from a step on VoidFinder membership
    # (every void galaxy shifted by the planted offset, no other): the step's expectation lies
    # outside the intervals of the inner bins
    offset = json.loads((d / "mirror" / "truth" / "truth.json").read_text()
                        )["planted_offset"]["VoidFinder"]
    logm = t.LOGMSTAR_TRUE.to_numpy(np.float64)
    step_p = np.clip(quenched_probability(logm) + offset * (t.FLAG_VOIDFINDER.to_numpy() == 1),
                     0, 1)
    step = mock.truth.expected_profile(t.R_OVER_REFF_VOIDFINDER.to_numpy(np.float64), logm,
                                       step_p, planted.x_lo.tolist() + [planted.x_hi.iloc[-1]],
                                       DEFAULTS["mass_edges"].default)
    step = _observed(np.array([b["expected"] for b in step], float), t)
    inner = a.x_hi.to_numpy() <= 0.5
    assert np.all((step[inner] < lo[inner]) | (step[inner] > hi[inner])), (step, lo, hi)
    f = a.set_index("x_lo").fraction
    assert f.loc[0.0] < f.loc[0.75] < f.loc[1.5], f
