"""systematics: the statistics library, each function against values computed independently here
(closed formulas, published worked examples, planted effects on simulated data)."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import brentq

from desivoids.systematics import (binned_fractions, cohens_h, compare_void_wall, failed_fit,
                                   healpix_patches, jackknife, kish_neff, logit_void_effect,
                                   mass_bin_index, mass_weights, quenched, quenched_flags,
                                   quenched_summary, two_proportions, two_proportions_weighted,
                                   weighted_proportion, wilson)

Z95 = 1.959963984540054


# ---------------------------------------------------------------- independent reference formulas
def wilson_by_hand(k, n, z=Z95):
    """Wilson (1927): (2np + z^2 -+ z sqrt(z^2 + 4np(1-p))) / (2(n + z^2))."""
    p = k / n
    root = z * math.sqrt(z * z + 4 * n * p * (1 - p))
    return ((2 * n * p + z * z - root) / (2 * (n + z * z)),
            (2 * n * p + z * z + root) / (2 * (n + z * z)))


def newcombe_by_hand(k1, n1, k2, n2):
    """Newcombe (1998) method 10: delta = sqrt((p1-l1)^2 + (u2-p2)^2), eps likewise."""
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_by_hand(k1, n1)
    l2, u2 = wilson_by_hand(k2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 +
                                                                          (p2 - l2) ** 2)


def mn_ratio_z(R, x1, n1, x2, n2):
    """Miettinen & Nurminen (1985) score statistic for the risk ratio R (closed-form MLE)."""
    N = n1 + n2
    A, B, C = N * R, -(n1 * R + x1 + n2 + x2 * R), x1 + x2
    p2 = (-B - math.sqrt(B * B - 4 * A * C)) / (2 * A)
    p1 = R * p2
    var = (p1 * (1 - p1) / n1 + R * R * p2 * (1 - p2) / n2) * N / (N - 1)
    return (x1 / n1 - R * x2 / n2) / math.sqrt(var)


def mn_odds_z(psi, x1, n1, x2, n2):
    """Miettinen & Nurminen (1985) score statistic for the odds ratio psi."""
    N, x = n1 + n2, x1 + x2
    A, B, C = n2 * (psi - 1), n1 * psi + n2 - x * (psi - 1), -x
    p2 = (-B + math.sqrt(B * B - 4 * A * C)) / (2 * A)
    p1 = p2 * psi / (1 + p2 * (psi - 1))
    return (x1 - n1 * p1) * math.sqrt((1 / (n1 * p1 * (1 - p1)) + 1 / (n2 * p2 * (1 - p2)))
                                      * (N - 1) / N)


def invert_score(zfun, est, *counts):
    lo = brentq(lambda t: zfun(math.exp(t), *counts) - Z95, math.log(est) - 6, math.log(est) - 1e-9)
    hi = brentq(lambda t: zfun(math.exp(t), *counts) + Z95, math.log(est) + 1e-9, math.log(est) + 6)
    return math.exp(lo), math.exp(hi)


# ------------------------------------------------------------------------------ quenched
def _galaxies():
    return pd.DataFrame({
        #            sf     q      q(SFR=0) failed  edge   NaN-sfr  sfr<0  nan-mass
        "logmstar": [10.0,  11.0,  10.5,    0.0,    11.0,  10.0,    10.0,  np.nan],
        "sfr":      [1.0,   1e-2,  0.0,     0.0,    1.0,   np.nan,  -1.0,  0.0],
        "dn4000":   [1.2,   1.8,   1.9,     0.0,    1.6,   np.nan,  1.61,  1.7],
        "absmag01_sdss_u": [-19.0, -18.0, -18.5, 0.0, 2.22, np.nan, -18.0, -18.0],
        "absmag01_sdss_r": [-20.0, -20.5, -21.0, 0.0, 0.0, -20.0, -20.0, -20.0],
    })


def test_ssfr_counts_sfr_zero_as_quenched_and_cuts_failed_fits():
    g = _galaxies()
    r = quenched(g, "ssfr")
    # row 2: SFR == 0 -> quenched; row 3: LOGMSTAR == SFR == 0 -> failed, never quenched
    assert r.quenched.tolist() == [False, True, True, False, False, False, False, False]
    assert r.failed_fit.tolist() == [False, False, False, True, False, False, False, False]
    # log10(1) - 11 == -11 exactly: not < -11
    assert r.defined[4] and not r.quenched[4]
    # NaN SFR, negative SFR, NaN mass (even with SFR == 0): undefined, not quenched
    assert r.undefined.tolist() == [False] * 5 + [True, True, True]
    c = r.counts()
    states = ("n_failed_fit", "n_undefined", "n_quenched", "n_not_quenched")
    assert tuple(c[s] for s in states) == (1, 3, 2, 2)
    assert c["n_failed_fit"] + c["n_undefined"] + c["n_quenched"] + c["n_not_quenched"] == len(g)


def test_dn4000_and_colour_definitions_and_thresholds():
    g = _galaxies()
    d4 = quenched(g, "dn4000")
    # 1.6 exactly is not > 1.6; failed fit excluded even though its DN4000 is a number
    assert d4.quenched.tolist() == [False, True, True, False, False, False, True, True]
    assert d4.failed_fit[3] and not d4.defined[3] and d4.undefined.tolist()[5]
    ur = quenched(g, "ur")
    # u - r: 1.0, 2.5, 2.5, (failed), 2.22 (>= : quenched), NaN, 2.0, 2.0
    assert ur.quenched.tolist() == [False, True, True, False, True, False, False, False]
    assert ur.undefined.tolist() == [False] * 5 + [True, False, False]
    assert failed_fit(g).sum() == 1


def test_quenched_flags_nullable_and_summary():
    g = _galaxies()
    g["sfr"] = g["sfr"].astype(object).where(g["sfr"].notna(), None)  # nulls as None
    flags = quenched_flags(g)
    assert list(flags.columns) == ["quenched_ssfr", "quenched_dn4000", "quenched_ur"]
    assert str(flags["quenched_ssfr"].dtype) == "boolean"
    assert flags["quenched_ssfr"].isna().tolist() == [False] * 3 + [True, False, True, True, True]
    s = quenched_summary(g).set_index("definition")
    assert (s[["n_failed_fit", "n_undefined", "n_quenched", "n_not_quenched"]].sum(axis=1)
            == len(g)).all()
    with pytest.raises(ValueError):
        quenched(g, "colour")


# ------------------------------------------------------------------------------ intervals
def test_wilson_against_published_and_formula():
    # Newcombe (1998a) Table II example: 81/263, Wilson score 0.2553 to 0.3662
    lo_h, hi_h = wilson_by_hand(81, 263)
    assert (round(lo_h, 4), round(hi_h, 4)) == (0.2553, 0.3662)
    p, lo, hi = wilson(81, 263)
    assert p == pytest.approx(81 / 263) and lo == pytest.approx(lo_h, abs=1e-12)
    assert hi == pytest.approx(hi_h, abs=1e-12)
    # vectorised, 0/n inside [0, 1], empty group NaN
    p, lo, hi = wilson(np.array([0, 5, 0]), np.array([10, 5, 0]))
    assert lo[0] == 0 and hi[0] == pytest.approx(wilson_by_hand(0, 10)[1])
    assert hi[1] == pytest.approx(1.0) and np.isnan(p[2]) and np.isnan(lo[2])
    # non-integer (effective) counts are accepted
    assert wilson(2.5, 7.5)[1] == pytest.approx(wilson_by_hand(2.5, 7.5)[0])
    # the interval holds p exactly at 0/n and n/n (statsmodels rounds 0/7's bound to 3e-17)
    for n in range(1, 40):
        p, lo, hi = wilson(np.array([0, n]), np.array([n, n]))
        assert np.all(lo <= p) and np.all(p <= hi), n


@pytest.mark.parametrize("k1,n1,k2,n2,published", [
    (56, 70, 48, 80, (0.0524, 0.3339)),     # Newcombe 1998, example (a)
    (9, 10, 3, 10, (0.1705, 0.8090)),       # (b)
    (5, 56, 0, 29, (-0.0381, 0.1926)),      # (d)
    (0, 10, 0, 20, (-0.1611, 0.2775)),      # (e)
])
def test_newcombe_method10_worked_examples(k1, n1, k2, n2, published):
    by_hand = newcombe_by_hand(k1, n1, k2, n2)
    assert tuple(round(x, 4) for x in by_hand) == published
    r = two_proportions(k1, n1, k2, n2)
    assert r.rd == pytest.approx(k1 / n1 - k2 / n2)
    assert (r.rd_lo, r.rd_hi) == pytest.approx(by_hand, abs=1e-12)


def test_ratio_and_odds_ratio_score_intervals():
    for counts in [(56, 70, 48, 80), (30, 200, 45, 150), (700, 1000, 650, 1000)]:
        x1, n1, x2, n2 = counts
        r = two_proportions(*counts)
        rr = (x1 / n1) / (x2 / n2)
        odds = (x1 / (n1 - x1)) / (x2 / (n2 - x2))
        assert r.rr == pytest.approx(rr) and r.odds_ratio == pytest.approx(odds)
        assert (r.rr_lo, r.rr_hi) == pytest.approx(invert_score(mn_ratio_z, rr, *counts), rel=1e-4)
        assert (r.or_lo, r.or_hi) == pytest.approx(invert_score(mn_odds_z, odds, *counts),
                                                   rel=1e-4)
    # zero cells: the odds-ratio score interval is undefined -> NaN, not an exception
    r = two_proportions(5, 56, 0, 29)
    assert math.isnan(r.or_lo) and r.rd_lo == pytest.approx(-0.0381, abs=5e-5)
    assert math.isnan(two_proportions(0, 0, 3, 10).rd)


def test_cohens_h_known_values():
    assert cohens_h(0.75, 0.25) == pytest.approx(math.pi / 3)   # 2(pi/3) - 2(pi/6)
    assert cohens_h(1.0, 0.0) == pytest.approx(math.pi)
    assert cohens_h(0.3, 0.3) == 0.0
    assert cohens_h(0.25, 0.75) == pytest.approx(-math.pi / 3)
    assert two_proportions(3, 4, 1, 4).h == pytest.approx(math.pi / 3)
    assert cohens_h(np.array([0.5, 0.5]), np.array([0.5, 0.0])) == pytest.approx(
        [0.0, math.pi / 2])


def test_kish_and_weighted_groups():
    assert kish_neff(np.ones(17)) == pytest.approx(17)
    assert kish_neff([1, 1, 2, 2]) == pytest.approx(36 / 10)
    assert kish_neff([0, 0, 5]) == pytest.approx(1)
    wp = weighted_proportion(np.array([True, False, True, False]), np.array([1, 1, 2, 2.0]))
    assert wp.p == pytest.approx(0.5) and wp.n_eff == pytest.approx(3.6)
    assert wp.k_eff == pytest.approx(1.8)
    y1 = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    y2 = np.r_[np.ones(50, bool), np.zeros(150, bool)]
    a = two_proportions_weighted(y1, y2)
    b = two_proportions(30, 100, 50, 200)
    assert (a.rd, a.rd_lo, a.rd_hi, a.rr_lo) == pytest.approx((b.rd, b.rd_lo, b.rd_hi, b.rr_lo))
    # doubling every weight changes nothing (scale invariance); uneven weights widen the interval
    c = two_proportions_weighted(y1, y2, None, np.full(200, 2.0))
    assert (c.rd_lo, c.rd_hi) == pytest.approx((b.rd_lo, b.rd_hi))
    w = np.where(np.arange(200) % 2 == 0, 3.0, 1.0)
    d = two_proportions_weighted(y1, y2, None, w)
    assert d.n2 == pytest.approx(kish_neff(w)) and d.n2 < 200
    with pytest.raises(TypeError):
        weighted_proportion(np.array([1.0, 0.0]))


def test_newcombe_coverage_under_the_null():
    """Seeded null simulation: the 95% risk-difference interval covers 0 in ~95% of 200 runs."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(20240607)
    hits = 0
    for _ in range(200):
        r = two_proportions(rng.binomial(300, 0.3), 300, rng.binomial(900, 0.3), 900)
        hits += r.rd_lo <= 0.0 <= r.rd_hi
    # binomial(200, 0.95) has sd 3.1 runs: 91% .. 99% is a +-4.5 sd band
    assert 0.91 <= hits / 200 <= 0.99
    # and a real difference is detected (the interval is not just wide)
    r = two_proportions(rng.binomial(3000, 0.35), 3000, rng.binomial(9000, 0.30), 9000)
    assert r.rd_lo > 0
    assert time.perf_counter() - t0 < 10


