"""desivoids.display, the one look of every chapter's tables, findings and figures: no index
column, a dash for "not applicable" (never NaN), thousands separators, a frame that scrolls,
collapsed long tables, and captions that say mock on a mock run."""
from __future__ import annotations

import subprocess
import sys

import matplotlib.pyplot as plt
import pytest
import numpy as np
import pandas as pd

from desivoids import display, runinfo


def test_a_table_shows_dashes_separators_and_no_index():
    df = pd.DataFrame({"rows": [1234567.0, np.nan], "fraction": [0.123456, np.inf],
                       "name": ["a", None]}, index=[7, 8])
    t = display.table(df)
    assert t.cells() == [["1,234,567", "0.12346", "a"], ["\u2013", "\u2013", "\u2013"]]
    html = t._repr_html_()
    assert "NaN" not in html and "nan" not in html and "inf" not in html
    assert ">7<" not in html and ">8<" not in html  # the index is not a column
    assert 'overflow-x:auto' in html and "<details" not in html
    assert "NaN" not in repr(t) and "1,234,567" in repr(t)


def test_a_named_index_becomes_columns_and_a_long_table_collapses():
    df = pd.DataFrame({"n": [3, 4]}, index=pd.MultiIndex.from_tuples(
        [("x", "p"), ("y", "q")], names=["family", "id"]))
    t = display.table(df, caption="every check", collapsed=True)
    assert list(t.frame.columns) == ["family", "id", "n"]
    html = t._repr_html_()
    assert html.startswith("<details><summary>every check (2 rows)</summary>")
    assert "<th>family</th>" in html and '<td class="num">3</td>' in html


def test_an_empty_table_says_none():
    t = display.table(pd.DataFrame(columns=["path", "fault"]), caption="faults")
    html = t._repr_html_()
    assert "(none)" in html and "(none)" in repr(t)
    assert html.startswith('<p class="dv-table-caption"><strong>faults</strong></p>')


def test_summary_is_one_paragraph_of_the_given_sentences():
    md = display.summary(["One.", " Two. ", ""])
    assert md._repr_markdown_() == "One. Two." == repr(md)  # text/plain too: tests read it


def test_figure_captions_say_mock_only_on_a_figure_with_the_mock_mark(monkeypatch):
    glued = {}
    monkeypatch.setattr(display, "glue", lambda name, value, display=True: glued.__setitem__(name, value))
    runinfo.mark_figures(True)
    try:
        fig, _ = plt.subplots()
        display.figure("f", fig, "Rows per table.")
    finally:
        runinfo.mark_figures(False)
    assert glued["f"] is fig and glued["f-caption"].data.startswith("**Mock sky, not DESI data.**")
    fig, _ = plt.subplots()
    display.figure("g", fig, "Rows per table.")
    assert glued["g-caption"].data == "Rows per table."
    assert not plt.get_fignums()  # closed: Jupyter does not show them twice


@pytest.mark.parametrize("shown", [True, False])
def test_glue_writes_the_display_data_myst_nb_glue_writes(monkeypatch, shown):
    glue_module = pytest.importorskip("myst_nb.ext.glue")
    from IPython.display import Markdown

    calls = []
    capture = lambda data, **kw: calls.append((data, kw))  # noqa: E731
    monkeypatch.setattr(glue_module, "ipy_display", capture)
    monkeypatch.setattr("IPython.display.display", capture)
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 1])
    for value in (Markdown("**Mock sky.** Rows."), pd.DataFrame({"n": [1, 2]}), fig):
        glue_module.glue("x", value, display=shown)
        display.glue("x", value, display=shown)
    plt.close(fig)
    assert len(calls) == 6
    for theirs, ours in zip(calls[::2], calls[1::2]):
        assert ours == theirs


def test_a_figure_is_glued_without_importing_nbformat():
    """myst_nb.ext.glue imports nbformat and jsonschema (1.3 CPU s of every chapter's kernel)."""
    code = ("import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "from desivoids import display; display.figure('f', plt.subplots()[0], 'A caption.'); "
            "print(sorted(m for m in ('nbformat', 'jsonschema', 'myst_nb.ext.glue') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
