"""The acquire stage notebook on a tiny mock sky: it plans, fetches through the same code as
real data, shows the verified manifest and converts the mock tiles to Parquet."""
from __future__ import annotations

import re

import nbformat
import pytest

from desivoids import runner
from desivoids.acquire.run import manifest_rows
from desivoids.paths import RunLayout
from desivoids.stages import STAGES


@pytest.mark.slow
def test_acquire_notebook_on_the_tiny_mock(tiny_sky, tmp_path):
    root, summary = tiny_sky
    run = tmp_path / "run"
    out = runner.execute_stage(STAGES["acquire"], {"data_dir": str(run), "source": str(root), "workers": 2},
                               output=tmp_path / "01_acquire.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    layout = RunLayout.of(run)
    rows = manifest_rows(layout.manifest)
    expected = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                      if p.is_file() and p.relative_to(root).parts[0] == "dr1")
    assert sorted(r["path"] for r in rows) == expected  # every file of the mirror, no truth/
    assert {r["state"] for r in rows} == {"verified"}
    for r in rows:
        assert (layout.raw / r["path"]).read_bytes() == (root / r["path"]).read_bytes()
    n_tiles = len(summary["tiles"])
    assert len(list((layout.parquet / "spectra").rglob("spectra-*.parquet"))) <= n_tiles
    text = "\n".join(o.get("data", {}).get("text/plain", "") for c in nb.cells for o in c.get("outputs", []))
    assert re.search(r"status\s+done", text) and re.search(r"coadd/redrock pairs\s+" + str(n_tiles), text)
