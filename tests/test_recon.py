"""recon: the inventory of a mock sky matches what the mock wrote, and bad files are recorded
with their fault (or fail the stage in strict mode, naming the file)."""
from __future__ import annotations

import json
import shutil

import pytest
from astropy.io import fits

from desivoids.errors import InputError
from desivoids import formats, recon
from desivoids.checksums import sha256_file


@pytest.fixture(scope="module")
def inventory(tiny_sky):
    root, _ = tiny_sky
    return recon.inventory(root)


def by_name(files):
    return {f.path.rsplit("/", 1)[-1]: f for f in files}


def test_lists_all_desivast_and_fastspecfit_files_with_their_hdus(tiny_sky, inventory):
    root, _ = tiny_sky
    files = by_name(inventory)
    desivast = [n for n in files if n.startswith("DESIVAST_")]
    assert len(desivast) == 8
    assert len([n for n in files if n.startswith("fastspec-iron-main-bright-nside1-hp")]) == 12
    for name, f in files.items():
        assert f.ok, (name, f.faults)
        assert f.kind is not None, name
        assert tuple(h.extname for h in f.hdus) == formats.expected_hdus(f.kind), name


def test_row_counts_and_columns_match_astropy(tiny_sky, inventory):
    root, _ = tiny_sky
    for f in inventory:
        with fits.open(root / f.path) as hdul:
            assert len(hdul) == len(f.hdus)
            for h, hdu in zip(f.hdus, hdul):
                assert h.extname == (hdu.name if h.index else "PRIMARY")
                if isinstance(hdu, fits.BinTableHDU):
                    assert h.rows == hdu.header["NAXIS2"]
                    assert [c.name for c in h.columns] == hdu.columns.names


def test_checksums_agree_with_published_sums(inventory):
    desivast = [f for f in inventory if "DESIVAST" in f.path]
    assert all(f.published_sha256 is not None for f in desivast), "mock writes a .sha256sum beside DESIVAST"
    assert all(f.sha256 == f.published_sha256 for f in desivast)


def test_header_keys_are_recorded(inventory):
    vf = next(f for f in inventory if f.path.endswith("DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"))
    primary = vf.hdus[0].header
    for key in ("OMEGAM", "ZLIML", "ZLIMU", "DLIML", "DLIMU", "MAGLIM"):
        assert key in primary
    maximals = next(h for h in vf.hdus if h.extname == "MAXIMALS")
    assert maximals.header["VOID"] == maximals.rows


def test_writes_machine_readable_inventory(tmp_path, inventory):
    target = recon.write(inventory, tmp_path)
    doc = json.loads(target.read_text())
    assert len(doc["files"]) == len(inventory)
    tables = {p.stem for p in tmp_path.glob("*.parquet")}
    assert tables == {"files", "hdus", "columns"}


