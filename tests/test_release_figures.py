"""The release chapter's figures and tables (desivoids.release.figures) on the tiny run: the
released answer figure is the forest plot of the run's summary, the files' checks and sizes are
tables and a figure a reader reads, and the opening is computed from the release."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pyarrow.parquet as pq
import pytest
from PIL import Image

from desivoids import display, release
from desivoids.release import figures
from desivoids.systematics import tables
from desivoids.systematics.expected import expected_of
from figure_checks import readable


@pytest.fixture(scope="module")
def released(analysed):
    return analysed, release.run(data_dir=str(analysed), version="figures", sample_size=200)


def test_the_released_answer_is_the_forest_plot_of_the_runs_summary(released):
    d, result = released
    fig = figures.answer_of(str(d))
    summary = pq.read_table(d / "systematics" / "summary.parquet").to_pandas()
    rows = tables.distinct_results(summary, expected_of(str(d), summary))
    ax = fig.axes[0]
    assert [t.get_text().split(" (")[0] for t in ax.get_yticklabels()] == [
        f"{r.algorithms}: {tables.DEFINITION_NAME[r.definition]}" for r in rows.itertuples()]
    assert readable(fig) == []
    png = Image.open(result.out_dir / "figures" / "answer.png")
    assert png.size == tuple(int(v) for v in fig.get_size_inches() * fig.dpi)  # the same figure
    plt.close("all")


def test_files_provenance_and_opening(released):
    _, result = released
    files = figures.files_table(result)
    assert len(files) == len(result.completeness) and files.ok.all()
    html = display.table(files)._repr_html_()
    assert "NaN" not in html and "yes" in html
    fig = figures.files_figure(result)
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_xlabel() == "size [MB]"
    assert len(fig.axes[0].patches) == len(files) and readable(fig) == []
    prov = figures.provenance_table(result.provenance)
    assert list(prov.columns) == ["what", "value"] and "git commit" in set(prov.what)
    lines = figures.opening(result)
    assert 2 <= len(lines) <= 5
    assert lines[0].startswith(f"Release figures: {len(files)} files") and \
        f"{len(files)} of {len(files)} complete" in lines[0]
    assert figures.citation_block(result).startswith("```yaml\n")
    assert json.loads((result.out_dir / "completeness.json").read_text())
    plt.close("all")
