"""Logistic regression quenched ~ void + bs(log M*) + z with cluster-robust errors.

Why: the mass-binned and reweighted fractions adjust for stellar mass in steps; the regression
adjusts for it smoothly (a cubic B-spline, patsy's ``bs``) and for redshift at the same time, and
reports the void effect as an odds ratio at fixed mass and redshift. Galaxies in one void (and
one patch of sky) are correlated, so the errors are cluster-robust (statsmodels' Logit, the
binomial GLM's maximum likelihood by Newton's method with the analytic Hessian, 10x faster than
GLM's IRLS on 700,000 rows; ``cov_type="cluster"``, Liang & Zeger 1986, with statsmodels'
small-sample correction: the same estimate and errors as the GLM, tested) over the
caller's clusters, meant to be the equal-area HEALPix patches of :mod:`.jackknife`; the interval
uses Student's t with G - 1 degrees of freedom (G clusters), as Cameron & Miller (2015) advise.

A fit that cannot give a trustworthy number (perfect or quasi-complete separation, no
convergence, a rank-deficient design, too few clusters) returns NaN with the reason, never a
number.
"""
from __future__ import annotations

import math
import threading
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.interpolate import BSpline
from scipy.linalg import blas

from ..idsets import small_codes

#: the design's columns: intercept, void, patsy's bs(log M*, df, degree=3) (no intercept
#: column), z; bs puts its interior knots at quantiles of log M*
RHS = "void + bs(logm, df={df}, degree=3) + z"
#: the void coefficient's column in the design (after the intercept)
VOID_COLUMN = 1
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


def bs_basis(x: np.ndarray, df: int, degree: int = 3) -> np.ndarray:
    """patsy's ``bs(x, df=df, degree=degree)`` (include_intercept False): the B-spline basis on
    the knots patsy places (the boundary knots at min and max of ``x``, repeated degree + 1
    times, the interior knots at equally spaced quantiles), its first column dropped; by
    scipy's BSpline (patsy evaluates it by one splev call per column, 5x slower; equal to
    patsy's to rounding, tested)."""
    x = np.asarray(x, np.float64)
    return _bs_spline(x, df, degree)(x)


def _bs_spline(x: np.ndarray, df: int, degree: int = 3) -> BSpline:
    """The spline of :func:`bs_basis` on ``x``'s knots: evaluated anywhere, its basis."""
    order = degree + 1
    n_inner = df - order + 1
    if n_inner < 0:
        raise ValueError(f"df={df} is too small for degree {degree}")
    inner = np.percentile(x, 100 * np.linspace(0, 1, n_inner + 2)[1:-1])
    knots = np.concatenate([[x.min()] * order, inner, [x.max()] * order])
    # the spline whose coefficients are the identity's columns (less the first) is the basis,
    # dense, bit for bit design_matrix's; extrapolate=True only skips scipy's bounds check
    # (Python's min and max over x): every x lies between the boundary knots, its min and max.
    # 3x faster than design_matrix(x, knots, degree).toarray() on 700,000 rows
    n_basis = knots.size - order
    return BSpline(knots, np.eye(n_basis)[:, 1:], degree, extrapolate=True)


#: statsmodels' Newton: its step tolerance, iteration limit and Hessian ridge
NEWTON_TOL, NEWTON_MAXITER, NEWTON_RIDGE = 1e-8, 35, 1e-10
#: the fast path leaves to statsmodels a design or Hessian whose eigenvalue ratio is smaller
#: (x'x's ratio above 1e-12 bounds x's pivoted-QR diagonal ratio above 1e-6, far from the 8 eps
#: at which statsmodels calls the design rank-deficient: never a fast number where it would not)
WELL_CONDITIONED = 1e-12
#: a warm start for Newton's method from every WARM_STEP-th row (the full fit then takes 4
#: steps instead of 6 at DR1 scale); fits of fewer rows than WARM_MIN start from zero, as
#: statsmodels' do
WARM_STEP, WARM_MIN = 16, 100_000


#: rows per block of a pass over the design: a block and its temporaries stay in the cache,
#: so a Newton step reads the design once (the whole-array step read and wrote it four times
#: and allocated 40 MB temporaries per step, paid again in page faults)
BLOCK = 8192


