"""How a stage chapter shows its findings, tables and figures: one look for every chapter.

- :func:`summary`: the chapter's opening sentences (computed by the run), as Markdown.
- :func:`table`: a DataFrame as a reader's table: no index column, "not applicable" as an en
  dash (never NaN), integers with thousands separators, scrolling inside its own frame, and
  optionally collapsed (an HTML ``<details>``) for long tables.
- :func:`figure`: glue a figure and its caption for a captioned, numbered ``{glue:figure}`` in
  the book (myst-nb); on a mock run (a figure carrying :data:`desivoids.runinfo.MOCK_MARK`) the
  caption says so first.

In a notebook::

    display.figure("recon-kinds", figures.kinds_figure(inv), "Bytes and rows per kind of file.")

and in a Markdown cell below it::

    ```{glue:figure} recon-kinds
    :alt: what the figure shows, in words
    :name: fig-recon-kinds

    {glue:md}`recon-kinds-caption`
    ```
"""
from __future__ import annotations

import html
import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["DASH", "Table", "table", "Summary", "summary", "figure", "cell"]

#: what a table shows for "not applicable" (a missing or non-finite value)
DASH = "\u2013"
#: the CSS class of a table's frame (book/_static/desivoids.css: it scrolls, never widens the page)
FRAME_CLASS = "dv-table"
NUM = ' class="num"'  # numbers are right-aligned (desivoids.css)


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return not np.isfinite(float(value))
    return False


