"""One comparison of void and wall galaxies -> one tidy row of effect sizes and intervals.

The systematics stage calls :func:`compare_void_wall` once per algorithm, sample (all voids /
interior voids), quenched definition and cap (NGC, SGC, both), and stacks the rows. Each row
holds, side by side:

- the mass-matched quenched fractions: voids, and walls reweighted to the void stellar-mass
  histogram (:func:`.matching.mass_weights`), with Wilson intervals (walls: at Kish's n_eff);
- the risk difference with Newcombe's (1998, method 10) interval, the risk ratio (Koopman 1984
  score interval) and Cohen's (1988) h, all from the weighted fractions and n_eff;
- the same risk difference, h and risk ratio with delete-one-patch jackknife errors (the whole
  matching is redone in every replicate, so the error includes the weights' own noise and the
  correlation of galaxies in one void or patch): **the honest error**; the t quantile uses the
  jackknife variance's Satterthwaite degrees of freedom (``jk_dof``, at most K - 1), which fall
  well below K - 1 when the void galaxies sit in a few patches; the analytic intervals
  assume independent galaxies and fixed weights and are reported for comparison only;
- the odds ratio of the logistic regression quenched ~ void + bs(log M*) + z with errors
  clustered on the same patches;
- the unmatched ("raw") fractions, to show how much of the raw contrast is a mass difference.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .intervals import cohens_h, two_proportions_weighted, wilson
from .jackknife import from_replicates, satterthwaite_dof
from .matching import mass_weights
from ..idsets import small_codes
from .regression import logit_void_effect

REQUIRED = ("quenched", "void", "logmstar", "z", "patch")


def _check(sample: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in sample.columns]
    if missing:
        raise KeyError(f"sample lacks columns {missing}; needs {list(REQUIRED)}")
    for c in ("quenched", "void"):
        if sample[c].dtype != bool:
            raise TypeError(f"column {c!r} must be plain bool (no missing values): drop "
                            f"failed fits and undefined rows before comparing")
    if sample["patch"].isna().any():
        raise ValueError("column 'patch' has missing values")


#: the per-(patch, bin) counts, last axis of :func:`patch_bin_counts`
COUNTS = ("n_void", "k_void", "n_wall", "k_wall")


def patch_bin_counts(patch, bin_index, void, quenched, n_bins: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(patches, counts): the patches holding a row in a mass bin (sorted), and per patch and
    bin the void and wall galaxies and how many of each are quenched, counts[p, b, COUNTS].

    Rows in no bin (``bin_index`` -1) are left out, and so are patches with no row in a bin.
    """
    inbin = bin_index >= 0
    labels = np.asarray(patch)[inbin]
    patches, codes = small_codes(labels) or np.unique(labels, return_inverse=True)
    v = np.asarray(void)[inbin]
    q = np.asarray(quenched)[inbin]
    # one count of (patch, bin, group and state): void not quenched, void quenched, wall not
    # quenched, wall quenched (one pass, not four masked copies and four counts)
    cell = (codes.astype(np.int64) * n_bins + bin_index[inbin]) * 4 + 2 * ~v + q
    by = np.bincount(cell, minlength=patches.size * n_bins * 4).reshape(patches.size, n_bins, 4)
    return patches, np.stack([by[..., 0] + by[..., 1], by[..., 1], by[..., 2] + by[..., 3],
                              by[..., 3]], axis=-1)