def _symmetric(lower: np.ndarray) -> np.ndarray:
    return np.tril(lower) + np.tril(lower, -1).T


def _gram(x: np.ndarray) -> np.ndarray:
    """x' x by BLAS's symmetric rank-k update, block by block (x C-ordered)."""
    k = x.shape[1]
    h = np.zeros((k, k), order="F")
    for i in range(0, x.shape[0], BLOCK):
        h = blas.dsyrk(1.0, x[i:i + BLOCK].T, beta=1.0, c=h, trans=0, lower=1, overwrite_c=1)
    return _symmetric(h)


def _pass(y: np.ndarray, x: np.ndarray, params: np.ndarray, codes: np.ndarray | None = None,
          size: int = 0):
    """One pass over the rows at ``params``, block by block: (x' W x, the score x'(y - mu), the
    scores summed per cluster ``codes`` (0 .. size - 1; None without codes), whether every
    fitted probability is finite and within SEPARATION_EPS of neither 0 nor 1). W = mu (1 - mu);
    x C-ordered."""
    n, k = x.shape
    h = np.zeros((k, k), order="F")
    score = np.zeros(k)
    sums = None if codes is None else np.zeros((size, k))
    clear = True
    buf = np.empty((min(BLOCK, n), k))
    for i in range(0, n, BLOCK):
        xb = x[i:i + BLOCK]
        b = buf[:len(xb)]
        mu = special.expit(xb @ params)  # a ufunc: no overflow warning
        r = y[i:i + BLOCK] - mu
        h = blas.dsyrk(1.0, np.multiply(xb, np.sqrt(mu * (1 - mu))[:, None], out=b).T,
                       beta=1.0, c=h, trans=0, lower=1, overwrite_c=1)
        score += r @ xb
        if codes is not None:
            clear = clear and bool(np.all(np.isfinite(mu)) and not np.any(
                (mu < SEPARATION_EPS) | (mu > 1 - SEPARATION_EPS)))
            cells = (codes[i:i + BLOCK, None] * k + np.arange(k)).ravel()  # (cluster, column)
            sums += np.bincount(cells, weights=np.multiply(xb, r[:, None], out=b).ravel(),
                                minlength=size * k).reshape(size, k)
    return _symmetric(h), score, sums, clear


def _newton(y: np.ndarray, x: np.ndarray, start: np.ndarray):
    """statsmodels' Newton loop (``base.optimizer._fit_newton``) for the logit log-likelihood:
    at most NEWTON_MAXITER steps, stopped when no parameter moved by more than NEWTON_TOL,
    ridge NEWTON_RIDGE on the Hessian: (params, converged)."""
    params, old = start, np.full_like(start, np.inf)
    for _ in range(NEWTON_MAXITER):
        if not np.any(np.abs(params - old) > NEWTON_TOL):
            return params, True
        h, score, _, _ = _pass(y, x, params)     # -Hessian and the score
        h[np.diag_indices_from(h)] -= NEWTON_RIDGE
        old, params = params, params + np.linalg.solve(h, score)
        if not np.all(np.isfinite(params)):
            return params, False
    return params, False  # statsmodels: maxiter steps taken is a ConvergenceWarning


def newton_logit(y: np.ndarray, exog: np.ndarray, codes: np.ndarray):
    """statsmodels' ``Logit(y, exog).fit(cov_type="cluster", cov_kwds={"groups": codes})``:
    (params, covariance with its small-sample correction), or None for any fit that is not
    plainly well-posed (a design or Hessian near singular, no convergence, a fitted probability
    within SEPARATION_EPS of 0 or 1), which the caller leaves to statsmodels and its checks.

    Why: statsmodels spends most of a 700,000-row fit outside the arithmetic (a pivoted QR of
    the design for its rank, the Hessian by a full temporary product, predict called twice
    per iteration); the stage fits 81 of them. Same estimate (the likelihood's unique maximum,
    reached to the same tolerance) and the same sandwich, tested against statsmodels."""
    try:
        return _newton_logit(np.asarray(y, np.float64), np.ascontiguousarray(exog, np.float64),
                             np.asarray(codes))
    except np.linalg.LinAlgError:  # a singular step: statsmodels' checks say why
        return None


