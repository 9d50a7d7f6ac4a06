"""convert: FastSpecFit (v3.0, v2.1) and DESIVAST FITS -> Parquet with the documented columns,
derived quantities, the row ledger, and identical output whatever the chunking or scheduler."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from convert_fixtures import convert_dir, write_sky

from desivoids import cosmology, formats
from desivoids.errors import InputError
from desivoids.convert import build, columns, fitstable
from desivoids.cli import main as cli_main


@pytest.fixture(scope="module")
def sky(tmp_path_factory):
    """A converted small sky (v3.0, two FastSpecFit files, eight DESIVAST files)."""
    d = tmp_path_factory.mktemp("convert_v3")
    written = write_sky(d / "raw", rows=300)
    res = convert_dir(d, chunk_rows=64, extra_columns=["EBV", "PHOTSYS", "COEFF"])
    return d, written, res


def galaxies(d: Path):
    return pq.read_table(d / "convert" / "galaxies").to_pandas().sort_values(
        ["source_file", "source_row"]).reset_index(drop=True)


def test_output_layout_and_schemas(sky):
    d, _, _ = sky
    out = d / "convert"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["galaxies", "voids.parquet", "holes.parquet", "zonevoid.parquet", "galzone.parquet",
         "rejects.parquet", "reconciliation.json", "MANIFEST.sha256", "inputs.json"])
    for name in ("voids", "holes", "zonevoid", "galzone", "rejects"):
        got = pq.read_schema(out / f"{name}.parquet")
        assert got.remove_metadata().equals(columns.TABLES[name].remove_metadata()), name
    g = pq.read_schema(next((out / "galaxies").glob("part-*.parquet")))
    base = [f.name for f in columns.GALAXIES]
    names = g.names
    assert names[:len(base) - len(columns.DERIVED_COLUMNS)] == base[:len(base) - len(columns.DERIVED_COLUMNS)]
    assert names[-len(columns.DERIVED_COLUMNS):] == [c.name for c in columns.DERIVED_COLUMNS]
    assert {"ebv", "photsys", "coeff"} <= set(names)
    assert g.field("coeff").type == pa.list_(pa.float64())
    assert g.field("photsys").type == pa.string()
    assert g.field("ra").metadata[b"unit"] == b"deg"



def test_outputs_are_lz4_with_floats_byte_stream_split(sky):
    """The written encoding (fewer bytes to write: the three zero bytes of a widened FITS E
    value line up), every float column of every table; values are checked by the tests below."""
    d, _, _ = sky
    out = d / "convert"
    files = sorted((out / "galaxies").glob("part-*.parquet")) + sorted(out.glob("*.parquet"))
    floats_seen = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        for rg in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                c = meta.row_group(rg).column(i)
                assert c.compression == "LZ4", (f.name, c.path_in_schema)  # pyarrow writes LZ4_RAW
                if c.physical_type in ("DOUBLE", "FLOAT"):
                    assert "BYTE_STREAM_SPLIT" in c.encodings, (f.name, c.path_in_schema)
                    floats_seen += 1
    assert floats_seen > 50

def test_galaxy_values_match_the_fits_files(sky):
    d, written, _ = sky
    g = galaxies(d)
    assert len(g) == sum(len(v["TARGETID"]) for v in written["fastspec"].values())
    for name, src in written["fastspec"].items():
        rows = g[g.source_file.str.endswith(name)]
        assert (rows.source_row.to_numpy() == np.arange(len(src["TARGETID"]))).all()
        np.testing.assert_array_equal(rows.targetid, src["TARGETID"])
        np.testing.assert_array_equal(rows.ra, src["RA"])
        np.testing.assert_array_equal(rows.zwarn, src["ZWARN"].astype(np.int64))
        np.testing.assert_array_equal(rows.logmstar, src["LOGMSTAR"].astype(np.float64))
        np.testing.assert_array_equal(rows.spectype, np.char.strip(src["SPECTYPE"]))
        assert set(rows.survey) == {"main"}  # 'main ' in the file: decoded and stripped
        assert set(rows.program) == {"bright"}
        path = d / "raw" / formats.FASTSPEC_V3_DIR / name
        with fits.open(path) as h:
            np.testing.assert_array_equal(rows.halpha_ew, h["FASTSPEC"].data["HALPHA_EW"])
            np.testing.assert_array_equal(rows.ebv, h["METADATA"].data["EBV"])
            np.testing.assert_array_equal(np.stack(rows.coeff), h["SPECPHOT"].data["COEFF"])
            np.testing.assert_array_equal(rows.age, h["SPECPHOT"].data["AGE"])


def test_derived_columns(sky):
    d, written, res = sky
    g = galaxies(d)
    zero = g.sfr == 0
    assert zero.sum() > 0
    assert g.sfr_zero.eq(zero).all()
    assert g.log_ssfr[zero].isna().all()
    pos = g.sfr > 0
    np.testing.assert_allclose(g.log_ssfr[pos], np.log10(g.sfr[pos]) - g.logmstar[pos])
    ivar0 = g.logmstar_ivar == 0
    assert ivar0.sum() > 0 and g.logmstar_err[ivar0].isna().all()
    np.testing.assert_allclose(g.logmstar_err[~ivar0], 1 / np.sqrt(g.logmstar_ivar[~ivar0]))
    np.testing.assert_allclose(g.m_r, g.absmag01_sdss_r + 0.97 * (g.z - 0.1))
    assert res.omega_m == 0.315 and "OMEGAM" in res.omega_m_source
    np.testing.assert_allclose(g.comoving_distance, cosmology.comoving_distance(g.z, 0.315))
    x, y, z = cosmology.radec_z_to_xyz(g.ra, g.dec, g.z, 0.315)
    np.testing.assert_allclose(g.comoving_x, x)
    np.testing.assert_allclose(g.comoving_z, z)
    # byte order: everything arrow hands back is native
    for c in ("targetid", "ra", "logmstar"):
        assert g[c].to_numpy().dtype.isnative


def test_voids_table(sky):
    d, written, _ = sky
    v = pq.read_table(d / "convert" / "voids.parquet").to_pandas()
    assert len(v) == sum(len(t.get("MAXIMALS", t.get("VOIDS"))["VOID"])
                         for t in written["desivast"].values())
    assert set(v.algorithm) == set(columns.ALGORITHMS) and set(v.cap) == {"NGC", "SGC"}
    assert ((v.ra >= 0) & (v.ra < 360)).all()
    vf = v[(v.algorithm == "VoidFinder") & (v.cap == "NGC")].sort_values("source_row")
    src = written["desivast"][formats.voidfinder_filename("NGC")]["MAXIMALS"]
    assert (src["RA"] < 0).any()  # VAST's atan RA is negative for some voids
    np.testing.assert_allclose(vf.ra, src["RA"] % 360)
    np.testing.assert_array_equal(vf.radius, src["RADIUS"])
    np.testing.assert_array_equal(vf.r_eff, src["R_EFF"])
    np.testing.assert_array_equal(vf.is_edge, src["EDGE"] != 0)
    assert vf.edge_area_ratio.isna().all() and vf.x1.isna().all()
    zb = v[(v.algorithm == "ZOBOV") & (v.cap == "SGC")].sort_values("source_row")
    src = written["desivast"][formats.v2_filename("ZOBOV", "SGC")]["VOIDS"]
    np.testing.assert_array_equal(zb.r_eff, src["RADIUS"])
    ratio = src["EDGE_AREA"] / src["TOT_AREA"]
    np.testing.assert_allclose(zb.edge_area_ratio, ratio)
    np.testing.assert_array_equal(zb.is_edge, ratio > 0.1)
    assert zb.edge.isna().all()
    np.testing.assert_array_equal(zb.z2, src["Z2"])


def test_holes_zonevoid_galzone_and_headers(sky):
    d, written, _ = sky
    out = d / "convert"
    h = pq.read_table(out / "holes.parquet").to_pandas()
    src = written["desivast"][formats.voidfinder_filename("SGC")]["HOLES"]
    hs = h[h.cap == "SGC"]
    np.testing.assert_array_equal(hs.hole_index, np.arange(len(src["X"])))
    np.testing.assert_array_equal(hs.radius, src["RADIUS"])
    np.testing.assert_array_equal(hs.void, src["VOID"])
    zv = pq.read_table(out / "zonevoid.parquet").to_pandas()
    assert len(zv) == 6 * len(src_zv := written["desivast"][formats.v2_filename("VIDE", "NGC")]
                              ["ZONEVOID"]["ZONE"])
    assert set(zv.algorithm) == {"REVOLVER", "VIDE", "ZOBOV"} and len(src_zv) == 15
    gz = pq.read_table(out / "galzone.parquet").to_pandas()
    src = written["desivast"][formats.v2_filename("REVOLVER", "NGC")]["GALZONE"]
    r = gz[(gz.algorithm == "REVOLVER") & (gz.cap == "NGC")]
    np.testing.assert_array_equal(r.targetid, src["TARGET"])
    np.testing.assert_array_equal(r.zone, src["ZONE"])
    meta = json.loads(pq.read_schema(out / "voids.parquet").metadata[columns.METADATA_KEY])
    prim = [s["PRIMARY"] for s in meta["sources"].values()]
    assert len(prim) == 8 and all(p["OMEGAM"] == 0.315 and p["ZLIMU"] == 0.24 for p in prim)
    gmeta = json.loads(pq.read_schema(next((out / "galaxies").glob("*.parquet")))
                       .metadata[columns.METADATA_KEY])
    assert gmeta["omega_m"] == 0.315 and gmeta["fastspec_version"] == "v3.0"
    assert next(iter(gmeta["sources"].values()))["PRIMARY"]["SPECPROD"] == "iron"


def test_reconciliation_balances_and_lists_skipped_hdus(sky):
    d, written, res = sky
    rec = json.loads((d / "convert" / "reconciliation.json").read_text())
    assert rec == res.reconciliation and rec["balanced"]
    assert all(e["rows_in"] == e["rows_out"] + e["rows_rejected"] for e in rec["entries"])
    assert rec["totals"]["galaxies"]["rows_in"] == 300 + 317
    assert rec["totals"]["voids"]["rows_out"] == 8 * 12
    skipped = {(Path(s["source_file"]).name, s["hdu"]) for s in rec["skipped_hdus"]}
    assert skipped == {(formats.v2_filename(a, c), h) for a in ("REVOLVER", "VIDE")
                       for c in ("NGC", "SGC") for h in ("TRIANGLE", "GALVIZ")}
    assert len(res.table()) == len(rec["entries"])


def test_chunking_and_schedulers_give_identical_output(sky, tmp_path):
    d, _, _ = sky
    ref = galaxies(d)
    shutil.copytree(d / "raw", tmp_path / "raw")
    for chunk_rows, scheduler in ((1000, "synchronous"), (37, "threads"), (150, "processes")):
        convert_dir(tmp_path, chunk_rows=chunk_rows, scheduler=scheduler, num_workers=2,
                    extra_columns=["EBV", "PHOTSYS", "COEFF"])
        got = galaxies(tmp_path)
        assert got.drop(columns=["coeff"]).equals(ref.drop(columns=["coeff"])), (chunk_rows, scheduler)
        nparts = len(list((tmp_path / "convert" / "galaxies").glob("part-*.parquet")))
        assert nparts == {1000: 2, 37: 9 + 9, 150: 2 + 3}[chunk_rows]


def test_fastspecfit_v21_layout(tmp_path):
    written = write_sky(tmp_path / "raw", rows=120, version="v2.1")
    res = convert_dir(tmp_path, chunk_rows=50)
    g = galaxies(tmp_path)
    src = written["fastspec"][formats.FASTSPEC_V21_FILENAME]
    assert len(g) == 120 and res.reconciliation["fastspec_versions"] == ["v2.1"]
    np.testing.assert_array_equal(g.targetid, src["TARGETID"])
    np.testing.assert_array_equal(g.z, src["Z"])
    # v2.1 has no IVAR for mass and SFR: null, not zero, and so are the errors
    assert g.logmstar_ivar.isna().all() and g.sfr_err.isna().all() and g.logmstar_err.isna().all()
    assert g.dn4000_err.notna().all()
    assert res.reconciliation["entries"][0]["hdu"] == "METADATA+FASTSPEC"


def test_fits_reader_matches_astropy_on_scaled_logical_string_vector_columns(tmp_path):
    n = 1001
    rng = np.random.default_rng(3)
    cols = [fits.Column("I8", "B", array=rng.integers(-128, 127, n).astype(np.int8), bzero=-128),
            fits.Column("U16", "I", array=rng.integers(0, 65535, n).astype(np.uint16), bzero=32768),
            fits.Column("U32", "J", array=rng.integers(0, 2**32 - 1, n).astype(np.uint32),
                        bzero=2**31),
            fits.Column("SC", "J", array=rng.integers(-1000, 1000, n).astype(np.int32)),
            fits.Column("L", "L", array=rng.random(n) < 0.3),
            fits.Column("S", "8A", array=np.array([" ab  ", "c", "", "dd\x00"] * 250 + ["e"])),
            fits.Column("V", "3D", array=rng.normal(size=(n, 3))),
            fits.Column("F", "E", array=rng.normal(size=n).astype(np.float32))]
    p = tmp_path / "t.fits"
    hdu = fits.BinTableHDU.from_columns(cols, name="T")
    hdu.header["TSCAL4"], hdu.header["TZERO4"] = 0.01, 5.0  # SC: scaled integers -> reals
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(p)
    _, hdus, _ = fitstable.open_tables(p, ["T"])
    got = fitstable.read_rows(hdus["T"], 3, 998, [c.name for c in cols], block_bytes=500)
    ref = fits.getdata(p, "T")[3:998]
    for c in cols:
        g = got[c.name]
        if c.name == "S":
            assert g.to_pylist() == [s.strip() for s in ref["S"]]
        else:
            np.testing.assert_array_equal(g, ref[c.name], err_msg=c.name)
            assert g.dtype.isnative


def test_cli_converts_and_reports(sky, tmp_path, capsys):
    d, _, _ = sky
    shutil.copytree(d / "raw", tmp_path / "raw")
    assert cli_main(["convert", "-p", "data_dir", str(tmp_path), "-p", "input_dir", str(tmp_path / "raw"),
                     "-p", "chunk_rows", "500"]) == 0
    out = capsys.readouterr().out
    assert "galaxies" in out and "617 rows" in out
    assert (tmp_path / "convert" / "reconciliation.json").is_file()


def test_tiny_mock_sky_converts(tiny_sky, tmp_path):
    """The project's mock sky (DESI relative layout) converts completely."""
    root, summary = tiny_sky
    fast, vast = build.discover(root)
    assert len(vast) == 8 and fast
    res = build.convert_files(fast, vast, tmp_path / "convert", base=root, chunk_rows=5000)
    rec = res.reconciliation
    assert rec["balanced"]
    rows_in = {}
    for p, _ in fast:
        with fits.open(p) as h:
            rows_in[p.name] = h["METADATA"].header["NAXIS2"]
    assert rec["totals"]["galaxies"]["rows_in"] == sum(rows_in.values())
    assert (rec["totals"]["galaxies"]["rows_out"]
            + sum(rec["totals"]["galaxies"]["rejected"].values()) == sum(rows_in.values()))
    v = pq.read_table(tmp_path / "convert" / "voids.parquet")
    assert v.num_rows == rec["totals"]["voids"]["rows_in"]
    assert set(v.column("algorithm").to_pylist()) == set(columns.ALGORITHMS)


