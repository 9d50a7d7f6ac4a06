"""Logistic regression quenched ~ void + bs(log M*) + z with cluster-robust errors.

Why: the mass-binned and reweighted fractions adjust for stellar mass in steps; the regression
adjusts for it smoothly (a cubic B-spline, patsy's ``bs``) and for redshift at the same time, and
reports the void effect as an odds ratio at fixed mass and redshift. Galaxies in one void (and
one patch of sky) are correlated, so the errors are cluster-robust (statsmodels GLM,
``cov_type="cluster"``, Liang & Zeger 1986, with statsmodels' small-sample correction) over the
caller's clusters, meant to be the equal-area HEALPix patches of :mod:`.jackknife`; the interval
uses Student's t with G - 1 degrees of freedom (G clusters), as Cameron & Miller (2015) advise.

A fit that cannot give a trustworthy number (perfect or quasi-complete separation, no
convergence, a rank-deficient design, too few clusters) returns NaN with the reason, never a
number.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import (ConvergenceWarning, HessianInversionWarning,
                                             PerfectSeparationError, PerfectSeparationWarning)

#: right-hand side (patsy); bs() puts its interior knots at quantiles of log M*
RHS = "void + bs(logm, df={df}, degree=3) + z"
#: a fitted probability within this of 0 or 1 marks (quasi-)separation
SEPARATION_EPS = 1e-8


@dataclass(frozen=True)
class VoidEffect:
    """The void coefficient of the logistic regression (log odds ratio, void vs wall)."""

    beta: float          # log odds ratio at fixed log M* and z
    se: float            # cluster-robust standard error of beta
    odds_ratio: float    # exp(beta)
    or_lo: float         # exp of the (1 - alpha) interval of beta (t, G - 1 dof)
    or_hi: float
    pvalue: float
    n_obs: int
    n_clusters: int
    n_void: int
    n_wall: int
    n_dropped_missing: int   # rows dropped for a non-finite mass or redshift, or a null cluster
    spline_df: int
    alpha: float
    reason: str          # "" when the fit is usable, else why the numbers are NaN

    @property
    def ok(self) -> bool:
        return self.reason == ""

    def as_dict(self) -> dict:
        return asdict(self)


def _failed(reason: str, **counts) -> VoidEffect:
    nan = math.nan
    return VoidEffect(beta=nan, se=nan, odds_ratio=nan, or_lo=nan, or_hi=nan, pvalue=nan,
                      reason=reason, **counts)


def logit_void_effect(data: pd.DataFrame, *, groups="patch", outcome: str = "quenched",
                      void: str = "void", mass: str = "logmstar", redshift: str = "z",
                      spline_df: int = 4, alpha: float = 0.05,
                      min_clusters: int = 10) -> VoidEffect:
    """Fit logit P(quenched) = b0 + beta void + bs(log M*, spline_df) + c z; return beta.

    ``data``: one row per galaxy, ``outcome`` and ``void`` boolean (no missing values: drop the
    undefined quenched rows first); ``groups``: a column name or an array of cluster labels (any
    hashable values), one per row. ``min_clusters``: fewer distinct clusters than this gives NaN
    (the cluster-robust covariance has rank at most G - 1 and is biased for small G).
    """
    y = data[outcome].to_numpy()
    v = data[void].to_numpy()
    if y.dtype != bool or v.dtype != bool:
        raise TypeError(f"{outcome!r} and {void!r} must be boolean columns without missing values")
    g = data[groups].to_numpy() if isinstance(groups, str) else np.asarray(groups)
    if g.shape != y.shape:
        raise ValueError("groups must have one label per row")
    logm = pd.to_numeric(data[mass]).to_numpy(dtype=np.float64, na_value=np.nan)
    z = pd.to_numeric(data[redshift]).to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.isfinite(logm) & np.isfinite(z) & ~pd.isna(g)
    y, v, logm, z, g = y[keep], v[keep], logm[keep], z[keep], g[keep]
    codes, uniques = pd.factorize(g)
    counts = dict(n_obs=int(y.size), n_clusters=int(len(uniques)), n_void=int(v.sum()),
                  n_wall=int((~v).sum()), n_dropped_missing=int((~keep).sum()),
                  spline_df=int(spline_df), alpha=alpha)

    if counts["n_void"] == 0 or counts["n_wall"] == 0:
        return _failed("no void galaxies" if counts["n_void"] == 0 else "no wall galaxies",
                       **counts)
    for name, sel in (("void", v), ("wall", ~v)):
        if y[sel].all() or not y[sel].any():
            return _failed(f"separation: every {name} galaxy is "
                           f"{'quenched' if y[sel].all() else 'star-forming'} "
                           "(the void coefficient is infinite)", **counts)
    if counts["n_clusters"] < min_clusters:
        return _failed(f"too few clusters: {counts['n_clusters']} < {min_clusters}", **counts)

    frame = pd.DataFrame({"y": y.astype(np.float64), "void": v.astype(np.float64),
                          "logm": logm, "z": z})
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # patsy itself, not statsmodels' configurable formula engine: the spline is
            # patsy's bs() whatever engine is set globally
            exog = patsy.dmatrix(RHS.format(df=int(spline_df)), frame, NA_action="raise",
                                 return_type="dataframe")
            model = sm.GLM(frame["y"], exog, family=sm.families.Binomial())
            # GLM computed the design's rank already (df_model = rank - 1): not a second SVD
            if model.df_model + 1 < model.exog.shape[1]:
                return _failed("rank-deficient design (constant redshift or mass?)", **counts)
            res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True)
    except PerfectSeparationError as exc:
        return _failed(f"perfect separation: {exc}", **counts)
    except (ValueError, np.linalg.LinAlgError, patsy.PatsyError) as exc:
        return _failed(f"fit failed: {type(exc).__name__}: {exc}", **counts)
    for w in caught:
        if issubclass(w.category, PerfectSeparationWarning):
            return _failed(f"perfect separation: {w.message}", **counts)
        if issubclass(w.category, (ConvergenceWarning, HessianInversionWarning)):
            return _failed(f"fit did not converge cleanly: {w.category.__name__}: {w.message}",
                           **counts)
    if not res.converged:
        return _failed("IRLS did not converge", **counts)
    # statsmodels' GLM does not always warn: a quasi-complete separation (by mass, say) still
    # "converges", to fitted probabilities of exactly 0 or 1 and infinite coefficients.
    with np.errstate(all="ignore"):
        mu = np.asarray(res.fittedvalues)
    n_extreme = int(np.count_nonzero((mu < SEPARATION_EPS) | (mu > 1 - SEPARATION_EPS)))
    if n_extreme:
        return _failed(f"quasi-complete separation: {n_extreme} rows fitted with probability "
                       "0 or 1", **counts)
    beta, se = float(res.params["void"]), float(res.bse["void"])
    if not (math.isfinite(beta) and math.isfinite(se) and se > 0):
        return _failed("non-finite coefficient or standard error", **counts)
    lo, hi = (float(x) for x in res.conf_int(alpha=alpha).loc["void"])
    return VoidEffect(beta=beta, se=se, odds_ratio=math.exp(beta), or_lo=math.exp(lo),
                      or_hi=math.exp(hi), pvalue=float(res.pvalues["void"]), reason="",
                      **counts)