def _newton_logit(y: np.ndarray, x: np.ndarray, codes: np.ndarray):
    n, k = x.shape
    if not _well_conditioned(x):
        return None
    start = np.zeros(k)
    if n >= WARM_MIN:  # the maximum is unique: a start nearer to it changes only the path
        warm, ok = _newton(y[::WARM_STEP], np.ascontiguousarray(x[::WARM_STEP]), start)
        if ok:
            start = warm
    params, converged = _newton(y, x, start)
    if not converged:
        return None
    # the meat: the scores summed per cluster (codes 0 .. G - 1, as pandas.factorize gives)
    size = int(codes.max()) + 1
    neg_hess, _, sums, clear = _pass(y, x, params, codes, size)
    if not clear:
        return None
    ev = np.linalg.eigvalsh(neg_hess)
    if not (np.all(np.isfinite(ev)) and ev[0] > WELL_CONDITIONED * ev[-1]):
        return None
    bread = np.linalg.inv(-neg_hess)
    g = int(np.count_nonzero(np.bincount(codes, minlength=size)))
    if g < 2:
        return None
    cov = bread @ (sums.T @ sums) @ bread.T * (g / (g - 1.0) * ((n - 1.0) / (n - k)))
    return params, cov


_scratch = threading.local()


def _scratch_array(n: int, k: int) -> np.ndarray:
    """An empty n x k array in this thread's reused buffer, valid until the thread's next call:
    a fresh 50 MB design per fit was mapped anew each time, 12,000 pages the kernel zeroed and
    faulted in (seconds of system time over the stage's 81 fits)."""
    buf = getattr(_scratch, "design", None)
    if buf is None or buf.size < n * k:
        buf = _scratch.design = np.empty(n * k)
    return buf[:n * k].reshape(n, k)


def _design(v: np.ndarray, logm: np.ndarray, z: np.ndarray, spline_df: int) -> np.ndarray:
    """The design of RHS (C order: intercept, void, bs(log M*), z), block by block: a block's
    spline basis goes straight into its rows (no 40 MB basis copied into a 50 MB design); in
    the thread's scratch buffer (:func:`_scratch_array`), used only within one fit.

    The thread's previous design is returned as it is when ``v``, ``logm``, ``z`` and
    ``spline_df`` equal its own: the stage fits the same rows for each quenched definition
    (only the outcome differs), and the spline's evaluation was a quarter of every fit."""
    last = getattr(_scratch, "last", None)
    if last is not None and last[0] == spline_df and all(
            a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(last[1], (v, logm, z))):
        return last[2]
    _scratch.last = _scratch.conditioned = None  # the buffer is rewritten below
    spline = _bs_spline(logm, spline_df)
    exog = _scratch_array(logm.size, spline.c.shape[1] + 3)
    for i in range(0, logm.size, BLOCK):
        rows = exog[i:i + BLOCK]
        rows[:, 0], rows[:, 1], rows[:, -1] = 1.0, v[i:i + BLOCK], z[i:i + BLOCK]
        rows[:, 2:-1] = spline(logm[i:i + BLOCK])
    _scratch.last = (spline_df, (v.copy(), logm.copy(), z.copy()), exog)
    return exog


def _well_conditioned(x: np.ndarray) -> bool:
    """Whether x'x's eigenvalues are finite and their ratio above WELL_CONDITIONED; once per
    design of :func:`_design` (a reused design keeps its answer)."""
    known, last = getattr(_scratch, "conditioned", None), getattr(_scratch, "last", None)
    if known is not None and last is not None and known[0] is x and last[2] is x:
        return known[1]
    ev = np.linalg.eigvalsh(_gram(x))
    ok = bool(np.all(np.isfinite(ev)) and ev[0] > WELL_CONDITIONED * ev[-1])
    _scratch.conditioned = (x, ok)
    return ok


def _failed(reason: str, **counts) -> VoidEffect:
    nan = math.nan
    return VoidEffect(beta=nan, se=nan, odds_ratio=nan, or_lo=nan, or_hi=nan, pvalue=nan,
                      reason=reason, **counts)


