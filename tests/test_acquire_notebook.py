"""The acquire stage notebook on a tiny mock sky: it plans, fetches through the same code as
real data, shows the verified manifest and converts the mock tiles to Parquet."""
from __future__ import annotations

import re

import nbformat
import pytest

from desivoids import runner
from desivoids.acquire.manifest import Manifest
from desivoids.acquire.steps import manifest_rows
from desivoids.paths import RunLayout
from desivoids.stages import STAGES


@pytest.mark.slow
def test_acquire_notebook_on_the_tiny_mock(tiny_sky, tmp_path):
    root, summary = tiny_sky
    run = tmp_path / "run"
    out = runner.execute_stage(STAGES["acquire"], {"data_dir": str(run), "source": str(root), "workers": 2,
                                                     "sets": ["desivast", "fastspecfit", "tiles"]},
                               output=tmp_path / "01_acquire.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    layout = RunLayout.of(run)
    rows = manifest_rows(layout.manifest)
    expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.relative_to(root).parts[0] == "dr1")
    assert sorted(r["path"] for r in rows) == expected  # every file of the mirror, no truth/
    # data files matched DESI's published sums; the lists themselves have none: complete
    assert {r["state"] for r in rows if r["kind"] == "data"} == {"verified"}
    assert {r["state"] for r in rows if r["kind"] == "checksums"} == {"complete"}
    for r in rows:
        assert (layout.raw / r["path"]).read_bytes() == (root / r["path"]).read_bytes()
    n_tiles = len(summary["tiles"])
    with Manifest(layout.manifest, readonly=True) as m:
        conv = m.spectra_rows()
    # every pair converted or recorded empty; one Parquet file per converted pair, no other
    assert len(conv) == n_tiles and {r["state"] for r in conv} <= {"done", "empty"}
    written = sorted(p.relative_to(layout.spectra).as_posix()
                     for p in layout.spectra.rglob("spectra-*.parquet"))
    assert written == sorted(r["output"] for r in conv if r["state"] == "done")
    for r in conv:  # the selection waterfall accounts for every target
        assert r["n_spectype"] + r["n_zwarn"] + r["n_deltachi2"] + r["n_kept"] == r["n_targets"] > 0
    assert sum(r["n_kept"] for r in conv) > 0  # the mock tiles hold galaxies that pass the cuts
    text = "\n".join(o.get("data", {}).get("text/plain", "") for c in nb.cells for o in c.get("outputs", []))
    assert re.search(r"status\s+done", text) and re.search(r"coadd/redrock pairs\s+" + str(n_tiles), text)
    n_data = sum(r["kind"] == "data" for r in rows)
    assert re.search(r"verified: published sha256\s+" + str(n_data), text)
    assert re.search(r"complete: nothing to verify against\s+" + str(len(rows) - n_data), text)
