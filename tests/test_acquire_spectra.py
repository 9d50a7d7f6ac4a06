"""Tile spectra to Parquet: the real iron tile fixture converts; mock tiles have the fixture's
exact structure; the selection accounts for every row; empty tiles are recorded, not errors;
wavelength grids are stored once; conversions resume; bad files fail naming file/HDU/column."""
from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from desivoids import formats, paths
from desivoids.acquire.manifest import Manifest
from desivoids.acquire.spectra import (Selection, SpectraFormatError, convert_all, convert_pair, output_for,
                                       read_spectra, select_and_build)
from desivoids.mock.tiles import tile_paths, wavelength, write_tile_pair

SHARED_TILE = paths.ROOT.parent / "shared" / "fixtures" / "desi-iron-tile"
REAL_COADD = "coadd-4-80613-thru20210324.fits"
REAL_REDROCK = "redrock-4-80613-thru20210324.fits"
TILEDIR = "dr1/spectro/redux/iron/tiles/cumulative"


@pytest.fixture
def real_tile() -> Path:
    if not (SHARED_TILE / REAL_COADD).is_file():
        pytest.skip(f"real DESI tile fixtures not present at {SHARED_TILE}")
    return SHARED_TILE


def targets(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "TARGETID": 39627000000000000 + np.arange(n) * 7,
        "TARGET_RA": rng.uniform(150, 151, n), "TARGET_DEC": rng.uniform(2, 3, n),
        "Z": rng.uniform(0.02, 0.4, n),
        "SPECTYPE": np.array(["GALAXY", "GALAXY", "STAR", "QSO", "GALAXY", "GALAXY", "GALAXY", "GALAXY"])[:n],
        "ZWARN": np.array([0, 4, 0, 0, 0, 0, 1024, 0])[:n],
        "DELTACHI2": np.array([500.0, 500, 500, 500, 12.0, 40.0, 900, 41.0])[:n],
        "BGS_TARGET": np.full(n, 2),
    }


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# ------------------------------------------------------------------ the real file
def test_real_iron_tile_converts_to_one_row_with_its_spectra(real_tile, tmp_path):
    out = tmp_path / "spectra-4-80613-thru20210324.parquet"
    res = convert_pair(real_tile / REAL_COADD, real_tile / REAL_REDROCK, out, Selection(), tmp_path)
    assert res.state == "done" and (res.n_targets, res.n_kept) == (1, 1)
    t, waves = read_spectra(out, tmp_path)
    assert t.num_rows == 1
    row = t.to_pylist()[0]
    assert row["TARGETID"] == 39633345008634465
    assert row["SPECTYPE"] == "GALAXY" and row["SUBTYPE"] == ""
    assert row["Z"] == pytest.approx(0.36874355) and row["DELTACHI2"] == pytest.approx(150343.77423096)
    assert len(row["COEFF"]) == 10 and row["TILEID"] == 80613 and row["OBJTYPE"] == "TGT"
    with fits.open(real_tile / REAL_COADD) as co:
        for cam in "BRZ":
            np.testing.assert_array_equal(waves[cam], co[f"{cam}_WAVELENGTH"].data)
            for what in ("FLUX", "IVAR", "MASK"):
                np.testing.assert_array_equal(np.asarray(row[f"{cam}_{what}"]), co[f"{cam}_{what}"].data[0])
        assert t.schema.field("B_FLUX").type.list_size == co["B_FLUX"].data.shape[1]
        fm_cols = [c for c in co["FIBERMAP"].columns.names if c != "TARGETID"]
    with fits.open(real_tile / REAL_REDROCK) as rr:
        zcols = rr["REDSHIFTS"].columns.names
    assert t.column_names[: len(zcols)] == zcols
    assert set(fm_cols) <= set(t.column_names)
    md = t.schema.metadata
    assert md[b"desivoids.coadd"] == REAL_COADD.encode()
    assert b'"TILEID": 80613' in md[b"desivoids.header"]