def matched_stats(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Matched statistics (rd, h, log_rr) from per-bin counts ``counts[..., bin, COUNTS]``, for
    every leading index at once (the full sample and each delete-one-patch replicate).

    Direct standardisation: p_wall = sum_b n_void,b * (k_wall,b / n_wall,b) / sum_b n_void,b over
    the bins where both groups are present, which is exactly the weighted wall fraction of
    :func:`.matching.mass_weights`. NaN where no bin holds both groups.
    """
    n_void, k_void, n_wall, k_wall = (counts[..., j] for j in range(len(COUNTS)))
    kept = (n_void > 0) & (n_wall > 0)
    nv = np.where(kept, n_void, 0).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_void = np.where(kept, k_void, 0).sum(axis=-1) / nv
        p_wall = np.where(kept, n_void * k_wall / np.where(kept, n_wall, 1), 0.0).sum(axis=-1) / nv
        p_void = np.where(nv > 0, p_void, np.nan)
        p_wall = np.where(nv > 0, p_wall, np.nan)
        log_rr = np.log(p_void) - np.log(p_wall)
    return {"rd": p_void - p_wall, "h": cohens_h(p_void, p_wall), "log_rr": log_rr}


def _patch_variances(counts: np.ndarray) -> np.ndarray:
    """Per patch, its share of Var(rd) if galaxies were independent (for :func:`satterthwaite_dof`).

    rd = p_void - sum_b (n_void,b / n_void) k_wall,b / n_wall,b over the matched bins, so a void
    galaxy adds p_b (1 - p_b) / n_void^2 and a wall galaxy in bin b adds
    p_b (1 - p_b) (n_void,b / (n_void n_wall,b))^2, p_b the bin's pooled quenched fraction.
    """
    t = counts.sum(axis=0)
    n_void, k_void, n_wall, k_wall = (t[:, j] for j in range(len(COUNTS)))
    kept = (n_void > 0) & (n_wall > 0)
    nv = float(n_void[kept].sum())
    if nv == 0:
        return np.zeros(len(counts))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (k_void + k_wall) / (n_void + n_wall)
        wall = n_void / (nv * n_wall)  # NaN and inf in the unmatched bins, masked below
        a = p * (1 - p) * (counts[..., 0] / nv ** 2 + counts[..., 2] * wall ** 2)
    return np.where(kept, a, 0.0).sum(axis=1)


def compare_void_wall(sample: pd.DataFrame, mass_edges, *, alpha: float = 0.05,
                      spline_df: int = 4, min_clusters: int = 10, regression: bool = True,
                      labels: Mapping | None = None, mass_bin=None) -> pd.Series:
    """Compare the quenched fractions of void and wall galaxies in one sample.

    ``sample``: one row per galaxy with ``quenched`` (bool), ``void`` (bool: True flag 1, False
    flag 0; other flags removed by the caller), ``logmstar`` (log10 Msun), ``z`` and ``patch``
    (the jackknife / cluster label of :func:`.jackknife.healpix_patches`). ``mass_edges``: log M*
    bin edges for the matching. ``labels``: put first in the row (algorithm, definition, ...).
    ``mass_bin``: :func:`.matching.mass_bin_index` of the rows' ``logmstar`` on ``mass_edges``,
    when the caller has it (the stage bins its sample once, not once per comparison).

    Returns one row (a Series). Fractions are in [0, 1]; rd is p_void - p_wall; rr and the odds
    ratio are void / wall. ``*_jk_*``: jackknife; ``logit_*``: regression; ``*_raw``: unmatched.
    """
    _check(sample)
    q = sample["quenched"].to_numpy()
    v = sample["void"].to_numpy()
    logm = pd.to_numeric(sample["logmstar"]).to_numpy(dtype=np.float64, na_value=np.nan)
    mw = mass_weights(logm, v, mass_edges, bin_index=mass_bin)
    used = mw.used

    row: dict[str, object] = dict(labels or {})
    row.update(n_void=int(v.sum()), n_wall=int((~v).sum()),
               n_void_used=int((used & v).sum()), n_wall_used=int((used & ~v).sum()),
               n_bins_dropped=mw.n_bins_dropped)
    # unmatched fractions (every row, no mass matching)
    for name, sel in (("void", v), ("wall", ~v)):
        row[f"p_{name}_raw"] = float(q[sel].mean()) if sel.any() else math.nan
    row["rd_raw"] = row["p_void_raw"] - row["p_wall_raw"]

    # analytic: weighted fractions, Kish n_eff, Wilson / Newcombe / score intervals
    tp = two_proportions_weighted(q[used & v], q[used & ~v], None, mw.weights[used & ~v],
                                  alpha=alpha)
    _, pv_lo, pv_hi = wilson(tp.k1, tp.n1, alpha) if tp.n1 > 0 else (0, math.nan, math.nan)
    _, pw_lo, pw_hi = wilson(tp.k2, tp.n2, alpha) if tp.n2 > 0 else (0, math.nan, math.nan)
    row.update(n_eff_wall=tp.n2, p_void=tp.p1, p_void_lo=pv_lo, p_void_hi=pv_hi,
               p_wall=tp.p2, p_wall_lo=pw_lo, p_wall_hi=pw_hi,
               rd=tp.rd, rd_lo=tp.rd_lo, rd_hi=tp.rd_hi,
               rr=tp.rr, rr_lo=tp.rr_lo, rr_hi=tp.rr_hi, h=tp.h)

    # jackknife over patches, the matching redone in every replicate: the statistic is a
    # function of per-(bin, group) counts, so deleting patch i leaves the totals minus its own
    # counts, and every replicate comes from one array operation
    idx = mw.bin_index  # the matching's mass bins
    patches, counts = patch_bin_counts(sample["patch"].to_numpy(), idx, v, q, len(mass_edges) - 1)
    full = matched_stats(counts.sum(axis=0))
    reps = matched_stats(counts.sum(axis=0) - counts)
    names = list(full)
    # t quantile at the jackknife variance's effective dof (few void-holding patches: < K - 1)
    dof = satterthwaite_dof(_patch_variances(counts))
    jk = from_replicates(pd.Series({n: float(full[n]) for n in names}, dtype=np.float64),
                         pd.DataFrame(reps, index=pd.Index(patches, name="patch"),
                                      columns=names), alpha=alpha, dof=dof)
    row.update(n_patches=jk.n_patches, jk_dof=jk.dof,
               rd_jk_se=jk.se["rd"], rd_jk_lo=jk.lo["rd"], rd_jk_hi=jk.hi["rd"],
               h_jk_se=jk.se["h"], rr_jk_lo=math.exp(jk.lo["log_rr"]),
               rr_jk_hi=math.exp(jk.hi["log_rr"]),
               rd_jk_bias=jk.bias["rd"], jk_reason=jk.reason)

    # logistic regression on the same (mass-matched) rows, clustered on the patches
    if regression:
        fit = logit_void_effect(sample.loc[used], groups="patch", spline_df=spline_df,
                                alpha=alpha, min_clusters=min_clusters)
        row.update(logit_beta=fit.beta, logit_se=fit.se, logit_or=fit.odds_ratio,
                   logit_or_lo=fit.or_lo, logit_or_hi=fit.or_hi, logit_n_obs=fit.n_obs,
                   logit_n_clusters=fit.n_clusters, logit_reason=fit.reason)
    row["alpha"] = alpha
    return pd.Series(row)
