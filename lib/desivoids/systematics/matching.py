"""Stellar-mass matching: compare void and wall galaxies at fixed stellar mass.

Void galaxies are less massive than wall galaxies and the quenched fraction rises steeply with
mass, so a raw void-wall difference is mostly a mass difference. Two remedies, both here:

- :func:`mass_weights`: histogram-ratio weights for the wall galaxies (w = n_void / n_wall in
  their log M* bin), so the weighted wall mass histogram equals the void histogram exactly (a
  direct standardisation of the wall fractions to the void mass distribution). Bins where either
  group is empty cannot be matched: they are dropped and reported, with the rows they held.
- :func:`binned_fractions`: the quenched fraction per mass bin and group, with Wilson intervals.

Bins follow :func:`numpy.histogram`: [e_i, e_i+1) and the last bin closed [e_n-1, e_n]. Rows
outside the edges or with a non-finite mass are in no bin (counted as dropped).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .intervals import wilson


def _edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError("mass bin edges must be a finite, strictly increasing 1-D array of >= 2")
    return e


def mass_bin_index(logmstar, edges) -> np.ndarray:
    """Bin of each value (0 .. len(edges)-2), -1 outside the edges or non-finite."""
    e = _edges(edges)
    x = np.asarray(logmstar, dtype=np.float64)
    idx = np.searchsorted(e, x, side="right") - 1
    idx[x == e[-1]] = e.size - 2          # last bin closed, as numpy.histogram
    idx[~np.isfinite(x) | (idx < 0) | (idx > e.size - 2)] = -1
    return idx


@dataclass(frozen=True)
class MassWeights:
    """Per-row weights aligned with the input: void rows 1, wall rows n_void/n_wall of their bin,
    0 for rows in a dropped bin (or outside the edges, or with non-finite mass)."""

    weights: np.ndarray
    used: np.ndarray           # bool: row in a kept bin (weights > 0)
    bin_index: np.ndarray      # -1: in no bin
    bins: pd.DataFrame         # bin_lo, bin_hi, n_void, n_wall, weight, kept, reason
    n_dropped_void: int        # void rows not used (dropped bin, outside edges, NaN mass)
    n_dropped_wall: int
    n_bins_dropped: int        # bins where one group (not both) is empty, or both

    def summary(self) -> dict:
        return {"n_bins": int(len(self.bins)), "n_bins_dropped": self.n_bins_dropped,
                "n_dropped_void": self.n_dropped_void, "n_dropped_wall": self.n_dropped_wall}


def mass_weights(logmstar, void, edges, bin_index=None) -> MassWeights:
    """Weights that give the wall galaxies the void galaxies' stellar-mass histogram.

    ``logmstar``: log10(M*/Msun) per row; ``void``: bool per row (True void, False wall);
    ``edges``: bin edges in log10(Msun). In a bin with n_v void and n_w wall galaxies every wall
    galaxy weighs n_v / n_w, so the weighted wall histogram is the void histogram and the
    weighted wall fraction is sum_b n_v,b f_w,b / sum_b n_v,b. Bins with n_v == 0 or n_w == 0 are
    dropped for both groups: there the two cannot be compared at fixed mass. ``bin_index``:
    :func:`mass_bin_index` of ``logmstar``, when the caller has it (the stage bins its sample
    once for all its comparisons).
    """
    void = np.asarray(void)
    if void.dtype != bool:
        raise TypeError("void must be a boolean array")
    e = _edges(edges)
    idx = mass_bin_index(logmstar, e) if bin_index is None else np.asarray(bin_index)
    if idx.shape != void.shape:
        raise ValueError("logmstar and void differ in shape")
    nb = e.size - 1
    inbin = idx >= 0
    n_void = np.bincount(idx[inbin & void], minlength=nb)
    n_wall = np.bincount(idx[inbin & ~void], minlength=nb)
    kept = (n_void > 0) & (n_wall > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w_bin = np.where(kept, n_void / np.where(n_wall > 0, n_wall, 1), 0.0)
    reason = np.where(kept, "", np.where((n_void == 0) & (n_wall == 0), "both groups empty",
                                         np.where(n_void == 0, "no void galaxies",
                                                  "no wall galaxies")))
    bins = pd.DataFrame({"bin_lo": e[:-1], "bin_hi": e[1:], "n_void": n_void, "n_wall": n_wall,
                         "weight": w_bin, "kept": kept, "reason": reason})
    safe = np.where(inbin, idx, 0)
    used = inbin & kept[safe]
    weights = np.where(used, np.where(void, 1.0, w_bin[safe]), 0.0)
    return MassWeights(weights=weights, used=used, bin_index=idx, bins=bins,
                       n_dropped_void=int(np.count_nonzero(void & ~used)),
                       n_dropped_wall=int(np.count_nonzero(~void & ~used)),
                       n_bins_dropped=int(np.count_nonzero(~kept)))


def binned_fractions(quenched, void, logmstar, edges, alpha: float = 0.05,
                     bin_index=None) -> pd.DataFrame:
    """Quenched fraction per stellar-mass bin and group, with Wilson (1927) intervals.

    Tidy: one row per (bin, group) with bin_lo, bin_hi, group ("void"/"wall"), n, k, fraction,
    lo, hi; empty cells are kept with n = 0 and NaN fraction, so every bin appears for both groups.
    ``bin_index``: :func:`mass_bin_index` of ``logmstar``, when the caller has it.
    """
    q = np.asarray(quenched)
    v = np.asarray(void)
    if q.dtype != bool or v.dtype != bool:
        raise TypeError("quenched and void must be boolean arrays (drop undefined rows first)")
    e = _edges(edges)
    idx = mass_bin_index(logmstar, e) if bin_index is None else np.asarray(bin_index)
    nb = e.size - 1
    rows = []
    for group, sel in (("void", v), ("wall", ~v)):
        m = sel & (idx >= 0)
        n = np.bincount(idx[m], minlength=nb)
        k = np.bincount(idx[m & q], minlength=nb)
        p, lo, hi = wilson(k, n, alpha)
        rows.append(pd.DataFrame({"bin_lo": e[:-1], "bin_hi": e[1:], "group": group, "n": n,
                                  "k": k, "fraction": p, "lo": lo, "hi": hi}))
    return pd.concat(rows, ignore_index=True).sort_values(
        ["bin_lo", "group"], ignore_index=True)