def test_real_tile_that_keeps_nothing_is_empty_not_an_error(real_tile, tmp_path):
    raw = tmp_path / "raw"
    d = raw / TILEDIR / "80613" / "20210324"
    d.mkdir(parents=True)
    for name in (REAL_COADD, REAL_REDROCK):
        shutil.copy(real_tile / name, d / name)
    pair = (f"{TILEDIR}/80613/20210324/{REAL_COADD}", f"{TILEDIR}/80613/20210324/{REAL_REDROCK}")
    with Manifest(tmp_path / "m.sqlite") as m:
        sel = Selection(spectype=("QSO",))
        s = convert_all([pair], raw, tmp_path / "out", m, sel)
        row = m.spectra_get(pair[0], output_for(pair[0], sel), sel.key())
    assert (s.done, s.empty, s.failed) == (0, 1, [])
    assert row["state"] == "empty" and row["n_spectype"] == 1 and not (tmp_path / "out" / row["output"]).exists()
    assert not list((tmp_path / "out").rglob("spectra-*.parquet"))


# ------------------------------------------------------------------ mock tiles: the real format
def _canon(keys):
    return [k for k, _ in itertools.groupby(re.sub(r"^INFIL\d+$", "INFIL", k) for k in keys)]


def test_mock_tile_pair_has_the_exact_structure_of_the_real_files(real_tile, tmp_path):
    coadd, redrock = write_tile_pair(tmp_path, 80613, 4, 20210324, targets(), np.random.default_rng(1), nexp=30)
    for real, mock in ((real_tile / REAL_COADD, coadd), (real_tile / REAL_REDROCK, redrock)):
        with fits.open(real) as a, fits.open(mock) as b:
            assert [h.name for h in a] == [h.name for h in b]
            for ha, hb in zip(a, b):
                assert _canon(ha.header) == _canon(hb.header), ha.name
                for k in ha.header:
                    if k.startswith(("INFIL", "CHECKSUM", "DATASUM")):
                        continue
                    assert ha.header.comments[k] == hb.header.comments[k], (ha.name, k)
                    if re.match(r"(TTYPE|TFORM|TNULL|TDIM|TUNIT)\d+$|BUNIT|BITPIX|XTENSION|EXTNAME|ENCODING|LONGSTRN|"
                                r"DEP(NAM|VER)\d+|TEM(NAM|VER)\d+|RRVER|SPGRP|TFIELDS|NAXIS$", k):
                        assert ha.header[k] == hb.header[k], (ha.name, k)
                if isinstance(ha, fits.BinTableHDU):
                    assert ha.data.dtype == hb.data.dtype, ha.name
                elif ha.data is not None:
                    assert ha.data.dtype == hb.data.dtype and ha.data.shape[1:] == hb.data.shape[1:], ha.name
            assert ("CHECKSUM" in a[1].header) == ("CHECKSUM" in b[1].header)
    with fits.open(coadd) as b:
        for cam in "BRZ":
            assert b[f"{cam}_FLUX"].data.shape == (8, len(wavelength(cam)))


def test_mock_tile_pair_follows_the_formats_specification(tmp_path):
    coadd, redrock = write_tile_pair(tmp_path, 1000, 0, 20220101, targets(), np.random.default_rng(2))
    assert coadd == tile_paths(tmp_path, 1000, 0, 20220101)[0]
    assert formats.classify(coadd.name) == "coadd" and formats.classify(redrock.name) == "redrock"
    with fits.open(coadd) as co, fits.open(redrock) as rr:
        assert tuple(h.name for h in co) == formats.expected_hdus("coadd")
        assert tuple(h.name for h in rr) == formats.expected_hdus("redrock")
        spec = formats.columns("redrock", "REDSHIFTS")
        assert [(c.name, c.format) for c in rr["REDSHIFTS"].columns] == [(c.name, c.tform) for c in spec]
        np.testing.assert_array_equal(rr["REDSHIFTS"].data["TARGETID"], targets()["TARGETID"])
    sumfile = coadd.parent / "redux_iron_tiles_cumulative_1000_20220101.sha256sum"
    assert sumfile.read_text().count(".fits") == 2