# ------------------------------------------------------------------------------- matching
def test_mass_bins_follow_numpy_histogram():
    edges = [9.0, 10.0, 11.0]
    idx = mass_bin_index([8.9, 9.0, 9.99, 10.0, 11.0, 11.01, np.nan], edges)
    assert idx.tolist() == [-1, 0, 0, 1, 1, -1, -1]
    with pytest.raises(ValueError):
        mass_bin_index([1.0], [10.0, 9.0])


def test_reweighting_reproduces_the_void_histogram_exactly():
    rng = np.random.default_rng(1)
    edges = np.arange(9.0, 12.01, 0.25)
    mv = rng.normal(10.0, 0.4, 3000)
    mw = rng.normal(10.6, 0.5, 9000)
    mv[:3] = 11.9          # void galaxies in a bin with no wall galaxies (after the cut below)
    mw = mw[(mw < 11.75)]
    mw[:2] = 8.0           # outside the edges
    m = np.r_[mv, mw]
    void = np.r_[np.ones(mv.size, bool), np.zeros(mw.size, bool)]
    res = mass_weights(m, void, edges)
    hv, _ = np.histogram(mv, edges)
    hw, _ = np.histogram(m[~void], edges, weights=res.weights[~void])
    kept = res.bins["kept"].to_numpy()
    assert np.allclose(hw[kept], hv[kept], rtol=0, atol=1e-9)
    assert np.all(hw[~kept] == 0)
    # the bin with only void galaxies is reported and its rows counted as dropped
    last = res.bins.iloc[-1]
    assert not last["kept"] and last["reason"] == "no wall galaxies" and last["n_void"] >= 3
    dropped_void = int(hv[~kept].sum()) + int(np.sum((mv < 9) | (mv > 12)))
    assert res.n_dropped_void == dropped_void
    assert res.n_dropped_wall == int(np.sum(~void & ~res.used)) >= 2
    assert res.n_bins_dropped == int((~kept).sum())
    assert np.all(res.weights[void & res.used] == 1.0)
    assert np.all(res.weights[~res.used] == 0.0)


