"""Every figure a thin stage notebook shows is a captioned, numbered ``{glue:figure}`` with alt
text in words (issue 22): ``display.figure(name, ...)`` in a code cell, and in a Markdown cell a
``{glue:figure} name`` with ``:alt:`` (a sentence, not a path), ``:name: fig-<name>`` and the
glued caption ``{glue:md}`<name>-caption``` (which says mock on a mock run)."""
from __future__ import annotations

import re

import jupytext
import pytest

from desivoids import paths
from test_notebook_style import NOT_YET_THIN

THIN = sorted(p for p in paths.NOTEBOOKS.glob("[0-9][0-9]_*.py") if p.stem not in NOT_YET_THIN)
_SHOWN = re.compile(r'display\.figure\(\s*"([^"]+)"')
_GLUED = re.compile(r"```\{glue:figure\} (\S+)\n((?::\S+:.*\n)*)\n(.+?)\n```", re.S)


def glue_problems(nb) -> list[str]:
    """Why the figures of a notebook (a jupytext notebook) would reach the book uncaptioned."""
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    glued = {m.group(1): m for c in nb.cells if c.cell_type == "markdown"
             for m in _GLUED.finditer(c.source + "\n")}
    out = []
    for name in [n for source in code for n in _SHOWN.findall(source)]:
        if name not in glued:
            out.append(f"figure {name!r} is not a {{glue:figure}}")
            continue
        options, caption = glued[name].group(2), glued[name].group(3)
        alt = re.search(r":alt: (.+)", options)
        if not alt or len(alt.group(1).split()) < 8 or re.search(r"\.(png|svg|jpe?g)\b", alt.group(1)):
            out.append(f"figure {name!r}: no alt text in words")
        if f":name: fig-{name}" not in options:
            out.append(f"figure {name!r}: no :name: fig-{name} (numbered, linkable)")
        if f"{{glue:md}}`{name}-caption`" not in caption:
            out.append(f"figure {name!r}: its caption is not the glued {name}-caption")
    out += ["a figure shown without a caption (plt.show() or Image())" for source in code
            if re.search(r"\bplt\.show\(|\bImage\(", source)]
    return out


def test_the_check_finds_a_figure_without_caption_or_alt_text():
    nb = jupytext.reads("\n".join([
        "# %%", 'display.figure("a", f(), "Caption.")', "", "# %%", "plt.show()", "",
        "# %% [markdown]", "# ```{glue:figure} a", "# :alt: figures/a.png", "# :name: fig-a", "#",
        "# {glue:md}`a-caption`", "# ```", ""]), fmt="py:percent")
    found = glue_problems(nb)
    assert any("no alt text" in p for p in found) and any("plt.show" in p for p in found)
    assert not any("not a {glue:figure}" in p or "caption is not" in p for p in found)


@pytest.mark.parametrize("path", THIN, ids=lambda p: p.stem)
def test_every_figure_is_glued_with_a_caption_and_alt_text_in_words(path):
    nb = jupytext.read(path)
    assert _SHOWN.search(path.read_text()), f"{path.name} shows no figure"
    assert glue_problems(nb) == [], f"{path.name}: " + "; ".join(glue_problems(nb))