# ------------------------------------------------------------------ selection and conversion
def test_selection_waterfall_accounts_for_every_row(tmp_path):
    coadd, redrock = write_tile_pair(tmp_path, 2000, 3, 20220202, targets(), np.random.default_rng(3))
    table, counts, _, _ = select_and_build(coadd, redrock, Selection(("GALAXY",), True, 40.0))
    # rows: 0 kept, 1 ZWARN, 2 STAR, 3 QSO, 4 DELTACHI2 12, 5 DELTACHI2 == 40 (not > 40), 6 ZWARN, 7 kept
    assert counts == {"n_targets": 8, "n_spectype": 2, "n_zwarn": 2, "n_deltachi2": 2, "n_kept": 2}
    assert table["TARGETID"].to_pylist() == [targets()["TARGETID"][i] for i in (0, 7)]
    _, counts, _, _ = select_and_build(coadd, redrock, Selection((), False, None))
    assert counts["n_kept"] == 8


def test_rows_are_matched_by_targetid_when_redrock_order_differs(tmp_path):
    coadd, redrock = write_tile_pair(tmp_path, 2001, 3, 20220202, targets(), np.random.default_rng(4))
    with fits.open(redrock) as rr:
        hdus = fits.HDUList([h.copy() for h in rr])
    hdus["REDSHIFTS"].data = hdus["REDSHIFTS"].data[::-1].copy()
    hdus.writeto(redrock, overwrite=True)
    table, counts, _, _ = select_and_build(coadd, redrock, Selection((), False, None))
    with fits.open(coadd) as co:
        tid = list(co["FIBERMAP"].data["TARGETID"])
        flux = co["R_FLUX"].data
        for r in table.select(["TARGETID", "R_FLUX"]).to_pylist():
            np.testing.assert_array_equal(np.asarray(r["R_FLUX"]), flux[tid.index(r["TARGETID"])])
    assert table["TARGETID"].to_pylist() == list(targets()["TARGETID"][::-1])


def _mock_raw(tmp_path, tiles=((3000, 20220301), (3001, 20220302), (3002, 20220303))):
    raw = tmp_path / "raw"
    pairs = []
    for k, (tile, night) in enumerate(tiles):
        t = targets(seed=k)
        if k == 2:
            t["SPECTYPE"] = np.full(8, "STAR")  # this tile keeps nothing
        c, r = write_tile_pair(raw, tile, k, night, t, np.random.default_rng(k))
        pairs.append((rel(c, raw), rel(r, raw)))
    return raw, pairs


def test_convert_all_resumes_and_stores_each_wavelength_grid_once(tmp_path):
    raw, pairs = _mock_raw(tmp_path)
    out = tmp_path / "spectra"
    with Manifest(tmp_path / "m.sqlite") as m:
        s = convert_all(pairs, raw, out, m, Selection(), workers=2)
        assert (s.done, s.empty, len(s.failed), s.skipped) == (2, 1, 0, 0)
        assert s.targets == 24 and s.kept == 4
        assert s.kept + s.dropped_spectype + s.dropped_zwarn + s.dropped_deltachi2 == s.targets
        grids = sorted(p.name for p in (out / "wavelength").iterdir())
        assert [g[0] for g in grids] == ["B", "R", "Z"]  # one file per camera for all tiles
        for cam in "BRZ":
            _, waves = read_spectra(out / output_for(pairs[0][0]))
            np.testing.assert_array_equal(waves[cam], wavelength(cam))
        again = convert_all(pairs, raw, out, m, Selection(), workers=2)
        assert again.skipped == 3 and (again.done, again.empty, again.kept) == (2, 1, 4)
        (out / output_for(pairs[1][0])).unlink()
        third = convert_all(pairs, raw, out, m, Selection(), workers=2)
        assert third.skipped == 2
        wider = Selection(spectype=("GALAXY", "STAR"))
        other = convert_all(pairs, raw, out, m, wider, workers=2)
        assert other.skipped == 0 and other.empty == 0 and other.done == 3
        back = convert_all(pairs, raw, out, m, Selection(), workers=2)  # each selection kept its own
        assert back.skipped == 3 and back.empty == 1 and len(m.spectra_rows()) == 6
        assert not (out / output_for(pairs[2][0])).exists()
        assert pq.read_table(out / output_for(pairs[2][0], wider)).num_rows > 0


