"""The density chapter's figures, from the stage's outputs (no computation beyond drawing; the
tables are in :mod:`.tables`). Every figure is at most :data:`WIDTH` inches wide."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import display, formats, paths
from .tweb import WEB_CLASSES

__all__ = ["WIDTH", "WEB_COLOURS", "profile_figure", "delta_figure", "web_slice_figure"]

#: the book's column [inches]
WIDTH = 7.0

WEB_COLOURS = ("#c7e9c0", "#92c5de", "#f4a582", "#b2182b")  # outside the survey: blank


def _errorbar(ax, p: pd.DataFrame, x: np.ndarray, label: str, **kw):
    lo = np.clip(p.fraction - p.jk_lo, 0, None)
    hi = np.clip(p.jk_hi - p.fraction, 0, None)
    ax.errorbar(x, p.fraction, yerr=[lo, hi], marker="o", capsize=3, label=label, **kw)


def profile_figure(profiles: pd.DataFrame, planted: pd.DataFrame | None = None):
    """Quenched fraction at fixed stellar mass against r / R_eff, one line per algorithm; on a
    mock run (``planted``, :func:`.expected.planted_profile`) the profile the mock planted, its
    expectation per bin, as a dashed line in its algorithm's colour."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH, 4.2))
    p = profiles[profiles.quantity == "r_over_reff"]
    for k, alg in enumerate(formats.ALGORITHMS):
        a = p[p.algorithm == alg]
        if a.empty:
            continue
        mid = 0.5 * (a.x_lo + a.x_hi).to_numpy() + (k - 1.5) * 0.02
        _errorbar(ax, a, mid, alg, color=f"C{k}")
    if planted is not None:
        for alg, e in planted.groupby("algorithm", sort=False):
            k = formats.ALGORITHMS.index(alg)
            ax.plot(0.5 * (e.x_lo + e.x_hi).to_numpy(), e.expected.to_numpy(float), ls="--",
                    marker="x", color=f"C{k}", label=f"{alg}: planted (mock truth)")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("distance to the void centre, r / R_eff")
    ax.set_ylabel("quenched fraction (mass-standardised)")
    ax.legend(frameon=False)
    return fig


def delta_figure(profiles: pd.DataFrame):
    """Quenched fraction at fixed stellar mass against delta_k (quantile bins)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(WIDTH, 4.2))
    p = profiles[profiles.quantity == "delta_k"]
    if not p.empty:
        mid = np.log10(1 + 0.5 * (p.x_lo + p.x_hi).to_numpy().clip(-0.99, None))
        _errorbar(ax, p, mid, "delta_k", color="k")
    ax.set_xlabel("log10(1 + delta_k), bin centre")
    ax.set_ylabel("quenched fraction (mass-standardised)")
    return fig


def web_slice_figure(data_dir: str, cap: str = "NGC", thickness: float = 20.0):
    """The web classes in the grid's mid-height z slice, with the DESIVAST voids that cut it
    (VoidFinder's holes as their circles in the slice's plane, V2 voids as effective spheres)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    layout = paths.RunLayout.of(data_dir)
    s = np.load(layout.file("density", "web_slices"))
    fig, ax = plt.subplots(figsize=(WIDTH, 6.5))
    if f"{cap}_classes" not in s:
        ax.set_axis_off()
        return fig
    classes = np.ma.masked_less(s[f"{cap}_classes"].astype(float), 0)
    x0, x1, y0, y1, zc, _ = s[f"{cap}_extent"]
    ax.imshow(classes.T, origin="lower", extent=(x0, x1, y0, y1), vmin=0, vmax=3,
              cmap=ListedColormap(WEB_COLOURS), interpolation="nearest")
    voids = pq.read_table(layout.file("convert", "voids"),
                          columns=["algorithm", "cap", "x", "y", "z", "r_eff"]).to_pandas()
    holes = pq.read_table(layout.file("convert", "holes"),
                          columns=["cap", "x", "y", "z", "radius"]).to_pandas()
    h = holes[(holes.cap == cap) & (np.abs(holes.z - zc) < holes.radius)]
    display.circle_outlines(ax, h.x, h.y, np.sqrt(h.radius ** 2 - (h.z - zc) ** 2), color="k",
                            lw=0.5)
    styles = {"REVOLVER": "tab:blue", "VIDE": "tab:green", "ZOBOV": "tab:purple"}
    for alg, colour in styles.items():
        v = voids[(voids.algorithm == alg) & (voids.cap == cap) & (np.abs(voids.z - zc) < voids.r_eff)]
        display.circle_outlines(ax, v.x, v.y, np.sqrt(v.r_eff ** 2 - (v.z - zc) ** 2),
                                color=colour, lw=0.6, ls="--")
    i, j = np.nonzero(~classes.mask) if classes.mask.any() else np.nonzero(classes >= 0)
    if len(i):  # the survey's part of the slice, not the padded box
        cell = s[f"{cap}_extent"][5]
        ax.set_xlim(x0 + (i.min() - 2) * cell, x0 + (i.max() + 3) * cell)
        ax.set_ylim(y0 + (j.min() - 2) * cell, y0 + (j.max() + 3) * cell)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, ec="grey") for c in WEB_COLOURS]
    handles += [plt.Line2D([], [], color="k", lw=0.8)] + [
        plt.Line2D([], [], color=c, ls="--") for c in styles.values()]
    ax.legend(handles, [*WEB_CLASSES, "VoidFinder holes", *styles], loc="upper right",
              fontsize=8, framealpha=0.8)
    ax.set_xlabel("x (Mpc/h)")
    ax.set_ylabel("y (Mpc/h)")
    ax.set_title(f"{cap}: web classes at z = {zc:.0f} Mpc/h")
    return fig
