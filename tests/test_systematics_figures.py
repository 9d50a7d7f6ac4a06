"""The systematics chapter's figures and tables (desivoids.systematics.figures, .tables): the answer
as a forest plot with one row per distinct result, its interval, a zero line and, on a mock run,
the planted value beside each estimate; tables that show a dash where a value does not apply.
On a hand-written summary and on the tiny run."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from desivoids import display, formats, runinfo
from desivoids.systematics import figures, tables
from desivoids.systematics.expected import expected_of
from desivoids.systematics.quenched import DEFINITIONS, DN4000_LIMIT
from desivoids.systematics.stage import SystematicsResult
from figure_checks import readable


def _summary(zobov_rd=-0.02):
    rows = []
    for algorithm, rd in (("VoidFinder", -0.10), ("REVOLVER", -0.02), ("VIDE", -0.02),
                          ("ZOBOV", zobov_rd)):
        for definition, shift in (("ssfr", 0.0), ("dn4000", 0.01), ("ur", 0.004)):
            for cap in ("NGC", "both"):
                rows.append({"algorithm": algorithm, "sample": "all voids",
                             "definition": definition, "cap": cap, "n_void": 1234,
                             "n_wall": 56789, "rd": rd + shift, "rd_jk_lo": rd + shift - 0.011,
                             "rd_jk_hi": rd + shift + 0.012})
    return pd.DataFrame(rows)


def _expected(summary):
    both = summary[summary.cap == "both"]
    planted = {"VoidFinder": -0.1, "REVOLVER": -0.03, "VIDE": -0.03, "ZOBOV": -0.03}
    return pd.DataFrame({"algorithm": both.algorithm, "definition": both.definition,
                         "expected": both.algorithm.map(planted),
                         "covered": [abs(r.rd - planted[r.algorithm]) < 0.011
                                     for r in both.itertuples()]})


def _planted(ax):
    return [c for c in ax.collections if c.get_label() == figures.EXPECTED_LABEL]


def test_one_row_per_distinct_result_and_identical_results_share_one():
    rows = tables.distinct_results(_summary())
    assert list(rows.algorithms) == ["VoidFinder"] * 3 + ["REVOLVER, VIDE, ZOBOV"] * 3
    apart = tables.distinct_results(_summary(zobov_rd=0.03))
    assert list(dict.fromkeys(apart.algorithms)) == ["VoidFinder", "REVOLVER, VIDE", "ZOBOV"]
    assert len(tables.distinct_results(_summary(), cap="NGC")) == 6  # every cap has its own rows


def test_the_forest_plot_shows_the_answer_the_interval_zero_and_the_planted_value():
    s = _summary(zobov_rd=0.03)
    fig = figures.forest(s, _expected(s), mock=True)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[:3] == ["VoidFinder: sSFR", "VoidFinder: Dn4000", "VoidFinder: u − r colour"]
    assert len(labels) == 9 and "ZOBOV: sSFR" in labels
    assert "void minus wall" in ax.get_xlabel() and "stellar mass" in ax.get_xlabel()
    assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())  # the zero line
    (planted,) = _planted(ax)
    x = planted.get_offsets()[:, 0]
    y = planted.get_offsets()[:, 1]
    assert np.allclose(x[y == labels.index("VoidFinder: sSFR")], -0.1)
    assert np.allclose(x[y == labels.index("ZOBOV: sSFR")], -0.03)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert figures.EXPECTED_LABEL in legend
    assert f"Dn4000 > {DN4000_LIMIT:g}" in legend  # the thresholds are the library's
    assert ax.get_title().startswith("Mock sky")
    assert any((t.get_gid() or "").startswith(runinfo.MOCK_GID) for t in fig.texts)
    assert readable(fig) == []
    assert plt.fignum_exists(fig.number)  # pyplot's: a kernel's inline backend can show it
    real = figures.forest(s)
    assert real.axes[0].get_title().startswith("DESI DR1") and _planted(real.axes[0]) == []
    assert not any((t.get_gid() or "").startswith(runinfo.MOCK_GID) for t in real.texts)
    before = list(matplotlib.rcParams["figure.hooks"])
    try:  # in a mock chapter pyplot's hook marks every figure: the mark is drawn once
        runinfo.mark_figures(True)
        chapter = figures.forest(s, mock=True)
        assert [t.get_gid() for t in chapter.texts].count(runinfo.MOCK_GID) == 1
    finally:
        matplotlib.rcParams["figure.hooks"] = before
    plt.close("all")


@pytest.fixture(scope="module")
def systematics_run(analysed):
    d = analysed / "systematics"
    summary = pq.read_table(d / "summary.parquet").to_pandas()
    import json

    result = SystematicsResult(d, summary, pq.read_table(d / "binned.parquet").to_pandas(),
                               pq.read_table(d / "counts.parquet").to_pandas(),
                               json.loads((d / "report.json").read_text()))
    return analysed, result


def test_on_the_tiny_run_the_forest_has_a_row_per_distinct_result(systematics_run):
    d, result = systematics_run
    beside = expected_of(str(d), result.summary)
    fig = figures.forest(result.summary, beside, mock=beside is not None)
    rows = tables.distinct_results(result.summary, beside)
    assert len(fig.axes[0].get_yticklabels()) == len(rows) >= len(figures.DEFINITION_LABEL)
    assert set(", ".join(rows.algorithms).split(", ")) == set(formats.ALGORITHMS)
    assert readable(fig) == []
    plt.close("all")


def test_the_binned_figure_has_a_panel_per_algorithm_and_definition(systematics_run):
    _, result = systematics_run
    fig = figures.binned_figure(result.binned)
    panels = [ax for ax in fig.axes if ax.get_title()]
    drawn = [a for a in formats.ALGORITHMS if a in set(result.binned.algorithm)]  # compared
    assert len(panels) == len(drawn) * len(DEFINITIONS) and len(drawn) >= 2
    assert panels[0].get_title() == f"{formats.ALGORITHMS[0]}: {figures.DEFINITION_LABEL['ssfr']}"
    assert panels[0].get_ylabel() == "quenched fraction"
    assert all("log M*" in ax.get_xlabel() for ax in panels[-3:])
    assert [t.get_text() for t in panels[0].get_legend().get_texts()] == ["void galaxies",
                                                                         "wall galaxies"]
    assert readable(fig) == []
    plt.close("all")


def test_the_tables_show_a_dash_where_a_value_does_not_apply(systematics_run):
    d, result = systematics_run
    s = result.summary.copy()
    s.loc[s.index[0], ["rd_jk_lo", "rd_jk_hi"]] = np.nan  # no jackknife interval
    t = tables.summary_table(s)
    assert len(t) == int((s.cap == "both").sum()) and t.index.tolist() == list(range(len(t)))
    assert (tables.NOT_APPLICABLE in set(t["jackknife 95%"]))
    html = display.table(t)._repr_html_()
    assert "NaN" not in html and "nan" not in html
    assert tables.expected_table(None).empty  # off a mock: no rows, the same columns
    assert list(tables.expected_table(None).columns) == list(tables.EXPECTED_COLUMNS)
    surface = tables.surface_table(result.summary)
    assert list(surface["surface galaxies"].unique()) == ["not void (default)", "counted as void"]
    assert list(tables.patches_table(result.report).cap) == list(formats.CAPS)
    beside = expected_of(str(d), result.summary)
    lines = tables.opening(result, beside)
    assert lines[0] == result.report["paragraph"] and len(lines) == 1 + (beside is not None)
    covered = pd.DataFrame({"covered": [True, False, None]})
    assert tables.opening(result, covered)[1].endswith("value in 1 of 2 comparisons (both caps, "
                                                       "all voids).")
