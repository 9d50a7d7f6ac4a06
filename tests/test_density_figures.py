"""The density chapter's figures and tables (desivoids.density.figures, .tables): on hand-written
profiles, report and outputs (numpy / pyarrow, not the stage), each figure shows what its caption
says, fits the book's column, and the tables show a dash, never NaN; the opening's numbers are
the profiles' own."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import density, display, formats
from desivoids.density import figures, tables
from desivoids.density.stage import DensityResult
from desivoids.density.tweb import WEB_CLASSES
from figure_checks import readable

R_EDGES = [0, 0.5, 1.0, 1.5, 3.0]


def _profiles() -> pd.DataFrame:
    rows = []
    for lo, hi, f in zip([-0.8, 0.0, 2.0], [0.0, 2.0, 20.0], [0.40, 0.35, 0.30]):
        rows.append({"quantity": "delta_k", "algorithm": "", "x_lo": lo, "x_hi": hi, "n": 100,
                     "k": int(100 * f), "fraction": f, "jk_lo": f - 0.05, "jk_hi": f + 0.05,
                     "raw": f})
    for alg, inside in (("VoidFinder", 0.20), ("REVOLVER", 0.30)):
        for lo, hi, f, n in zip(R_EDGES[:-1], R_EDGES[1:], [inside, inside + 0.1, 0.5, 0.4],
                                [10, 30, 50, 40]):
            rows.append({"quantity": "r_over_reff", "algorithm": alg, "x_lo": lo, "x_hi": hi,
                         "n": n, "k": int(n * f), "fraction": f, "jk_lo": f - 0.1,
                         "jk_hi": f + 0.1, "raw": f})
    p = pd.DataFrame(rows)
    p.loc[3, ["jk_lo", "jk_hi"]] = np.nan  # a bin without a jackknife interval
    return p


def _report() -> dict:
    cells = {"void": 300, "sheet": 400, "filament": 200, "knot": 100}
    return {"galaxies": 12345, "tracers": 2000,
            "parameters": {"k": 5, "definition": "ssfr"},
            "caps": [{"cap": "NGC", "edge_flagged": 321, "web_cells": cells},
                     {"cap": "SGC", "edge_flagged": 79, "web_cells": cells}],
            "web_agreement": [{"a": "T-Web", "b": "VoidFinder", "galaxies": 100,
                               "same_label": 0.9, "both_void": 3, "kappa": 0.1},
                              {"a": "T-Web", "b": "ZOBOV", "galaxies": 100,
                               "same_label": 0.25, "both_void": 20, "kappa": float("nan")}]}


def _result(tmp_path) -> DensityResult:
    comparison = pd.DataFrame({"labelling": [*formats.ALGORITHMS, "T-Web"], "n_void": 5,
                               "n_wall": 50, "p_void": 0.3, "p_wall": 0.4, "rd": -0.1,
                               "rd_jk_lo": [-0.2, -0.2, -0.2, np.nan, np.nan],
                               "rd_jk_hi": [0.0, 0.0, 0.0, np.nan, np.nan]})
    fractions = pd.DataFrame({"web_class": list(WEB_CLASSES), "n": [1, 10, 20, 30],
                              "k": [1, 3, 6, 9], "fraction": [1.0, 0.3, 0.3, 0.3],
                              "lo": [np.nan, 0.1, 0.2, 0.2], "hi": [np.nan, 0.5, 0.4, 0.4]})
    return DensityResult(tmp_path, _report(), _profiles(), comparison, fractions)


def test_the_profile_figure_has_a_line_per_algorithm_and_the_void_edge():
    fig = figures.profile_figure(_profiles())
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["VoidFinder", "REVOLVER"]
    assert any(np.allclose(line.get_xdata(), 1.0) for line in ax.get_lines())  # R_eff
    assert "r / R_eff" in ax.get_xlabel() and "quenched" in ax.get_ylabel()
    y = ax.containers[0].lines[0].get_ydata()
    assert np.allclose(y, [0.20, 0.30, 0.5, 0.4])  # VoidFinder's fractions, in bin order
    assert readable(fig) == []
    delta = figures.delta_figure(_profiles())
    dx = delta.axes[0].containers[0].lines[0].get_xdata()
    assert len(dx) == 3 and np.all(np.diff(dx) > 0)
    assert readable(delta) == []
    plt.close("all")


def test_the_profile_figure_draws_the_planted_profile_of_a_mock_run(tmp_path):
    assert density.planted_profile(str(tmp_path)) is None  # real data: no truth, no line
    truth = tmp_path / "mirror" / "truth"
    truth.mkdir(parents=True)
    bins = [{"x_lo": 0.0, "x_hi": 0.5, "n": 10, "expected": 0.15, "without_plant": 0.3},
            {"x_lo": 0.5, "x_hi": 1.0, "n": 20, "expected": 0.25, "without_plant": 0.3}]
    (truth / "truth.json").write_text(json.dumps({"planted_profile": {
        "algorithm": "VoidFinder", "expected": {"bins": bins}}}))
    planted = density.planted_profile(str(tmp_path))
    fig = figures.profile_figure(_profiles(), planted)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "VoidFinder: planted (mock truth)" in labels
    line = next(ln for ln in ax.get_lines() if ln.get_label().endswith("(mock truth)"))
    assert np.allclose(line.get_xdata(), [0.25, 0.75]) and np.allclose(line.get_ydata(),
                                                                       [0.15, 0.25])
    # in VoidFinder's colour, dashed
    assert line.get_color() == ax.containers[0].lines[0].get_color()
    assert line.get_linestyle() == "--"
    assert readable(fig) == []
    plt.close("all")


def test_the_web_slice_shows_the_classes_and_the_voids_that_cut_it(tmp_path):
    (tmp_path / "density").mkdir()
    (tmp_path / "convert").mkdir()
    classes = np.full((40, 30), -1, np.int8)
    classes[5:35, 5:25] = np.arange(600).reshape(30, 20) % 4
    np.savez(tmp_path / "density" / "web_slices.npz", NGC_classes=classes,
             NGC_extent=np.array([0.0, 80.0, 100.0, 160.0, 50.0, 2.0]))
    pq.write_table(pa.table({"algorithm": ["REVOLVER", "VIDE"], "cap": ["NGC", "NGC"],
                             "x": [40.0, 40.0], "y": [130.0, 130.0], "z": [50.0, 500.0],
                             "r_eff": [10.0, 10.0]}), tmp_path / "convert" / "voids.parquet")
    pq.write_table(pa.table({"cap": ["NGC", "NGC", "SGC"], "x": [30.0, 30.0, 30.0],
                             "y": [120.0, 120.0, 120.0], "z": [53.0, 90.0, 50.0],
                             "radius": [5.0, 5.0, 5.0]}), tmp_path / "convert" / "holes.parquet")
    fig = figures.web_slice_figure(str(tmp_path), "NGC")
    ax = fig.axes[0]
    (image,) = ax.get_images()
    assert image.get_array().count() == 600  # the survey's cells; outside blank
    # one collection of circles per style (a patch each cost 1.9 CPU s at DR1 scale)
    drawn = [c for c in ax.collections if len(c.get_offsets())]
    assert not ax.patches and len(drawn) == 2  # the hole and the REVOLVER void in the slice
    assert sorted(float(c.get_widths()[0]) / 2 for c in drawn) == [4.0, 10.0]  # sqrt(5^2-3^2)
    assert sorted(tuple(c.get_offsets()[0]) for c in drawn) == [(30.0, 120.0), (40.0, 130.0)]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:4] == list(WEB_CLASSES) and "VoidFinder holes" in legend
    assert ax.get_xlim() == (6.0, 74.0)  # the survey's cells (10 to 70), two cells either side
    assert readable(fig) == []
    assert not figures.web_slice_figure(str(tmp_path), "SGC").axes[0].axison  # no SGC grid
    plt.close("all")


def test_the_opening_says_what_the_profiles_say(tmp_path):
    lines = tables.opening(_result(tmp_path))
    assert 3 <= len(lines) <= 5
    assert lines[0].startswith("12,345 galaxies in 2 cap(s)") and "400 of them" in lines[0]
    # VoidFinder inside 1 R_eff: (10 x 0.20 + 30 x 0.30) / 40 = 27.5%; beyond 1.5: 40%
    assert "VoidFinder 28% against 40%" in lines[1] and "REVOLVER 38% against 40%" in lines[1]
    assert "from 40% in the least dense of 3 quantile bins" in lines[2]
    assert lines[2].endswith("30% in the densest.")
    assert lines[3].startswith("The T-Web calls 30% of the survey's grid cells void")
    assert "25% to 90%" in lines[3]
    text = str(display.summary(lines))
    assert "nan" not in text.lower()


def test_the_tables_show_a_dash_where_a_value_does_not_apply(tmp_path):
    result = _result(tmp_path)
    (tmp_path / "density").mkdir()
    pd.DataFrame([{"cap": cap, "web_class": c, "cells": 10 * i, "volume": 80.0 * i,
                   "tracers": i} for cap in ("NGC", "SGC") for i, c in enumerate(WEB_CLASSES)]
                 ).to_parquet(tmp_path / "density" / "web_counts.parquet")
    shown = {
        "profiles": tables.profile_table(result.profiles),
        "counts": tables.web_counts_table(str(tmp_path)),
        "comparison": tables.comparison_table(result.comparison),
        "agreement": tables.agreement_table(result.report),
        "ullah": tables.ullah_table(result.web_fractions, "ssfr"),
    }
    assert len(shown["profiles"]) == len(result.profiles)
    assert list(shown["counts"].index) == list(WEB_CLASSES)
    assert list(shown["ullah"].index) == list(WEB_CLASSES)
    for name, t in shown.items():
        html = display.table(t, caption=name)._repr_html_()
        assert "NaN" not in html and "nan" not in html, name
    assert display.DASH in display.table(shown["comparison"]).cells()[-1]
    assert display.table(shown["ullah"]).cells()[0][3] == display.DASH  # void: no interval


def test_the_slice_circles_widen_the_data_limits_as_add_patch_does():
    """display.circles adds the circles without add_patch's per-patch limit update, and the
    limits they add once: the same data limits as add_patch gives, the same circles."""
    x, y, r = np.array([3.0, -40.0, 12.5]), np.array([7.0, 2.0, 90.0]), np.array([5.0, 1.5, 30.0])
    fig, (a, b) = plt.subplots(1, 2)
    for ax in (a, b):
        ax.imshow(np.zeros((4, 4)), extent=(0, 10, 0, 10))
    for cx, cy, cr in zip(x, y, r):
        a.add_patch(plt.Circle((cx, cy), cr, fill=False, color="k", lw=0.5))
    display.circles(b, x, y, r, color="k", lw=0.5)
    np.testing.assert_allclose(b.dataLim.get_points(), a.dataLim.get_points(), rtol=1e-12)
    assert b.get_xlim() == pytest.approx(a.get_xlim()) and b.get_ylim() == pytest.approx(a.get_ylim())
    assert [(c.center, c.get_radius(), c.get_fill(), c.get_linewidth()) for c in b.patches] == \
        [(c.center, c.get_radius(), c.get_fill(), c.get_linewidth()) for c in a.patches]
    plt.close("all")


def test_circle_outlines_draw_what_the_patches_draw_in_one_collection():
    """display.circle_outlines: one collection, the data limits add_patch gives, and the same
    picture as a Circle patch each (every pixel within two levels: anti-aliasing's rounding),
    solid and dashed."""
    rng = np.random.default_rng(3)
    x, y, r = rng.uniform(0, 100, 60), rng.uniform(0, 60, 60), rng.uniform(1, 15, 60)

    def draw(collection: bool, ls: str):
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        ax.imshow(np.zeros((4, 4)), extent=(0, 100, 0, 60))
        if collection:
            display.circle_outlines(ax, x, y, r, color="tab:blue", lw=0.6, ls=ls)
        else:
            for cx, cy, cr in zip(x, y, r):
                ax.add_patch(plt.Circle((cx, cy), cr, fill=False, color="tab:blue", lw=0.6,
                                        ls=ls))
        fig.canvas.draw()
        out = (np.asarray(fig.canvas.buffer_rgba()).astype(int), ax.get_xlim(), ax.get_ylim(),
               len(ax.patches), len(ax.collections), ax.dataLim.get_points().copy())
        plt.close(fig)
        return out
    for ls in ("-", "--"):
        new, old = draw(True, ls), draw(False, ls)
        assert new[3:5] == (0, 1) and old[3:5] == (60, 0)
        np.testing.assert_allclose(new[5], old[5], rtol=1e-12)  # the circles' data limits
        assert np.allclose(new[1:3], old[1:3], rtol=1e-12)
        new, old = new[0], old[0]
        assert np.abs(new - old).max() <= 2, ls
        assert np.abs(new - 255).sum() > 0.5 * np.abs(old - 255).sum()  # circles were drawn