def test_binned_fractions_table():
    rng = np.random.default_rng(2)
    m = rng.uniform(9, 11, 4000)
    v = rng.random(4000) < 0.4
    q = rng.random(4000) < (m - 9) / 2
    t = binned_fractions(q, v, m, [9, 10, 11, 12])
    assert len(t) == 6 and set(t["group"]) == {"void", "wall"}
    cell = t[(t.bin_lo == 9) & (t.group == "void")].iloc[0]
    sel = v & (m < 10)
    assert cell["n"] == sel.sum() and cell["k"] == (q & sel).sum()
    assert (cell["lo"], cell["hi"]) == pytest.approx(wilson_by_hand(cell["k"], cell["n"]))
    empty = t[t.bin_lo == 11]
    assert (empty["n"] == 0).all() and empty["fraction"].isna().all()


# ----------------------------------------------------------------------------- regression
def _logit_sample(rng, n=20000, beta=-0.6, n_clusters=40, cluster_sd=0.0, void_by_cluster=False):
    g = rng.integers(0, n_clusters, n)
    m = rng.normal(10.4, 0.5, n)
    z = rng.uniform(0.05, 0.24, n)
    v = (rng.random(n_clusters) < 0.5)[g] if void_by_cluster else rng.random(n) < 0.35
    eta = -0.5 + 2.0 * (m - 10.4) + 3.0 * (z - 0.15) + beta * v + \
        rng.normal(0, cluster_sd, n_clusters)[g]
    q = rng.random(n) < 1 / (1 + np.exp(-eta))
    return pd.DataFrame({"quenched": q, "void": v, "logmstar": m, "z": z, "patch": g})


def test_regression_recovers_a_planted_coefficient():
    rng = np.random.default_rng(3)
    df = _logit_sample(rng, beta=-0.6)
    r = logit_void_effect(df, groups="patch")
    assert r.ok, r.reason
    assert r.n_obs == len(df) and r.n_clusters == 40
    assert r.or_lo < math.exp(-0.6) < r.or_hi
    assert abs(r.beta + 0.6) < 4 * r.se and 0.01 < r.se < 0.1
    assert r.odds_ratio == pytest.approx(math.exp(r.beta))
    # groups may be passed as an array of any labels
    r2 = logit_void_effect(df, groups=np.array([f"p{x}" for x in df["patch"]]))
    assert r2.beta == pytest.approx(r.beta) and r2.se == pytest.approx(r.se)


def test_the_spline_basis_is_patsys_bs():
    """bs_basis (scipy's BSpline.design_matrix on patsy's knots) equals patsy's bs() column by
    column, with the interior knots at the sample's quantiles (ties and extremes included)."""
    import patsy

    from desivoids.systematics.regression import bs_basis

    rng = np.random.default_rng(11)
    x = np.concatenate([rng.normal(10.4, 0.5, 5000), [9.0, 9.0, 12.5], np.full(50, 10.4)])
    for df in (3, 4, 6):
        ref = np.asarray(patsy.dmatrix(f"bs(x, df={df}, degree=3) - 1", {"x": x}))
        got = bs_basis(x, df)
        assert got.shape == ref.shape
        assert np.allclose(got, ref, rtol=0, atol=1e-12)


def test_regression_equals_statsmodels_glm_with_patsys_spline():
    """The fit (Logit by Newton on the scipy spline basis) gives the binomial GLM's (IRLS on
    patsy's design, as the regression was first written) coefficient, clustered error, interval
    and p-value."""
    import patsy
    import statsmodels.api as sm

    rng = np.random.default_rng(12)
    df = _logit_sample(rng, n=30000, beta=-0.3, cluster_sd=0.3)
    r = logit_void_effect(df, groups="patch", alpha=0.1)
    frame = pd.DataFrame({"y": df.quenched.astype(float), "void": df.void.astype(float),
                          "logm": df.logmstar, "z": df.z})
    exog = patsy.dmatrix("void + bs(logm, df=4, degree=3) + z", frame, return_type="dataframe")
    ref = sm.GLM(frame["y"], exog, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(df.patch)[0]}, use_t=True)
    lo, hi = ref.conf_int(alpha=0.1).loc["void"]
    assert r.ok
    assert r.beta == pytest.approx(ref.params["void"], rel=1e-8)
    assert r.se == pytest.approx(ref.bse["void"], rel=1e-8)
    assert (r.or_lo, r.or_hi) == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-8)
    assert r.pvalue == pytest.approx(ref.pvalues["void"], rel=1e-6)


