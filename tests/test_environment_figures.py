"""The environment chapter's tables and figures (desivoids.environment.figures) on the tiny run:
each figure has the panels, labels and units a reader needs, and each table its rows."""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from desivoids import formats
from desivoids.environment import figures
from figure_checks import readable


@pytest.fixture(scope="module")
def drawn(env_run):
    d, result = env_run
    return result, figures.inputs(str(d))


def test_the_tables_have_a_row_per_flag_or_algorithm(drawn):
    result, data = drawn
    flags = figures.flag_table(result.report)
    assert set(flags.index) <= set(figures.FLAG_NAMES.values()) and "void" in flags.index
    assert set(flags.columns.get_level_values("algorithm")) == set(formats.ALGORITHMS)
    fr = figures.fractions_table(result.fractions)
    assert list(fr.columns) == ["tracers (%)", "volume (%)", "tracers, DR7 (%)", "volume, DR7 (%)"]
    assert ((fr["tracers (%)"] >= 0) & (fr["tracers (%)"] <= 100)).all()
    counts = figures.counts_table(data["counts"])
    assert list(counts.index) == list(formats.ALGORITHMS) and (counts.voids > 0).all()
    same = figures.agreement_table(result.agreement, "same_label")
    assert all(same.loc[a, a] == 1 for a in formats.ALGORITHMS)
    assert figures.agreement_table(result.agreement, "kappa").shape == (4, 4)


def test_the_fractions_figure_has_a_bar_per_algorithm_and_the_dr7_ticks(drawn):
    result, _ = drawn
    fig = figures.fractions_figure(result.fractions)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(formats.ALGORITHMS)
    assert "%" in ax.get_ylabel() and len(ax.patches) == 2 * len(formats.ALGORITHMS)
    assert "SDSS DR7 (VAST)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)


def test_sky_slab_and_sizes_have_a_panel_per_algorithm_with_units(drawn):
    _, data = drawn
    sky = figures.sky_figure(data["sample"], data["voids"])
    panels = sky.axes[:len(formats.ALGORITHMS)]
    assert [ax.get_title().split(":")[0] for ax in panels] == list(formats.ALGORITHMS)
    assert all(ax.get_ylabel() == "Dec [deg]" for ax in panels)
    assert "RA [deg]" in panels[-1].get_xlabel()
    bars = sky.axes[len(formats.ALGORITHMS):]  # a colour bar beside every map
    assert len(bars) == len(panels) and all(b.get_ylabel() == "tracers per cell" for b in bars)
    slab = figures.slab_figure(data["sample"], data["assign"], data["holes"], data["voids"])
    assert len(slab.axes) == 4 and all("Mpc/h" in ax.get_xlabel() for ax in slab.axes)
    assert sum(_circles_of(ax) for ax in slab.axes) > 0  # the voids cut the slab
    legend = [t.get_text() for t in slab.legends[0].get_texts()]
    assert set(legend) <= set(figures.FLAG_NAMES.values()) and "void" in legend  # words, not flags
    sizes = figures.sizes_figure(data["voids"])
    assert sizes.axes[0].get_xlabel() == "effective radius [Mpc/h]"
    for fig in (sky, slab, sizes):
        assert readable(fig) == []
    plt.close("all")


def test_a_void_on_the_sky_is_a_circle_drawn_1_over_cos_dec_wide_in_ra(drawn):
    _, data = drawn
    voids = data["voids"].iloc[:0]
    one = data["voids"].iloc[[0]].assign(algorithm=formats.ALGORITHMS[0], ra=150.0, dec=60.0,
                                         x=100.0, y=0.0, z=0.0, r_eff=10.0, is_edge=False)
    fig = figures.sky_figure(data["sample"], pd.concat([voids, one]))
    (ellipses,) = [c for c in fig.axes[0].collections if hasattr(c, "_widths")]
    theta = np.degrees(10.0 / 100.0)
    assert np.allclose(ellipses._widths * 2, 2 * theta / np.cos(np.radians(60.0)))
    assert np.allclose(ellipses._heights * 2, 2 * theta)
    plt.close(fig)


def test_the_opening_and_the_surface_and_field_tables(drawn):
    result, _ = drawn
    lines = figures.opening(result)
    assert 3 <= len(lines) <= 5
    assert lines[0].startswith(f"{int(result.report['galaxies']):,d} galaxies")
    share = figures.fractions_table(result.fractions)["tracers (%)"]
    assert all(f"{a} {v:.1f}%" in lines[1] for a, v in share.items())
    surface = figures.surface_table(result.report)
    assert list(surface.cap) == [r["cap"] for r in result.report["voidfinder_surface"]]
    field = figures.field_table(result.report)
    assert list(field.columns[:2]) == ["cap", "field HDU"] and len(field) >= 1


