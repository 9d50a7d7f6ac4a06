"""The result in one figure: the mass-matched difference of quenched fractions, voids minus
walls, per algorithm and definition, with the jackknife 95% intervals (both caps, all voids)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import formats

__all__ = ["answer_figure"]

DEFINITION_LABEL = {"ssfr": "sSFR < 1e-11 /yr", "dn4000": "Dn4000 > 1.6", "ur": "u - r >= 2.22"}


def answer_figure(summary: pd.DataFrame, path: Path) -> Path:
    """Write the figure (PNG) from the systematics summary; no global pyplot state."""
    from matplotlib.figure import Figure

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
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_yticks(np.arange(len(formats.ALGORITHMS)), formats.ALGORITHMS)
    ax.invert_yaxis()
    ax.set_xlabel("quenched fraction, void minus wall galaxies, at fixed stellar mass")
    ax.set_title("Are void galaxies quenched less often? (95% jackknife intervals)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    return path
