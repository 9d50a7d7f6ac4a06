"""The environment chapter's slab explorer (desivoids.environment.explorer), issue 22 point 9: its
static preview (for readers without JavaScript) has axes named after the comoving axes with
units, a legend in words, the MOCK mark on a mock run and the same start view as the script; the
page says when the figure draws a random subsample of the cube's tracers. The figure's data is
written here by hand (no run, no mock sky); the script itself is checked in the browser test
(tests/test_browser.py::test_the_interactive_figure_draws)."""
from __future__ import annotations

import base64
import json
import re
from html import unescape

import numpy as np
import pytest
from matplotlib.patches import Circle

from desivoids.environment import explorer
from desivoids.runinfo import MOCK_GID


def data(*, mock=False, total=6):
    """Five tracers at hand-picked positions around the cube's centre (Mpc/h) and two
    VoidFinder holes: one cuts the slab's mid plane z = 0, one lies 40 Mpc/h above it."""
    x, y, z = [10.0, -20.0, 30.0, 0.0, 5.0], [0.0, 15.0, -40.0, 60.0, 5.0], [0.0, 5.0, -9.0, 50.0, -3.0]
    return {"cap": "NGC", "half_width": 150.0, "algorithms": ["VoidFinder", "REVOLVER", "VIDE", "ZOBOV"],
            "view": dict(explorer.VIEW), "mock": mock, "centre": [1.0, 2.0, 3.0],
            "total_in_cube": total,
            "galaxies": {"n": 5, "x": x, "y": y, "z": z,
                         # z = 50 is outside the 20 Mpc/h slab; the others: void, wall, edge, wall
                         "flags": {"VoidFinder": "10290", "REVOLVER": "11111", "VIDE": "00000",
                                   "ZOBOV": "99999"}},
            "spheres": {"VoidFinder": [[0.0, 0.0, 0.0, 12.0], [0.0, 0.0, 40.0, 10.0]],
                        "REVOLVER": [], "VIDE": [], "ZOBOV": []}}


def test_the_preview_has_named_axes_with_units_and_a_legend_in_words():
    fig = explorer.slab_preview(data())
    ax = fig.axes[0]
    # the start view looks down z: across the slab is comoving y, up it is -x (as slab.js draws)
    assert ax.get_xlabel() == "comoving y [Mpc/h from the cube's centre]"
    assert ax.get_ylabel() == "comoving \u2212x [Mpc/h]"
    assert "20 Mpc/h thick" in ax.get_title() and "normal along z" in ax.get_title()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["wall galaxy (2)", "void galaxy (1)", "edge galaxy (1)",
                      "outside galaxy (0)", "VoidFinder voids, cut by the slab (1)"]
    (circle,) = [p for p in ax.patches if isinstance(p, Circle)]
    assert circle.get_radius() == pytest.approx(12.0)
    # the void galaxy at (10, 0, 0) is drawn at (y, -x) = (0, -10)
    void = next(c for c in ax.collections if c.get_label().startswith("void galaxy"))
    assert np.allclose(void.get_offsets(), [[0.0, -10.0]])
    assert not [t for t in fig.texts if t.get_gid() == MOCK_GID]


def test_a_mock_runs_preview_carries_the_mock_mark():
    fig = explorer.slab_preview(data(mock=True))
    assert [t.get_text() for t in fig.texts if t.get_gid() == MOCK_GID] == ["MOCK: not DESI data"]


def test_a_turned_view_names_no_axis_it_does_not_run_along():
    d = data()
    d["view"] = {**d["view"], "azimuth": 30, "elevation": 20}
    ax = explorer.slab_preview(d).axes[0]
    assert ax.get_xlabel() == "across the slab [Mpc/h from the cube's centre]"
    assert ax.get_ylabel() == "up the slab [Mpc/h]"


def _img(html_text):
    m = re.search(r'<img class="slab-preview" src="data:image/png;base64,([^"]+)" alt="([^"]+)"',
                  html_text)
    assert m, "no static preview <img> in the explorer's HTML"
    return base64.b64decode(m.group(1)), unescape(m.group(2))


def test_the_page_holds_a_static_preview_with_alt_text_and_says_the_subsample():
    page = explorer.slab_html(data(mock=True, total=40))
    png, alt = _img(page)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert alt.startswith("MOCK sky, not DESI data. Static preview of the slab explorer")
    assert "/" not in alt.replace("Mpc/h", "") and "VoidFinder" in alt  # words, not a path
    assert "draws a random 5 of the 40 tracers in the cube (a subsample" in page
    assert page.index('class="slab-fallback"') < page.index("<img")  # the script removes it
    payload = json.loads(re.search(r'<script type="application/json" id="slab-data">(.*?)</script>',
                                   page, re.S).group(1))
    assert payload["view"] == explorer.VIEW and payload["mock"] is True
    assert "draws all 5 tracers in the cube" in explorer.slab_html(data(total=5))


def test_an_empty_cap_has_no_preview_image_but_says_so():
    d = data()
    d["galaxies"] = {"n": 0}
    d["total_in_cube"] = 0
    page = explorer.slab_html(d)
    assert "<img" not in page and "draws all 0 tracers in the cube" in page


def test_the_preview_is_the_png_that_one_add_patch_per_circle_gives(monkeypatch):
    """Speed only (issue 25): the preview's circles are added without add_patch's per-circle
    update of the data limits (the limits are set afterwards); the page, PNG included, is
    byte for byte the one add_patch gives."""
    from matplotlib.axes import Axes

    many = data()
    rng = np.random.default_rng(4)
    many["spheres"]["VoidFinder"] = np.column_stack(
        [rng.uniform(-100, 100, (300, 3)), rng.uniform(5, 30, 300)]).tolist()
    fast = explorer.slab_html(many)
    add_artist = Axes.add_artist
    monkeypatch.setattr(Axes, "add_artist", lambda self, a: self.add_patch(a)
                        if isinstance(a, Circle) else add_artist(self, a))
    assert explorer.slab_html(many) == fast
