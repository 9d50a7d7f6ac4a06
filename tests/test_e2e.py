"""End to end: `desivoids run` on a tiny mock through every stage, then `desivoids book`, in a
copy of the book's sources (the user's book and data are never touched); the built book has the
recon chapter listing every DESIVAST and FastSpecFit file."""
from __future__ import annotations

import subprocess
import sys

import pytest

from desivoids import book, paths
from desivoids.stages import STAGES

pytestmark = pytest.mark.slow


def desivoids(*args, cwd):
    proc = subprocess.run([sys.executable, "-m", "desivoids.cli", *args], capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, f"desivoids {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def test_run_and_book_on_a_tiny_mock(tmp_path):
    before = sorted(p.name for p in paths.EXECUTED.glob("*")) if paths.EXECUTED.exists() else []
    src = book.copy_sources(tmp_path / "site")
    params = tmp_path / "tiny.yml"
    params.write_text(f"profile: tiny\ndata_dir: {tmp_path / 'data'}\n"
                      "mock: {seed: 7, scale: tiny, fastspec_version: v3.0, tiles: 1}\n"
                      "stages: {acquire: {sets: [desivast, fastspecfit, tiles]}}\n")
    desivoids("run", "--params", str(params), "--quiet", "--executed-dir", str(src / "book" / "executed"), cwd=tmp_path)
    # every declared output of every stage exists after the full run, the tile spectra included
    for stage in STAGES.values():
        for out in stage.outputs:
            assert any((tmp_path / "data" / out).iterdir()), f"{stage.name}: {out} is empty"
    assert list(paths.RunLayout(tmp_path / "data").spectra.rglob("spectra-*.parquet"))
    desivoids("book", "--root", str(src), cwd=tmp_path)
    html = src / "_build" / "html"
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
    assert {p.name for p in (src / "book" / "executed").glob("*.ipynb")} >= {"01_acquire.ipynb", "02_recon.ipynb"}
    after = sorted(p.name for p in paths.EXECUTED.glob("*")) if paths.EXECUTED.exists() else []
    assert after == before
