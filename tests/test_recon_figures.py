"""The recon chapter's findings, tables and figure (desivoids.recon.figures) on the tiny mock
sky, counted against the files themselves (astropy), not against recon."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
from astropy.io import fits

from desivoids import display, recon
from desivoids.recon import figures


@pytest.fixture(scope="module")
def inventoried(tiny_sky, tmp_path_factory):
    root, _ = tiny_sky
    result = recon.run(data_dir=str(tmp_path_factory.mktemp("recon_fig") / "run"),
                       input_dir=str(root))
    return root, result, result.tables()


def test_the_findings_count_files_hdus_and_rows_as_astropy_does(inventoried):
    root, result, inv = inventoried
    files = sorted(root.rglob("*.fits"))
    hdus = rows = 0
    for p in files:
        with fits.open(p) as h:
            hdus += len(h)
            rows += sum(x.header["NAXIS2"] for x in h if isinstance(x, fits.BinTableHDU))
    text = " ".join(figures.findings(result, inv))
    assert f"opened {len(files):,d} FITS files" in text
    assert f"{hdus:,d} HDUs and {rows:,d} table rows" in text
    assert "Every file opened" in text and "NaN" not in text
    kinds = figures.by_kind_table(inv)
    assert kinds["files"].sum() == len(files) and kinds["rows"].sum() == rows
    assert list(kinds.columns) == ["files", "hdus", "rows", "MB"]


def test_the_kinds_figure_has_a_bar_per_kind_with_units(inventoried):
    _, _, inv = inventoried
    fig = figures.kinds_figure(inv)
    a1, a2 = fig.axes
    kinds = figures.by_kind_table(inv)
    assert "[MB]" in a1.get_xlabel() and "rows" in a2.get_xlabel()
    assert a1.get_xscale() == a2.get_xscale() == "log"
    assert len(a1.patches) == len(a2.patches) == len(kinds)
    assert {t.get_text() for t in a1.get_yticklabels()} == set(kinds.index)
    plt.close(fig)


def test_the_long_tables_show_dashes_not_nan(inventoried):
    _, result, inv = inventoried
    hdus = figures.hdus_table(inv)
    assert len(hdus) == len(inv["hdus"]) and list(hdus.columns)[:3] == ["file", "HDU", "EXTNAME"]
    html = display.table(hdus, collapsed=True)._repr_html_()
    assert "NaN" not in html and "None" not in html and "\u2013" in html  # images have no rows
    cols = figures.desivast_columns_table(inv)
    assert list(cols.columns[:2]) == ["EXTNAME", "column"] and len(cols.columns) == 2 + 8
    other = figures.other_columns_table(inv)
    assert (other["columns"] > 0).all() and other["first columns"].str.len().gt(0).all()
    assert figures.faults_table(inv).empty and list(figures.notes_table(result.files).columns) == ["path", "note"]
    files = figures.files_table(inv)
    assert files["published sha256"].eq(True).all() and len(files) == len(inv["files"])