@pytest.fixture
def faulty(tmp_path, tiny_sky):
    """A copy of two real-format files plus three broken ones."""
    root, _ = tiny_sky
    src = next(root.rglob("DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"))
    d = tmp_path / "in"
    d.mkdir()
    good = d / src.name
    shutil.copy(src, good)
    (d / "DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits").write_text("this is not a FITS file\n")
    truncated = d / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"
    data = src.read_bytes()
    truncated.write_bytes(data[: len(data) - 2880 - 100])  # cut inside the last HDU's header
    cut_data = d / "DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits"
    cut_data.write_bytes(data[: len(data) - 100])  # cut inside the last HDU's data
    # A VoidFinder file with only MAXIMALS: lacks HOLES.
    with fits.open(src) as hdul:
        fits.HDUList([hdul[0].copy(), hdul["MAXIMALS"].copy()]).writeto(
            d / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC_copy.fits")
    missing = d / "sub" / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"
    missing.parent.mkdir()
    shutil.move(d / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC_copy.fits", missing)
    return d


def test_faults_are_recorded_not_raised(faulty, tmp_path):
    files = {f.path: f for f in recon.run(data_dir=str(tmp_path), input_dir=str(faulty)).files}
    assert files["DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"].ok
    assert "not a readable FITS file" in files["DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits"].faults[0]
    assert any("truncated" in x for x in files["DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"].faults)
    assert any("truncated" in x for x in files["DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits"].faults)
    assert files["sub/DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"].faults == [
        "missing HDU HOLES (a voidfinder file has ('PRIMARY', 'MAXIMALS', 'HOLES'))"]
    table = recon.tables(list(files.values()))["files"]
    assert table.fault.notna().sum() == 4


def test_strict_fails_naming_each_faulty_file(faulty, tmp_path):
    with pytest.raises(recon.ReconError) as err:
        recon.run(data_dir=str(tmp_path), input_dir=str(faulty), strict=True)
    msg = str(err.value)
    for name in ("DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits", "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits",
                 "DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits", "sub/DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits"):
        assert name in msg
    assert "VoidFinder_SGC" not in msg
    assert len(err.value.problems) == 3  # every faulty file at once, not the first only
    # The inventory is written even when strict mode fails, so the faults can be read.
    assert (tmp_path / "recon" / "inventory.json").exists()


def test_checksum_mismatch_is_a_fault(tmp_path, tiny_sky):
    root, _ = tiny_sky
    src = next(root.rglob("DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"))
    d = tmp_path / "in"
    d.mkdir()
    raw = bytearray(src.read_bytes())
    raw[-3000] ^= 0xFF  # flip a byte in the data of the last HDU
    (d / src.name).write_bytes(bytes(raw))
    (d / "x.sha256sum").write_text(f"{sha256_file(src)}  {src.name}\n")
    (f,) = recon.inventory(d)
    assert f.faults == ["sha256 differs from the published checksum"]
    # the stage fails by default (a bit flipped after acquire once passed with exit 0), and
    # still publishes the inventory that shows it
    with pytest.raises(recon.ReconError, match=rf"{src.name}: sha256 differs .* fetch it again"):
        recon.run(data_dir=str(tmp_path / "run"), input_dir=str(d))
    assert (tmp_path / "run" / "recon").is_dir()


def test_real_tile_files(real_tile_dir):
    files = {f.path: f for f in recon.inventory(real_tile_dir)}
    coadd = files["coadd-4-80613-thru20210324.fits"]
    assert coadd.ok
    ext = {h.extname: h for h in coadd.hdus}
    assert {"FIBERMAP", "B_FLUX", "R_FLUX", "Z_FLUX", "SCORES"} <= set(ext)
    assert ext["B_FLUX"].shape[0] == ext["FIBERMAP"].rows == 1
    redrock = files["redrock-4-80613-thru20210324.fits"]
    cols = {c.name for h in redrock.hdus if h.extname == "REDSHIFTS" for c in h.columns}
    assert {"TARGETID", "Z", "ZWARN", "SPECTYPE", "DELTACHI2"} <= cols


def test_missing_input_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        recon.inventory(tmp_path / "nope")
    assert err.value.file == str(tmp_path / "nope")


def test_gzipped_fits_is_measured_by_its_decompressed_stream(tmp_path, tiny_sky):
    """astropy opens .fits.gz transparently, with HDU offsets in the decompressed stream: a whole
    .gz file is not 'truncated', a .gz cut short is."""
    import gzip

    root, _ = tiny_sky
    src = next(root.rglob("DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"))
    d = tmp_path / "in"
    d.mkdir()
    packed = gzip.compress(src.read_bytes())
    (d / "whole.fits.gz").write_bytes(packed)
    (d / "cut.fits.gz").write_bytes(packed[: len(packed) // 2])
    files = by_name(recon.inventory(d))
    assert files["whole.fits.gz"].faults == []
    assert [h.extname for h in files["whole.fits.gz"].hdus] == ["PRIMARY", "MAXIMALS", "HOLES"]
    assert files["cut.fits.gz"].faults and "truncated" in files["cut.fits.gz"].faults[0]


def test_threaded_inventory_of_truncated_files_leaks_no_warning(tmp_path, tiny_sky, capfd):
    """astropy warns on truncation; the warning is captured per file even with several threads
    (catch_warnings swaps a process-wide list), and the process's filters are left as they were.
    A stray warning on stderr would fail the recon stage (the runner treats stderr as an error)."""
    import warnings

    root, _ = tiny_sky
    raw = next(root.rglob("DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits")).read_bytes()
    d = tmp_path / "in"
    d.mkdir()
    for i in range(24):
        (d / f"DESIVAST_BGS_VOLLIM_VoidFinder_NGC_{i:02d}.fits").write_bytes(raw[: len(raw) - 2000 - 7 * i])
    before = list(warnings.filters)
    files = recon.inventory(d, workers=4, checksum=False)
    assert all(any("truncated" in x for x in f.faults) for f in files) and len(files) == 24
    assert warnings.filters == before
    assert "truncated" not in capfd.readouterr().err


def test_published_sums_one_level_up_are_used(tmp_path, tiny_sky):
    root, _ = tiny_sky
    src = next(root.rglob("DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"))
    d = tmp_path / "v1.0" / "catalogs"
    d.mkdir(parents=True)
    shutil.copy(src, d / src.name)
    (tmp_path / "v1.0" / "v1.0.sha256sum").write_text(f"{'0' * 64}  catalogs/{src.name}\n")
    (f,) = recon.inventory(tmp_path / "v1.0")
    assert f.published_sha256 == "0" * 64
    assert f.faults == ["sha256 differs from the published checksum"]


def _minimal_writers():

    import convert_fixtures

    return convert_fixtures


def test_missing_required_columns_are_faults_naming_every_one(tmp_path):
    """recon judges columns as convert does (formats.check_file), every missing one at once."""
    fx = _minimal_writers()
    name = formats.fastspec_v3_filename(3)
    fx.write_minimal_fastspec_v3(tmp_path / name, drop=(
        "METADATA.Z", "METADATA.SPECTYPE", "METADATA.DELTACHI2", "SPECPHOT.SFR"))
    (f,) = recon.inventory(tmp_path, checksum=False)
    assert f.faults == ["HDU METADATA: required columns not found: Z, DELTACHI2, SPECTYPE",
                        "HDU SPECPHOT: required columns not found: SFR"]
    assert any("optional columns absent" in n and "HBETA_EW" in n for n in f.notes)
    cols = recon.tables([f])["columns"]
    assert cols.loc[cols.column == "ZWARN", ["format", "tzero"]].values.tolist() == [["B", -128]]
    with pytest.raises(recon.ReconError, match="DELTACHI2, SPECTYPE"):
        recon.run(data_dir=str(tmp_path / "run"), input_dir=str(tmp_path), strict=True,
                  checksum=False)


def test_notes_are_published_and_strict_mode_ignores_them(tmp_path):
    fx = _minimal_writers()
    fx.write_minimal_v2(tmp_path / "in" / formats.v2_filename("VIDE", "NGC"))
    res = recon.run(data_dir=str(tmp_path / "run"), input_dir=str(tmp_path / "in"), strict=True,
                    checksum=False)
    assert "0 with faults, 1 with notes" in str(res)
    doc = json.loads((tmp_path / "run" / "recon" / "inventory.json").read_text())
    assert [len(f["notes"]) for f in doc["files"]] == [2] and doc["files"][0]["ok"]
    files = res.tables()["files"]
    assert files.fault.isna().all() and "TRIANGLE" in files.notes[0]


def test_the_largest_files_are_inspected_first_and_listed_in_path_order(tmp_path, tiny_sky, monkeypatch):
    """Two hashing threads end together when the largest files go first; the inventory stays
    in path order."""
    from desivoids.recon import stage as recon_stage

    started = []
    real = recon_stage.inspect_file
    monkeypatch.setattr(recon_stage, "inspect_file", lambda p, *a, **kw: started.append(p) or real(p, *a, **kw))
    files = recon_stage.inventory(tiny_sky[0], workers=1, progress=False)
    assert started == sorted(started, key=lambda p: -p.stat().st_size) and len(started) == len(files)
    assert [f.path for f in files] == sorted(f.path for f in files)