def test_bad_files_fail_naming_file_hdu_and_column_without_stopping_the_rest(tmp_path):
    raw, pairs = _mock_raw(tmp_path)
    c0 = raw / pairs[0][0]
    with fits.open(c0) as co:
        hdus = fits.HDUList([h.copy() for h in co if h.name != "B_FLUX"])
    hdus.writeto(c0, overwrite=True)
    r1 = raw / pairs[1][1]
    with fits.open(r1) as rr:
        hdus = fits.HDUList([h.copy() for h in rr])
    cols = [c for c in hdus["REDSHIFTS"].columns if c.name != "DELTACHI2"]
    hdus["REDSHIFTS"] = fits.BinTableHDU.from_columns(cols, name="REDSHIFTS")
    hdus.writeto(r1, overwrite=True)
    with Manifest(tmp_path / "m.sqlite") as m:
        s = convert_all(pairs, raw, tmp_path / "spectra", m, Selection())
    errors = dict(s.failed)
    assert str(c0) in errors[pairs[0][0]] and "B_FLUX" in errors[pairs[0][0]]
    assert "REDSHIFTS" in errors[pairs[1][0]] and "DELTACHI2" in errors[pairs[1][0]]
    assert s.empty == 1  # the third pair was still processed


def test_flux_shape_mismatch_is_an_error_naming_the_hdu(tmp_path):
    c, r = write_tile_pair(tmp_path, 4000, 1, 20220401, targets(), np.random.default_rng(5))
    with fits.open(c) as co:
        hdus = fits.HDUList([h.copy() for h in co])
    hdus["Z_IVAR"].data = hdus["Z_IVAR"].data[:, :-5]
    hdus.writeto(c, overwrite=True)
    with pytest.raises(SpectraFormatError, match=r"Z_IVAR.*shape"):
        select_and_build(c, r, Selection())


