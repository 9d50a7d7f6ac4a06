"""Intervals for one quenched fraction and for the void-versus-wall contrast.

All intervals come from statsmodels; this module only chooses the methods and packages the
numbers:

- one fraction: Wilson's (1927) score interval (``proportion_confint(method="wilson")``), which
  stays inside [0, 1] and keeps its coverage near 0 and 1, unlike the Wald interval;
- risk difference p1 - p2: Newcombe's (1998) hybrid score interval, his method 10, built from the
  two Wilson intervals (``confint_proportions_2indep(method="newcomb", compare="diff")``);
- risk ratio p1 / p2: Koopman's (1984) score interval with Miettinen & Nurminen's (1985)
  N/(N-1) variance correction (``compare="ratio", method="score"``);
- odds ratio: Miettinen & Nurminen's (1985) score interval (``compare="odds-ratio",
  method="score"``);
- Cohen's (1988) h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)), the effect size for a 0/1 outcome
  (Cohen's d is for continuous outcomes).

Weighted groups (the wall group reweighted to the void stellar-mass distribution) enter the same
formulas through Kish's (1965) effective sample size n_eff = (sum w)^2 / sum w^2, with the
weighted fraction p_w and the effective count p_w * n_eff. That is an approximation: it treats
the weights as fixed and the galaxies as independent. Galaxies in one void are correlated and the
weights are themselves estimated, so the honest error is the delete-one-patch jackknife
(:mod:`.jackknife`); the analytic intervals are reported beside it, not instead of it.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

#: methods passed to statsmodels, recorded in every result
RD_METHOD = "newcomb"
RATIO_METHOD = "score"
OR_METHOD = "score"


def wilson(k, n, alpha: float = 0.05):
    """Fraction k/n and Wilson's (1927) score interval: ``(p, lo, hi)``.

    Vectorised; k and n may be non-integer (effective counts of a weighted group). n == 0 gives
    NaN for all three, never 0.
    """
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("wilson needs 0 <= k <= n")
    empty = n <= 0
    safe_n = np.where(empty, 1.0, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = proportion_confint(np.where(empty, 0.0, k), safe_n, alpha=alpha,
                                    method="wilson")
        p = np.where(empty, np.nan, k / safe_n)
    # the score interval holds p; statsmodels' rounding can leave lo at 3e-17 for k = 0 (or hi
    # a hair under 1 for k = n), which a plot of p - lo then rejects as a negative error bar
    lo = np.where(empty, np.nan, np.minimum(lo, p))
    hi = np.where(empty, np.nan, np.maximum(hi, p))
    if p.ndim == 0:
        return float(p), float(lo), float(hi)
    return p, lo, hi


def kish_neff(w) -> float:
    """Kish's (1965) effective sample size (sum w)^2 / sum w^2 (0 for no positive weight).

    Why: a weighted fraction of n galaxies carries the information of n_eff unweighted ones when
    the weights are uncorrelated with the outcome; n_eff = n for equal weights.
    """
    w = np.asarray(w, dtype=np.float64)
    if np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


@dataclass(frozen=True)
class WeightedProportion:
    p: float        # sum w y / sum w
    n_eff: float    # Kish's effective sample size
    k_eff: float    # p * n_eff: the effective count fed to the intervals
    sum_w: float
    n: int          # rows with a positive weight


def weighted_proportion(y, w=None) -> WeightedProportion:
    """Weighted fraction of True in ``y`` with Kish's n_eff (w=None: unit weights)."""
    y = np.asarray(y)
    if y.dtype != bool:
        raise TypeError("y must be a boolean array (drop undefined rows first)")
    w = np.ones(y.shape, dtype=np.float64) if w is None else np.asarray(w, dtype=np.float64)
    if w.shape != y.shape:
        raise ValueError("y and w differ in shape")
    n_eff = kish_neff(w)
    sw = float(w.sum())
    p = float(np.sum(w * y) / sw) if sw > 0 else math.nan
    return WeightedProportion(p=p, n_eff=n_eff, k_eff=p * n_eff if sw > 0 else math.nan,
                              sum_w=sw, n=int(np.count_nonzero(w > 0)))


