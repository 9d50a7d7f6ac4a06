"""The systematics chapter's figures and the answer figure of the release (tested on a tiny run,
so the notebooks only call them).

Every function returns a matplotlib Figure no wider than :data:`WIDTH` inches, so that it is
shown at its own size in the book's column with its default 10-point text. The thresholds in the
labels are :mod:`.quenched`'s constants, never typed again.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .. import formats
from .quenched import DN4000_LIMIT, SSFR_LIMIT, UR_LIMIT
from .tables import DEFINITION_NAME, distinct_results

__all__ = ["WIDTH", "DEFINITION_LABEL", "EXPECTED_LABEL", "forest", "binned_figure"]

#: widest figure [inches]: the book's column at 100 dpi
WIDTH = 7.0
#: each quenched definition's rule, as a legend says it
DEFINITION_LABEL = {"ssfr": f"sSFR < $10^{{{SSFR_LIMIT:g}}}$ /yr",
                    "dn4000": f"Dn4000 > {DN4000_LIMIT:g}",
                    "ur": f"u − r ≥ {UR_LIMIT:g}"}
#: the legend entry of the mock's planted values (tests find the markers by it)
EXPECTED_LABEL = "expected (planted in the mock)"
_COLOURS = {"ssfr": "C0", "dn4000": "C1", "ur": "C2"}


def forest(summary: pd.DataFrame, expected: pd.DataFrame | None = None, *, mock: bool = False,
           cap: str = "both", sample: str = "all voids") -> Figure:
    """The answer as a forest plot: one row per distinct result (algorithm and quenched
    definition; identical results of several algorithms share a row), the mass-matched
    difference of quenched fractions, void minus wall, with its 95% jackknife interval, a zero
    line, and on a mock run (``expected``: :func:`.expected.beside_expected`) the value the mock
    planted beside each estimate. ``mock`` draws the MOCK mark and says so in the title."""
    from ..runinfo import MOCK_GID, mark_mock

    rows = distinct_results(summary, expected, cap, sample)
    fig, ax = plt.subplots(figsize=(WIDTH, 1.9 + 0.36 * max(len(rows), 1)), dpi=100,
                           layout="constrained")
    y = np.arange(len(rows))
    for definition, colour in _COLOURS.items():
        mine = (rows.definition == definition).to_numpy() if len(rows) else np.zeros(0, bool)
        if not mine.any():
            continue
        d = rows[mine]
        ax.errorbar(d.rd, y[mine], xerr=[d.rd - d.rd_jk_lo, d.rd_jk_hi - d.rd], fmt="o",
                    color=colour, capsize=3, label=DEFINITION_LABEL[definition])
    if "expected" in rows and rows.expected.notna().any():
        ax.scatter(rows.expected, y, marker="D", s=70, facecolors="none", edgecolors="k",
                   lw=1.2, zorder=5, label=EXPECTED_LABEL)
    ax.axvline(0, color="0.4", lw=1, zorder=0)
    ax.set_yticks(y, [f"{r.algorithms}: {DEFINITION_NAME[r.definition]}"
                      + ("" if np.isfinite(r.rd) else " (no estimate)")
                      for r in rows.itertuples()])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    where = "both caps" if cap == "both" else cap
    ax.set_xlabel(f"quenched fraction, void minus wall galaxies,\n"
                  f"at fixed stellar mass ({sample}, {where})")
    ax.set_title(("Mock sky" if mock else "DESI DR1") + ": void − wall, 95% jackknife intervals")
    ax.grid(axis="x", lw=0.4, color="0.85")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3 if len(rows) < 6 else -0.12),
              ncol=2, frameon=False)
    marked = any(t.get_gid() == MOCK_GID for t in fig.texts)  # by pyplot's hook in a chapter
    if mock and not marked:
        mark_mock(fig)
    return fig


def binned_figure(binned: pd.DataFrame, sample: str = "all voids") -> Figure:
    """Quenched fraction against stellar mass, void (filled) and wall (open) galaxies with Wilson
    intervals: one row of panels per algorithm, one column per definition (both caps)."""
    b = binned[binned["sample"] == sample]
    algorithms = [a for a in formats.ALGORITHMS if a in set(b.algorithm)]
    definitions = [d for d in DEFINITION_LABEL if d in set(b.definition)]
    fig, axes = plt.subplots(len(algorithms), len(definitions), squeeze=False, sharex=True,
                             sharey=True, figsize=(WIDTH, 1.9 * len(algorithms) + 1.0),
                             layout="constrained")
    for i, algorithm in enumerate(algorithms):
        for j, definition in enumerate(definitions):
            ax = axes[i, j]
            d = b[(b.algorithm == algorithm) & (b.definition == definition)]
            for group, style in (("void", {"fmt": "o", "color": "C0"}),
                                 ("wall", {"fmt": "s", "color": "C3", "mfc": "none"})):
                g = d[d.group == group]
                ax.errorbar(0.5 * (g.bin_lo + g.bin_hi), g.fraction,
                            yerr=[g.fraction - g.lo, g.hi - g.fraction], ms=4,
                            label=f"{group} galaxies", **style)
            ax.set_title(f"{algorithm}: {DEFINITION_LABEL[definition]}", fontsize=9)
            if i == len(algorithms) - 1:
                ax.set_xlabel("log M* [$M_\\odot$]")
            if j == 0:
                ax.set_ylabel("quenched fraction")
    axes[0, 0].legend(fontsize=9)
    return fig
