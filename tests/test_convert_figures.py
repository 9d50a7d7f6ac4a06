"""The convert chapter's findings, tables and figure (desivoids.convert.figures) on the tiny run,
counted against the FITS files themselves (astropy)."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from desivoids import display, formats
from desivoids.convert import build, figures, stage
from desivoids.systematics.quenched import SSFR_LIMIT


@pytest.fixture(scope="module")
def converted(loaded_run):
    out = loaded_run / "convert"
    rec = json.loads((out / "reconciliation.json").read_text())
    return stage.ConvertResult(out, rec, rec["omega_m"], rec["omega_m_source"], 0.0)


def test_the_findings_count_the_galaxies_and_voids_of_the_files(converted, tiny_sky):
    root, _ = tiny_sky
    fast, vast = build.discover(root)
    galaxies = 0
    for p, _ in fast:
        with fits.open(p) as h:
            galaxies += h["METADATA"].header["NAXIS2"]
    voids = {}
    for p in root.rglob("DESIVAST_*.fits"):
        alg = next(a for a in formats.ALGORITHMS if f"_{a}_" in p.name)
        with fits.open(p) as h:
            voids[alg] = voids.get(alg, 0) + h["VOIDS"].header["NAXIS2"] if "VOIDS" in h else 0
    text = " ".join(figures.findings(converted))
    assert f"holds {galaxies:,d} FastSpecFit galaxies" in text
    assert all(f"{n:,d} {a}" in text for a, n in voids.items() if a != "VoidFinder")
    assert "0 rejected, none dropped" in text
    totals = figures.totals_table(converted.reconciliation)
    assert totals.set_index("table").loc["galaxies", "rows read"] == galaxies
    assert "\u2013" in repr(display.table(totals))  # no reason to reject: a dash, not NaN or ""


def test_the_tables_have_a_row_per_entry_algorithm_and_column(converted):
    rec = converted.reconciliation
    assert len(figures.entries_table(converted)) == len(rec["entries"])
    voids = figures.voids_table(converted.out_dir)
    assert list(voids.index.get_level_values("algorithm").unique()) == list(formats.ALGORITHMS)
    assert list(voids.columns) == ["voids", "edge voids", "median r_eff [Mpc/h]"]
    assert set(figures.skipped_table(rec).HDU) == {"TRIANGLE", "GALVIZ"}
    assert figures.settings_table(rec).set_index("quantity").loc["Omega_m", "value"] == f"{rec['omega_m']:g}"
    assert figures.rejects_table(converted.out_dir).empty
    assert len(figures.dictionary_table()) > 100


def test_the_first_look_has_three_panels_with_units_and_the_libraries_threshold(converted):
    fig = figures.first_look_figure(converted.out_dir)
    z, ssfr, reff = fig.axes[:3]
    assert z.get_xlabel().startswith("redshift") and z.get_yscale() == "log"
    assert ssfr.get_xlabel() == "log M* [Msun]" and ssfr.get_ylabel() == "log sSFR [1/yr]"
    (line,) = ssfr.get_lines()
    assert line.get_ydata()[0] == SSFR_LIMIT  # the definition's constant, not a literal
    assert reff.get_xlabel() == "effective radius r_eff [Mpc/h]"
    assert [t.get_text() for t in reff.get_legend().get_texts()] == list(formats.ALGORITHMS)
    gal = pq.read_table(converted.out_dir / "galaxies").to_pandas()  # the counts, from pandas
    assert ssfr.get_title() == f"SFR = 0: {int(gal.sfr_zero.sum()):,d} of {len(gal):,d} galaxies"
    drawn = gal.logmstar.between(*figures.MASS_RANGE) & gal.log_ssfr.between(*figures.SSFR_RANGE)
    assert ssfr.collections[0].get_array().sum() == drawn.sum() > 0  # every one in the frame, once
    plt.close(fig)
