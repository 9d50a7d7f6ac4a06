"""convert on bad input: every fault gives a FormatError naming the file, HDU and column, and
leaves the previous output exactly as it was (nothing half-written); bad rows are rejected with
their reason and counted, never dropped silently (strict mode turns them into errors)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from convert_fixtures import convert_dir, write_fastspec_v3, write_sky

from desivoids import formats
from desivoids.convert import FormatError, build
from desivoids.cli import main as cli_main

HP0 = formats.fastspec_v3_filename(0)
HP1 = formats.fastspec_v3_filename(1)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    d = tmp_path_factory.mktemp("convert_bad_template")
    write_sky(d / "raw", rows=200)
    return d / "raw"


@pytest.fixture
def sky(template, tmp_path):
    """A fresh copy of a good sky, already converted once (so there is output to protect)."""
    shutil.copytree(template, tmp_path / "raw")
    convert_dir(tmp_path, chunk_rows=64)
    return tmp_path


def fastspec(d: Path, name: str = HP0) -> Path:
    return d / "raw" / formats.FASTSPEC_V3_DIR / name


def vast(d: Path, name: str) -> Path:
    return d / "raw" / formats.DESIVAST_DIR / name


def snapshot(d: Path) -> dict:
    out = d / "convert"
    return {str(p.relative_to(out)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def rewrite(path: Path, edit) -> None:
    """Rewrite a FITS file: ``edit(list_of_hdus) -> list_of_hdus`` on in-memory copies."""
    with fits.open(path) as h:
        hdus = [x.copy() for x in h]
    path.unlink()
    fits.HDUList(edit(hdus)).writeto(path)


def table_hdu(hdus, name):
    return next(i for i, h in enumerate(hdus) if h.name == name)


def fails(d: Path, *names: str, **kwargs) -> FormatError:
    """Convert must raise a FormatError whose message holds every one of ``names``, and leave the
    previous output untouched with no temporary directory behind."""
    before = snapshot(d)
    with pytest.raises(FormatError) as info:
        convert_dir(d, chunk_rows=64, **kwargs)
    msg = str(info.value)
    for n in names:
        assert n in msg, (n, msg)
    assert snapshot(d) == before
    assert not [p for p in d.iterdir() if p.name.startswith(".parquet")]
    return info.value


def test_truncated_fastspecfit_file_names_file_and_hdu(sky):
    p = fastspec(sky, HP1)
    data = p.read_bytes()
    with fits.open(p) as h:
        start = h["FASTSPEC"].fileinfo()["datLoc"]
    p.write_bytes(data[:start + 1000])
    err = fails(sky, HP1, "HDU FASTSPEC", "truncated")
    assert err.hdu == "FASTSPEC" and err.file.endswith(HP1)


def test_file_cut_inside_a_header_is_a_format_error(sky):
    p = fastspec(sky)
    with fits.open(p) as h:
        hdr = h["SPECPHOT"].fileinfo()["hdrLoc"]
    p.write_bytes(p.read_bytes()[:hdr + 400])
    fails(sky, HP0, "do not form a complete HDU")


def test_truncated_desivast_file(sky):
    name = formats.v2_filename("VIDE", "SGC")
    p = vast(sky, name)
    p.write_bytes(p.read_bytes()[:-3000])
    fails(sky, name, "truncated")


def test_missing_hdu(sky):
    rewrite(fastspec(sky), lambda h: [x for x in h if x.name != "SPECPHOT"])
    err = fails(sky, HP0, "HDU SPECPHOT", "HDU missing")
    assert err.hdu == "SPECPHOT"


def test_missing_desivast_hdu(sky):
    name = formats.voidfinder_filename("NGC")
    rewrite(vast(sky, name), lambda h: [x for x in h if x.name != "HOLES"])
    fails(sky, name, "HDU HOLES")


def _replace_column(hdus, extname, colname, new):
    i = table_hdu(hdus, extname)
    old = hdus[i]
    cols = [c for c in old.columns if c.name != colname] + ([new] if new is not None else [])
    hdus[i] = fits.BinTableHDU.from_columns(cols, name=extname)
    return hdus


def test_missing_column(sky):
    rewrite(fastspec(sky), lambda h: _replace_column(h, "METADATA", "RA", None))
    err = fails(sky, HP0, "column RA", "not found")
    assert err.column == "RA"


def test_mistyped_column(sky):
    with fits.open(fastspec(sky)) as h:
        ra = h["METADATA"].data["RA"].astype(np.int32)
    rewrite(fastspec(sky),
            lambda h: _replace_column(h, "METADATA", "RA", fits.Column("RA", "J", array=ra)))
    err = fails(sky, HP0, "HDU METADATA", "column RA", "mistyped")
    assert err.hdu == "METADATA"


def test_mistyped_string_column_and_targetid(sky):
    with fits.open(fastspec(sky)) as h:
        tid = h["SPECPHOT"].data["TARGETID"].astype(np.float64)
    rewrite(fastspec(sky), lambda h: _replace_column(
        h, "SPECPHOT", "TARGETID", fits.Column("TARGETID", "D", array=tid)))
    fails(sky, HP0, "HDU SPECPHOT", "column TARGETID")


def test_mistyped_desivast_column(sky):
    name = formats.v2_filename("ZOBOV", "NGC")
    with fits.open(vast(sky, name)) as h:
        v = h["VOIDS"].data["VOID"].astype(np.float64)
    rewrite(vast(sky, name),
            lambda h: _replace_column(h, "VOIDS", "VOID", fits.Column("VOID", "D", array=v)))
    fails(sky, name, "HDU VOIDS", "column VOID", "mistyped")


def test_specphot_not_row_matched(sky):
    def shuffle(hdus):
        i = table_hdu(hdus, "SPECPHOT")
        data = hdus[i].data
        perm = np.arange(len(data))
        perm[[150, 151]] = perm[[151, 150]]  # two rows swapped, deep in the third chunk
        hdus[i] = fits.BinTableHDU(data=data[perm], header=hdus[i].header)
        return hdus

    rewrite(fastspec(sky), shuffle)
    err = fails(sky, HP0, "METADATA/SPECPHOT", "column TARGETID", "not row-matched", "row 150")
    assert err.column == "TARGETID"


def test_hdus_of_different_lengths(sky):
    def shorten(hdus):
        i = table_hdu(hdus, "FASTSPEC")
        hdus[i] = fits.BinTableHDU(data=hdus[i].data[:-1], header=hdus[i].header)
        return hdus

    rewrite(fastspec(sky), shorten)
    fails(sky, HP0, "TARGETID", "not row-matched")


def test_duplicate_targetids_across_files(sky):
    with fits.open(fastspec(sky)) as h:
        tid0 = int(h["METADATA"].data["TARGETID"][0])
    write_fastspec_v3(fastspec(sky, HP1), 50, seed=99, tid0=tid0 + 30, hp=1)  # overlaps hp00
    err = fails(sky, HP0, HP1, "HDU METADATA", "column TARGETID", "duplicate")
    assert "50 duplicate" in str(err)  # hp01 rows 0..49 repeat hp00 rows 10..59


def test_duplicate_targetid_within_a_file(sky):
    def dup(hdus):
        for h in hdus[1:]:
            h.data["TARGETID"][7] = h.data["TARGETID"][3]
        return hdus

    rewrite(fastspec(sky), dup)
    fails(sky, HP0, "TARGETID", "1 duplicate", "row 3", "row 7")


def _poison_coordinates(d: Path):
    def poison(hdus):
        m = hdus[table_hdu(hdus, "METADATA")].data
        m["RA"][3] = np.nan
        m["DEC"][4] = np.inf
        m["Z"][5] = np.nan
        m["RA"][6] = 400.0
        m["RA"][70] = -np.inf
        return hdus

    rewrite(fastspec(d), poison)


def test_nonfinite_coordinates_are_rejected_with_reason_and_counted(sky):
    _poison_coordinates(sky)
    res = convert_dir(sky, chunk_rows=64)
    rej = pq.read_table(sky / "convert" / "rejects.parquet").to_pandas()
    g = rej[rej.table == "galaxies"].sort_values("source_row")
    assert g.source_row.tolist() == [3, 4, 5, 6, 70]
    assert g.column.tolist() == ["RA", "DEC", "Z", "RA", "RA"]
    assert g.reason.tolist() == ["nonfinite", "nonfinite", "nonfinite", "out_of_range",
                                 "nonfinite"]
    assert set(g.hdu) == {"METADATA"} and all(g.source_file.str.endswith(HP0))
    with fits.open(fastspec(sky)) as h:
        tids = h["METADATA"].data["TARGETID"]
    assert g.key.tolist() == tids[[3, 4, 5, 6, 70]].tolist()
    entry = next(e for e in res.reconciliation["entries"] if e["source_file"].endswith(HP0))
    assert entry == {**entry, "rows_in": 200, "rows_out": 195, "rows_rejected": 5,
                     "rejected": {"nonfinite:RA": 2, "nonfinite:DEC": 1, "nonfinite:Z": 1,
                                  "out_of_range:RA": 1}}
    gal = pq.read_table(sky / "convert" / "galaxies", columns=["targetid"]).column(0).to_numpy()
    assert not set(tids[[3, 4, 5, 6, 70]]) & set(gal)
    assert len(gal) == 200 + 217 - 5


def test_nonfinite_coordinates_strict_mode_raises(sky):
    _poison_coordinates(sky)
    err = fails(sky, HP0, "HDU METADATA", "column RA", "row 3", strict=True)
    assert err.column == "RA"


def test_nonfinite_void_values_keep_the_void_and_are_counted(sky):
    name = formats.v2_filename("ZOBOV", "NGC")

    def poison(hdus):
        v = hdus[table_hdu(hdus, "VOIDS")].data
        v["RA"][2] = np.nan
        v["EDGE_AREA"][2] = np.nan
        v["X1"][5] = np.inf
        g = hdus[table_hdu(hdus, "GALZONE")].data
        g["X"][9] = np.nan
        return hdus

    rewrite(vast(sky, name), poison)
    res = convert_dir(sky, chunk_rows=64)
    voids = pq.read_table(sky / "convert" / "voids.parquet").to_pandas()
    z = voids[voids.source_file.str.endswith(name)].set_index("source_row")
    assert len(z) == 12  # no void lost
    assert z.loc[2, "nonfinite_columns"] == "RA,EDGE_AREA"
    assert np.isnan(z.loc[2, "ra"]) and z.loc[2, "is_edge"] is None
    assert z.loc[5, "nonfinite_columns"] == "X1"
    assert z.nonfinite_columns.notna().sum() == 2
    assert res.reconciliation["voids_with_nonfinite_values"] == {
        f"{formats.DESIVAST_DIR}/{name}": 2}
    rej = pq.read_table(sky / "convert" / "rejects.parquet").to_pandas()
    assert rej[["table", "hdu", "source_row", "column", "reason"]].values.tolist() == [
        ["galzone", "GALZONE", 9, "X", "nonfinite"]]
    e = next(e for e in res.reconciliation["entries"]
             if e["table"] == "galzone" and e["source_file"].endswith(name))
    assert (e["rows_in"], e["rows_out"], e["rejected"]) == (60, 59, {"nonfinite:X": 1})


def test_nonfinite_void_strict_raises(sky):
    name = formats.voidfinder_filename("SGC")

    def poison(hdus):
        hdus[table_hdu(hdus, "MAXIMALS")].data["R_EFF"][1] = np.nan
        return hdus

    rewrite(vast(sky, name), poison)
    fails(sky, name, "HDU MAXIMALS", "column R_EFF", strict=True)


def test_empty_fastspecfit_file_is_listed_not_hidden_and_strict_mode_refuses_it(sky):
    write_fastspec_v3(fastspec(sky, HP1), 0, seed=1, tid0=1, hp=1)
    fails(sky, HP1, "HDU METADATA", "empty table", strict=True)
    # by default a consistently empty HEALPix file (no galaxy in that pixel) is accepted and
    # listed, with its zero rows in the ledger
    res = convert_dir(sky, chunk_rows=64)
    assert res.reconciliation["empty_files"] == [f"{formats.FASTSPEC_V3_DIR}/{HP1}"]
    e = next(e for e in res.reconciliation["entries"] if e["source_file"].endswith(HP1))
    assert (e["rows_in"], e["rows_out"]) == (0, 0)


def test_every_fastspecfit_file_empty_is_an_error(sky):
    for i, name in enumerate((HP0, HP1)):
        write_fastspec_v3(fastspec(sky, name), 0, seed=1, tid0=1, hp=i)
    fails(sky, HP0, HP1, "HDU METADATA", "empty table")


def test_one_empty_hdu_is_not_row_matched(sky):
    def empty(hdus):
        i = table_hdu(hdus, "SPECPHOT")
        hdus[i] = fits.BinTableHDU(data=hdus[i].data[:0], header=hdus[i].header)
        return hdus

    rewrite(fastspec(sky), empty)
    fails(sky, HP0, "TARGETID", "not row-matched", "'SPECPHOT': 0")


def test_empty_desivast_table(sky):
    name = formats.voidfinder_filename("NGC")

    def empty(hdus):
        i = table_hdu(hdus, "HOLES")
        hdus[i] = fits.BinTableHDU(data=hdus[i].data[:0], header=hdus[i].header)
        return hdus

    rewrite(vast(sky, name), empty)
    fails(sky, name, "HDU HOLES", "empty table")


def test_not_a_fits_file(sky):
    fastspec(sky, HP1).write_bytes(b"<html>404 Not Found</html>" * 200)
    fails(sky, HP1, "not a readable FITS file")


def test_cli_reports_bad_input_and_exits_nonzero(sky, capsys):
    rewrite(fastspec(sky), lambda h: [x for x in h if x.name != "FASTSPEC"])
    assert cli_main(["convert", "-p", "data_dir", str(sky), "-p", "input_dir", str(sky / "raw")]) == 1
    err = capsys.readouterr().err
    assert HP0 in err and "HDU FASTSPEC" in err


def test_failure_after_parts_are_written_publishes_nothing(sky, monkeypatch):
    """Duplicates are found only after every part is written: still nothing half-loaded."""
    before = snapshot(sky)
    from desivoids.convert import fastspecfit

    calls = []
    real = fastspecfit.convert_chunk_or_error

    def spy(*a, **k):
        r = real(*a, **k)
        calls.append(r.part)
        return r

    monkeypatch.setattr(fastspecfit, "convert_chunk_or_error", spy)
    with fits.open(fastspec(sky)) as h:
        tid0 = int(h["METADATA"].data["TARGETID"][0])
    write_fastspec_v3(fastspec(sky, HP1), 10, seed=5, tid0=tid0, hp=1)
    with pytest.raises(FormatError):
        convert_dir(sky, chunk_rows=64, scheduler="synchronous")
    assert calls and all(calls)  # parts were written (to the temporary folder)...
    assert snapshot(sky) == before  # ...and none of them reached the output
    assert not [p for p in sky.iterdir() if p.name.startswith(".convert")]
    rec = json.loads((sky / "convert" / "reconciliation.json").read_text())
    assert rec["totals"]["galaxies"]["rows_in"] == 417


def test_reconciliation_cross_check_can_fail_and_then_publishes_nothing(sky, monkeypatch):
    """If the files written disagree with the ledger (a bug, simulated here by losing a row of
    the count), convert refuses to publish."""
    from desivoids.convert import ReconciliationError

    before = snapshot(sky)
    real = build._written_counts

    def lose_one(d):
        counts = real(d)
        key = next(k for k in counts if k[0] == "voids")
        counts[key] -= 1
        return counts

    monkeypatch.setattr(build, "_written_counts", lose_one)
    with pytest.raises(ReconciliationError, match="claimed vs written"):
        convert_dir(sky, chunk_rows=64)
    assert snapshot(sky) == before
    assert not [p for p in sky.iterdir() if p.name.startswith(".convert")]


def test_the_ledger_refuses_rows_it_cannot_account_for():
    from desivoids.convert.reconcile import Ledger, ReconciliationError

    ledger = Ledger()
    ledger.add("galaxies", "a.fits", "METADATA", 10, 9, {"nonfinite:RA": 1})
    ledger.check({("galaxies", "a.fits"): 9})  # balanced and as written: fine
    ledger.add("galaxies", "a.fits", "METADATA", 5, 4)  # one row neither kept nor rejected
    with pytest.raises(ReconciliationError, match="unbalanced"):
        ledger.check()
    ok = Ledger()
    ok.add("voids", "b.fits", "VOIDS", 3, 3)
    with pytest.raises(ReconciliationError, match="claimed vs written"):
        ok.check({("voids", "b.fits"): 2})


def test_a_chunk_that_miscounts_its_rows_publishes_nothing(sky, monkeypatch):
    """A bug that makes a chunk claim one row more than it read is caught before publishing."""
    from desivoids.convert import fastspecfit
    from desivoids.convert.reconcile import ReconciliationError

    before = snapshot(sky)
    real = fastspecfit.convert_chunk_or_error

    def miscount(*args, **kwargs):
        res = real(*args, **kwargs)
        if not isinstance(res, Exception) and res.start == 0:
            res.rows_out += 1
        return res

    monkeypatch.setattr(fastspecfit, "convert_chunk_or_error", miscount)
    with pytest.raises(ReconciliationError, match="unbalanced"):
        convert_dir(sky, chunk_rows=64, scheduler="synchronous")
    assert snapshot(sky) == before


def test_desivast_and_galaxy_chunk_problems_are_reported_together(sky):
    """The DESIVAST tables are converted in a thread while the galaxies' chunks run: a problem
    found there and one found in a chunk still come out as one error naming both files."""
    name = formats.v2_filename("ZOBOV", "NGC")
    with fits.open(vast(sky, name)) as h:
        v = h["VOIDS"].data["VOID"].astype(np.float64)
    rewrite(vast(sky, name),
            lambda h: _replace_column(h, "VOIDS", "VOID", fits.Column("VOID", "D", array=v)))

    def shuffle(hdus):
        i = table_hdu(hdus, "SPECPHOT")
        data = hdus[i].data
        perm = np.arange(len(data))
        perm[[150, 151]] = perm[[151, 150]]
        hdus[i] = fits.BinTableHDU(data=data[perm], header=hdus[i].header)
        return hdus

    rewrite(fastspec(sky), shuffle)
    fails(sky, name, "column VOID", "mistyped", HP0, "not row-matched", "row 150")


def test_desivast_and_fastspecfit_header_problems_are_reported_before_any_chunk(sky, monkeypatch):
    """A FastSpecFit header problem stops convert before any galaxy is read, with the DESIVAST
    files' problems in the same error."""
    from desivoids.convert import fastspecfit

    name = formats.v2_filename("VIDE", "SGC")
    with fits.open(vast(sky, name)) as h:
        v = h["VOIDS"].data["VOID"].astype(np.float64)
    rewrite(vast(sky, name),
            lambda h: _replace_column(h, "VOIDS", "VOID", fits.Column("VOID", "D", array=v)))
    rewrite(fastspec(sky), lambda h: [x for x in h if x.name != "FASTSPEC"])

    def no_chunk(*a, **k):
        raise AssertionError("a chunk ran")

    monkeypatch.setattr(fastspecfit, "convert_chunk", no_chunk)
    fails(sky, name, "column VOID", HP0, "HDU FASTSPEC")
