"""The convert notebook executed on the tiny mock sky: its reconciliation shows every row, its
numbers agree with the FITS files, and nbval re-execution reproduces its outputs."""
from __future__ import annotations

import json
import re

import pytest
from astropy.io import fits

from desivoids import runner
from desivoids.convert import build
from desivoids.stages import STAGES
from notebook_checks import output_text, run_nbval



@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_sky):
    root, _ = tiny_sky
    d = tmp_path_factory.mktemp("nb_convert")
    out = runner.execute_stage(STAGES["convert"], {"data_dir": str(d / "run"), "input_dir": str(root),
                                                   "chunk_rows": 1000},
                               output=d / "03_convert.ipynb", progress=False)
    return out, d / "run"


@pytest.mark.slow
def test_notebook_reconciles_every_row(executed, tiny_sky):
    out, run_dir = executed
    root, _ = tiny_sky
    text = output_text(out)
    fast, vast = build.discover(root)
    rows = 0
    for p, _ in fast:
        with fits.open(p) as h:
            rows += h["METADATA"].header["NAXIS2"]
    rec = json.loads((run_dir / "convert" / "reconciliation.json").read_text())
    assert rec["balanced"] and rec["totals"]["galaxies"]["rows_in"] == rows
    line = next(ln for ln in text.splitlines() if ln.split()[:1] == ["galaxies"]
                and ln.split()[1].replace(",", "").isdigit())
    assert int(line.split()[1].replace(",", "")) == rows  # the totals table shows the galaxies read
    assert f"holds {rows:,d} FastSpecFit galaxies" in text  # and so does the opening
    assert not re.search(r"(^|\s)NaN(\s|$)", text, re.M)  # no NaN cell (the dictionary's text says NaN/inf)
    for name in ("voids", "holes", "zonevoid", "galzone", "m_r", "log_ssfr", "VoidFinder"):
        assert name in text


@pytest.mark.slow
def test_nbval_reproduces_the_outputs(executed):
    out, _ = executed
    proc = run_nbval(out)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