@pytest.mark.parametrize("seed, n, cluster_sd, df", [(21, 3_000, 0.0, 4), (22, 30_000, 0.4, 3),
                                                     (23, 120_000, 0.8, 6)])
def test_the_fast_logit_equals_statsmodels_logit(seed, n, cluster_sd, df):
    """newton_logit (Newton's method and the clustered sandwich in numpy; a warm start from a
    subsample above WARM_MIN rows, the third case) gives statsmodels' Logit fit: the coefficients to 1e-10, the
    covariance to 1e-8 (statsmodels' own errors move by ~1e-9 when the same rows come in another
    order: the sandwich amplifies the rounding of sums over 10^5 rows), and logit_void_effect's
    numbers equal those of statsmodels' results."""
    import statsmodels.api as sm

    from desivoids.systematics.regression import bs_basis, newton_logit

    rng = np.random.default_rng(seed)
    d = _logit_sample(rng, n=n, beta=-0.4, n_clusters=45, cluster_sd=cluster_sd)
    y = d.quenched.to_numpy().astype(float)
    x = np.column_stack([np.ones(n), d.void.astype(float), bs_basis(d.logmstar.to_numpy(), df),
                         d.z])
    codes = pd.factorize(d.patch)[0]
    ref = sm.Logit(y, x).fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True, disp=0)
    params, cov = newton_logit(y, x, codes)
    assert params == pytest.approx(ref.params, rel=1e-10, abs=0)
    assert np.diag(cov) == pytest.approx(np.diag(ref.cov_params()), rel=1e-8, abs=0)
    scale = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.abs(cov - ref.cov_params()).max() / scale.max() < 1e-8
    r = logit_void_effect(d, groups="patch", spline_df=df, alpha=0.1)
    lo, hi = ref.conf_int(alpha=0.1)[1]
    assert r.ok
    assert r.beta == pytest.approx(ref.params[1], rel=1e-10)
    assert r.se == pytest.approx(ref.bse[1], rel=1e-8)
    assert (r.or_lo, r.or_hi) == pytest.approx((math.exp(lo), math.exp(hi)), rel=1e-8)
    assert r.pvalue == pytest.approx(ref.pvalues[1], rel=1e-6)


def test_the_fast_logit_is_used_and_leaves_ill_posed_fits_to_statsmodels(monkeypatch):
    """A well-posed fit never reaches statsmodels; a rank-deficient design, a separated one or
    one that does not converge gets None from newton_logit, so statsmodels' checks name the
    reason (test_regression_refuses_untrustworthy_fits)."""
    import statsmodels.api as sm

    from desivoids.systematics import regression

    rng = np.random.default_rng(24)
    d = _logit_sample(rng, n=5000)
    y = d.quenched.to_numpy().astype(float)
    x = np.column_stack([np.ones(len(d)), d.void.astype(float),
                         regression.bs_basis(d.logmstar.to_numpy(), 4), d.z])
    codes = pd.factorize(d.patch)[0]
    assert regression.newton_logit(y, np.column_stack([x, 2 * x[:, -1]]), codes) is None
    assert regression.newton_logit(d.void.to_numpy().astype(float), x, codes) is None
    mass = (d.logmstar.to_numpy() > 10.4).astype(float)
    assert regression.newton_logit(mass, x, codes) is None
    monkeypatch.setattr(regression, "NEWTON_MAXITER", 2)
    assert regression.newton_logit(y, x, codes) is None
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise AssertionError("statsmodels called for a well-posed fit")

    monkeypatch.setattr(sm, "Logit", refuse)
    monkeypatch.setattr(sm, "GLM", refuse)
    assert logit_void_effect(d, groups="patch").ok


def test_a_fast_fit_without_a_positive_variance_is_left_to_statsmodels(monkeypatch):
    """Rounding can leave the fast path's sandwich variance of the void coefficient at or below
    zero: the fit is then statsmodels' (the same estimate and a finite se), not a crash."""
    from desivoids.systematics import regression

    d = _logit_sample(np.random.default_rng(25), n=5000)
    want = logit_void_effect(d, groups="patch")
    fast = regression.newton_logit

    def broken(*args, **kwargs):
        params, cov = fast(*args, **kwargs)
        cov = cov.copy()
        cov[regression.VOID_COLUMN, regression.VOID_COLUMN] = -1e-18
        return params, cov

    monkeypatch.setattr(regression, "newton_logit", broken)
    got = logit_void_effect(d, groups="patch")
    assert got.ok and np.isfinite(got.se) and got.se > 0
    assert got.beta == pytest.approx(want.beta, rel=1e-6)
    assert got.se == pytest.approx(want.se, rel=1e-6)


def test_regression_errors_are_clustered():
    """void constant within clusters plus a cluster effect: the cluster-robust SE must be much
    larger than the independent-galaxy SE (which the model would give without clustering)."""
    rng = np.random.default_rng(4)
    df = _logit_sample(rng, n=20000, beta=0.0, n_clusters=30, cluster_sd=0.6,
                       void_by_cluster=True)
    r = logit_void_effect(df, groups="patch")
    iid = logit_void_effect(df, groups=np.arange(len(df)))      # every galaxy its own cluster
    assert r.ok and iid.ok
    assert r.beta == pytest.approx(iid.beta)                    # same fit, different errors
    assert r.se > 3 * iid.se