def test_slab_circles_are_the_cuts_of_the_spheres_that_reach_the_plane():
    circles = figures.slab_circles([0, 5], [1, 2], [3.0, 30.0], [5.0, 4.0], z0=0.0)
    assert circles == [(0.0, 1.0, 4.0)]  # 3-4-5; the second sphere stops short of the plane



def _collected(ax) -> list[tuple[float, float, float]]:
    """The slab figure's circles in a panel, (x, y, r) from its collections of circles."""
    from matplotlib.collections import PatchCollection

    out = []
    for c in ax.collections:
        if isinstance(c, PatchCollection):
            for p in c.get_paths():  # data coordinates: the box of a circle's control points
                lo, hi = p.vertices.min(axis=0), p.vertices.max(axis=0)
                out.append(tuple(np.round([*(lo + hi) / 2, (hi - lo)[0] / 2], 6)))
    return sorted(out)


def _circles_of(ax) -> int:
    return len(_collected(ax))


def test_the_slab_figure_has_the_limits_add_patch_gives_its_circles(drawn, monkeypatch):
    """The slab's circles are one collection per panel with the data limits they add updated
    once, not one patch each (2 CPU s at DR1 scale): the panels get the same limits and the
    same circles as one add_patch per circle."""
    from matplotlib.patches import Circle

    _, data = drawn
    args = (data["sample"], data["assign"], data["holes"], data["voids"])
    fig = figures.slab_figure(*args)
    fast = [(ax.get_xlim(), ax.get_ylim(), _collected(ax)) for ax in fig.axes]
    plt.close(fig)

    def one_patch_each(ax, circles, lw, color):
        for x, y, r in circles:
            ax.add_patch(Circle((x, y), r, fill=False, lw=lw, color=color))
    monkeypatch.setattr(figures, "_circles", one_patch_each)
    fig = figures.slab_figure(*args)
    slow = [(ax.get_xlim(), ax.get_ylim(),
             sorted(tuple(np.round([*p.center, p.radius], 6)) for p in ax.patches
                    if isinstance(p, Circle))) for ax in fig.axes]
    plt.close(fig)
    assert fast == slow and sum(len(c) for *_, c in fast) > 0


def test_the_slab_figure_and_the_explorer_read_the_rows_a_whole_read_gives(env_run, drawn):
    """Speed only (issue 25): inputs() and slab_data read the assignments of the galaxies they
    draw, not all 25.8M rows at DR1 scale; what they draw equals what the whole file, read and
    selected in pandas as before, gives."""
    import pyarrow.parquet as pq

    from desivoids import paths
    from desivoids.environment import explorer

    d, _ = env_run
    _, data = drawn
    path = paths.RunLayout.of(str(d)).file("environment", "assignments")
    whole = pq.read_table(path, columns=["targetid", "algorithm", "cap", "flag"],
                          read_dictionary=["algorithm"]).to_pandas()
    for cap in formats.CAPS:
        _, slab = figures.slab_of(data["sample"], cap)
        want = whole[whole.targetid.isin(slab.targetid)][["targetid", "algorithm", "flag"]]
        got = data["assign"][data["assign"].targetid.isin(slab.targetid)]
        assert len(want) and len(got) == len(want)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    # the explorer's flags, from the rows of the whole file
    got = explorer.slab_data(str(d), cap="NGC", max_galaxies=300)
    sample = pq.read_table(paths.RunLayout.of(str(d)).file("plausibility", "sample"),
                           columns=["targetid", "cap", "comoving_x", "comoving_y",
                                    "comoving_z"]).to_pandas()
    ngc = sample[sample.cap == "NGC"].reset_index(drop=True)
    xyz = ngc[["comoving_x", "comoving_y", "comoving_z"]].to_numpy() - got["centre"]
    assert got["galaxies"]["n"] > 0
    for alg in formats.ALGORITHMS:
        mine = whole[(whole.algorithm == alg) & (whole.cap == "NGC")].set_index("targetid").flag
        # the chosen galaxies: those at the drawn coordinates, in order
        pos = np.column_stack([got["galaxies"][k] for k in "xyz"])
        near = [int(np.argmin(np.abs(xyz - p).sum(axis=1))) for p in pos]
        flags = mine.reindex(ngc.targetid.to_numpy()[near]).fillna(9).astype(int)
        assert got["galaxies"]["flags"][alg] == "".join(str(f) for f in flags)


def test_the_explorer_data_of_inputs_is_what_slab_data_reads_on_its_own(env_run, drawn):
    """Speed only (issue 25): inputs() reads the sample and the assignments once for the slab
    figure and the interactive slab; its explorer data must equal slab_data reading its own
    (the chapter's former call)."""
    import json

    from desivoids.environment import explorer

    d, _ = env_run
    _, data = drawn
    alone = explorer.slab_data(str(d), cap=figures.EXPLORER_CAP)
    assert alone["galaxies"]["n"] > 0
    assert json.dumps(data["explorer"]) == json.dumps(alone)
