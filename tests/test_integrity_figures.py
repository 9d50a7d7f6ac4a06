"""The integrity chapter's findings, tables and figures (desivoids.integrity.figures) on the tiny
run, and on the same run with one check demoted and failing."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from desivoids import display, integrity
from desivoids.integrity import figures
from desivoids.load.queries import dispose_engines


@pytest.fixture(scope="module")
def checked(loaded_run, tmp_path_factory):
    import shutil

    d = tmp_path_factory.mktemp("integrity_fig") / "run"
    for sub in ("convert", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    result = integrity.run(data_dir=str(d))
    yield d, result
    dispose_engines()


def test_the_findings_and_tables_count_every_check(checked):
    _, result = checked
    n = len(result.checks)
    text = " ".join(figures.findings(result))
    assert f"ran {n:,d} checks" in text and f"{n:,d} passed" in text and "No check was demoted" in text
    fams = figures.families_table(result)
    assert fams.to_numpy().sum() == n and list(fams.columns) == ["pass"]
    assert list(fams.index[:2]) == ["reconciliation", "keys"]
    assert len(figures.checks_table(result)) == n
    refs = figures.references_table(result)
    assert refs.id.str.startswith(("refs.", "tessellation.")).all() and len(refs) > 0
    html = display.table(refs)._repr_html_()
    assert "NaN" not in html  # the old table spread evidence over NaN-filled columns
    nulls = figures.nulls_table(result)
    assert list(nulls.column) == list(integrity.DEFAULT_MAX_NULL_FRACTION)
    v2 = figures.v2_table(result)
    assert len(v2) == 6 and (v2.zone_share <= 1).all()


def test_a_demoted_failure_is_named_in_the_findings_and_warnings(checked):
    d, _ = checked
    result = integrity.run(data_dir=str(d), max_null_fraction={"z": 0.0},
                           z_range=[0.5, 7.0], demote=["range.*"])
    text = " ".join(figures.findings(result))
    assert "Demoted to warnings by the demote parameter: range.galaxies.z." in text
    assert "(warn)" in text
    assert len(figures.warnings_table(result)) > 0
    assert "warn" in figures.families_table(result).columns


def test_the_figures_have_a_bar_per_family_and_column(checked):
    _, result = checked
    fig = figures.families_figure(result)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "checks"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(figures.families_table(result).index)
    fig = figures.nulls_figure(result)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "fraction of rows" and ax.get_yscale() == "symlog"
    assert [t.get_text() for t in ax.get_xticklabels()] == list(integrity.DEFAULT_MAX_NULL_FRACTION)
    plt.close("all")