def test_regression_refuses_untrustworthy_fits():
    rng = np.random.default_rng(5)
    df = _logit_sample(rng, n=3000)
    sep = df.assign(quenched=df["void"].to_numpy())            # void predicts quenched exactly
    r = logit_void_effect(sep, groups="patch")
    assert not r.ok and "separation" in r.reason and math.isnan(r.beta) and math.isnan(r.or_hi)
    few = logit_void_effect(df, groups=df["patch"] % 3)
    assert not few.ok and "too few clusters" in few.reason and few.n_clusters == 3
    novoid = logit_void_effect(df.assign(void=False), groups="patch")
    assert not novoid.ok and "no void" in novoid.reason
    # perfect separation by mass (not by void): statsmodels' warning becomes a reason
    mass_sep = df.assign(quenched=df["logmstar"].to_numpy() > 10.4)
    r = logit_void_effect(mass_sep, groups="patch")
    assert not r.ok and "separation" in r.reason and math.isnan(r.beta)
    # a constant redshift duplicates the intercept: the design's rank is short, no number
    flat = logit_void_effect(df.assign(z=0.1), groups="patch")
    assert not flat.ok and "rank-deficient" in flat.reason and math.isnan(flat.beta)
    with pytest.raises(TypeError):
        logit_void_effect(df.assign(quenched=df["quenched"].astype(float)))


# ------------------------------------------------------------------------------ jackknife
def _two_caps(rng, n):
    """Uniform points on an NGC box (RA 130-230, Dec 0-60) and an SGC box straddling RA 0."""
    half = n // 2
    ra = np.r_[rng.uniform(130, 230, half), rng.uniform(-30, 30, n - half) % 360]
    sin_lo = np.sin(np.radians([0, -10]))
    sin_hi = np.sin(np.radians([60, 25]))
    dec = np.degrees(np.arcsin(np.r_[rng.uniform(sin_lo[0], sin_hi[0], half),
                                     rng.uniform(sin_lo[1], sin_hi[1], n - half)]))
    return ra, dec


def _unit(ra, dec):
    r, d = np.radians(ra), np.radians(dec)
    return np.c_[np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)]


@pytest.mark.parametrize("scheme", ["stripes", "nested"])
def test_patches_equal_area_and_disjoint_between_caps(scheme):
    rng = np.random.default_rng(6)
    ra, dec = _two_caps(rng, 100_000)
    P = healpix_patches(ra, dec, {"NGC": 40, "SGC": 20}, nside=64, scheme=scheme)
    t = P.table
    assert len(t) == 60 and (t.groupby("cap").size() == pd.Series({"NGC": 40, "SGC": 20})).all()
    assert set(np.unique(P.patch)) == set(range(60))
    ngc, sgc = set(P.patch[P.cap == "NGC"]), set(P.patch[P.cap == "SGC"])
    assert not ngc & sgc and ngc == set(range(40))
    assert (P.cap == np.where((ra > 83) & (ra < 304), "NGC", "SGC")).all()
    for _, g in t.groupby("cap"):
        assert g["n_pixels"].max() - g["n_pixels"].min() <= 1         # equal area to one pixel
        # uniform points: galaxy counts follow the area (edge pixels are partly filled)
        assert g["n_objects"].max() / g["n_objects"].min() < 1.5
    assert t["area_deg2"].iloc[0] == pytest.approx(t["n_pixels"].iloc[0] * P.pixel_area_deg2)
    assert P.pixel_area_deg2 == pytest.approx(41252.96 / (12 * 64 ** 2), rel=1e-4)


def test_stripe_patches_are_compact():
    rng = np.random.default_rng(7)
    ra, dec = _two_caps(rng, 60_000)
    P = healpix_patches(ra, dec, 30)
    xyz = _unit(ra, dec)
    for p in range(60):
        s = xyz[P.patch == p]
        c = s.mean(axis=0)
        c /= np.linalg.norm(c)
        extent = np.degrees(np.arccos(np.clip(s @ c, -1, 1))).max()
        side = math.sqrt(P.table.loc[p, "area_deg2"])
        assert extent < 1.6 * side, (p, extent, side)    # a square's half-diagonal is 0.71 side


def test_patches_reject_impossible_requests():
    ra, dec = np.array([150.0, 151.0]), np.array([10.0, 10.0])
    with pytest.raises(ValueError, match="patches"):
        healpix_patches(ra, dec, 5)
    with pytest.raises(ValueError):
        healpix_patches(np.array([np.nan]), np.array([0.0]), 1)


def test_jackknife_of_a_mean_matches_the_analytic_se():
    rng = np.random.default_rng(8)
    x = rng.normal(3.0, 2.0, 5000)
    df = pd.DataFrame({"x": x, "patch": np.arange(5000)})       # delete-one: exact identity
    r = jackknife(df, lambda d: d["x"].mean())
    assert r.n_patches == 5000 and r.estimate == pytest.approx(x.mean())
    assert r.se == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=1e-9)
    t = stats.t.isf(0.025, df=4999)  # the interval uses Student's t with K - 1 dof
    assert (r.lo, r.hi) == pytest.approx((x.mean() - t * r.se, x.mean() + t * r.se))
    # K = 50 equal groups: se^2 = var(group means) / K exactly, and ~ s^2 / N on iid data
    df["patch"] = np.repeat(np.arange(50), 100)
    r = jackknife(df, lambda d: d["x"].mean())
    gm = df.groupby("patch")["x"].mean()
    assert r.se == pytest.approx(math.sqrt(gm.var(ddof=1) / 50), rel=1e-9)
    assert 0.75 < r.se / (x.std(ddof=1) / math.sqrt(x.size)) < 1.25
    assert len(r.replicates) == 50 and r.bias == pytest.approx(0.0, abs=1e-9)


def test_jackknife_vector_statistics_and_failures():
    rng = np.random.default_rng(9)
    df = pd.DataFrame({"x": rng.normal(size=600), "patch": np.repeat(list("abcdef"), 100)})
    r = jackknife(df, lambda d: {"mean": d["x"].mean(), "n": float(len(d))})
    assert list(r.replicates.columns) == ["mean", "n"]
    assert list(r.replicates.index) == list("abcdef")
    assert r.se["n"] == pytest.approx(0.0) and r.se["mean"] > 0 and r.reason == ""
    # a replicate that is NaN makes the se NaN, with a reason (never silently dropped)
    bad = jackknife(df, lambda d: d["x"].mean() if "c" in set(d["patch"]) else float("nan"))
    assert math.isnan(bad.se) and "non-finite" in bad.reason
    one = jackknife(df.assign(patch="a"), lambda d: d["x"].mean())
    assert math.isnan(one.se) and "at least 2" in one.reason


