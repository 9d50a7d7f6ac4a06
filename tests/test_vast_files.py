"""Files VAST writes itself (issue 19, point 3), on the real SDSS DR7 files of
../shared/fixtures/vast-sdss-dr7 (skipped cleanly where absent) named as DESIVAST names them,
with FastSpecFit files written here with astropy (tests/vast_fixtures.py): only the north cap,
MAGLIM without a value, ZLIMU/DLIMU rounded differently by the two finders, GALZONE rows with
OUT = 1 beyond the far limit, no R_EFF, extra MASK/WALL/FIELD HDUs, lower-case column names."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from vast_fixtures import DESIVAST_NAMES, fixture_dir, write_source

from desivoids import formats
from desivoids.errors import InputError
from desivoids.vastheaders import agreed_value, caps_present

pytestmark = pytest.mark.slow  # the pipeline on VAST's DR7 files

NGC_HP = [1, 2, 5, 6, 7, 9, 10]  # the nside-1 pixels of the DR7 galaxies


@pytest.fixture(scope="module")
def dr7_run(tmp_path_factory) -> Path:
    """acquire (a local folder in DESI's layout), recon, convert, load, integrity (every check
    passes on VAST's three prunings), plausibility and environment on the DR7 files, through the
    library entry points."""
    fixture_dir()
    from desivoids import acquire, convert, environment, integrity, load, plausibility, recon

    root = tmp_path_factory.mktemp("dr7")
    src = write_source(root / "src")
    data = str(root / "run")
    acquire.run(data_dir=data, source=str(src), sets=["dir", "fastspecfit"],
                dirs=[formats.DESIVAST_DIR], hp=NGC_HP, spectra=False, min_free_gb=0.1)
    recon.run(data_dir=data, strict=True)
    convert.run(data_dir=data)
    load.run(data_dir=data)
    integrity.run(data_dir=data)
    plausibility.run(data_dir=data)
    environment.run(data_dir=data, randoms=20_000)
    return Path(data)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


# ------------------------------------------------------------------------- caps present


def test_caps_are_those_whose_files_are_present(dr7_run):
    rep = _json(dr7_run / "environment" / "report.json")
    assert rep["caps"] == ["NGC"]
    assert {f["cap"] for f in rep["fractions"]} == {"NGC", "both"}
    assigned = pq.read_table(dr7_run / "environment" / "galaxy_void_assignments.parquet",
                             columns=["cap"]).column("cap").unique().to_pylist()
    assert assigned == ["NGC"]
    checks = {c["id"] for c in _json(dr7_run / "integrity" / "report.json")["checks"]}
    assert "refs.holes_voids.NGC" in checks and not any(c.endswith(".SGC") for c in checks)
    repro = _json(dr7_run / "plausibility" / "report.json")["reproduction"]
    assert [r["cap"] for r in repro] == ["NGC"]


def test_the_caps_parameter_selects_among_the_present_caps(dr7_run):
    from desivoids import environment

    with pytest.raises(InputError, match=r"caps \['SGC'\] selected"):
        environment.run(data_dir=str(dr7_run), caps=["SGC"])
    assert _json(dr7_run / "environment" / "report.json")["caps"] == ["NGC"]  # untouched


def test_a_cap_with_only_some_files_is_an_input_error():
    headers = {("VoidFinder", "NGC"): {"file": "vf_ngc"}, ("VIDE", "SGC"): {"file": "vide_sgc"},
               **{(a, "NGC"): {"file": a} for a in formats.V2_ALGORITHMS}}
    with pytest.raises(InputError, match="SGC: only"):
        caps_present(headers)
    del headers[("VIDE", "SGC")]
    assert caps_present(headers) == ("NGC",)
    with pytest.raises(InputError, match="selected"):
        caps_present(headers, ["SGC"])


# ----------------------------------------------------------- header values VAST writes


def test_maglim_without_a_value_is_no_cut_said_in_the_waterfall(dr7_run):
    with fits.open(fixture_dir() / "DR7_V2_VIDE_Output.fits") as h:
        assert h[0].header["MAGLIM"] is None or str(h[0].header["MAGLIM"]).strip() == ""
    rep = _json(dr7_run / "plausibility" / "report.json")
    assert rep["thresholds"]["maglim"] is None
    step = [w for w in rep["waterfall"] if w["cut"] == "maglim" and w["cap"] == "both"][0]
    assert step["removed"] == 0 and step["description"].startswith("no magnitude cut")


def test_zlimu_rounded_differently_agrees_within_tolerance_and_voidfinder_wins(dr7_run):
    rep = _json(dr7_run / "plausibility" / "report.json")
    with fits.open(fixture_dir() / "DR7_VoidFinder_Output.fits") as h:
        vf_zlimu = h[0].header["ZLIMU"]
    with fits.open(fixture_dir() / "DR7_V2_VIDE_Output.fits") as h:
        v2_zlimu = h[0].header["ZLIMU"]
    assert vf_zlimu != v2_zlimu
    assert rep["thresholds"]["zlimu"] == vf_zlimu
    assert "VoidFinder" in rep["thresholds"]["zlimu_from"]
    # every tracer DESIVAST's V2 run used (GALZONE, OUT = 0) is selected, and no other
    r = rep["reproduction"][0]
    assert r["selected_only"] == 0 and r["galzone_only"] == 0 and r["galzone_out"] > 0


def test_headers_beyond_the_tolerance_still_refuse():
    h = {("VoidFinder", "NGC"): {"file": "a", "ZLIMU": 0.1026},
         ("VIDE", "NGC"): {"file": "b", "ZLIMU": 0.103}}
    assert agreed_value(h, "ZLIMU", formats.HEADER_TOLERANCES["ZLIMU"])[0] == 0.1026
    h[("VIDE", "NGC")]["ZLIMU"] = 0.11
    with pytest.raises(InputError, match="disagree"):
        agreed_value(h, "ZLIMU", formats.HEADER_TOLERANCES["ZLIMU"])
    h = {("VoidFinder", "NGC"): {"file": "a", "DLIMU": 300.0},
         ("VIDE", "NGC"): {"file": "b", "DLIMU": 300.0033}}
    assert agreed_value(h, "DLIMU", formats.HEADER_TOLERANCES["DLIMU"])[0] == 300.0


# ----------------------------------------------------------------- GALZONE with OUT = 1


def test_galzone_rows_beyond_the_far_limit_with_out_1_are_allowed_and_counted(dr7_run):
    checks = {c["id"]: c for c in _json(dr7_run / "integrity" / "report.json")["checks"]}
    c = checks["range.galzone.NGC"]
    assert c["status"] == "pass"
    with fits.open(fixture_dir() / "DR7_V2_VIDE_Output.fits") as h:
        gz = h["GALZONE"].data
        r = np.sqrt(gz["X"] ** 2 + gz["Y"] ** 2 + gz["Z"] ** 2)
        beyond = int(((gz["OUT"] == 1) & (r > h[0].header["DLIMU"] * (1 + 1e-6))).sum())
    assert beyond > 0
    assert c["evidence"]["out_rows_beyond_dlimu"] == 3 * beyond  # one GALZONE per V2 file


# ------------------------------------------------------------------------------ R_EFF


def test_reff_computed_where_absent_agrees_with_vast_within_the_errors(dr7_run):
    voids = pq.read_table(dr7_run / "convert" / "voids.parquet").to_pandas()
    vf = voids[voids.algorithm == "VoidFinder"].set_index("void").sort_index()
    with fits.open(fixture_dir() / "DR7_VoidFinder_Output_reff.fits") as h:
        m = h["MAXIMALS"].data
        vast = dict(zip(m["VOID"].tolist(), zip(m["R_EFF"], m["R_EFF_UNCERT"])))
    assert len(vf) == len(vast) and vf.r_eff.notna().all() and vf.r_eff_uncert.notna().all()
    ref = np.array([vast[v][0] for v in vf.index])
    err = np.array([vast[v][1] for v in vf.index])
    pull = (vf.r_eff.to_numpy() - ref) / np.hypot(vf.r_eff_uncert.to_numpy(), err)
    # two independent Monte Carlo estimates: their difference in units of its error is ~N(0, 1)
    assert np.mean(np.abs(pull) < 2) > 0.9
    assert np.mean(np.abs(pull) < 3) > 0.98
    assert np.abs(pull).max() < 5
    rec = _json(dr7_run / "convert" / "reconciliation.json")
    note = rec["computed_columns"][f"{formats.DESIVAST_DIR}/{formats.voidfinder_filename('NGC')}"]
    assert note["columns"] == ["MAXIMALS.R_EFF", "MAXIMALS.R_EFF_UNCERT"]
    assert "Monte Carlo" in note["how"]


def test_reff_is_deterministic_and_close_to_a_single_sphere():
    from desivoids.convert.reff import effective_radii

    r1, u1 = effective_radii([3, 7], [3, 7, 7], [[0, 0, 0], [100, 0, 0], [100, 0, 0]],
                             [10.0, 5.0, 5.0])
    r2, u2 = effective_radii([7, 3], [7, 7, 3], [[100, 0, 0], [100, 0, 0], [0, 0, 0]],
                             [5.0, 5.0, 10.0])
    assert r1.tolist() == r2[::-1].tolist() and u1.tolist() == u2[::-1].tolist()
    assert abs(r1[0] - 10.0) < 4 * u1[0] and abs(r1[1] - 5.0) < 4 * u1[1]


# --------------------------------------------------------------- extra HDUs, lower case


def _lower_case_copy(src: Path, dest: Path) -> Path:
    with fits.open(src) as h:
        out = [h[0].copy()]
        for hdu in h[1:]:
            if isinstance(hdu, fits.BinTableHDU):
                cols = [fits.Column(name=c.name.lower(), format=c.format, unit=c.unit,
                                    array=hdu.data[c.name]) for c in hdu.columns]
                new = fits.BinTableHDU.from_columns(cols, name=hdu.name)
                for k, v in hdu.header.items():
                    if not k.startswith(("TTYPE", "TFORM", "TUNIT", "NAXIS", "TFIELDS",
                                         "XTENSION", "BITPIX", "PCOUNT", "GCOUNT", "EXTNAME")):
                        new.header[k] = v
                out.append(new)
            else:
                out.append(hdu.copy())
        fits.HDUList(out).writeto(dest)
    return dest


def test_lower_case_column_names_and_extra_hdus_convert_as_upper_case(tmp_path, dr7_run):
    from desivoids import convert

    raw = tmp_path / "raw" / formats.DESIVAST_DIR
    raw.mkdir(parents=True)
    for name in ("DR7_VoidFinder_Output.fits", "DR7_V2_VIDE_Output.fits"):
        _lower_case_copy(fixture_dir() / name, raw / DESIVAST_NAMES[name])
    with fits.open(raw / formats.voidfinder_filename("NGC")) as h:
        assert h["MAXIMALS"].columns.names[0] == "x"
        assert {"MASK", "WALL", "FIELD"} <= {x.name for x in h}
    res = convert.run(data_dir=str(tmp_path / "run"), input_dir=str(tmp_path / "raw"))
    for table in ("voids", "holes", "galzone", "zonevoid"):
        got = pq.read_table(tmp_path / "run" / "convert" / f"{table}.parquet").to_pandas()
        ref = pq.read_table(dr7_run / "convert" / f"{table}.parquet").to_pandas()
        ref = ref[ref.algorithm.isin(["VoidFinder", "VIDE"])] if "algorithm" in ref else ref
        assert len(got) == len(ref) > 0, table
        num = [c for c in got.columns if c not in ("source_file", "nonfinite_columns")]
        pd.testing.assert_frame_equal(got[num].sort_values(num[:4]).reset_index(drop=True),
                                      ref[num].sort_values(num[:4]).reset_index(drop=True))
    skipped = {(s["hdu"], s["source_file"].rsplit("/", 1)[-1])
               for s in res.reconciliation["skipped_hdus"]}
    vf = formats.voidfinder_filename("NGC")
    assert {("MASK", vf), ("WALL", vf), ("FIELD", vf)} <= skipped


# ------------------------------------------------------------------------ the MASK HDU


def test_a_files_mask_hdu_is_the_survey_mask(dr7_run):
    masks = pq.read_table(dr7_run / "convert" / "survey_masks.parquet").to_pandas()
    with fits.open(fixture_dir() / "DR7_VoidFinder_Output.fits") as h:
        image, res = h["MASK"].data, h["MASK"].header["MSKRES"]
    vf = masks[masks.algorithm == "VoidFinder"]
    assert set(vf.scheme) == {"radec"} and set(vf.resolution) == {res}
    i, j = np.divmod(vf.cell.to_numpy(), 180 * res)
    assert len(vf) == int((image != 0).sum()) and (image[i, j] != 0).all()
    assert set(masks[masks.algorithm == "VIDE"].scheme) == {"healpix_ring"}
    rep = _json(dr7_run / "environment" / "report.json")
    assert rep["survey_masks"] == {"VoidFinder NGC": "radec", "REVOLVER NGC": "healpix_ring",
                                   "VIDE NGC": "healpix_ring", "ZOBOV NGC": "healpix_ring"}


def test_mask_footprint_reads_each_scheme():
    import astropy.units as u
    from astropy_healpix import HEALPix

    from desivoids.environment.mask import mask_footprint

    # RA-Dec grid, MSKRES 1: only the cell (ra 150, dec 30) is in
    fp = mask_footprint("radec", 1, [150 * 180 + 120], 0.0, 300.0)
    ra, dec = np.radians([150.5, 152.5]), np.radians([30.5, 30.5])
    xyz = 100 * np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    assert fp.outside(xyz).tolist() == [False, True]
    # HEALPix RING nside 32: only the pixel of the first point is in
    pix = int(HEALPix(32, "ring").lonlat_to_healpix(150.5 * u.deg, 30.5 * u.deg))
    fp = mask_footprint("healpix_ring", 32, [pix], 0.0, 300.0)
    assert fp.outside(xyz).tolist() == [False, True]
    assert fp.outside(xyz * 4).tolist() == [True, True]  # beyond DLIMU


# --------------------------------------------- galaxies beyond ZLIMU in a crossing hole


def test_galaxies_beyond_zlimu_inside_a_hole_are_outside_and_counted(dr7_run):
    rep = _json(dr7_run / "environment" / "report.json")
    counted = rep["beyond_zlimu_in_holes"]["NGC"]
    g = pq.read_table(dr7_run / "convert" / "galaxies",
                      columns=["targetid", "z", "comoving_x", "comoving_y",
                               "comoving_z"]).to_pandas()
    zlimu = _json(dr7_run / "plausibility" / "report.json")["thresholds"]["zlimu"]
    far = g[g.z > zlimu]
    xyz = far[["comoving_x", "comoving_y", "comoving_z"]].to_numpy()
    with fits.open(fixture_dir() / "DR7_VoidFinder_Output.fits") as h:
        holes = h["HOLES"].data
        c = np.column_stack([holes["X"], holes["Y"], holes["Z"]])
        r = np.asarray(holes["RADIUS"], float)
    inside = np.zeros(len(xyz), dtype=bool)
    for k in range(0, len(c), 2000):  # brute force, every (galaxy, hole) pair
        d2 = ((xyz[:, None, :] - c[None, k:k + 2000, :]) ** 2).sum(axis=2)
        inside |= (d2 < r[None, k:k + 2000] ** 2).any(axis=1)
    assert counted["galaxies"] == int(inside.sum()) > 0 and counted["tracers"] == 0
    a = pq.read_table(dr7_run / "environment" / "galaxy_void_assignments.parquet").to_pandas()
    a = a[(a.algorithm == "VoidFinder") & a.targetid.isin(far.targetid[inside])]
    assert len(a) == counted["galaxies"] and (a.flag == 9).all()


def test_formats_say_what_vast_writes():
    assert formats.VAST_EXTRA_HDUS["voidfinder"] == ("MASK", "WALL", "FIELD")
    assert "R_EFF" not in formats.required_columns("voidfinder", "MAXIMALS")
    check = formats.check_file("voidfinder", {
        "MAXIMALS": formats.HDUFacts(3, {c.lower(): (c_.tform, None, None)
                                         for c_ in formats.columns("voidfinder", "MAXIMALS")
                                         for c in [c_.name] if not c.startswith("R_EFF")}),
        "HOLES": formats.HDUFacts(3, {c.name.lower(): (c.tform, None, None)
                                      for c in formats.columns("voidfinder", "HOLES")})})
    assert check.ok, check.faults
    assert {f.column for f in check.notes if f.code == "computed_column"} == {"R_EFF",
                                                                             "R_EFF_UNCERT"}
