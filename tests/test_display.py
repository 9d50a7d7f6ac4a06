"""desivoids.display, the one look of every chapter's tables, findings and figures: no index
column, a dash for "not applicable" (never NaN), thousands separators, a frame that scrolls,
collapsed long tables, and captions that say mock on a mock run."""
from __future__ import annotations

import matplotlib.pyplot as plt
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


def _displayed(glue, monkeypatch) -> list:
    """What ``glue`` hands IPython's display: (args, kwargs) per call, a figure and a caption."""
    import IPython.display
    from IPython.display import Markdown

    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1], [1, 0])
    glue("f", fig, display=True)
    glue("f-caption", Markdown("A **caption**."), display=False)
    plt.close(fig)
    return calls


def test_glue_displays_what_myst_nb_glue_displays(monkeypatch):
    import myst_nb.ext.glue

    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display",
                        lambda *a, **k: __import__("IPython.display").display.display(*a, **k))
    assert _displayed(display.glue, monkeypatch) == _displayed(myst_nb.ext.glue.glue, monkeypatch)


def test_a_figure_imports_neither_myst_nb_nor_jsonschema():
    """myst_nb's glue imports nbformat, and it jsonschema's format grammars: a second of every
    chapter's kernel."""
    import subprocess
    import sys

    code = ("import sys, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "from desivoids import display; display.figure('f', plt.figure(), 'c'); "
            "print(sorted(m for m in ('myst_nb', 'nbformat', 'jsonschema') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
