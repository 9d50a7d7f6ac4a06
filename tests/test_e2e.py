"""End to end: `desivoids run` on a tiny mock through every stage, then `desivoids book`, in a
clone of the repository's sources (the session's ``tiny_book``, see conftest.py; the user's
book and data are never touched); the built book has the recon chapter listing every DESIVAST and
FastSpecFit file."""
from __future__ import annotations

import pytest

from desivoids import paths
from desivoids.stages import STAGES

pytestmark = pytest.mark.slow


def test_run_and_book_on_a_tiny_mock(tiny_book):
    # every declared output of every stage exists after the full run, the tile spectra included
    for stage in STAGES.values():
        for out in stage.outputs:
            assert any((tiny_book.data / out).iterdir()), f"{stage.name}: {out} is empty"
    assert list(paths.RunLayout(tiny_book.data).spectra.rglob("spectra-*.parquet"))
    html = tiny_book.html
    assert (html / "index.html").exists()
    recon_page = (html / "book" / "executed" / "02_recon.html").read_text()
    for cap in ("NGC", "SGC"):
        for alg in ("VoidFinder", "V2_REVOLVER", "V2_VIDE", "V2_ZOBOV"):
            assert f"DESIVAST_BGS_VOLLIM_{alg}_{cap}.fits" in recon_page
    for hp in range(12):
        assert f"fastspec-iron-main-bright-nside1-hp{hp:02d}.fits" in recon_page
    for ext in ("MAXIMALS", "HOLES", "VOIDS", "ZONEVOID", "GALZONE", "METADATA", "SPECPHOT", "FASTSPEC"):
        assert ext in recon_page
    # The local MathJax is shipped and referenced; no CDN.
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").exists()
    methods = (html / "book" / "methods.html").read_text()
    assert "mathjax/tex-mml-chtml.js" in methods and "cdn.jsdelivr" not in methods
    # The run wrote its notebooks into the copy, never into the user's book tree.
    src = tiny_book.root
    assert {p.name for p in (src / "book" / "executed").glob("*.ipynb")} >= {"01_acquire.ipynb", "02_recon.ipynb"}
    now = tuple(sorted(p.name for p in paths.EXECUTED.glob("*"))) if paths.EXECUTED.exists() else ()
    assert now == tiny_book.user_executed_before
