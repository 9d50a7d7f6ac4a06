"""The load chapter's findings, tables and figures (desivoids.load.figures) on the tiny run: the
example queries are checked against a brute-force selection of the galaxies in Parquet."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import load
from desivoids.load import figures
from desivoids.load.queries import dispose_engines


@pytest.fixture(scope="module")
def loaded(loaded_run, tmp_path_factory):
    import shutil

    d = tmp_path_factory.mktemp("load_fig") / "run"
    for sub in ("convert", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    result = load.run(data_dir=str(d))
    url = figures.database(str(d))
    rec = figures.reconcile_table(str(d))
    ex = figures.example(url)
    yield d, result, url, rec, ex
    dispose_engines()


def test_the_example_is_the_largest_voidfinder_void_and_its_sphere_is_exact(loaded):
    d, result, url, rec, ex = loaded
    voids = pq.read_table(d / "convert" / "voids.parquet").to_pandas()
    vf = voids[voids.algorithm == "VoidFinder"].sort_values("r_eff", ascending=False).iloc[0]
    assert (ex["void"]["cap"], ex["void"]["void"]) == (vf.cap, vf.void)
    gal = pq.read_table(d / "convert" / "galaxies",
                        columns=["targetid", "comoving_x", "comoving_y", "comoving_z"]).to_pandas()
    r = np.sqrt((gal.comoving_x - vf.x) ** 2 + (gal.comoving_y - vf.y) ** 2 + (gal.comoving_z - vf.z) ** 2)
    assert set(ex["sphere"].targetid) == set(gal.targetid[r < vf.r_eff])
    text = " ".join(figures.findings(result, rec, ex))
    assert f"find {int((r < vf.r_eff).sum()):,d} galaxies in its sphere" in text
    assert "all 7 tables match" in text
    table = figures.example_table(ex).set_index("quantity")
    assert table.loc["sphere galaxies also in the cone", "value"] == f"{len(ex['sphere']):,d} of {len(ex['sphere']):,d}"


def test_the_figures_have_units_and_a_bar_per_table(loaded):
    _, result, url, rec, ex = loaded
    fig = figures.rows_figure(rec, result.dialect)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and len(ax.patches) == 2 * len(rec)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rec.table)
    fig = figures.example_figure(ex)
    sky, z = fig.axes
    assert sky.get_xlabel() == "RA [deg]" and sky.get_ylabel() == "Dec [deg]"
    assert "the cone" in [t.get_text() for t in sky.get_legend().get_texts()]
    assert z.get_xlabel() == "redshift"
    assert len(figures.index_table(url)) > 0 and len(figures.provenance_table(url)) > 0
    assert len(figures.sphere_table(ex)) == min(len(ex["sphere"]), figures.SPHERE_SHOWN)
    plt.close("all")


def test_the_reconciliation_is_the_published_one_not_a_second_count(loaded, monkeypatch):
    """The chapter shows the row counts the stage took in its transaction and published in its
    report (the same as counting the committed tables), without counting the tables again."""
    d, result, url, rec, ex = loaded
    from desivoids.load import report

    assert rec.equals(report.reconcile(d / "convert", url))
    monkeypatch.setattr(report, "row_counts", lambda db: pytest.fail("counted the tables again"))
    assert figures.reconcile_table(str(d)).equals(rec)
