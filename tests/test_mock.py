"""The mock sky: real DESI formats (as desivoids.formats specifies them), internal consistency,
and a truth that follows the membership rules of science.md."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from desivoids import cosmology, formats
from desivoids.mock import generate, sky, truth

TINY = {"seed": 12345, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 1}


def raw_hdus(path: Path) -> list[tuple[fits.Header, int]]:
    """Walk a FITS file by the standard alone (2880-byte blocks, header then data of
    |BITPIX|/8 * NAXIS1 * ... + PCOUNT bytes), as cfitsio/fitsio do: (header, data offset)."""
    out, pos, size = [], 0, path.stat().st_size
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            chunks = []
            while True:
                block = fh.read(2880)
                assert len(block) == 2880, f"{path.name}: truncated header"
                chunks.append(block.decode("ascii"))
                if any(block[i:i + 8] == b"END     " for i in range(0, 2880, 80)):
                    break
            hdr = fits.Header.fromstring("".join(chunks))
            data_start = pos + 2880 * len(chunks)
            nbytes = abs(hdr["BITPIX"]) // 8 * (int(np.prod([hdr[f"NAXIS{i}"] for i in
                                                             range(1, hdr["NAXIS"] + 1)]))
                                                 if hdr["NAXIS"] else 0)
            nbytes += hdr.get("PCOUNT", 0)
            out.append((hdr, data_start))
            pos = data_start + nbytes + (-nbytes) % 2880
    assert pos == size, f"{path.name}: {size - pos} trailing bytes"
    return out


def raw_table(path: Path, extname: str) -> np.ndarray:
    """A binary table as a big-endian structured memmap (no astropy table machinery)."""
    for hdr, start in raw_hdus(path):
        if hdr.get("EXTNAME", "PRIMARY") == extname:
            dt = np.dtype([(hdr[f"TTYPE{i}"], formats.tform_to_dtype(hdr[f"TFORM{i}"]))
                           for i in range(1, hdr["TFIELDS"] + 1)])
            assert dt.itemsize == hdr["NAXIS1"]
            if hdr["NAXIS2"] == 0:
                return np.zeros(0, dtype=dt)
            return np.memmap(path, dtype=dt, mode="r", offset=start, shape=(hdr["NAXIS2"],))
    raise KeyError(extname)


@pytest.fixture(scope="module")
def sky_v3(tiny_sky):
    return tiny_sky


@pytest.fixture(scope="module")
def sky_v21(tmp_path_factory):
    out = tmp_path_factory.mktemp("mock_v21")
    return out, generate(out, seed=TINY["seed"], scale="tiny", fastspec_version="v2.1", tiles=0)


def _files(root: Path):
    return sorted(p for p in root.rglob("*.fits") if "spectro" not in p.parts)


_CACHE: dict = {}


def _read_all(root: Path, version="v3.0"):
    """FastSpecFit rows of all files: dict of arrays from the HDUs that hold them (cached)."""
    key = (str(root), version)
    if key not in _CACHE:
        _CACHE[key] = _read_all_uncached(root, version)
    return _CACHE[key]


def _read_all_uncached(root: Path, version):
    d = root / (formats.FASTSPEC_V3_DIR if version == "v3.0" else formats.FASTSPEC_V21_DIR)
    wanted = {"SPECPHOT": ("TARGETID", "LOGMSTAR", "LOGMSTAR_IVAR", "SFR", "DN4000",
                           "ABSMAG01_SDSS_U", "ABSMAG01_SDSS_R"),
              "FASTSPEC": ("TARGETID", "LOGMSTAR", "SFR")}
    out = {}
    for path in sorted(d.glob("*.fits")):
        for hdr, _ in raw_hdus(path)[1:]:
            ext = hdr["EXTNAME"]
            rec = raw_table(path, ext)
            tzero = {hdr[f"TTYPE{i}"]: hdr.get(f"TZERO{i}") for i in range(1, hdr["TFIELDS"] + 1)}
            names = rec.dtype.names if ext == "METADATA" else \
                [n for n in wanted[ext] if n in rec.dtype.names]
            for name in names:
                v = np.asarray(rec[name])
                v = v.astype(v.dtype.newbyteorder("="))
                if tzero[name] is not None:
                    v = v.astype(np.int64) + tzero[name]
                out.setdefault((ext, name), []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def _truth(root):
    return pq.read_table(root / "truth" / "galaxies.parquet").to_pandas()


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------


def _check_file_against_formats(path: Path, lines_subset_ok: bool):
    kind = formats.classify(path.name)
    assert kind is not None, path
    hdus = raw_hdus(path)
    headers = {h.get("EXTNAME", "PRIMARY"): h for h, _ in hdus}
    assert [h.get("EXTNAME", "PRIMARY") for h, _ in hdus] == list(formats.expected_hdus(kind)), path.name
    assert hdus[0][0]["SIMPLE"] is True and "EXTNAME" not in hdus[0][0]
    for spec in formats.kind(kind).hdus:
        hdr = headers[spec.extname]
        for key in spec.header_keys:
            assert key.key in hdr, (path.name, spec.extname, key.key)
        if spec.columns is None:
            continue
        assert hdr["XTENSION"] == "BINTABLE" and hdr["EXTNAME"] == spec.extname
        names = [hdr[f"TTYPE{i}"] for i in range(1, hdr["TFIELDS"] + 1)]
        if spec.extname == "FASTSPEC" and lines_subset_ok:
            expected = [c for c in spec.columns if c.name in names]
            # every key column is there; line blocks are whole (18 columns per line)
            assert set(formats.key_columns(kind, "FASTSPEC")) <= set(names)
            fixed = formats.FASTSPEC_V3_FIXED_COLUMNS if kind == "fastspec_v3" \
                else formats.FASTSPEC_V21_FIXED_COLUMNS
            per_line = len(formats.FASTSPEC_LINE_SUFFIXES if kind == "fastspec_v3"
                           else formats.FASTSPEC_V21_LINE_SUFFIXES)
            assert (len(names) - len(fixed) - (24 if kind == "fastspec_v3" else 0)) % per_line == 0
        else:
            expected = list(spec.columns)
        assert names == [c.name for c in expected], (path.name, spec.extname)
        for i, c in enumerate(expected, start=1):
            assert hdr[f"TFORM{i}"].strip() == c.tform, (path.name, c.name)
            assert hdr.get(f"TUNIT{i}") == c.tunit, (path.name, c.name)
            assert hdr.get(f"TZERO{i}") == c.tzero, (path.name, c.name)
    assert path.stat().st_size % 2880 == 0


@pytest.mark.slow
def test_astropy_reads_and_verifies_every_file(sky_v3):
    root, _ = sky_v3
    fastspec = sorted((root / formats.FASTSPEC_V3_DIR).glob("*.fits"))
    # astropy's column machinery is slow on 887 columns: every DESIVAST file, the non-empty
    # FastSpecFit files and one empty one (the raw walker above checks all of them)
    chosen = [p for p in _files(root) if p not in fastspec]
    chosen += [p for p in fastspec if raw_hdus(p)[1][0]["NAXIS2"] > 0]
    chosen += [p for p in fastspec if raw_hdus(p)[1][0]["NAXIS2"] == 0][:1]
    for p in chosen:
        with fits.open(p) as h:
            h.verify("exception")
            for hdu in h[1:]:
                assert len(hdu.data) == hdu.header["NAXIS2"]


def test_desivast_files_match_the_specification(sky_v3):
    root, _ = sky_v3
    paths = sorted((root / formats.DESIVAST_DIR).glob("*.fits"))
    assert [p.name for p in paths] == sorted(formats.DESIVAST_FILES)
    for p in paths:
        _check_file_against_formats(p, lines_subset_ok=False)
    with fits.open(root / formats.DESIVAST_DIR / formats.voidfinder_filename("NGC")) as h:
        assert h["MAXIMALS"].header["VOID"] == len(h["MAXIMALS"].data)
        assert h["HOLES"].header["HOLE"] == len(h["HOLES"].data)
        assert h[0].header["DLIMU"] == pytest.approx(cosmology.comoving_distance(h[0].header["ZLIMU"]))
        assert h[0].header["GALAXY"] == h[0].header["WALLNUM"] + h[0].header["FIELDNUM"]


def test_fastspecfit_v3_files_match_the_specification(sky_v3):
    root, summary = sky_v3
    paths = sorted((root / formats.FASTSPEC_V3_DIR).glob("*.fits"))
    assert [p.name for p in paths] == list(formats.FASTSPEC_V3_FILES)
    for p in paths:
        _check_file_against_formats(p, lines_subset_ok=False)  # tiny writes all 46 lines
        with fits.open(p) as h:
            hdr = h[0].header
            assert (hdr["SPECPROD"], hdr["COADDTYP"], hdr["NSIDE"], hdr["NEST"]) == \
                ("iron", "healpix", 1, True)
            assert any(k.startswith("DEPNAM") for k in hdr) and any(k.startswith("DEPVER") for k in hdr)
    assert sum(summary["files"][f"{formats.FASTSPEC_V3_DIR}/{n}"]
               for n in formats.FASTSPEC_V3_FILES) == summary["rows"]


def test_fastspecfit_rows_are_matched_and_in_their_pixel(sky_v3):
    root, _ = sky_v3
    from desivoids.mock.population import hp1

    for p in sorted((root / formats.FASTSPEC_V3_DIR).glob("*.fits")):
        hp = int(p.stem[-2:])
        m = raw_table(p, "METADATA")
        tid = m["TARGETID"]
        assert np.array_equal(tid, raw_table(p, "SPECPHOT")["TARGETID"])
        assert np.array_equal(tid, raw_table(p, "FASTSPEC")["TARGETID"])
        if len(tid):
            assert np.all(hp1(m["RA"], m["DEC"]) == hp)
    cat = _read_all(root)
    tid = cat[("METADATA", "TARGETID")]
    assert len(np.unique(tid)) == len(tid)
    assert tid.min() > 2.0e15 and tid.max() < 4.5e16


def test_fastspecfit_values_are_physical(sky_v3):
    root, _ = sky_v3
    c = _read_all(root)

    def m(k):
        return c[("METADATA", k)]

    def s(k):
        return c[("SPECPHOT", k)]

    spectype = np.char.strip(m("SPECTYPE").astype(str))
    assert set(spectype) == {"GALAXY", "QSO", "STAR"}
    z = m("Z")
    # stars at z ~ 0 (a few misclassified galaxies aside), quasars up to z ~ 6.4
    assert z[spectype == "QSO"].max() > 5.0 and np.median(abs(z[spectype == "STAR"])) < 0.001
    gal = spectype == "GALAXY"
    assert 0 < z[gal].min() and z[gal].max() <= 0.6
    assert 0.005 < np.mean(m("ZWARN") != 0) < 0.1
    assert np.any(m("DELTACHI2") < 40) and np.median(m("DELTACHI2")) > 100
    assert set(np.char.strip(m("SURVEY").astype(str))) >= {"main"}
    assert np.mean(np.char.strip(m("PROGRAM").astype(str)) == "bright") > 0.95
    assert np.any((m("BGS_TARGET") & formats.BGS_BRIGHT) == 0)
    sfr, logm = s("SFR"), s("LOGMSTAR")
    assert np.mean(sfr[gal] == 0) > 0.05  # exact zeros
    assert len(np.unique(sfr[gal & (sfr > 0)])) < 0.3 * np.sum(gal & (sfr > 0))  # coarse grid: ties
    assert logm.min() == pytest.approx(-12.0) and logm.max() == pytest.approx(15.6)
    assert 8.0 < np.median(logm[gal]) < 11.5
    assert np.any(s("LOGMSTAR_IVAR") == 0) and np.all(s("LOGMSTAR_IVAR") >= 0)
    ur = s("ABSMAG01_SDSS_U") - s("ABSMAG01_SDSS_R")
    assert 0.2 < np.mean(ur[gal] >= 2.22) < 0.8


def test_strings_are_space_padded(sky_v3):
    root, _ = sky_v3
    path = root / formats.FASTSPEC_V3_DIR / formats.fastspec_v3_filename(6)
    with fits.open(path) as h:
        col = h["METADATA"].columns["SPECTYPE"]
        start = sum(np.dtype(formats.tform_to_dtype(c.tform)).itemsize
                    for c in formats.METADATA_V3_COLUMNS[
                        :[c.name for c in formats.METADATA_V3_COLUMNS].index("SPECTYPE")])
        width = h["METADATA"].header["NAXIS1"]
        offset = h["METADATA"]._data_offset
    data = path.read_bytes()
    first = data[offset + start: offset + start + 6]
    assert col.format == "6A"
    assert b"\0" not in first and first.strip() in (b"GALAXY", b"QSO", b"STAR")
    assert width > 0


# --------------------------------------------------------------------------------------------
# DESIVAST consistency
# --------------------------------------------------------------------------------------------


def test_v2_files_are_one_tessellation_pruned_three_ways(sky_v3):
    """One GALZONE; each file its own VOIDS and ZONEVOID (VAST's sortVoids): REVOLVER one zone
    per void above a radius, ZOBOV one void per zone holding every zone, VIDE fewer voids."""
    root, _ = sky_v3
    d = root / formats.DESIVAST_DIR
    for cap in formats.CAPS:
        tabs = {a: fits.open(d / formats.v2_filename(a, cap)) for a in formats.V2_ALGORITHMS}
        try:
            g = {a: np.asarray(tabs[a]["GALZONE"].data) for a in tabs}
            zv = {a: tabs[a]["ZONEVOID"].data for a in tabs}
            ids = {a: tabs[a]["VOIDS"].data["VOID"] for a in tabs}
            assert np.array_equal(g["ZOBOV"], g["REVOLVER"]) and np.array_equal(g["ZOBOV"], g["VIDE"])
            n_zones = len(zv["ZOBOV"])
            for a in tabs:
                assert np.array_equal(zv[a]["ZONE"], np.arange(n_zones)), (cap, a)
                assert np.array_equal(ids[a], np.arange(len(ids[a])))
                for col in ("VOID0", "VOID1"):  # rows of this file's own VOIDS, or -1
                    assert set(zv[a][col]) <= set(ids[a]) | {-1}, (cap, a, col)
                assert np.array_equal(zv[a]["VOID0"] == -1, zv[a]["VOID1"] == -1)
            assert len(ids["ZOBOV"]) == n_zones > len(ids["REVOLVER"]) > 0
            assert n_zones > len(ids["VIDE"]) > 0
            assert np.all(zv["ZOBOV"]["VOID0"] >= 0)                 # every zone in a void
            assert np.any(zv["ZOBOV"]["VOID0"] != zv["ZOBOV"]["VOID1"])  # a hierarchy
            rev = zv["REVOLVER"]
            kept = rev["VOID0"] >= 0
            assert np.array_equal(rev["VOID0"], rev["VOID1"])          # one zone per void
            assert kept.sum() == len(ids["REVOLVER"]) and len(set(rev["VOID0"][kept])) == kept.sum()
            assert np.any(zv["VIDE"]["VOID0"] == -1)
            # three different labellings of the zones
            assert not np.array_equal(rev["VOID0"] >= 0, zv["VIDE"]["VOID0"] >= 0)
            assert not np.array_equal(rev["VOID0"] >= 0, zv["ZOBOV"]["VOID0"] >= 0)
        finally:
            for t in tabs.values():
                t.close()


def test_galzone_targets_are_the_tracer_sample(sky_v3):
    root, _ = sky_v3
    c = _read_all(root)
    meta = {k: c[("METADATA", k)] for k in ("SURVEY", "PROGRAM", "BGS_TARGET", "SPECTYPE", "ZWARN",
                                             "DELTACHI2", "Z")}
    meta["ABSMAG01_SDSS_R"] = c[("SPECPHOT", "ABSMAG01_SDSS_R")]
    sel = truth.select_tracers(meta)
    tid = c[("METADATA", "TARGETID")]
    caps = formats.cap_of_ra(c[("METADATA", "RA")])
    for cap in formats.CAPS:
        with fits.open(root / formats.DESIVAST_DIR / formats.v2_filename("ZOBOV", cap)) as h:
            g = h["GALZONE"].data
            assert set(g["TARGET"]) == set(tid[sel & (caps == cap)])
            # GALZONE X, Y, Z are the comoving positions of those galaxies
            idx = {t: i for i, t in enumerate(tid)}
            rows = np.array([idx[t] for t in g["TARGET"]])
            r = cosmology.comoving_distance(c[("METADATA", "Z")][rows])
            x, y, zz = cosmology.radec_to_xyz(c[("METADATA", "RA")][rows], c[("METADATA", "DEC")][rows], r)
            np.testing.assert_allclose(np.column_stack([g["X"], g["Y"], g["Z"]]),
                                       np.column_stack([x, y, zz]), atol=1e-6)


def test_maximals_are_the_largest_holes_with_vast_ra(sky_v3):
    root, _ = sky_v3
    neg = 0
    for cap in formats.CAPS:
        with fits.open(root / formats.DESIVAST_DIR / formats.voidfinder_filename(cap)) as h:
            mx, ho = h["MAXIMALS"].data, h["HOLES"].data
            for v in mx["VOID"]:
                hv = ho[ho["VOID"] == v]
                k = np.argmax(hv["RADIUS"])
                assert hv["RADIUS"][k] == mx["RADIUS"][v]
                assert (hv["X"][k], hv["Y"][k], hv["Z"][k]) == (mx["X"][v], mx["Y"][v], mx["Z"][v])
            assert np.all(mx["R_EFF"] >= mx["RADIUS"] - 3 * mx["R_EFF_UNCERT"] - 1e-9)
            ra, dec, r = cosmology.xyz_to_radec_r(mx["X"], mx["Y"], mx["Z"])
            np.testing.assert_allclose(mx["RA"] % 360.0, ra, atol=1e-9)
            np.testing.assert_allclose(mx["R"], r)
            assert np.all((mx["RA"] > -90) & (mx["RA"] <= 270))
            assert set(mx["EDGE"]) <= {0, 1, 2}
            neg += int(np.sum(mx["RA"] < 0))
    assert neg > 0  # SGC voids at RA < 90 east of 0 h come out negative, as in VAST


def test_voids_are_underdense(sky_v3):
    root, _ = sky_v3
    t = _truth(root)
    tr = t[t.IS_TRACER]
    frac_gal = np.mean(tr.FLAG_VOIDFINDER == 1)
    # volume fraction of holes inside the footprint, by Monte Carlo
    fps = sky.footprints("tiny")
    vol_in = vol = 0
    for cap in formats.CAPS:
        with fits.open(root / formats.DESIVAST_DIR / formats.voidfinder_filename(cap)) as h:
            ho = h["HOLES"].data
        pts = sky.sample_volume(np.random.default_rng(0), fps[cap], 40_000, 0, sky.DLIMU)
        inside = truth.first_containing_hole(pts, np.column_stack([ho["X"], ho["Y"], ho["Z"]]),
                                             ho["RADIUS"]) >= 0
        vol_in += inside.sum()
        vol += len(pts)
    assert 0 < frac_gal < 0.7 * vol_in / vol


# --------------------------------------------------------------------------------------------
# truth
# --------------------------------------------------------------------------------------------


def _positions(c):
    r = cosmology.comoving_distance(c[("METADATA", "Z")])
    return np.column_stack(cosmology.radec_to_xyz(c[("METADATA", "RA")], c[("METADATA", "DEC")], r))


def _grid(root, cap):
    with fits.open(root / formats.DESIVAST_DIR / formats.v2_filename("ZOBOV", cap)) as h:
        g = h["GALZONE"].data
        ra, dec, _ = cosmology.xyz_to_radec_r(g["X"], g["Y"], g["Z"])
        return truth.footprint_grid(ra, dec, h[0].header["DLIMU"]), h[0].header


# The membership rules of science.md written once more, here, independently of the truth module
# (astropy's spherical coordinates, scipy's convolution, the limits of the files' headers): a
# change of a rule in truth.py (say its radial limit moved by 30 Mpc/h) fails these tests.


def _header(root, cap):
    with fits.open(root / formats.DESIVAST_DIR / formats.v2_filename("ZOBOV", cap)) as h:
        g = h["GALZONE"].data
        return dict(h[0].header), np.column_stack([g["X"], g["Y"], g["Z"]]).astype(float)


def _radec(xyz):
    from astropy.coordinates import cartesian_to_spherical

    r, lat, lon = cartesian_to_spherical(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    return np.asarray(lon.deg) % 360.0, np.asarray(lat.deg), np.asarray(r)


def _mask(root, cap):
    """(grid, header): the footprint rebuilt from GALZONE as science.md describes it."""
    from scipy.ndimage import convolve

    hdr, gxyz = _header(root, cap)
    n = 1 + int(np.radians(1.0) * hdr["DLIMU"] / 10)
    ra, dec, _ = _radec(gxyz)
    grid = np.zeros((360 * n, 180 * n), dtype=int)
    grid[np.trunc(n * ra).astype(int), np.trunc(n * dec).astype(int) + 90 * n] = 1
    cross = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    fill = (grid == 0) & (convolve(grid, cross, mode="constant") >= 3)
    fill[[0, -1], :] = fill[:, [0, -1]] = False
    return (grid == 1) | fill, hdr


def _out(xyz, grid, hdr):
    n = grid.shape[0] // 360
    ra, dec, r = _radec(xyz)
    cell = grid[np.trunc(n * ra).astype(int), np.trunc(n * dec).astype(int) + 90 * n]
    return ~cell | (r == 0) | (r < hdr["DLIML"]) | (r > hdr["DLIMU"])


def _edge(xyz, grid, hdr):
    steps = 10.0 * np.vstack([np.eye(3), -np.eye(3)])
    return np.any([_out(xyz + s, grid, hdr) for s in steps], axis=0)


def _vf_expected(root, c, xyz, caps):
    """VoidFinder flag and void of every FastSpecFit row, by brute force over all holes: inside
    a hole by more than the surface tolerance that truth.json records."""
    tol = json.loads((root / "truth" / "truth.json").read_text())["voidfinder_surface"][
        "surface_tol"]
    flag = np.full(len(xyz), 9)
    void = np.full(len(xyz), -1)
    z = c[("METADATA", "Z")]
    for cap in formats.CAPS:
        grid, hdr = _mask(root, cap)
        sel = np.flatnonzero((caps == cap) & (z > 0) & (z <= hdr["ZLIMU"]))
        with fits.open(root / formats.DESIVAST_DIR / formats.voidfinder_filename(cap)) as h:
            ho = h["HOLES"].data
        hx = np.column_stack([ho["X"], ho["Y"], ho["Z"]])
        inside = np.linalg.norm(xyz[sel][:, None, :] - hx[None], axis=2) \
            < ho["RADIUS"][None] - tol
        hit = inside.any(axis=1)
        out, edge = _out(xyz[sel], grid, hdr), _edge(xyz[sel], grid, hdr)
        flag[sel] = np.where(hit, 1, np.where(out, 9, np.where(edge, 2, 0)))
        void[sel] = np.where(hit, ho["VOID"][np.argmax(inside, axis=1)], -1)
    return flag, void


def test_hole_membership_matches_brute_force(sky_v3):
    root, _ = sky_v3
    c = _read_all(root)
    xyz = _positions(c)
    caps = formats.cap_of_ra(c[("METADATA", "RA")])
    t = _truth(root).set_index("TARGETID").loc[c[("METADATA", "TARGETID")]]
    flag, void = _vf_expected(root, c, xyz, caps)
    assert np.array_equal(t.FLAG_VOIDFINDER.to_numpy(), flag)
    assert np.array_equal(t.VOID_VOIDFINDER.to_numpy(), void)
    for cap in formats.CAPS:  # every flag occurs: the comparison is not vacuous
        assert set(flag[caps == cap]) == {0, 1, 2, 9}, cap
    assert (flag == 1).sum() > 50


def test_v2_membership_matches_brute_force(sky_v3):
    root, _ = sky_v3
    c = _read_all(root)
    xyz = _positions(c)
    caps = formats.cap_of_ra(c[("METADATA", "RA")])
    z = c[("METADATA", "Z")]
    t = _truth(root).set_index("TARGETID").loc[c[("METADATA", "TARGETID")]]
    for cap in formats.CAPS:
        grid, hdr = _mask(root, cap)
        sel = np.flatnonzero((caps == cap) & (z > 0) & (z <= hdr["ZLIMU"]))
        zv = {}
        for alg in formats.V2_ALGORITHMS:
            with fits.open(root / formats.DESIVAST_DIR / formats.v2_filename(alg, cap)) as h:
                g, zv[alg] = h["GALZONE"].data, h["ZONEVOID"].data
        gx = np.column_stack([g["X"], g["Y"], g["Z"]])
        nearest = np.argmin(((xyz[sel][:, None, :] - gx[None]) ** 2).sum(axis=2), axis=1)
        zone = g["ZONE"][nearest]
        out, edge = _out(xyz[sel], grid, hdr), _edge(xyz[sel], grid, hdr)
        rest = np.setdiff1d(np.flatnonzero(caps == cap), sel)  # other range: outside
        flags = {}
        for alg in ("REVOLVER", "VIDE", "ZOBOV"):  # each by its own file's ZONEVOID
            z_v = zv[alg]
            void0 = np.array([z_v["VOID0"][z_v["ZONE"] == z][0] if z >= 0 else -1 for z in zone])
            expect = np.where(out, 9, np.where(void0 != -1, 1, np.where(edge, 2, 0)))
            assert np.array_equal(t[f"FLAG_{alg}"].to_numpy()[sel], expect), (cap, alg)
            assert np.all(t[f"FLAG_{alg}"].to_numpy()[rest] == 9)
            assert np.array_equal(t[f"VOID_{alg}"].to_numpy()[sel], np.where(out, -1, void0))
            flags[alg] = expect
        assert set(flags["REVOLVER"]) == {0, 1, 2, 9}, cap
        assert not np.array_equal(flags["REVOLVER"], flags["VIDE"])
        # a tracer is its own nearest GALZONE galaxy
        is_tr = t.IS_TRACER.to_numpy()[sel]
        assert np.array_equal(g["TARGET"][nearest[is_tr]], c[("METADATA", "TARGETID")][sel][is_tr])


def test_footprint_rebuilt_from_tracers_reproduces_the_footprint(sky_v3):
    root, _ = sky_v3
    fps = sky.footprints("tiny")
    for cap in formats.CAPS:
        grid, _ = _grid(root, cap)
        n = truth.cells_per_degree(sky.DLIMU)
        ra, dec = fps[cap].sample(np.random.default_rng(5), 20_000)
        i, j = np.trunc(n * ra).astype(int), np.trunc(n * dec).astype(int) + 90 * n
        assert grid[i, j].mean() > 0.95, cap
        # and nothing far outside the polygon is marked
        ii, jj = np.nonzero(grid)
        cra, cdec = (ii + 0.5) / n, (jj - 90 * n + 0.5) / n
        near = np.zeros(len(ii), dtype=bool)
        for dra in (-0.5, 0, 0.5):
            for ddec in (-0.5, 0, 0.5):
                near |= fps[cap].contains(cra + dra, cdec + ddec)
        assert near.all(), cap


def test_footprint_grid_rules():
    # a tracer at dec = -0.3 marks the same row as dec = +0.3 (int() truncates toward zero)
    g = truth.footprint_grid([10.2, 10.2], [-0.3, 0.3], 677.0)
    assert g.shape == (720, 360) and g.sum() == 1 and g[20, 180]
    # smoothing fills a hole with 3 of 4 neighbours, from the unsmoothed grid only
    ra = [50.25, 49.75, 50.25]
    dec = [10.25, 10.25, 10.75]  # cells (100,200), (99,200), (100,201); (101,200) empty
    g = truth.footprint_grid(ra + [50.75], dec + [10.75], 677.0)  # add (101,201)
    assert not g[100, 199]  # only 1 neighbour in
    # one pass over the UNSMOOTHED grid: (101,200) is filled (3 of 4 tracer neighbours), but
    # (101,199), with 2 tracer neighbours plus the just-filled (101,200), stays empty
    g2 = truth.footprint_grid([50.25, 51.25, 50.75, 50.25, 51.25], [10.25, 10.25, 10.75, 9.75, 9.75], 677.0)
    assert g2[101, 200] and not g2[101, 199]
    # cell (101,200): neighbours (100,200), (102,200), (101,199), (101,201)
    g3 = truth.footprint_grid([50.25, 51.25, 50.75], [10.25, 10.25, 10.75], 677.0)
    assert g3[101, 200]  # 3 of 4 neighbours in -> filled
    g4 = truth.footprint_grid([50.25, 51.25], [10.25, 10.25], 677.0)
    assert not g4[101, 200]  # 2 of 4: stays empty
    # the outermost row/column is never filled
    g5 = truth.footprint_grid([0.75, 0.25, 0.25], [10.25, 9.75, 10.75], 677.0)
    assert not g5[0, 200]


def test_footprint_grid_equals_the_rule_rebuilt_here(sky_v3):
    root, _ = sky_v3
    for cap in formats.CAPS:
        grid, hdr = _mask(root, cap)
        ra, dec, _ = _radec(_header(root, cap)[1])
        assert np.array_equal(truth.footprint_grid(ra, dec, hdr["DLIMU"]), grid), cap


def test_planted_offset_is_recovered(sky_v3):
    """The planted offset, measured with membership computed here (not the truth's flags) and
    the offset written out here: void minus wall quenched fraction per mass bin, averaged with
    the wall counts as weights."""
    root, _ = sky_v3
    c = _read_all(root)
    tid = c[("METADATA", "TARGETID")]
    t = _truth(root).set_index("TARGETID").loc[tid]
    doc = json.loads((root / "truth" / "truth.json").read_text())
    planted = doc["planted_offset"]["VoidFinder"]
    flag, _ = _vf_expected(root, c, _positions(c), formats.cap_of_ra(c[("METADATA", "RA")]))
    keep = (t.IS_QUALITY & ~t.COMP.isin(["star", "qso"])).to_numpy()
    logm, q, flag = t.LOGMSTAR_TRUE.to_numpy()[keep], t.QUENCHED.to_numpy()[keep], flag[keep]
    num = den = var = 0.0
    bins = doc["parameters"]["mass_bins"]
    for lo, hi in zip(bins[:-1], bins[1:]):
        m = (logm >= lo) & (logm < hi)
        v, w = q[m & (flag == 1)], q[m & (flag == 0)]
        if len(v) < 5 or len(w) < 5:
            continue
        num += (v.mean() - w.mean()) * len(w)
        var += (v.mean() * (1 - v.mean()) / len(v) + w.mean() * (1 - w.mean()) / len(w)) \
            * len(w) ** 2
        den += len(w)
    est, err = num / den, np.sqrt(var) / den
    assert abs(est - planted) < 3 * err, (est, err)
    assert est < 0 and err < 0.06
    # and truth.json records the same realised offset
    rec = doc["realised_offsets"]["quality"]["VoidFinder"]["QUENCHED"]["weighted_offset"]
    assert rec == pytest.approx(est, abs=0.02)


def test_quenched_definitions_mostly_agree(sky_v3):
    root, _ = sky_v3
    t = _truth(root)
    g = t[(t.COMP != "star") & (t.COMP != "qso")]
    for col in ("QUENCHED_SSFR", "QUENCHED_DN4000", "QUENCHED_COLOR"):
        agree = np.mean(g[col] == g.QUENCHED)
        assert 0.85 < agree < 1.0, col


# --------------------------------------------------------------------------------------------
# layouts, checksums, determinism, CLI
# --------------------------------------------------------------------------------------------


def _verify_sumfile(path: Path):
    lines = path.read_text().splitlines()
    assert lines
    for line in lines:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((path.parent / name).read_bytes()).hexdigest() == digest, name
    return [ln.split("  ", 1)[1] for ln in lines]


def test_checksum_files_verify(sky_v3, sky_v21):
    root, _ = sky_v3
    names = _verify_sumfile(root / formats.DESIVAST_CHECKSUM)
    assert sorted(names) == sorted(formats.DESIVAST_FILES)
    names = _verify_sumfile(root / formats.FASTSPEC_V3_CHECKSUM)
    assert sorted(names) == sorted(formats.FASTSPEC_V3_FILES)
    names = _verify_sumfile(sky_v21[0] / formats.FASTSPEC_V21_CHECKSUM)
    assert names == [formats.FASTSPEC_V21_FILENAME]


def test_v21_layout_holds_the_same_galaxies(sky_v3, sky_v21):
    root21, summary = sky_v21
    path = root21 / formats.FASTSPEC_V21_DIR / formats.FASTSPEC_V21_FILENAME
    _check_file_against_formats(path, lines_subset_ok=True)
    assert not (root21 / formats.FASTSPEC_V3_DIR).exists()
    with fits.open(path) as h:
        assert [x.name for x in h] == ["PRIMARY", "FASTSPEC", "METADATA"]
        fs, meta = h["FASTSPEC"].data, h["METADATA"].data
        assert np.array_equal(fs["TARGETID"], meta["TARGETID"])
        assert "TAUV" not in fs.columns.names and "AV" in fs.columns.names
        v21 = dict(zip(fs["TARGETID"], fs["LOGMSTAR"]))
        v21_sfr = dict(zip(fs["TARGETID"], fs["SFR"]))
    c = _read_all(sky_v3[0])
    tid = c[("METADATA", "TARGETID")]
    assert set(tid) == set(v21)
    np.testing.assert_array_equal(np.array([v21[t] for t in tid]), c[("SPECPHOT", "LOGMSTAR")])
    np.testing.assert_array_equal(np.array([v21_sfr[t] for t in tid]), c[("SPECPHOT", "SFR")])
    # the same truth (the layout does not change the sky)
    a, b = _truth(sky_v3[0]), _truth(root21)
    assert a.drop(columns=[]).equals(b)


@pytest.mark.slow
def test_same_seed_same_bytes_other_seed_differs(sky_v3, tmp_path):
    root, _ = sky_v3
    again = tmp_path / "again"
    generate(again, **TINY)
    for rel in (formats.DESIVAST_CHECKSUM, formats.FASTSPEC_V3_CHECKSUM):
        assert (root / rel).read_text() == (again / rel).read_text()
    assert (root / "truth" / "galaxies.parquet").read_bytes() == \
        (again / "truth" / "galaxies.parquet").read_bytes()
    other = tmp_path / "other"
    generate(other, **{**TINY, "seed": TINY["seed"] + 1, "tiles": 0})
    a = (root / formats.DESIVAST_CHECKSUM).read_text().splitlines()
    b = (other / formats.DESIVAST_CHECKSUM).read_text().splitlines()
    assert all(x != y for x, y in zip(a, b))


def test_tiles_are_written_when_the_tile_writer_exists(sky_v3):
    root, summary = sky_v3
    pytest.importorskip("desivoids.mock.tiles", reason="tile writer (desivoids.mock.tiles) not present")
    assert len(summary["tiles"]) == TINY["tiles"]
    tile = summary["tiles"][0]
    found = list((root / formats.TILES_DIR / str(tile["tileid"])).rglob("redrock-*.fits"))
    assert found
    with fits.open(found[0]) as h:
        tids = set(h["REDSHIFTS"].data["TARGETID"])
    assert tids <= set(_read_all(root)[("METADATA", "TARGETID")])


def test_cli(tmp_path, capsys):
    from desivoids.mock.cli import cli_main

    rc = cli_main(["--out", str(tmp_path / "m"), "--scale", "tiny", "--seed", "3", "--tiles", "0",
                   "--fastspec-version", "v2.1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "FastSpecFit rows" in out and "VoidFinder voids" in out
    assert (tmp_path / "m" / formats.FASTSPEC_V21_DIR / formats.FASTSPEC_V21_FILENAME).exists()
    with pytest.raises(SystemExit) as err:  # argparse: an unknown scale is a usage error
        cli_main(["--out", str(tmp_path / "x"), "--scale", "huge"])
    assert err.value.code == 2 and not (tmp_path / "x").exists()


def test_v2_pruning_rules_on_a_chain_of_four_zones():
    """VAST's watershed and sortVoids on a worked example: zones 0-1-2-3 in a chain, core
    volumes 10, 8, 6, 9, links 0-1 at 5, 1-2 at 4, 2-3 at 3 (larger volume: lower density)."""
    from desivoids.mock import desivast

    zcore = np.array([10.0, 8.0, 6.0, 9.0])
    links = (np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([5.0, 4.0, 3.0]))
    records = desivast.watershed(zcore, links)
    # each shallower group flows into the deepest at its link; the last record holds them all
    assert [([z.tolist() for z in lv], vols) for lv, vols in records] == [
        ([[1]], [8.0, 5.0]), ([[2]], [6.0, 4.0]), ([[3]], [9.0, 3.0]),
        ([[0], [1], [2], [3]], [10.0, 5.0, 4.0, 3.0, 0.0])]
    zone_vol = np.array([4000.0, 300.0, 5000.0, 6000.0])  # effective radii 9.8, 4.2, 10.6, 11.3

    def never(zones, v, r):  # no central-density cut here
        return False

    zobov = desivast.prune("ZOBOV", records, zone_vol, 10.0, 4.5, never)
    assert [z.tolist() for z in zobov] == [[1], [2], [3], [0, 1, 2, 3]]  # one void per zone
    revolver = desivast.prune("REVOLVER", records, zone_vol, 10.0, 4.5, never)
    assert [z.tolist() for z in revolver] == [[2], [3]]  # zones above the minimum radius
    # VIDE: the core, then zones linked while the link volume stays >= 4.5 (zone 1 at 5, not
    # zone 2 at 4); then the radius cut drops zone 1 alone
    vide = desivast.prune("VIDE", records, zone_vol, 10.0, 4.5, never)
    assert [z.tolist() for z in vide] == [[2], [3], [0, 1]]
    assert desivast.prune("VIDE", records, zone_vol, 10.0, 4.5, lambda *a: True) == []
    # ZONEVOID: VOID0 the smallest kept void holding the zone, VOID1 the largest, -1 for none
    assert [a.tolist() for a in desivast.zonevoid_of(zobov, 4)] == [[3, 0, 1, 2], [3, 3, 3, 3]]
    assert [a.tolist() for a in desivast.zonevoid_of(revolver, 4)] == [[-1, -1, 0, 1],
                                                                        [-1, -1, 0, 1]]
    assert [a.tolist() for a in desivast.zonevoid_of(vide, 4)] == [[2, 2, 0, 1], [2, 2, 0, 1]]


def test_every_hole_touches_a_tracer_as_voidfinders_do(sky_v3):
    """VoidFinder grows each hole until it touches wall galaxies: every mock hole has a tracer
    on its surface (to rounding), so the mock has surface galaxies."""
    root, _ = sky_v3
    c = _read_all(root)
    xyz = _positions(c)
    t = _truth(root).set_index("TARGETID").loc[c[("METADATA", "TARGETID")]]
    tracer = xyz[t.IS_TRACER.to_numpy()]
    for cap in formats.CAPS:
        with fits.open(root / formats.DESIVAST_DIR / formats.voidfinder_filename(cap)) as h:
            ho = h["HOLES"].data
            assert h[0].header["FIELDNUM"] > 0
        d = np.linalg.norm(tracer[:, None, :] - np.column_stack([ho["X"], ho["Y"], ho["Z"]])[None],
                           axis=2)
        gap = np.min(np.abs(d - ho["RADIUS"][None]), axis=0)
        assert np.all(gap < 1e-6), (cap, gap.max())
    assert t.SURFACE_VOIDFINDER[t.IS_TRACER].sum() > 0
