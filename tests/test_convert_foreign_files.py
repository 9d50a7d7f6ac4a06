"""convert (and recon) on DESI-format files written by other code, as a skeptical user writes
them (issue 8, points 6-9): only the needed columns, FASTSPEC with three line columns, ZWARN in
every integer encoding and as astropy's logical, a flat folder or any tree, V2 files without the
visualisation HDUs, RA at 360 and -0. Every input is written here by hand with astropy
(tests/convert_fixtures.py: write_minimal_*), a few rows, never by desivoids.mock."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from convert_fixtures import (THREE_LINES, write_desivast, write_fastspec_v3,
                              write_minimal_fastspec_v3, write_minimal_v2)

from desivoids import formats, recon
from desivoids.convert import build, columns, stage
from desivoids.errors import FormatError, InputError

HP0 = formats.fastspec_v3_filename(0)
HP1 = formats.fastspec_v3_filename(1)


def rel(name: str) -> str:
    """A file's path in DESI's relative layout: each point is shown apart from point 7 (any
    folder), which has its own tests."""
    return formats.relpath(formats.classify(name), name)


def desi(raw: Path, name: str) -> Path:
    return raw / rel(name)


def run(tmp_path: Path, raw: Path, **kwargs):
    return stage.run(data_dir=str(tmp_path / "run"), input_dir=str(raw), chunk_rows=3, **kwargs)


def galaxies(tmp_path: Path):
    return pq.read_table(tmp_path / "run" / "convert" / "galaxies").to_pandas().sort_values(
        "source_row").reset_index(drop=True)


# ---------------------------------------------------------------- 6: only what is needed


def test_fastspec_with_three_line_columns_converts_the_rest_null_and_listed(tmp_path):
    raw = tmp_path / "raw"
    src = write_minimal_fastspec_v3(desi(raw, HP0), n=5)
    res = run(tmp_path, raw)
    g = galaxies(tmp_path)
    assert len(g) == 5
    # the output schema is the contract whatever the input
    got = pq.read_schema(next((tmp_path / "run" / "convert" / "galaxies").glob("part-*")))
    assert [(f.name, f.type) for f in got] == [(f.name, f.type) for f in columns.GALAXIES]
    np.testing.assert_array_equal(g.halpha_flux, src["HALPHA_FLUX"].astype(np.float64))
    np.testing.assert_array_equal(g.halpha_ew, src["HALPHA_EW"].astype(np.float64))
    np.testing.assert_array_equal(g.hbeta_flux, src["HBETA_FLUX"].astype(np.float64))
    for c in ("hbeta_ew", "oiii_5007_flux", "nii_6584_ew_ivar", "logmstar_ivar", "healpix",
              "age", "absmag01_sdss_g", "desi_target"):
        assert g[c].isna().all(), c
    assert g.logmstar_err.isna().all()  # derived from an absent IVAR: null, not an error
    np.testing.assert_array_equal(g.logmstar, src["LOGMSTAR"].astype(np.float64))
    absent = res.reconciliation["absent_columns"][rel(HP0)]
    assert {"HBETA_EW", "OIII_5007_FLUX", "LOGMSTAR_IVAR", "HEALPIX", "AGE"} <= set(absent)
    assert not set(THREE_LINES) & set(absent)
    assert not set(formats.GALAXY_REQUIRED) & set(absent)


def test_a_complete_file_whose_fastspec_has_three_line_columns(tmp_path):
    """Every METADATA and SPECPHOT column there, FASTSPEC cut to its keys and three lines: only
    the line columns are null (and listed)."""
    raw = tmp_path / "raw"
    path = desi(raw, HP0)
    write_fastspec_v3(path, 12, seed=4, tid0=39627000000000000)
    with fits.open(path) as h:
        hdus = [x.copy() for x in h]
    fs = next(i for i, x in enumerate(hdus) if x.name == "FASTSPEC")
    keep = ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX") + THREE_LINES
    hdus[fs] = fits.BinTableHDU.from_columns([c for c in hdus[fs].columns if c.name in keep],
                                             name="FASTSPEC")
    fits.HDUList(hdus).writeto(path, overwrite=True)
    res = run(tmp_path, raw)
    g = galaxies(tmp_path)
    with fits.open(path) as h:
        np.testing.assert_array_equal(g.hbeta_flux, h["FASTSPEC"].data["HBETA_FLUX"])
    assert g.hbeta_ew.isna().all() and g.logmstar_ivar.notna().all() and g.healpix.notna().all()
    absent = res.reconciliation["absent_columns"][rel(HP0)]
    assert len(absent) == 6 * 4 - 3 and all(c.split("_")[0] in
                                            {"HALPHA", "HBETA", "OII", "OIII", "NII"} for c in absent)


def test_every_missing_required_column_of_every_file_is_named_at_once(tmp_path):
    raw = tmp_path / "raw"
    write_minimal_fastspec_v3(desi(raw, HP0), drop=("METADATA.RA", "METADATA.ZWARN",
                                               "SPECPHOT.LOGMSTAR", "SPECPHOT.ABSMAG01_SDSS_U"))
    write_minimal_fastspec_v3(desi(raw, HP1), drop=("FASTSPEC.TARGETID",),
                              values={"TARGETID": np.arange(4) + 10})
    write_minimal_v2(desi(raw, formats.v2_filename("VIDE", "NGC")),
                     drop=("VOIDS.TOT_AREA", "GALZONE.TARGET"))
    with pytest.raises(FormatError) as info:
        run(tmp_path, raw)
    err = info.value
    found = {(Path(p.file).name, p.hdu, p.column) for p in (err, *err.problems)}
    assert found == {(HP0, "METADATA", "RA"), (HP0, "METADATA", "ZWARN"),
                     (HP0, "SPECPHOT", "LOGMSTAR"), (HP0, "SPECPHOT", "ABSMAG01_SDSS_U"),
                     (HP1, "FASTSPEC", "TARGETID"),
                     (formats.v2_filename("VIDE", "NGC"), "VOIDS", "TOT_AREA"),
                     (formats.v2_filename("VIDE", "NGC"), "GALZONE", "TARGET")}
    assert "7 problems" in str(err) and "required column not found" in str(err)
    assert not (tmp_path / "run" / "convert").exists()


def test_desivast_descriptive_columns_may_be_absent(tmp_path):
    raw = tmp_path / "raw"
    name = formats.v2_filename("REVOLVER", "SGC")
    src = write_minimal_v2(desi(raw, name), drop=("VOIDS.X1", "VOIDS.RA", "VOIDS.REDSHIFT",
                                             "GALZONE.DEPTH", "GALZONE.OUT"))
    res = run(tmp_path, raw)
    v = pq.read_table(tmp_path / "run" / "convert" / "voids.parquet").to_pandas()
    assert v.x1.isna().all() and v.ra.isna().all() and v.redshift.isna().all()
    assert v.nonfinite_columns.isna().all()  # absent is not non-finite
    np.testing.assert_array_equal(v.y1, src["VOIDS"]["Y1"])
    gz = pq.read_table(tmp_path / "run" / "convert" / "galzone.parquet").to_pandas()
    assert gz.depth.isna().all() and gz.out.isna().all()
    np.testing.assert_array_equal(gz.edge, src["GALZONE"]["EDGE"])
    assert res.reconciliation["absent_columns"][rel(name)] == ["REDSHIFT", "RA", "X1", "DEPTH", "OUT"]


@pytest.mark.parametrize("zwarn", ["L", "B", "I", "J", "K"])
def test_zwarn_in_any_integer_encoding_and_as_astropys_logical(tmp_path, zwarn):
    raw = tmp_path / "raw"
    src = write_minimal_fastspec_v3(desi(raw, HP0), zwarn=zwarn)
    with fits.open(desi(raw, HP0)) as h:
        hdr = h["METADATA"].header
        i = next(k for k in range(1, hdr["TFIELDS"] + 1) if hdr[f"TTYPE{k}"] == "ZWARN")
        assert hdr[f"TFORM{i}"] == zwarn  # astropy's Table writer really stores int8 as 'L'
    res = run(tmp_path, raw)
    g = galaxies(tmp_path)
    notes = res.reconciliation.get("file_notes", {}).get(rel(HP0), [])
    if zwarn == "L":
        np.testing.assert_array_equal(g.zwarn, (src["ZWARN"] != 0).astype(np.int64))
        assert len(notes) == 1 and "METADATA.ZWARN" in notes[0] and "bits are lost" in notes[0]
        assert "only == 0 is meaningful" in notes[0]
    else:
        np.testing.assert_array_equal(g.zwarn, src["ZWARN"].astype(np.int64))
        assert notes == []
    # recon says the same
    (f,) = recon.inventory(raw, checksum=False)
    assert f.ok, f.faults
    assert any("ZWARN" in n and "bits are lost" in n for n in f.notes) == (zwarn == "L")


def test_zwarn_as_a_logical_in_an_otherwise_complete_file(tmp_path):
    """A file with every documented column but ZWARN stored as astropy stores an int8 (FITS L):
    converted, not refused as mistyped."""
    raw = tmp_path / "raw"
    path = desi(raw, HP0)
    src = write_fastspec_v3(path, 30, seed=3, tid0=39627000000000000)
    with fits.open(path) as h:
        hdus = [x.copy() for x in h]
    meta = next(i for i, x in enumerate(hdus) if x.name == "METADATA")
    cols = [fits.Column("ZWARN", "L", array=src["ZWARN"] != 0) if c.name == "ZWARN" else c
            for c in hdus[meta].columns]
    hdus[meta] = fits.BinTableHDU.from_columns(cols, name="METADATA")
    fits.HDUList(hdus).writeto(path, overwrite=True)
    res = run(tmp_path, raw)
    g = galaxies(tmp_path)
    assert (src["ZWARN"] != 0).any() and (src["ZWARN"] > 1).any()
    np.testing.assert_array_equal(g.zwarn, (src["ZWARN"] != 0).astype(np.int64))
    assert "bits are lost" in res.reconciliation["file_notes"][rel(HP0)][0]


def test_a_logical_is_accepted_only_where_the_documented_type_is_int8(tmp_path):
    """BGS_TARGET is an int64 bit mask: a logical would lose the BGS_BRIGHT bit, so it is a
    mistyped column, in recon and in convert alike."""
    raw = tmp_path / "raw"
    write_minimal_fastspec_v3(desi(raw, HP0), values={"BGS_TARGET": np.array([True, False] * 2)},
                              tforms={"METADATA.BGS_TARGET": "L"})
    with fits.open(desi(raw, HP0)) as h:
        assert h["METADATA"].columns["BGS_TARGET"].format == "L"
    (f,) = recon.inventory(raw, checksum=False)
    assert f.faults == ["HDU METADATA, column BGS_TARGET: mistyped: expected an integer "
                        "(FITS B/I/J/K) scalar, found FITS L"]
    with pytest.raises(FormatError, match="column BGS_TARGET: mistyped"):
        run(tmp_path, raw)


# ---------------------------------------------------------------- 7: any folder


def test_a_flat_folder_of_all_files_converts(tmp_path):
    flat = tmp_path / "flat"
    write_desivast(flat)  # the eight DESIVAST files, side by side
    write_minimal_fastspec_v3(flat / HP0, n=4)
    write_minimal_fastspec_v3(flat / HP1, n=3, values={"TARGETID": np.arange(4) + 5})
    assert not [p for p in flat.iterdir() if p.is_dir()]
    res = run(tmp_path, flat)
    assert res.rows["galaxies"] == 7 and res.rows["voids"] == 8 * 12
    g = galaxies(tmp_path)
    assert set(g.source_file) == {HP0, HP1}  # relative to the input folder


def test_any_tree_below_the_input_folder_is_searched(tmp_path):
    raw = tmp_path / "raw"
    write_desivast(tmp_path / "vast")
    for i, p in enumerate(sorted((tmp_path / "vast").iterdir())):
        dest = raw / ("deep/er" if i % 2 else "x") / p.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(p, dest)
    write_minimal_fastspec_v3(raw / "somewhere" / "else" / HP0)
    fast, vast = build.discover(raw)
    assert [p.name for p, _ in fast] == [HP0] and len(vast) == 8
    assert run(tmp_path, raw).rows["voids"] == 96


def test_the_same_name_in_two_folders_is_an_error_naming_both(tmp_path):
    raw = tmp_path / "raw"
    write_minimal_fastspec_v3(raw / "a" / HP0)
    write_minimal_fastspec_v3(raw / "b" / HP0)
    with pytest.raises(InputError) as info:
        build.discover(raw)
    msg = str(info.value)
    assert str(raw / "a" / HP0) in msg and str(raw / "b" / HP0) in msg and "2 folders" in msg


def test_nothing_found_says_which_names_were_looked_for_and_where(tmp_path):
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    (raw / "sub" / "fastspec-iron-main-dark-nside1-hp00.fits").write_bytes(b"")
    with pytest.raises(InputError) as info:
        run(tmp_path, raw)
    msg = str(info.value)
    assert info.value.file == str(raw)
    for name in ("fastspec-iron-main-bright-nside1-hpNN.fits", formats.FASTSPEC_V21_FILENAME,
                 *formats.DESIVAST_FILES):
        assert name in msg, name
    with pytest.raises(InputError, match="does not exist"):
        build.discover(tmp_path / "nope")


# ---------------------------------------------------------------- 8: one judgement


def _variants():
    """(id, writer, convert accepts?) of FastSpecFit files that stretch the specification."""
    return [
        ("three-lines", lambda p: write_minimal_fastspec_v3(p), True),
        ("no-lines", lambda p: write_minimal_fastspec_v3(p, lines=()), True),
        ("zwarn-logical", lambda p: write_minimal_fastspec_v3(p, zwarn="L"), True),
        ("zwarn-int16", lambda p: write_minimal_fastspec_v3(p, zwarn="I"), True),
        ("no-ra", lambda p: write_minimal_fastspec_v3(p, drop=("METADATA.RA",)), False),
        ("no-dn4000", lambda p: write_minimal_fastspec_v3(p, drop=("SPECPHOT.DN4000",)), False),
        ("ra-integer", lambda p: write_minimal_fastspec_v3(
            p, values={"RA": np.array([1, 2, 3, 4], np.int32)}, tforms={"METADATA.RA": "J"}),
         False),
        ("targetid-uint32", lambda p: write_minimal_fastspec_v3(
            p, values={"TARGETID": np.arange(4, dtype=np.uint32)},
            tforms={"SPECPHOT.TARGETID": "J", "METADATA.TARGETID": "J"}), True),
        ("no-specphot", lambda p: write_minimal_fastspec_v3(p, drop=("SPECPHOT",)), False),
        ("not-row-matched", lambda p: write_minimal_fastspec_v3(p, rows={"FASTSPEC": 3}), False),
        ("full-mock-like", lambda p: write_fastspec_v3(p, 20, seed=1, tid0=39627000000000000),
         True),
    ]


@pytest.mark.parametrize("writer,accepted", [v[1:] for v in _variants()],
                         ids=[v[0] for v in _variants()])
def test_recon_and_convert_judge_a_fastspecfit_file_alike(tmp_path, writer, accepted):
    raw = tmp_path / "raw"
    writer(desi(raw, HP0))
    (f,) = recon.inventory(raw, checksum=False)
    try:
        run(tmp_path, raw)
        converted, problems = True, []
    except FormatError as exc:
        converted, problems = False, [exc, *exc.problems]
    assert converted == accepted
    assert f.ok == converted, (f.faults, problems)
    for p in problems:  # every column convert names, recon names too
        assert any((p.column or p.hdu) in fault for fault in f.faults), (p, f.faults)


def test_a_v2_file_without_triangle_and_galviz_is_a_note_not_a_fault(tmp_path):
    raw = tmp_path / "raw"
    name = formats.v2_filename("REVOLVER", "NGC")
    write_minimal_v2(desi(raw, name))
    write_minimal_v2(desi(raw, formats.v2_filename("VIDE", "SGC")), visualisation=True)
    files = {f.path: f for f in recon.inventory(raw, checksum=False)}
    assert files[rel(name)].ok, files[rel(name)].faults
    assert files[rel(name)].notes == [
        "HDU TRIANGLE: HDU absent (visualisation only; nothing reads it)",
        "HDU GALVIZ: HDU absent (visualisation only; nothing reads it)"]
    assert files[rel(formats.v2_filename("VIDE", "SGC"))].notes == []
    res = run(tmp_path, raw)
    assert res.reconciliation["file_notes"] == {rel(name): [
        "TRIANGLE: HDU absent (visualisation only; nothing reads it)",
        "GALVIZ: HDU absent (visualisation only; nothing reads it)"]}
    assert res.rows["voids"] == 6
    assert {s["hdu"] for s in res.reconciliation["skipped_hdus"]} == {"TRIANGLE", "GALVIZ"}


# ---------------------------------------------------------------- 9: RA in [0, 360)


def test_galaxy_ra_is_stored_in_0_360_like_the_void_ra(tmp_path):
    raw = tmp_path / "raw"
    ra = np.array([360.0, -0.0, 0.0, 359.99999999])
    write_fastspec_v3(desi(raw, HP0), 4, seed=2, tid0=39627000000000000, values={"RA": ra})
    res = run(tmp_path, raw)
    g = galaxies(tmp_path)
    assert res.rows["galaxies"] == 4  # 360.0 and -0.0 are valid RAs, not rejects
    np.testing.assert_array_equal(g.ra, [0.0, 0.0, 0.0, 359.99999999])
    assert not np.signbit(g.ra).any()
    assert ((g.ra >= 0) & (g.ra < 360)).all()
    np.testing.assert_allclose(g.comoving_x, g.comoving_distance * np.cos(np.radians(g.dec)))