def cell(value) -> str:
    """One value as a table shows it: a dash for missing or non-finite, integers (and floats
    that are whole numbers) with thousands separators, other floats to five significant digits."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(cell(v) for v in value) if len(value) else DASH
    if _missing(value):
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,d}"
    if isinstance(value, numbers.Real):
        x = float(value)
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,d}"
        return f"{x:,.1f}" if abs(x) >= 1e4 else f"{x:.5g}"
    text = str(value)
    return text if text else DASH


def _numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


class Table:
    """A table for a chapter: HTML in the book and in Jupyter, aligned text elsewhere."""

    def __init__(self, df: pd.DataFrame, caption: str | None = None, collapsed: bool = False):
        has_index = any(n is not None for n in df.index.names)
        self.frame = df.reset_index() if has_index else df.reset_index(drop=True)
        self.frame.columns = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c)
                              for c in self.frame.columns]
        self.caption = caption
        self.collapsed = collapsed

    @property
    def rows(self) -> int:
        return len(self.frame)

    def cells(self) -> list[list[str]]:
        """Every row as the strings shown."""
        return [[cell(v) for v in row] for row in self.frame.itertuples(index=False, name=None)]

    def _heading(self) -> str:
        n = f"{self.rows:,d} row{'s' if self.rows != 1 else ''}"
        return f"{self.caption} ({n})" if self.caption else n

    def _repr_html_(self) -> str:
        numeric = [_numeric(self.frame[c]) for c in self.frame.columns]
        esc = html.escape

        def row(values, tag):
            return "<tr>" + "".join(
                f"<{tag}{NUM if num else ''}>{esc(v)}</{tag}>"
                for v, num in zip(values, numeric)) + "</tr>"

        head = row(list(self.frame.columns), "th")
        body = "".join(row(r, "td") for r in self.cells())
        if not self.rows:
            body = f'<tr><td colspan="{max(len(numeric), 1)}">(none)</td></tr>'
        # the caption above the frame, not a <caption>: the frame scrolls (display: block), and
        # a <caption> would wrap at the width of a narrow table
        caption = ("" if self.collapsed or not self.caption else
                   f'<p class="{FRAME_CLASS}-caption"><strong>{esc(self.caption)}</strong></p>')
        table = (f'{caption}<div class="{FRAME_CLASS}" style="overflow-x:auto;max-width:100%">'
                 f'<table class="dataframe {FRAME_CLASS}"><thead>{head}</thead>'
                 f"<tbody>{body}</tbody></table></div>")
        if self.collapsed:
            return f"<details><summary>{esc(self._heading())}</summary>{table}</details>"
        return table

    def __repr__(self) -> str:
        shown = pd.DataFrame(self.cells(), columns=self.frame.columns)
        text = shown.to_string(index=False) if self.rows else "(none)"
        return f"{self._heading()}\n{text}" if self.caption else text


def table(df: pd.DataFrame, caption: str | None = None, collapsed: bool = False) -> Table:
    """``df`` as a chapter shows it (see :class:`Table`); ``collapsed``: inside a ``<details>``
    whose summary line is the caption and the row count, for long tables."""
    return Table(df, caption, collapsed)


class Summary:
    """The chapter's opening paragraph: Markdown in the book and in Jupyter, the same text
    elsewhere (and in the notebook's text/plain output, which tests read)."""

    def __init__(self, text: str):
        self.data = text

    def _repr_markdown_(self) -> str:
        return self.data

    def __repr__(self) -> str:
        return self.data


def summary(lines: Iterable[str]) -> Summary:
    """The chapter's opening: a few sentences computed by the run, as one Markdown paragraph."""
    return Summary(" ".join(s.strip() for s in lines if s and s.strip()))


def figure(name: str, fig, caption: str) -> None:
    """Show ``fig`` and glue it as ``name`` with its caption as ``name-caption`` (Markdown), for a
    ``{glue:figure}`` below; on a mock run (the figure carries the MOCK mark) the caption starts
    by saying so. The figure is closed afterwards, so Jupyter does not show it a second time."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown

    from .runinfo import MOCK_GID

    mock = any(t.get_gid() == MOCK_GID for t in fig.texts)
    text = ("**Mock sky, not DESI data.** " if mock else "") + caption.strip()
    glue(name, fig, display=True)
    glue(f"{name}-caption", Markdown(text), display=False)
    plt.close(fig)


#: myst-nb's mime-type prefix of a value glued without display (myst_nb.ext.glue.GLUE_PREFIX)
GLUE_PREFIX = "application/papermill.record/"


def glue(name: str, variable, display: bool = True) -> None:
    """``myst_nb.glue``, the same output (myst-nb 1.x: the value's display data under the
    ``scrapbook`` metadata the book's ``{glue}`` directives read), without importing myst_nb:
    its glue module imports nbformat and with it jsonschema's format grammars, about a second
    of every chapter's kernel, more than most figures."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    mimebundle, metadata = format_display_data(variable)
    mime_prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=mime_prefix)
    ipy_display({mime_prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


def circle_outlines(ax, x, y, radius, *, color, lw: float, ls: str = "-") -> None:
    """Unfilled circles in data units as one collection: what :func:`circles` draws (each
    pixel within one level of it), with the same data limits, built and drawn in one call.
    Density's NGC slice of 5,000 circles at DR1 scale cost 1.9 CPU s as patches (building them
    and drawing each)."""
    from matplotlib.collections import EllipseCollection

    x, y, radius = (np.asarray(a, float) for a in (x, y, radius))
    ax.add_collection(EllipseCollection(
        2 * radius, 2 * radius, np.zeros(len(x)), units="xy", offsets=np.column_stack([x, y]),
        offset_transform=ax.transData, facecolors="none", edgecolors=color, linewidths=lw,
        linestyles=ls), autolim=False)
    if len(x):
        ax.update_datalim(np.column_stack([np.r_[x - radius, x + radius],
                                           np.r_[y - radius, y + radius]]))


def circles(ax, x, y, radius, **style) -> None:
    """Unfilled circles drawn as ``ax.add_patch`` draws them, with the data limits they add
    updated once: add_patch's per-patch update was 4 of the 4.5 s of density's NGC slice of
    5,000 circles at DR1 scale (and most of environment's slab figure)."""
    import matplotlib.pyplot as plt

    x, y, radius = (np.asarray(a, float) for a in (x, y, radius))
    for cx, cy, r in zip(x.tolist(), y.tolist(), radius.tolist()):
        ax.add_artist(plt.Circle((cx, cy), r, fill=False, **style))
    if len(x):
        ax.update_datalim(np.column_stack([np.r_[x - radius, x + radius],
                                           np.r_[y - radius, y + radius]]))
