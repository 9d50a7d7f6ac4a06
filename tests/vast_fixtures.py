"""The VAST-written SDSS DR7 files of ../shared/fixtures/vast-sdss-dr7 as a DESI source folder.

``write_source(root)`` lays the fixture's void catalogues out as DESIVAST names them (NGC only:
the DR7 sample has no southern cap), with the VoidFinder file that has no R_EFF, and writes
FastSpecFit v3.0 files for the same 120,606 galaxies with astropy (TARGETID, Z, RA, Dec from
``vollim_dr7_tid.fits``; the tracer-selection columns set so that every galaxy passes it; the
physical quantities drawn from a seeded generator), one file per nside-1 nested HEALPix pixel,
each folder with its sha256sum list. Nothing here is written by desivoids.mock.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from desivoids import formats, paths

FIXTURE = paths.ROOT.parent / "shared" / "fixtures" / "vast-sdss-dr7"
#: fixture file -> the DESIVAST name it is given
DESIVAST_NAMES = {
    "DR7_VoidFinder_Output.fits": formats.voidfinder_filename("NGC"),
    **{f"DR7_V2_{a}_Output.fits": formats.v2_filename(a, "NGC") for a in formats.V2_ALGORITHMS},
}


def fixture_dir() -> Path:
    """The fixture folder, or a clean skip where ../shared is absent."""
    if not (FIXTURE / "vollim_dr7_tid.fits").is_file():
        pytest.skip(f"VAST DR7 fixture not present at {FIXTURE}")
    return FIXTURE


def dr7_galaxies() -> dict[str, np.ndarray]:
    with fits.open(fixture_dir() / "vollim_dr7_tid.fits") as h:
        d = h[1].data
        return {"TARGETID": np.asarray(d["TARGETID"], np.int64),
                "RA": np.asarray(d["ra"], np.float64), "DEC": np.asarray(d["dec"], np.float64),
                "Z": np.asarray(d["z"], np.float64)}


def _healpix_nside1(ra, dec) -> np.ndarray:
    import astropy.units as u
    from astropy_healpix import HEALPix

    return np.asarray(HEALPix(1, "nested").lonlat_to_healpix(ra * u.deg, dec * u.deg), np.int64)


def _fastspec_hdus(g: dict[str, np.ndarray], rows: np.ndarray, hp: int, rng) -> fits.HDUList:
    n = len(rows)
    meta = [fits.Column("TARGETID", "K", array=g["TARGETID"][rows]),
            fits.Column("SURVEY", "4A", array=np.array(["main"] * n)),
            fits.Column("PROGRAM", "6A", array=np.array(["bright"] * n)),
            fits.Column("HEALPIX", "J", array=np.full(n, hp, np.int32)),
            fits.Column("RA", "D", array=g["RA"][rows]),
            fits.Column("DEC", "D", array=g["DEC"][rows]),
            fits.Column("Z", "D", array=g["Z"][rows]),
            fits.Column("ZWARN", "B", array=np.zeros(n, np.int8), bzero=-128),
            fits.Column("DELTACHI2", "D", array=rng.uniform(50, 5000, n)),
            fits.Column("SPECTYPE", "6A", array=np.array(["GALAXY"] * n)),
            fits.Column("BGS_TARGET", "K", array=np.full(n, formats.BGS_BRIGHT, np.int64))]
    logm = rng.normal(10.4, 0.5, n)
    ssfr = np.where(rng.random(n) < 0.4, rng.normal(-12, 0.4, n), rng.normal(-10, 0.3, n))
    phys = [fits.Column("TARGETID", "K", array=g["TARGETID"][rows]),
            fits.Column("LOGMSTAR", "E", array=logm.astype(np.float32)),
            fits.Column("SFR", "E", array=(10 ** (logm + ssfr)).astype(np.float32)),
            fits.Column("DN4000", "E", array=rng.uniform(1.1, 2.0, n).astype(np.float32)),
            fits.Column("ABSMAG01_SDSS_U", "E", array=rng.uniform(-20, -17, n).astype(np.float32)),
            fits.Column("ABSMAG01_SDSS_R", "E", array=rng.uniform(-23, -20, n).astype(np.float32))]
    spec = [fits.Column("TARGETID", "K", array=g["TARGETID"][rows]),
            fits.Column("HALPHA_FLUX", "E", array=rng.uniform(0, 50, n).astype(np.float32))]
    prim = fits.PrimaryHDU()
    prim.header.update({"SPECPROD": "iron", "COADDTYP": "healpix", "NSIDE": 1, "NEST": True})
    return fits.HDUList([prim, fits.BinTableHDU.from_columns(meta, name="METADATA"),
                         fits.BinTableHDU.from_columns(phys, name="SPECPHOT"),
                         fits.BinTableHDU.from_columns(spec, name="FASTSPEC")])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_sums(directory: Path) -> Path:
    """The folder's sha256sum list, named as DESI names it, of every FITS file in it."""
    reldir = directory.as_posix().split("/dr1/", 1)[1]
    out = directory / formats.checksum_filename("dr1/" + reldir)
    out.write_text("".join(f"{_sha256(p)}  {p.name}\n" for p in sorted(directory.glob("*.fits"))))
    return out


def write_source(root: Path, seed: int = 7, void_files: dict[str, Path] | None = None) -> Path:
    """A source folder in DESI's relative layout below ``root`` (see the module docstring);
    ``void_files`` {DESIVAST name: path} replaces fixture files (e.g. rewritten copies)."""
    src = fixture_dir()
    vast = root / formats.DESIVAST_DIR
    vast.mkdir(parents=True, exist_ok=True)
    for name, desi in DESIVAST_NAMES.items():
        (vast / desi).symlink_to((void_files or {}).get(desi, src / name))
    write_sums(vast)
    g = dr7_galaxies()
    hp = _healpix_nside1(g["RA"], g["DEC"])
    fast = root / formats.FASTSPEC_V3_DIR
    fast.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for p in np.unique(hp):
        _fastspec_hdus(g, np.flatnonzero(hp == p), int(p), rng).writeto(
            fast / formats.fastspec_v3_filename(int(p)))
    write_sums(fast)
    return root