# -------------------------------------------------------------------------------- compare
def _confounded_sample(rng, n=60_000, effect=0.0, n_patches=40):
    """Void galaxies less massive; quenching depends on mass (and on void by ``effect`` in log
    odds). With effect = 0 the raw fractions differ, the mass-matched ones do not."""
    v = rng.random(n) < 0.3
    m = rng.normal(np.where(v, 10.0, 10.5), 0.45)
    z = rng.uniform(0.05, 0.24, n)
    eta = -0.4 + 2.5 * (m - 10.4) + effect * v
    q = rng.random(n) < 1 / (1 + np.exp(-eta))
    return pd.DataFrame({"quenched": q, "void": v, "logmstar": m, "z": z,
                         "patch": rng.integers(0, n_patches, n)})


def test_compare_removes_a_pure_mass_difference():
    rng = np.random.default_rng(10)
    df = _confounded_sample(rng)
    row = compare_void_wall(df, np.arange(8.5, 12.01, 0.1), labels={"algorithm": "mock"})
    assert row["algorithm"] == "mock"
    assert row["rd_raw"] < -0.1                        # the raw contrast is a mass difference
    assert row["rd_lo"] <= 0 <= row["rd_hi"] and abs(row["rd"]) < 0.02
    assert row["rd_jk_lo"] <= 0 <= row["rd_jk_hi"]
    assert row["logit_or_lo"] <= 1 <= row["logit_or_hi"] and row["logit_reason"] == ""
    assert row["n_void"] + row["n_wall"] == len(df) and row["n_patches"] == 40
    # analytic and jackknife errors agree on independent galaxies (random patches)
    analytic_se = (row["rd_hi"] - row["rd_lo"]) / (2 * Z95)
    assert 0.6 < row["rd_jk_se"] / analytic_se < 1.5


def test_compare_internal_consistency_and_planted_effect():
    rng = np.random.default_rng(11)
    df = _confounded_sample(rng, effect=-0.5)
    edges = np.arange(8.5, 12.01, 0.1)
    row = compare_void_wall(df, edges)
    # the row's matched fractions equal the explicit weighted computation
    mw = mass_weights(df["logmstar"], df["void"].to_numpy(), edges)
    q, v, u = df["quenched"].to_numpy(), df["void"].to_numpy(), mw.used
    p_wall = np.average(q[u & ~v], weights=mw.weights[u & ~v])
    assert row["p_wall"] == pytest.approx(p_wall)
    assert row["p_void"] == pytest.approx(q[u & v].mean())
    assert row["n_eff_wall"] == pytest.approx(kish_neff(mw.weights[u & ~v]))
    assert row["h"] == pytest.approx(cohens_h(row["p_void"], row["p_wall"]))
    # the jackknife intervals are centred on the full-sample estimate
    assert (row["rd_jk_lo"] + row["rd_jk_hi"]) / 2 == pytest.approx(row["rd"])
    # a planted void effect (-0.5 in log odds) is detected by every estimator
    assert row["rd_hi"] < 0 and row["rd_jk_hi"] < 0 and row["rr_hi"] < 1
    assert row["logit_or_lo"] < math.exp(-0.5) < row["logit_or_hi"]


def test_compare_rejects_undefined_quenched_values():
    rng = np.random.default_rng(12)
    df = _confounded_sample(rng, n=2000)
    with pytest.raises(TypeError):
        compare_void_wall(df.assign(quenched=df["quenched"].astype("boolean")), [9, 10, 11])
    with pytest.raises(KeyError):
        compare_void_wall(df.drop(columns="patch"), [9, 10, 11])


def test_satterthwaite_dof_of_the_jackknife_variance():
    """K - 1 for patches that carry equal variance; towards 1 when one patch dominates; NaN
    when no patch carries any (the jackknife then keeps K - 1); never above K - 1 in use."""
    from desivoids.systematics.jackknife import satterthwaite_dof

    assert satterthwaite_dof(np.ones(15)) == pytest.approx(14.0)
    assert satterthwaite_dof([1.0] + [1e-9] * 14) == pytest.approx(1.0, abs=1e-6)
    half = satterthwaite_dof([1.0] * 5 + [0.0] * 10)  # five informative patches of fifteen
    assert 3.0 < half < 5.0
    assert np.isnan(satterthwaite_dof(np.zeros(15))) and np.isnan(satterthwaite_dof([1.0]))
    # Monte Carlo: the jackknife variance of a mean over unequal patches has the stated dof
    rng = np.random.default_rng(5)
    a = np.array([9.0, 4.0, 1, 1, 1, 0.5, 0.5, 0.25])
    k = a.size
    sims = rng.normal(0, np.sqrt(a), size=(20000, k))
    v = ((sims - sims.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)  # U' M U
    implied = 2 * v.mean() ** 2 / v.var()
    assert satterthwaite_dof(a) == pytest.approx(implied, rel=0.05)


def test_jackknife_uses_the_given_dof_clipped_to_k_minus_1():
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"x": rng.normal(size=300), "patch": np.repeat(np.arange(10), 30)})
    base = jackknife(data, lambda d: float(d.x.mean()))
    few = jackknife(data, lambda d: float(d.x.mean()), dof=2.5)
    many = jackknife(data, lambda d: float(d.x.mean()), dof=1e6)
    assert base.dof == 9 and few.dof == 2.5 and many.dof == 9
    assert few.se == base.se and (few.hi - few.lo) > (base.hi - base.lo)
    assert (many.hi - many.lo) == pytest.approx(base.hi - base.lo)


def test_wilson_interval_holds_the_fraction_at_zero_and_n():
    """k = 0 and k = n: the interval starts (ends) exactly at the fraction, so error bars
    fraction - lo and hi - fraction are never negative (statsmodels gives lo = 3e-17 at k = 0,
    n = 7, which made matplotlib refuse the book's figure)."""
    from desivoids.systematics import wilson

    p, lo, hi = wilson(np.array([0, 7, 0, 3]), np.array([7, 7, 1, 10]))
    assert np.all(p - lo >= 0) and np.all(hi - p >= 0)
    assert lo[0] == 0.0 and hi[1] == 1.0 and lo[2] == 0.0