def cohens_h(p1, p2):
    """Cohen's (1988) h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p2)), vectorised.

    Why: the arcsine transform stabilises the variance of a proportion, so equal h means equal
    detectability whatever the baseline fraction (0.2 small, 0.5 medium, 0.8 large).
    """
    p1 = np.asarray(p1, dtype=np.float64)
    p2 = np.asarray(p2, dtype=np.float64)
    h = 2.0 * np.arcsin(np.sqrt(p1)) - 2.0 * np.arcsin(np.sqrt(p2))
    return float(h) if h.ndim == 0 else h


@dataclass(frozen=True)
class TwoProportions:
    """Group 1 (voids) against group 2 (walls). Ratios are p1/p2; NaN where undefined."""

    n1: float
    k1: float
    n2: float
    k2: float
    p1: float
    p2: float
    rd: float        # p1 - p2
    rd_lo: float     # Newcombe (1998) method 10
    rd_hi: float
    rr: float        # p1 / p2
    rr_lo: float     # Koopman (1984) score, Miettinen-Nurminen correction
    rr_hi: float
    odds_ratio: float
    or_lo: float     # Miettinen-Nurminen (1985) score
    or_hi: float
    h: float         # Cohen's h
    alpha: float

    def as_dict(self) -> dict:
        return asdict(self)


def _interval(compare: str, method: str, k1, n1, k2, n2, alpha) -> tuple[float, float]:
    """statsmodels' interval, NaN where it is undefined (empty group, zero cells for the score
    odds-ratio interval) instead of an exception or a warning."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = confint_proportions_2indep(k1, n1, k2, n2, method=method, compare=compare,
                                                alpha=alpha)
        if np.iscomplexobj(lo) or np.iscomplexobj(hi):
            # the score interval's root search failed (a group at 100 %, e.g. 0/2 against 15/15
            # gives [0.88, 0.88] +- 1e-8 j): undefined, not its real part
            return math.nan, math.nan
        return float(lo), float(hi)
    except (ZeroDivisionError, ValueError, FloatingPointError):
        return math.nan, math.nan


def two_proportions(k1, n1, k2, n2, alpha: float = 0.05) -> TwoProportions:
    """Risk difference, risk ratio, odds ratio with their intervals, and Cohen's h, for k1/n1
    against k2/n2 (counts may be effective, non-integer counts of weighted groups)."""
    k1, n1, k2, n2 = (float(v) for v in (k1, n1, k2, n2))
    for k, n in ((k1, n1), (k2, n2)):
        if not (0 <= k <= n) or not math.isfinite(n):
            raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n1 <= 0 or n2 <= 0:
        nan = math.nan
        return TwoProportions(n1, k1, n2, k2, *(nan,) * 12, alpha)
    p1, p2 = k1 / n1, k2 / n2
    rd_lo, rd_hi = _interval("diff", RD_METHOD, k1, n1, k2, n2, alpha)
    rr_lo, rr_hi = _interval("ratio", RATIO_METHOD, k1, n1, k2, n2, alpha)
    or_lo, or_hi = _interval("odds-ratio", OR_METHOD, k1, n1, k2, n2, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        rr = float(np.divide(p1, p2))
        odds = float(np.divide(p1 * (1 - p2), p2 * (1 - p1)))
    return TwoProportions(n1=n1, k1=k1, n2=n2, k2=k2, p1=p1, p2=p2, rd=p1 - p2, rd_lo=rd_lo,
                          rd_hi=rd_hi, rr=rr, rr_lo=rr_lo, rr_hi=rr_hi, odds_ratio=odds,
                          or_lo=or_lo, or_hi=or_hi, h=cohens_h(p1, p2), alpha=alpha)


def two_proportions_weighted(y1, y2, w1=None, w2=None, alpha: float = 0.05) -> TwoProportions:
    """:func:`two_proportions` on weighted groups: weighted fractions and Kish's n_eff.

    The result's n1/n2 are the effective sizes and k1/k2 the effective counts p_w * n_eff. The
    intervals assume fixed weights and independent galaxies (see the module docstring): compare
    them with the jackknife before trusting them.
    """
    a = weighted_proportion(y1, w1)
    b = weighted_proportion(y2, w2)
    if a.sum_w <= 0 or b.sum_w <= 0:
        return two_proportions(0, a.n_eff, 0, b.n_eff, alpha)
    return two_proportions(a.k_eff, a.n_eff, b.k_eff, b.n_eff, alpha)
