"""The quenched fraction as a function of a continuous environment, at fixed stellar mass.

For a quantity x (delta_k, the void-centric distance r / R_eff of one algorithm) cut into bins,
the quenched fraction of each bin is standardised to one stellar-mass distribution, the whole
sample's: f_b = sum_m W_m f_bm / sum_m W_m over the mass bins m populated in bin b (W_m the
sample's galaxies in mass bin m, f_bm the quenched fraction of bin b and mass bin m). So bins of
x are compared at the same stellar masses, as :mod:`.matching` compares void and wall galaxies.
Errors: the delete-one-patch jackknife (:func:`.jackknife.jackknife`) over the same equal-area
HEALPix patches, the whole standardisation redone in every replicate.

Also here: the web-class comparisons the density stage adds beside the four DESIVAST labellings
(:func:`web_as_flag`, :func:`label_agreement`) and the quenched fraction by web class
(:func:`fraction_by_class`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import wilson
from .jackknife import from_replicates
from .matching import mass_bin_index

__all__ = ["standardised_fractions", "profile", "quantile_edges", "web_as_flag",
           "label_agreement", "fraction_by_class"]


def standardised_fractions(quenched, x_bin, mass_bin, n_x: int, reference: np.ndarray
                           ) -> np.ndarray:
    """f_b per x bin (NaN where no galaxy): quenched fractions per (x bin, mass bin) averaged
    with the weights ``reference`` (per mass bin) over the mass bins the x bin populates."""
    q = np.asarray(quenched, bool)
    nm = len(reference)
    ok = (x_bin >= 0) & (mass_bin >= 0)
    cell = x_bin[ok] * nm + mass_bin[ok]
    n = np.bincount(cell, minlength=n_x * nm).reshape(n_x, nm).astype(float)
    k = np.bincount(cell, weights=q[ok], minlength=n_x * nm).reshape(n_x, nm)
    return _standardised(n, k, reference)


def _standardised(n: np.ndarray, k: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """:func:`standardised_fractions` from the galaxies ``n`` and quenched ``k`` per (x bin,
    mass bin), the last two axes (any leading axes: one fraction per x bin for each)."""
    w = np.where(n > 0, reference, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(w * np.where(n > 0, k / np.where(n > 0, n, 1), 0), -1) / w.sum(-1)


def quantile_edges(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` bins holding equal numbers of the finite values of ``x``."""
    x = np.asarray(x, float)
    e = np.quantile(x[np.isfinite(x)], np.linspace(0, 1, n_bins + 1))
    return np.unique(e)


def _bin(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """numpy.histogram's bins (the last closed), -1 outside or non-finite."""
    return mass_bin_index(x, edges)


def profile(quenched, x, logmstar, patch, x_edges, mass_edges, alpha: float = 0.05,
            labels: dict | None = None) -> pd.DataFrame:
    """The mass-standardised quenched fraction per bin of ``x`` with jackknife intervals; one
    row per bin: x_lo, x_hi, n, k (quenched, raw), fraction, jk_lo, jk_hi, se, and the raw
    fraction with its Wilson interval."""
    q = np.asarray(quenched, bool)
    xb = _bin(np.asarray(x, float), np.asarray(x_edges, float))
    mb = mass_bin_index(logmstar, mass_edges)
    nx, nm = len(x_edges) - 1, len(mass_edges) - 1
    use = (xb >= 0) & (mb >= 0)
    reference = np.bincount(mb[use], minlength=nm).astype(float)
    q, xb, mb, patch = q[use], xb[use], mb[use], np.asarray(patch)[use]
    n = np.bincount(xb, minlength=nx)
    k = np.bincount(xb, weights=q, minlength=nx).astype(int)
    raw, lo, hi = wilson(k, n, alpha)
    out = pd.DataFrame({"x_lo": np.asarray(x_edges, float)[:-1],
                        "x_hi": np.asarray(x_edges, float)[1:], "n": n, "k": k})
    codes, patches = pd.factorize(pd.Series(patch), sort=True)  # as jackknife numbers them
    if (codes < 0).any():
        raise ValueError("column 'patch' has missing patch labels")
    if len(q) and len(patches) >= 2:
        # the delete-one-patch jackknife of the standardised fractions (the reference
        # weights fixed), its replicates from the counts per (patch, x bin, mass bin): the
        # whole sample's minus the deleted patch's, the same integers as counting the rest
        # (jackknife's recount of every replicate was most of the density stage's answer)
        size = nx * nm
        cell = codes * size + xb * nm + mb
        n_p = np.bincount(cell, minlength=len(patches) * size).reshape(-1, nx, nm)
        k_p = np.bincount(cell, weights=q, minlength=len(patches) * size).reshape(-1, nx, nm)
        n_all, k_all = n_p.sum(0), k_p.sum(0)
        estimate = pd.Series(_standardised(n_all.astype(float), k_all, reference))
        replicates = pd.DataFrame(_standardised((n_all - n_p).astype(float), k_all - k_p,
                                                reference),
                                  index=pd.Index(patches, name="patch"), columns=estimate.index)
        jk = from_replicates(estimate, replicates, alpha=alpha)
        out["fraction"] = np.asarray(jk.estimate, float)
        out["se"] = np.asarray(jk.se, float)
        out["jk_lo"] = np.asarray(jk.lo, float)
        out["jk_hi"] = np.asarray(jk.hi, float)
    else:
        out["fraction"] = standardised_fractions(q, xb, mb, nx, reference) if len(q) else np.nan
        out["se"] = out["jk_lo"] = out["jk_hi"] = np.nan
    out["raw"], out["raw_lo"], out["raw_hi"] = raw, lo, hi
    for key, value in reversed(list((labels or {}).items())):
        out.insert(0, key, value)
    return out


def web_as_flag(web_class: np.ndarray) -> np.ndarray:
    """A web class as environment's flags: void class 1 (void), the others 0 (wall), a galaxy
    outside the web's survey 9."""
    c = np.asarray(web_class)
    return np.where(c < 0, 9, np.where(c == 0, 1, 0)).astype(np.int8)


def label_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Of the galaxies both call void (1) or wall (0): how many, the share with the same label,
    both void, and Cohen's kappa."""
    from ..environment.summary import _kappa

    both = np.isin(a, (0, 1)) & np.isin(b, (0, 1))
    va, vb = a[both] == 1, b[both] == 1
    return {"galaxies": int(both.sum()),
            "same_label": float(np.mean(va == vb)) if both.any() else float("nan"),
            "both_void": int(np.sum(va & vb)), "kappa": _kappa(va, vb)}


def fraction_by_class(quenched, web_class, names, alpha: float = 0.05) -> pd.DataFrame:
    """Raw quenched fraction per web class (classes 0..len(names)-1) with Wilson intervals."""
    q = np.asarray(quenched, bool)
    c = np.asarray(web_class)
    ok = c >= 0
    n = np.bincount(c[ok], minlength=len(names))
    k = np.bincount(c[ok], weights=q[ok], minlength=len(names)).astype(int)
    p, lo, hi = wilson(k, n, alpha)
    return pd.DataFrame({"web_class": list(names), "n": n, "k": k, "fraction": p, "lo": lo,
                         "hi": hi})
