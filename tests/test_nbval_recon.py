"""nbval over the recon notebook executed on the mock: re-executing the executed notebook gives
the same outputs (after sanitizing), and its key numbers agree with what the mock wrote."""
from __future__ import annotations

import re

import pytest
from astropy.io import fits

from desivoids import runner
from desivoids.stages import STAGES
from notebook_checks import output_text, run_nbval

pytestmark = pytest.mark.slow  # a notebook executed twice



@pytest.fixture(scope="module")
def executed_recon(tmp_path_factory, tiny_sky):
    root, summary = tiny_sky
    d = tmp_path_factory.mktemp("nbval")
    out = runner.execute_stage(STAGES["recon"], {"data_dir": str(d / "run"), "input_dir": str(root)},
                               output=d / "02_recon.ipynb", progress=False)
    return out, summary


def test_key_numbers_match_the_mock(executed_recon, tiny_sky):
    out, _ = executed_recon
    root, _ = tiny_sky
    text = output_text(out)
    n_fits = len(list(root.rglob("*.fits")))
    opening = re.search(r"Recon opened ([\d,]+) FITS files \(([\d,.]+) MB\) holding ([\d,]+) HDUs "
                        r"and ([\d,]+) table rows", text)
    assert opening, "the chapter's opening sentence was not found in the executed notebook"
    files, hdus, rows = (int(opening.group(k).replace(",", "")) for k in (1, 3, 4))
    assert files == n_fits
    assert "Every file opened, is complete" in text  # no file has a fault
    assert opening.group(2) == f"{sum(p.stat().st_size for p in root.rglob('*.fits')) / 1e6:,.1f}"
    n_hdus = n_rows = 0  # counted independently of recon, from the headers astropy reads
    for p in root.rglob("*.fits"):
        with fits.open(p) as hdul:
            n_hdus += len(hdul)
            n_rows += sum(h.header["NAXIS2"] for h in hdul if isinstance(h, fits.BinTableHDU))
    assert (hdus, rows) == (n_hdus, n_rows)
    assert "NaN" not in text
    for name in ("DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits", "DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits",
                 "fastspec-iron-main-bright-nside1-hp00.fits", "fastspec-iron-main-bright-nside1-hp11.fits"):
        assert name in text


def test_nbval_reproduces_the_outputs(executed_recon):
    out, _ = executed_recon
    proc = run_nbval(out)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", proc.stdout)