def test_header_parser_agrees_with_astropy(tmp_path):
    hdr = fits.Header()
    hdr["OMEGAM"] = 0.315
    hdr["ZLIMU"] = (0.24, "a comment / with a slash")
    hdr["NEST"] = True
    hdr["NSIDE"] = 1
    hdr["QUOTED"] = "it's 'quoted'"
    hdr["LONGSTR"] = "x" * 150 + " end"  # astropy writes CONTINUE cards
    hdr["BIG"] = 1.5e-300
    hdr["EMPTY"] = ""
    hdr["COMMENT"] = "ignored"
    p = tmp_path / "h.fits"
    fits.HDUList([fits.PrimaryHDU(header=hdr)]).writeto(p)
    primary, _, _ = fitstable.open_tables(p, [])
    with fits.open(p) as h:
        ref = {k: v for k, v in h[0].header.items() if k not in ("COMMENT", "HISTORY")}
    assert primary == {k: v for k, v in ref.items() if k not in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND")}
    assert primary["LONGSTR"].endswith(" end") and len(primary["LONGSTR"]) == 154


def test_dask_distributed_scheduler_address(sky, tmp_path):
    """A scheduler address sends the tasks to that dask.distributed cluster (same output)."""
    distributed = pytest.importorskip("distributed")
    d, _, _ = sky
    shutil.copytree(d / "raw", tmp_path / "raw")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        convert_dir(tmp_path, chunk_rows=100, scheduler_address=cluster.scheduler_address,
                    extra_columns=["EBV", "PHOTSYS", "COEFF"])
    assert galaxies(tmp_path).drop(columns=["coeff"]).equals(galaxies(d).drop(columns=["coeff"]))


def test_galaxies_alone_and_voids_alone(sky, tmp_path):
    """Without DESIVAST files Omega_m falls back to the documented default (and says so);
    without FastSpecFit files the void tables are still written, galaxies left empty."""
    d, _, _ = sky
    fast, vast = build.discover(d / "raw")
    res = build.convert_files(fast, [], tmp_path / "a", base=d / "raw")
    assert res.omega_m == cosmology.OMEGA_M_DEFAULT and res.omega_m_source.startswith("default")
    assert pq.read_table(tmp_path / "a" / "voids.parquet").num_rows == 0
    assert pq.read_table(tmp_path / "a" / "galaxies").num_rows == 617
    res = build.convert_files([], vast, tmp_path / "b", base=d / "raw")
    assert res.rows["voids"] == 96 and "galaxies" not in res.rows
    empty = pq.read_table(tmp_path / "b" / "galaxies")  # still a readable dataset
    assert empty.num_rows == 0 and empty.schema.names == columns.GALAXIES.names
    with pytest.raises(InputError, match="nothing to convert"):
        build.convert_files([], [], tmp_path / "c")


REAL_TILE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "desi-iron-tile"


@pytest.mark.parametrize("name", ["redrock-4-80613-thru20210324.fits",
                                  "coadd-4-80613-thru20210324.fits"])
def test_fits_reader_matches_astropy_on_real_desi_tables(name):
    """Every scalar and vector column of the real iron tile tables (found by EXTNAME), read by
    our byte reader, equals astropy's values (strings stripped)."""
    path = REAL_TILE / name
    if not path.is_file():
        pytest.skip(f"real DESI fixture absent: {path}")
    with fits.open(path) as h:
        names = [x.name for x in h if isinstance(x, fits.BinTableHDU)]
    assert "FIBERMAP" in names
    _, hdus, _ = fitstable.open_tables(path, names)
    checked = 0
    for hname in names:
        t = hdus[hname]
        cols = [c for c, fc in t.columns.items() if fc.code not in "PQX"]
        got = fitstable.read_rows(t, 0, t.nrows, cols, block_bytes=1000)
        ref = fits.getdata(path, hname)
        for c in cols:
            g, r = got[c], ref[c]
            if r.dtype.kind in "SU":
                assert g.to_pylist() == [s.strip() for s in np.asarray(r).astype(str).tolist()], c
            else:
                np.testing.assert_array_equal(g, r, err_msg=f"{hname}.{c}")
            checked += 1
    assert checked > 100


def test_layout_version_is_read_from_the_file_name_first():
    from desivoids.convert.fastspecfit import version_of

    assert version_of("/mirror/v2.5/dr1/vac/dr1/fastspecfit/iron/v3.0/catalogs/"
                      "fastspec-iron-main-bright-nside1-hp03.fits") == "v3.0"
    assert version_of("/data/v2.x/fastspec-iron-main-bright-nside1-hp03.fits") == "v3.0"
    assert version_of("dr1/vac/dr1/fastspecfit/iron/v2.1/catalogs/fastspec-iron-main-bright.fits") == "v2.1"


def test_rows_never_read_fail_the_reconciliation(sky, tmp_path, monkeypatch):
    """The rows in are the FITS header's NAXIS2, not the sum of the chunks: a chunking that
    skips rows (as chunk_rows -5 once did, publishing an empty table with exit 0) cannot balance."""
    from desivoids.convert import fastspecfit
    from desivoids.convert.reconcile import ReconciliationError

    d, _, _ = sky
    shutil.copytree(d / "raw", tmp_path / "raw")
    every = fastspecfit.chunks
    monkeypatch.setattr(fastspecfit, "chunks", lambda plan, n: every(plan, n)[:-1])
    with pytest.raises(ReconciliationError, match="rows read vs rows in the source's header"):
        convert_dir(tmp_path, chunk_rows=64, scheduler="synchronous")
    assert not (tmp_path / "convert").exists(), "nothing published"