def test_mock_tiles_are_byte_reproducible_with_valid_fits_checksums(tmp_path):
    import hashlib
    import warnings

    digests = []
    for k in range(2):
        pair = write_tile_pair(tmp_path / str(k), 5000, 2, 20220505, targets(), np.random.default_rng(9))
        digests.append([hashlib.sha256(p.read_bytes()).hexdigest() for p in pair])
    assert digests[0] == digests[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # astropy warns on a checksum mismatch
        with fits.open(pair[0], checksum=True) as co:
            for h in co:
                _ = h.data
                assert h.header.comments["CHECKSUM"].startswith("HDU checksum updated")


# ------------------------------------------------------------------ issue 8.5: any pairs, one record per selection
def _astropy_pairs(root: Path) -> dict[str, tuple[Path, Path]]:
    """Two DESI-named pairs in a folder of no particular layout, and one renamed pair, written
    with astropy directly (acquire_fixtures.write_spectra_pair)."""
    from acquire_fixtures import write_spectra_pair

    out = {"tile": (root / "in" / "a" / "coadd-3-1000-thru20220101.fits",
                    root / "in" / "a" / "redrock-3-1000-thru20220101.fits"),
           "healpix": (root / "in" / "coadd-main-bright-10032.fits", root / "in" / "redrock-main-bright-10032.fits"),
           "renamed": (root / "loose" / "my-coadd.fits", root / "loose" / "my-redrock.fits")}
    for c, r in out.values():
        write_spectra_pair(c, r, ["GALAXY", "STAR", "GALAXY", "QSO"], [0, 0, 4, 0], [100.0, 100, 100, 10])
    return out


def test_spectra_verb_converts_a_folder_and_explicit_files(tmp_path, capsys):
    from desivoids.cli import main as cli_main

    given = _astropy_pairs(tmp_path)
    data = tmp_path / "run"
    assert cli_main(["acquire", "spectra", str(tmp_path / "in"), "--data-dir", str(data), "--no-progress"]) == 0
    assert "2 pairs: 2 converted" in capsys.readouterr().out
    c, r = given["renamed"]
    assert cli_main(["acquire", "spectra", str(c), str(r), "--data-dir", str(data), "--no-progress"]) == 0
    spectra = data / "acquire" / "spectra" / "GALAXY_zwarn0_deltachi2gt40"  # the notebook's defaults
    got = sorted(p.relative_to(spectra).as_posix() for p in spectra.rglob("spectra-*.parquet"))
    assert got == ["dr1/spectro/redux/iron/healpix/main/bright/100/10032/spectra-main-bright-10032.parquet",
                   "dr1/spectro/redux/iron/tiles/cumulative/1000/20220101/spectra-3-1000-thru20220101.parquet",
                   "spectra-my-coadd.parquet"]  # DESI names go to DESI's places; others flat
    for p in spectra.rglob("spectra-*.parquet"):
        assert pq.read_table(p)["TARGETID"].to_pylist() == [39627000000000000]  # GALAXY, ZWARN 0, > 40
    with Manifest(data / "acquire" / "manifest.sqlite", readonly=True) as m:
        rows = m.spectra_rows()
    assert {row["coadd"] for row in rows} == {str(p[0]) for p in given.values()}
    assert not [p for p in tmp_path.rglob("*.parquet") if not p.is_relative_to(data / "acquire")]


def test_spectra_verb_reports_what_it_cannot_pair_and_usage_errors(tmp_path, capsys):
    from desivoids.cli import main as cli_main

    given = _astropy_pairs(tmp_path)
    given["tile"][1].unlink()  # a coadd without its redrock in a folder
    data = ["--data-dir", str(tmp_path / "run"), "--no-progress"]
    assert cli_main(["acquire", "spectra", str(tmp_path / "in"), *data]) == 1
    out = capsys.readouterr().out
    assert "1 converted" in out and "FAILED" in out and "no redrock-3-1000-thru20220101.fits beside it" in out
    assert cli_main(["acquire", "spectra", str(given["tile"][0]), str(tmp_path / "nothing"), *data]) == 1
    err = capsys.readouterr().err
    assert "coadd without its redrock" in err and "no such file or folder" in err
    assert cli_main(["acquire", "spectra", str(tmp_path / "in"), "-p", "workers", "3", *data]) == 2
    assert "not a selection parameter" in capsys.readouterr().err
    assert cli_main(["acquire", "spectra", str(tmp_path / "in"), "-p", "zwarn_zero", "maybe", *data]) == 2


def test_two_selections_keep_two_records_and_two_outputs(tmp_path, capsys):
    from desivoids.cli import main as cli_main

    given = _astropy_pairs(tmp_path)
    c, r = given["tile"]
    data = tmp_path / "run"
    base = ["acquire", "spectra", str(c), str(r), "--data-dir", str(data), "--no-progress"]
    assert cli_main(base) == 0
    assert cli_main(base + ["-p", "spectype", "[STAR, QSO]", "-p", "min_deltachi2", "5"]) == 0
    capsys.readouterr()
    with Manifest(data / "acquire" / "manifest.sqlite", readonly=True) as m:
        rows = {json.loads(row["selection"])["spectype"][0]: row for row in m.spectra_rows()}
    assert set(rows) == {"GALAXY", "QSO"} and {row["coadd"] for row in rows.values()} == {str(c)}
    assert (rows["GALAXY"]["n_kept"], rows["QSO"]["n_kept"]) == (1, 2)  # neither overwrote the other
    assert rows["GALAXY"]["output"] != rows["QSO"]["output"]
    for row in rows.values():
        assert pq.read_table(data / "acquire" / "spectra" / row["output"]).num_rows == row["n_kept"]
    assert cli_main(base) == 0  # the first selection again: its record stands, nothing to redo
    assert "1 already done" in capsys.readouterr().out
