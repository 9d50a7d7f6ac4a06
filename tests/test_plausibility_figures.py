"""The plausibility chapter's figures and tables (desivoids.plausibility.figures, .tables) on the
tiny run: the waterfall in cut order, the quenched thresholds drawn where the systematics stage
puts them, a sky map with its colour bar, and an opening computed from the run."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from desivoids import display
from desivoids.plausibility import PlausibilityResult, figures, tables
from desivoids.systematics.quenched import DN4000_LIMIT, SSFR_LIMIT, UR_LIMIT
from figure_checks import readable


@pytest.fixture(scope="module")
def selected(env_run):
    d, _ = env_run
    out = d / "plausibility"
    return d, PlausibilityResult(json.loads((out / "report.json").read_text()), out)


def test_the_waterfall_figure_follows_the_cuts_in_order(selected):
    _, result = selected
    fig = figures.waterfall_figure(result.waterfall)
    (ax,) = fig.axes
    cuts = [c["name"].replace("_", " ") for c in result.report["cuts"]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["rows in", *cuts]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "galaxies remaining"
    both = [line for line in ax.get_lines() if line.get_label() == "both caps"]
    assert both and both[0].get_ydata()[0] == result.waterfall.remaining.max()
    assert readable(fig) == []
    plt.close(fig)


def test_the_sample_figure_draws_the_library_thresholds_and_units(selected):
    d, _ = selected
    s = figures.sample(str(d))
    fig = figures.sample_figure(s)
    lines = {round(float(line.get_xdata()[0]), 6): ax.get_xlabel() for ax in fig.axes
             for line in ax.get_lines() if line.get_label().startswith("quenched")}
    assert lines == {SSFR_LIMIT: "log sSFR [1/yr] (SFR > 0)", DN4000_LIMIT: "Dn4000",
                     UR_LIMIT: "u − r (rest frame, z = 0.1) [mag]"}
    assert any("M$_\\odot$" in ax.get_ylabel() for ax in fig.axes)
    assert readable(fig) == []
    sky = figures.sky_figure(s)
    assert len(sky.axes) == 2 and sky.axes[1].get_ylabel() == "galaxies per cell"  # colour bar
    assert "[deg]" in sky.axes[0].get_xlabel() and "[deg]" in sky.axes[0].get_ylabel()
    assert readable(sky) == []
    plt.close("all")


def test_the_tables_and_the_opening_come_from_the_run(selected):
    _, result = selected
    w = tables.waterfall_table(result)
    assert list(w.columns[:3]) == ["cut", "removed, NGC", "remaining, NGC"]
    assert w["remaining, both"].iloc[-1] == result.waterfall.remaining.iloc[-1]
    f = tables.findings_table(result)
    assert len(f) == len(result.findings) and "NaN" not in display.table(f)._repr_html_()
    lines = tables.opening(result)
    assert 3 <= len(lines) <= 5
    n_in = int(result.waterfall.remaining.max())
    assert lines[0].startswith(f"Of {n_in:,d} galaxies")
    assert "exactly GALZONE's" in " ".join(lines)  # the mock's tracers reproduce exactly
    found = int((result.findings.status == "finding").sum())
    assert ("Every physical range holds." in lines) == (found == 0)
    assert not np.isnan(tables.reproduction_table(result).select_dtypes("number")).any().any()
