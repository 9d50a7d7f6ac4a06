"""The result in one figure: the mass-matched difference of quenched fractions, voids minus
walls, per algorithm and definition, with the jackknife 95% intervals (both caps, all voids).
On a mock run the figure carries the MOCK mark and, where the mock planted an answer, each
algorithm's expected value as a marker beside its estimates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import formats

__all__ = ["answer_figure", "answer"]

DEFINITION_LABEL = {"ssfr": "sSFR < 1e-11 /yr", "dn4000": "Dn4000 > 1.6", "ur": "u - r >= 2.22"}


def answer_figure(summary: pd.DataFrame, path: Path, *, mock: bool = False,
                  expected: pd.DataFrame | None = None) -> Path:
    """Write the figure (PNG) from the systematics summary; no global pyplot state.

    ``mock``: draw the MOCK mark. ``expected``: :func:`desivoids.systematics.beside_expected`'s
    table, whose expected value per algorithm is drawn as a marker."""
    answer(summary, mock=mock, expected=expected).savefig(path)
    return path


def answer(summary: pd.DataFrame, *, mock: bool = False, expected: pd.DataFrame | None = None):
    """The answer figure as a matplotlib Figure (see :func:`answer_figure`)."""
    from matplotlib.figure import Figure

    from ..runinfo import mark_mock

    s = summary[(summary.cap == "both") & (summary["sample"] == "all voids")]
    fig = Figure(figsize=(9.5, 4.2), dpi=110)
    ax = fig.subplots()
    definitions = list(DEFINITION_LABEL)
    for k, definition in enumerate(definitions):
        d = s[s.definition == definition].set_index("algorithm").reindex(formats.ALGORITHMS)
        y = np.arange(len(formats.ALGORITHMS)) + (k - 1) * 0.22
        lo = (d.rd - d.rd_jk_lo).to_numpy()
        hi = (d.rd_jk_hi - d.rd).to_numpy()
        ax.errorbar(d.rd, y, xerr=[lo, hi], fmt="o", capsize=3, label=DEFINITION_LABEL[definition])
    if expected is not None and len(expected):
        e = expected.groupby("algorithm").expected.first().reindex(formats.ALGORITHMS)
        ax.scatter(e, np.arange(len(formats.ALGORITHMS)), marker="D", s=120, facecolors="none",
                   edgecolors="k", lw=1.3, zorder=5, label="expected (planted in the mock)")
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(np.arange(len(formats.ALGORITHMS)), formats.ALGORITHMS)
    ax.invert_yaxis()
    ax.set_xlabel("quenched fraction, void minus wall galaxies, at fixed stellar mass")
    ax.set_title(("Mock sky: " if mock else "DESI DR1: ") + "are void galaxies quenched less "
                 "often? (95% jackknife intervals)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    if mock:
        mark_mock(fig)
    return fig