# ------------------------------------------- the jackknife from per-patch counts = the old path
def _old_matched_stats(cells: pd.DataFrame) -> dict:
    """The statistic as compare_void_wall computed it once per replicate before: the reference."""
    t = cells.groupby("bin")[["n_void", "k_void", "n_wall", "k_wall"]].sum()
    t = t[(t["n_void"] > 0) & (t["n_wall"] > 0)]
    nv = t["n_void"].sum()
    if nv == 0:
        return {"rd": math.nan, "h": math.nan, "log_rr": math.nan}
    p_void = t["k_void"].sum() / nv
    p_wall = float((t["n_void"] * t["k_wall"] / t["n_wall"]).sum() / nv)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_rr = float(np.log(p_void) - np.log(p_wall))
    return {"rd": p_void - p_wall, "h": cohens_h(p_void, p_wall), "log_rr": log_rr}


def _old_patch_variances(cells: pd.DataFrame, patches) -> np.ndarray:
    t = cells.groupby("bin")[["n_void", "k_void", "n_wall", "k_wall"]].sum()
    t = t[(t["n_void"] > 0) & (t["n_wall"] > 0)]
    nv = float(t["n_void"].sum())
    if nv == 0:
        return np.zeros(len(patches))
    p = (t["k_void"] + t["k_wall"]) / (t["n_void"] + t["n_wall"])
    c = cells[cells["bin"].isin(t.index)]
    b = c["bin"].to_numpy()
    pq_ = (p * (1 - p)).loc[b].to_numpy()
    wall = (t["n_void"] / (nv * t["n_wall"])).loc[b].to_numpy()
    a = pq_ * (c["n_void"].to_numpy() / nv ** 2 + c["n_wall"].to_numpy() * wall ** 2)
    return (pd.Series(a).groupby(c["patch"].to_numpy()).sum()
            .reindex(patches, fill_value=0.0).to_numpy())


def _old_jackknife_row(sample: pd.DataFrame, mass_edges, alpha: float) -> dict:
    """compare_void_wall's jackknife columns by the old path: the statistic recomputed on the
    cells of every delete-one-patch replicate by :func:`jackknife`."""
    from desivoids.systematics.jackknife import satterthwaite_dof

    q, v = sample["quenched"].to_numpy(), sample["void"].to_numpy()
    idx = mass_bin_index(sample["logmstar"].to_numpy(dtype=np.float64), mass_edges)
    inbin = idx >= 0
    cells = (pd.DataFrame({"patch": sample["patch"].to_numpy()[inbin], "bin": idx[inbin],
                           "void": v[inbin], "q": q[inbin]})
             .groupby(["patch", "bin", "void"]).agg(n=("q", "size"), k=("q", "sum"))
             .unstack("void", fill_value=0))
    cells.columns = [f"{stat}_{'void' if flag else 'wall'}" for stat, flag in cells.columns]
    cells = cells.reindex(columns=["n_void", "k_void", "n_wall", "k_wall"],
                          fill_value=0).reset_index()
    dof = satterthwaite_dof(_old_patch_variances(cells, np.unique(cells["patch"])))
    jk = jackknife(cells, _old_matched_stats, patch="patch", alpha=alpha, dof=dof)
    return dict(n_patches=jk.n_patches, jk_dof=jk.dof, rd_jk_se=jk.se["rd"],
                rd_jk_lo=jk.lo["rd"], rd_jk_hi=jk.hi["rd"], h_jk_se=jk.se["h"],
                rr_jk_lo=math.exp(jk.lo["log_rr"]), rr_jk_hi=math.exp(jk.hi["log_rr"]),
                rd_jk_bias=jk.bias["rd"], jk_reason=jk.reason)


def _assert_same_jackknife(row, old: dict, where) -> None:
    for name, want in old.items():
        got = row[name]
        if isinstance(want, str):
            assert got == want, (where, name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, equal_nan=True,
                                       err_msg=f"{where} {name}")


def test_jackknife_from_patch_counts_equals_recomputing_every_replicate():
    """Synthetic samples with empty bins, patches without void galaxies, one-group patches and
    patches outside every mass bin: the same numbers as the old per-replicate path."""
    rng = np.random.default_rng(13)
    edges = [9.5, 10.0, 10.5, 11.0, 11.5, 12.0]
    for case in range(6):
        df = _confounded_sample(rng, n=3000, effect=-0.3 * case, n_patches=7 + case)
        if case % 2:
            df.loc[df.patch == 0, "void"] = False          # a patch without void galaxies
            df.loc[df.patch == 1, "logmstar"] = 8.0        # a patch in no mass bin
        if case == 5:
            df.loc[df.logmstar > 11.0, "void"] = False     # bins without void galaxies
        row = compare_void_wall(df, edges, regression=False)
        _assert_same_jackknife(row, _old_jackknife_row(df, edges, 0.05), case)
        if case > 1:
            continue
        # patch labels that are not 0 .. K - 1 (gaps; strings): the same per-patch counts
        gaps = df.assign(patch=3 * df.patch.to_numpy() + 5)
        _assert_same_jackknife(compare_void_wall(gaps, edges, regression=False),
                               _old_jackknife_row(gaps, edges, 0.05), case)
        named = df.assign(patch=np.array([f"p{k:02d}" for k in df.patch]))
        _assert_same_jackknife(compare_void_wall(named, edges, regression=False),
                               _old_jackknife_row(named, edges, 0.05), case)


def test_jackknife_from_patch_counts_on_every_comparison_of_a_tiny_run(env_run, monkeypatch):
    """Every comparison the stage makes on a tiny run (algorithms, void samples, definitions,
    caps): the fast jackknife's columns equal the old path's to floating-point precision."""
    from desivoids import paths
    from desivoids.systematics import stage

    d, _ = env_run
    layout = paths.RunLayout.of(d)
    sample = stage._read_sample(layout)
    wide = stage._read_flags(layout, sample.targetid.to_numpy())
    seen = []

    def recording(d_, mass_edges, **kw):
        row = compare_void_wall(d_, mass_edges, **kw)
        seen.append((d_, mass_edges, kw["alpha"], row))
        return row

    monkeypatch.setattr(stage, "compare_void_wall", recording)
    edges = [9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0]
    summary, *_ = stage.run_comparisons(sample, wide, edges, {"NGC": 8, "SGC": 4}, False, 4,
                                        0.05, caps=("NGC", "SGC", "both"))
    assert len(seen) >= 50 and len(seen) == summary.rd.notna().sum()
    for d_, mass_edges, alpha, row in seen:
        where = (row["algorithm"], row["sample"], row["definition"], row["cap"])
        _assert_same_jackknife(row, _old_jackknife_row(d_, mass_edges, alpha), where)