def _fit(model, codes: np.ndarray):
    """(results, "") of ``model`` (Logit or binomial GLM) with errors clustered on ``codes``,
    or (None, why the fit cannot be trusted)."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import (ConvergenceWarning, HessianInversionWarning,
                                                 PerfectSeparationError,
                                                 PerfectSeparationWarning)

    if model.df_model + 1 < model.exog.shape[1]:  # the model computed the design's rank
        return None, "rank-deficient design (constant redshift or mass?)"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kw = {"disp": 0} if isinstance(model, sm.Logit) else {}
            res = model.fit(cov_type="cluster", cov_kwds={"groups": codes}, use_t=True, **kw)
    except PerfectSeparationError as exc:
        return None, f"perfect separation: {exc}"
    except (ValueError, np.linalg.LinAlgError) as exc:
        return None, f"fit failed: {type(exc).__name__}: {exc}"
    for w in caught:
        if issubclass(w.category, PerfectSeparationWarning):
            return None, f"perfect separation: {w.message}"
        if issubclass(w.category, (ConvergenceWarning, HessianInversionWarning)):
            return None, f"fit did not converge cleanly: {w.category.__name__}: {w.message}"
    converged = res.mle_retvals.get("converged", False) if isinstance(model, sm.Logit) \
        else res.converged
    return (res, "") if converged else (None, "the fit did not converge")


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
    if not keep.all():
        y, v, logm, z, g = y[keep], v[keep], logm[keep], z[keep], g[keep]
    # the stage's patch numbers are coded by a count (the order of the codes changes no number)
    uniques, codes = small_codes(g) or pd.factorize(g)[::-1]
    n_clusters = len(uniques)
    counts = dict(n_obs=int(y.size), n_clusters=n_clusters, n_void=int(v.sum()),
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

    try:
        exog = _design(v, logm, z, int(spline_df))
    except ValueError as exc:
        return _failed(f"fit failed: {type(exc).__name__}: {exc}", **counts)
    fast = newton_logit(y, exog, codes)
    if fast is not None and np.isfinite(fast[1][VOID_COLUMN, VOID_COLUMN]) \
            and fast[1][VOID_COLUMN, VOID_COLUMN] > 0:  # statsmodels' Logit fit and clustered
        # errors, without its overheads; an se the fast path cannot give is the GLM's to explain
        params, cov = fast
        beta, se = float(params[VOID_COLUMN]), float(math.sqrt(cov[VOID_COLUMN, VOID_COLUMN]))
        dof = counts["n_clusters"] - 1
        q = float(stats.t.ppf(1 - alpha / 2, dof))
        return VoidEffect(beta=beta, se=se, odds_ratio=math.exp(beta),
                          or_lo=math.exp(beta - q * se), or_hi=math.exp(beta + q * se),
                          pvalue=float(stats.t.sf(abs(beta / se), dof) * 2), reason="",
                          **counts)
    import statsmodels.api as sm  # here: the fast path above needs none of its import time

    # Newton's method first; a fit it cannot finish cleanly (separation drives its Hessian
    # singular) is redone by the GLM's IRLS, whose checks name the reason
    res, reason = _fit(sm.Logit(y.astype(np.float64), exog), codes)
    if reason:
        res, reason = _fit(sm.GLM(y.astype(np.float64), exog, family=sm.families.Binomial()),
                           codes)
    if reason:
        return _failed(reason, **counts)
    # a quasi-complete separation (by mass, say) can still "converge", to fitted
    # probabilities of exactly 0 or 1 and infinite coefficients.
    with np.errstate(all="ignore"):
        mu = np.asarray(res.predict(exog))
    n_extreme = int(np.count_nonzero((mu < SEPARATION_EPS) | (mu > 1 - SEPARATION_EPS)))
    if n_extreme:
        return _failed(f"quasi-complete separation: {n_extreme} rows fitted with probability "
                       "0 or 1", **counts)
    beta, se = float(res.params[VOID_COLUMN]), float(res.bse[VOID_COLUMN])
    if not (math.isfinite(beta) and math.isfinite(se) and se > 0):
        return _failed("non-finite coefficient or standard error", **counts)
    lo, hi = (float(x) for x in res.conf_int(alpha=alpha)[VOID_COLUMN])
    return VoidEffect(beta=beta, se=se, odds_ratio=math.exp(beta), or_lo=math.exp(lo),
                      or_hi=math.exp(hi), pvalue=float(res.pvalues[VOID_COLUMN]), reason="",
                      **counts)
