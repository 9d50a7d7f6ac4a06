"""The plausibility chapter's figures, from the stage's outputs (tested on a tiny run, so the
notebook only calls them). Each returns a matplotlib Figure no wider than :data:`WIDTH` inches;
the quenched thresholds drawn are :mod:`desivoids.systematics.quenched`'s constants."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from .. import paths
from ..systematics.quenched import DN4000_LIMIT, SSFR_LIMIT, UR_LIMIT

__all__ = ["WIDTH", "SFR_FLOOR", "RA_WRAP", "FIGURE_COLUMNS", "sample", "waterfall_figure",
           "sample_figure", "sky_figure"]

#: widest figure [inches]: the book's column at 100 dpi
WIDTH = 7.0
#: where galaxies with SFR = 0 are drawn on the log SFR axis [Msun/yr]
SFR_FLOOR = 1e-3
#: RA above this is drawn as RA - 360, so the SGC is one piece [deg]
RA_WRAP = 300.0
#: the ranges the histograms show (values beyond are drawn at the edge)
DN4000_RANGE = (0.5, 2.8)
UR_RANGE = (-0.5, 4.0)


#: the sample's columns the figures draw
FIGURE_COLUMNS = ("ra", "dec", "cap", "z", "logmstar", "sfr", "log_ssfr", "dn4000",
                  "absmag01_sdss_u", "absmag01_sdss_r")


def sample(data_dir: str) -> pd.DataFrame:
    """The selected sample's :data:`FIGURE_COLUMNS` (plausibility's sample.parquet), through
    the run layout."""
    return pq.read_table(paths.RunLayout.of(data_dir).file("plausibility", "sample"),
                         columns=list(FIGURE_COLUMNS)).to_pandas()


def waterfall_figure(waterfall: pd.DataFrame) -> Figure:
    """Galaxies remaining after each cut, in order, per cap and both caps (log scale)."""
    fig, ax = plt.subplots(figsize=(WIDTH, 4.2), layout="constrained")
    for cap, marker in (("NGC", "o"), ("SGC", "s"), ("both", "^")):
        d = waterfall[waterfall.cap == cap]
        if len(d):
            ax.plot(d.step, d.remaining, marker=marker, label=cap if cap != "both" else
                    "both caps")
    both = waterfall[waterfall.cap == "both"]
    ax.set_xticks(both.step, [c.replace("_", " ") for c in both.cut], rotation=40, ha="right")
    ax.set(yscale="log", ylabel="galaxies remaining", xlabel="after the cut")
    ax.legend()
    return fig


def sample_figure(s: pd.DataFrame) -> Figure:
    """The selected sample: stellar mass against redshift, SFR against stellar mass (SFR = 0 at
    :data:`SFR_FLOOR`), and the distributions behind the three quenched definitions with their
    thresholds, and the redshift distribution per cap."""
    fig, ax = plt.subplots(3, 2, figsize=(WIDTH, 9.0), layout="constrained")
    ax[0, 0].hexbin(s.z, s.logmstar, gridsize=40, bins="log", cmap="Greys", mincnt=1)
    ax[0, 0].set(xlabel="redshift", ylabel="log M* [M$_\\odot$]")
    pos = (s.sfr > 0).to_numpy()
    ax[0, 1].hexbin(s.logmstar[pos], np.log10(s.sfr[pos]), gridsize=40, bins="log",
                    cmap="Greys", mincnt=1)
    ax[0, 1].scatter(s.logmstar[~pos], np.full(int((~pos).sum()), np.log10(SFR_FLOOR)), s=3,
                     c="C3", label=f"SFR = 0 ({int((~pos).sum()):,d})")
    ax[0, 1].set(xlabel="log M* [M$_\\odot$]", ylabel="log SFR [M$_\\odot$/yr]")
    ax[0, 1].legend(loc="lower right")
    ax[1, 0].hist(s.log_ssfr.dropna(), bins=50, color="0.4")
    ax[1, 0].axvline(SSFR_LIMIT, color="C3", label=f"quenched below {SSFR_LIMIT:g}")
    ax[1, 0].set(xlabel="log sSFR [1/yr] (SFR > 0)", ylabel="galaxies")
    ax[1, 1].hist(s.dn4000.dropna().clip(*DN4000_RANGE), bins=50, color="0.4")
    ax[1, 1].axvline(DN4000_LIMIT, color="C3", label=f"quenched above {DN4000_LIMIT:g}")
    ax[1, 1].set(xlabel="Dn4000", ylabel="galaxies")
    ax[2, 0].hist((s.absmag01_sdss_u - s.absmag01_sdss_r).dropna().clip(*UR_RANGE), bins=50,
                  color="0.4")
    ax[2, 0].axvline(UR_LIMIT, color="C3", label=f"quenched from {UR_LIMIT:g}")
    ax[2, 0].set(xlabel="u − r (rest frame, z = 0.1) [mag]", ylabel="galaxies")
    for a in (ax[1, 0], ax[1, 1], ax[2, 0]):
        a.legend(loc="upper left")
    for cap in ("NGC", "SGC"):
        ax[2, 1].hist(s.z[s.cap == cap], bins=40, histtype="step", lw=1.5, label=cap)
    ax[2, 1].set(xlabel="redshift", ylabel="galaxies")
    ax[2, 1].legend()
    return fig


def sky_figure(s: pd.DataFrame) -> Figure:
    """The selected sample on the sky: galaxies per hexagonal cell, with its colour bar."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), layout="constrained")
    ra = np.where(s.ra > RA_WRAP, s.ra - 360.0, s.ra)
    cells = ax.hexbin(ra, s.dec, gridsize=(90, 30), bins="log", cmap="viridis", mincnt=1)
    fig.colorbar(cells, ax=ax, label="galaxies per cell")
    ax.set(xlabel=f"RA [deg] (RA > {RA_WRAP:g} drawn as RA − 360)", ylabel="Dec [deg]")
    ax.invert_xaxis()
    return fig