def test_a_failed_score_interval_is_undefined_not_its_real_part():
    """statsmodels' score interval for the ratio returns complex bounds when its root search
    fails (walls at 100 %): 0/2 against 15/15 came out as [0.88, 0.88], excluding the observed
    ratio 0, once the imaginary parts were dropped."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning on the cast, before the fix
        r = two_proportions(0, 2, 15, 15)
    assert r.rr == 0.0 and np.isnan(r.rr_lo) and np.isnan(r.rr_hi)
    assert np.isfinite(r.rd_lo) and r.rd_lo <= r.rd <= r.rd_hi  # the difference is defined


def test_the_fast_logit_by_blocks_equals_one_pass(monkeypatch):
    """newton_logit reads the design by blocks of BLOCK rows (the last one partial): blocks of
    3,001 rows give the single-block fit's coefficients and clustered covariance to rounding,
    and its refusals (a separated fit) alike."""
    from desivoids.systematics import regression

    rng = np.random.default_rng(26)
    d = _logit_sample(rng, n=20_000, beta=-0.4, n_clusters=45, cluster_sd=0.4)
    y = d.quenched.to_numpy().astype(float)
    x = np.column_stack([np.ones(len(d)), d.void.astype(float),
                         regression.bs_basis(d.logmstar.to_numpy(), 4), d.z])
    codes = pd.factorize(d.patch)[0]
    monkeypatch.setattr(regression, "BLOCK", len(d))
    one, one_cov = regression.newton_logit(y, x, codes)
    monkeypatch.setattr(regression, "BLOCK", 3_001)
    blocks, blocks_cov = regression.newton_logit(y, x, codes)
    assert blocks == pytest.approx(one, rel=1e-12, abs=0)
    assert np.abs(blocks_cov - one_cov).max() < 1e-10 * np.abs(one_cov).max()
    mass = (d.logmstar.to_numpy() > 10.4).astype(float)
    assert regression.newton_logit(mass, x, codes) is None


def test_mass_bins_given_by_the_caller_give_the_same_comparison():
    """compare_void_wall and binned_fractions with the rows' mass bins computed once by the caller
    (the stage bins its sample once) give the very numbers they compute from log M* themselves,
    rows outside the edges and non-finite masses included."""
    rng = np.random.default_rng(27)
    edges = [9.5, 10.0, 10.5, 11.0, 11.5, 12.0]
    df = _confounded_sample(rng, n=4000, effect=-0.2, n_patches=9)
    df.loc[df.index[:30], "logmstar"] = np.nan
    df.loc[df.index[30:60], "logmstar"] = 12.0        # the last edge: in the last bin
    df.loc[df.index[60:90], "logmstar"] = 8.0         # below every bin
    bins = mass_bin_index(df.logmstar.to_numpy(), edges)
    want = compare_void_wall(df, edges, spline_df=4, regression=False)
    got = compare_void_wall(df, edges, spline_df=4, regression=False, mass_bin=bins)
    pd.testing.assert_series_equal(got, want)
    args = (df.quenched.to_numpy(), df.void.to_numpy(), df.logmstar.to_numpy(), edges)
    pd.testing.assert_frame_equal(binned_fractions(*args, bin_index=bins), binned_fractions(*args))


def test_profile_jackknife_is_the_recount_of_every_replicate():
    """profile's replicates come from per-patch counts subtracted from the whole sample's: the
    same floats, bit for bit, as standardising the galaxies left after deleting each patch."""
    from desivoids.systematics.matching import mass_bin_index as mbi
    from desivoids.systematics.profiles import profile, standardised_fractions

    rng = np.random.default_rng(7)
    n = 4000
    x = rng.uniform(0, 3.2, n)  # some beyond the last edge: left out
    logm = rng.uniform(9.4, 12.1, n)
    q = rng.random(n) < 0.2 + 0.1 * (logm - 9.5)
    patch = rng.choice([3, 5, 8, 13, 21], n)
    patch[(x > 2.0) & (x < 3.0)] = 21  # the last bin in one patch: its replicate is empty there
    x_edges, mass_edges = [0, 0.5, 1.0, 2.0, 3.0], [9.5, 10.0, 10.5, 11.0, 12.0]
    got = profile(q, x, logm, patch, x_edges, mass_edges, alpha=0.05)

    xb, mb = mbi(x, x_edges), mbi(logm, mass_edges)
    use = (xb >= 0) & (mb >= 0)
    reference = np.bincount(mb[use], minlength=4).astype(float)
    d = pd.DataFrame({"q": q[use], "xb": xb[use], "mb": mb[use], "patch": patch[use]})
    jk = jackknife(d, lambda f: pd.Series(standardised_fractions(
        f.q.to_numpy(), f.xb.to_numpy(), f.mb.to_numpy(), 4, reference)), alpha=0.05)
    np.testing.assert_array_equal(got.fraction.to_numpy(), np.asarray(jk.estimate, float))
    np.testing.assert_array_equal(got.se.to_numpy(), np.asarray(jk.se, float))
    np.testing.assert_array_equal(got.jk_lo.to_numpy(), np.asarray(jk.lo, float))
    np.testing.assert_array_equal(got.jk_hi.to_numpy(), np.asarray(jk.hi, float))
    assert np.isnan(got.se.iloc[3])  # deleting patch 21 empties the last bin: no interval


def test_the_quenched_thresholds_import_no_statistics_library():
    """The convert and plausibility chapters import the quenched thresholds only: that must not
    load statsmodels, scipy.stats or the jackknife's HEALPix into their kernels (about 1 CPU s
    each), while the package's names stay what they were."""
    import subprocess
    import sys

    code = ("import sys, desivoids.systematics.quenched as q; "
            "print(sorted(m for m in ('statsmodels', 'scipy.stats', 'astropy_healpix') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    from desivoids import systematics
    from desivoids.systematics import intervals, stage

    assert systematics.run is stage.run and systematics.wilson is intervals.wilson
    # a submodule is an attribute without its own import, as when the package imported them all
    # (the systematics chapter reads systematics.expected)
    code = "import desivoids.systematics as s; print(s.expected.__name__, s.profiles.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["desivoids.systematics.expected", "desivoids.systematics.profiles"]
    assert callable(systematics.quenched) and callable(systematics.jackknife)
    with pytest.raises(AttributeError):
        systematics.no_such_name  # noqa: B018
