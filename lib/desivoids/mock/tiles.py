"""Mock tile spectra: coadd + redrock files of one petal in the format of DESI's iron files.

The layout reproduces the real one-target iron files in shared/fixtures/desi-iron-tile (tile
80613, petal 4): the same HDUs by EXTNAME in the same order, the same columns with the same
TFORMs, TNULLs (redrock tables only) and dimensions, the same image shapes and dtypes, the same
header keys in the same order (including DEPNAMnn/DEPVERnn, INFILnnn, RRVER, TEMNAMnn/TEMVERnn,
ENCODING, LONGSTRN, BUNIT) and CHECKSUM/DATASUM on every coadd HDU but none on redrock HDUs.
The wavelength grids are DESI's fixed 0.8 A grids. The tests compare a mock pair with the real
pair card by card, so a reader cannot tell them apart by structure.

The data are plausible, not physical: a smooth continuum with an emission line at the target's
redshift, Gaussian noise consistent with IVAR, and a Gaussian resolution kernel.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..checksums import write_sumfile
from ..formats import SPECPROD, TILES_DIR

#: coadd and redrock FIBERMAP columns (NAME:TFORM), in file order
FIBERMAP = (
    "TARGETID:K PETAL_LOC:I DEVICE_LOC:J LOCATION:K FIBER:J COADD_FIBERSTATUS:J TARGET_RA:D "
    "TARGET_DEC:D PMRA:E PMDEC:E REF_EPOCH:E LAMBDA_REF:E FA_TARGET:K FA_TYPE:B OBJTYPE:3A "
    "FIBERASSIGN_X:E FIBERASSIGN_Y:E PRIORITY:J SUBPRIORITY:D OBSCONDITIONS:J RELEASE:I BRICKNAME:8A "
    "BRICKID:J BRICK_OBJID:J MORPHTYPE:4A EBV:E FLUX_G:E FLUX_R:E FLUX_Z:E FLUX_W1:E FLUX_W2:E "
    "FLUX_IVAR_G:E FLUX_IVAR_R:E FLUX_IVAR_Z:E FLUX_IVAR_W1:E FLUX_IVAR_W2:E FIBERFLUX_G:E "
    "FIBERFLUX_R:E FIBERFLUX_Z:E FIBERTOTFLUX_G:E FIBERTOTFLUX_R:E FIBERTOTFLUX_Z:E MASKBITS:I SERSIC:E "
    "SHAPE_R:E SHAPE_E1:E SHAPE_E2:E REF_ID:K REF_CAT:2A GAIA_PHOT_G_MEAN_MAG:E GAIA_PHOT_BP_MEAN_MAG:E "
    "GAIA_PHOT_RP_MEAN_MAG:E PARALLAX:E PHOTSYS:1A PRIORITY_INIT:K NUMOBS_INIT:K SV1_DESI_TARGET:K "
    "SV1_BGS_TARGET:K SV1_MWS_TARGET:K SV1_SCND_TARGET:K DESI_TARGET:K BGS_TARGET:K MWS_TARGET:K "
    "PLATE_RA:D PLATE_DEC:D TILEID:J COADD_NUMEXP:I COADD_EXPTIME:E COADD_NUMNIGHT:I COADD_NUMTILE:I "
    "MEAN_DELTA_X:E RMS_DELTA_X:E MEAN_DELTA_Y:E RMS_DELTA_Y:E MEAN_FIBER_RA:D STD_FIBER_RA:E "
    "MEAN_FIBER_DEC:D STD_FIBER_DEC:E MEAN_PSF_TO_FIBER_SPECFLUX:E MEAN_FIBER_X:E MEAN_FIBER_Y:E"
)
EXP_FIBERMAP = (
    "TARGETID:K PRIORITY:J SUBPRIORITY:D NIGHT:J EXPID:J MJD:D TILEID:J EXPTIME:D PETAL_LOC:I "
    "DEVICE_LOC:J LOCATION:K FIBER:J FIBERSTATUS:J FIBERASSIGN_X:E FIBERASSIGN_Y:E LAMBDA_REF:E "
    "PLATE_RA:D PLATE_DEC:D NUM_ITER:K FIBER_X:D FIBER_Y:D DELTA_X:D DELTA_Y:D FIBER_RA:D FIBER_DEC:D "
    "PSF_TO_FIBER_SPECFLUX:D"
)
#: REDSHIFTS columns: (name, TFORM, TNULL, TDIM)
REDSHIFTS = (("TARGETID", "K", 999999, None), ("Z", "D", None, None), ("ZERR", "D", None, None),
             ("ZWARN", "K", 999999, None), ("CHI2", "D", None, None), ("COEFF", "10D", None, "(10)"),
             ("NPIXELS", "K", 999999, None), ("SPECTYPE", "6A", None, None), ("SUBTYPE", "20A", None, None),
             ("NCOEFF", "K", 999999, None), ("DELTACHI2", "D", None, None))
#: TNULL of the redrock FIBERMAP integer columns (the coadd FIBERMAP carries none); 16959 is
#: 999999 truncated to 16 bits, as the real writer left it
REDROCK_FIBERMAP_TNULL = {
    "TARGETID": 999999, "PETAL_LOC": 16959, "DEVICE_LOC": 999999, "LOCATION": 999999, "FIBER": 999999,
    "COADD_FIBERSTATUS": 999999, "FA_TARGET": 999999, "FA_TYPE": 63, "PRIORITY": 999999,
    "OBSCONDITIONS": 999999, "RELEASE": 16959, "BRICKID": 999999, "BRICK_OBJID": 999999, "MASKBITS": 16959,
    "REF_ID": 999999, "PRIORITY_INIT": 999999, "NUMOBS_INIT": 999999, "SV1_DESI_TARGET": 999999,
    "SV1_BGS_TARGET": 999999, "SV1_MWS_TARGET": 999999, "SV1_SCND_TARGET": 999999, "DESI_TARGET": 999999,
    "BGS_TARGET": 999999, "MWS_TARGET": 999999, "TILEID": 999999, "COADD_NUMEXP": 16959,
    "COADD_NUMNIGHT": 16959, "COADD_NUMTILE": 16959}
CAMERAS = ("B", "R", "Z")
#: DESI's fixed coadd wavelength grids: start, number of pixels, step 0.8 A
WAVE = {"B": (3600.0, 2751), "R": (5760.0, 2326), "Z": (7520.0, 2881)}
NDIAG = 11
TSNR2_TRACERS = ("GPBDARK", "ELG", "GPBBRIGHT", "LYA", "BGS", "GPBBACKUP", "QSO", "LRG")
TSNR2 = tuple(f"TSNR2_{t}_{c}" for c in CAMERAS for t in TSNR2_TRACERS) + tuple(f"TSNR2_{t}" for t in TSNR2_TRACERS)
SCORES = tuple(f"{q}_{c}" for c in CAMERAS for q in ("INTEG_COADD_FLUX", "MEDIAN_COADD_FLUX",
                                                      "MEDIAN_COADD_SNR")) + TSNR2
FLUX_UNIT = "10**-17 erg/(s cm2 Angstrom)"
IVAR_UNIT = "10**+34 (s2 cm4 Angstrom2) / erg2"
DEPS = (("python", "3.10.8"), ("numpy", "1.22.4"), ("scipy", "1.8.1"), ("astropy", "5.2.1"), ("yaml", "6.0"),
        ("matplotlib", "3.6.2"), ("fitsio", "1.1.8"), ("mpi4py", "3.1.4"), ("healpy", "1.16.1"),
        ("desiutil", "3.2.6"), ("desispec", "0.56.5"), ("desitarget", "2.6.0"), ("desimodel", "0.18.0"),
        ("speclite", "0.16"), ("redrock", "0.17.0"), ("DESI_ROOT", "/global/cfs/cdirs/desi"),
        ("DESI_SPECTRO_DATA", "/global/cfs/cdirs/desi/spectro/data"),
        ("DESI_SPECTRO_REDUX", "/global/cfs/cdirs/desi/spectro/redux"), ("SPECPROD", SPECPROD),
        ("DESI_SPECTRO_CALIB", "/global/cfs/cdirs/desi/spectro/desi_spectro_calib/0.4.0"),
        ("DESI_BASIS_TEMPLATES", "/global/cfs/cdirs/desi/spectro/templates/basis_templates/v3.2"),
        ("DESI_TARGET", "/global/cfs/cdirs/desi/target"),
        ("DESIMODEL", "/global/common/software/desi/perlmutter/desiconda/20230111-2.1.0/code/desimodel/0.18.0"))
RR_TEMPLATES = (("GALAXY", "2.6"), ("QSO:::HIZ", "1.0"), ("QSO:::LOZ", "1.0"), ("STAR:::A", "unknown"),
                ("STAR:::B", "unknown"), ("STAR:::CV", "unknown"), ("STAR:::F", "unknown"),
                ("STAR:::G", "unknown"), ("STAR:::K", "unknown"), ("STAR:::M", "unknown"))
RR_TEMPLATE_DIR = "/global/common/software/desi/perlmutter/desiconda/20230111-2.1.0/code/redrock-templates/0.8"
CHECKSUM_STAMP = "2023-02-08T13:32:14"  # the stamp of the real files: mock bytes do not depend on the clock
REQUIRED_TARGET_COLUMNS = ("TARGETID", "TARGET_RA", "TARGET_DEC", "Z", "SPECTYPE", "ZWARN", "DELTACHI2")


def _spec(s: str) -> list[tuple[str, str]]:
    return [tuple(item.split(":")) for item in s.split()]


def wavelength(camera: str) -> np.ndarray:
    """DESI's coadd wavelength grid of a camera (bit-identical to the real files)."""
    w0, n = WAVE[camera]
    return np.arange(w0, w0 + 0.8 * n - 0.4, 0.8)


def tile_paths(out_root: str | Path, tileid: int, petal: int, night: int) -> tuple[Path, Path]:
    d = Path(out_root) / TILES_DIR / str(int(tileid)) / str(int(night))
    return d / f"coadd-{petal}-{tileid}-thru{night}.fits", d / f"redrock-{petal}-{tileid}-thru{night}.fits"


def _column_dtype(tform: str):
    from desivoids.formats import tform_to_dtype

    return np.dtype(tform_to_dtype(tform))


def _table_hdu(name: str, spec: list[tuple[str, str]], data: Mapping[str, np.ndarray], n: int,
               tnull: Mapping[str, int] | None = None, dims: Mapping[str, str] | None = None,
               cards: tuple[tuple[str, object], ...] = ()):
    """A binary table whose header ends, after the column cards, with ``cards`` in order
    (EXTNAME where the real writer put it, with no comment, as in the real files)."""
    from astropy.io import fits

    cols = []
    for cname, tform in spec:
        dt = _column_dtype(tform)
        shape = (n,) + dt.shape
        if cname in data:
            arr = np.asarray(data[cname])
            if dt.base.kind == "S":
                arr = np.char.encode(np.asarray(arr, dtype=str), "ascii") if arr.dtype.kind == "U" else arr
                arr = arr.astype(dt.base)
            else:
                arr = arr.astype(dt.base.newbyteorder("=")).reshape(shape)
        else:
            arr = np.zeros(shape, dtype=dt.base if dt.base.kind == "S" else dt.base.newbyteorder("="))
        cols.append(fits.Column(name=cname, format=tform, array=arr,
                                null=(tnull or {}).get(cname), dim=(dims or {}).get(cname)))
    hdu = fits.BinTableHDU.from_columns(cols)
    if not any(k == "EXTNAME" for k, _ in cards):
        cards = (("EXTNAME", name),) + tuple(cards)
    for key, value in cards:
        hdu.header[key] = value
    return hdu


def _targets(targets) -> dict[str, np.ndarray]:
    """Columns of ``targets`` (astropy Table, pandas DataFrame, dict of arrays, numpy record array)."""
    if hasattr(targets, "columns") and hasattr(targets, "to_dict") and not hasattr(targets, "colnames"):
        cols = {c: np.asarray(targets[c]) for c in targets.columns}  # pandas
    elif hasattr(targets, "colnames"):
        cols = {c: np.asarray(targets[c]) for c in targets.colnames}  # astropy
    elif hasattr(targets, "dtype") and targets.dtype.names:
        cols = {c: np.asarray(targets[c]) for c in targets.dtype.names}
    else:
        cols = {c: np.asarray(v) for c, v in dict(targets).items()}
    missing = [c for c in REQUIRED_TARGET_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"write_tile_pair: targets lack columns {missing}; need {list(REQUIRED_TARGET_COLUMNS)}")
    n = {len(v) for v in cols.values()}
    if len(n) != 1:
        raise ValueError(f"write_tile_pair: target columns have different lengths {sorted(n)}")
    return cols


#: rest-frame emission lines drawn into the mock spectra (Angstrom, relative strength)
LINES = ((3727.4, 1.2), (4862.7, 0.5), (5008.2, 0.8), (6564.6, 1.5), (6585.3, 0.5))


def _spectra(z: np.ndarray, rng: np.random.Generator, flux_r: np.ndarray):
    """Per camera: flux, ivar, mask, resolution arrays for n targets: a red continuum with a
    4000 A break and emission lines at the target's redshift, noise drawn from IVAR."""
    n = len(z)
    out = {}
    amp = np.clip(flux_r / 4.0, 0.2, 50.0)[:, None]
    x = np.arange(NDIAG) - NDIAG // 2
    kernel = np.exp(-0.5 * (x / 1.2) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    for cam in CAMERAS:
        w = wavelength(cam)
        rest = w[None, :] / (1 + z[:, None])
        cont = amp * (w[None, :] / 6000.0) ** 0.5 * np.where(rest < 4000.0, 0.6, 1.0)
        line = sum(strength * 2.0 * amp * np.exp(-0.5 * ((rest - lam) / 2.5) ** 2) for lam, strength in LINES)
        ivar = (rng.uniform(8.0, 40.0, size=(n, 1)) * np.ones((1, w.size))).astype(np.float32)
        flux = (cont + line + rng.standard_normal((n, w.size)) / np.sqrt(ivar)).astype(np.float32)
        mask = np.zeros((n, w.size), dtype=np.int32)
        bad = rng.random((n, w.size)) < 0.002
        mask[bad] = 1
        ivar[bad] = 0.0
        res = np.broadcast_to(kernel[None, :, None], (n, NDIAG, w.size)).astype(np.float32)
        out[cam] = (flux, ivar, mask, res)
    return out


def write_tile_pair(out_root: str | Path, tileid: int, petal: int, night: int, targets,
                    rng: np.random.Generator, *, nexp: int = 3, sumfile: bool = True) -> tuple[Path, Path]:
    """Write ``coadd-PETAL-TILEID-thruNIGHT.fits`` and ``redrock-...`` below ``out_root`` in DESI's
    relative layout (``dr1/spectro/redux/iron/tiles/cumulative/TILEID/NIGHT/``).

    ``targets`` needs TARGETID, TARGET_RA, TARGET_DEC, Z, SPECTYPE, ZWARN, DELTACHI2; any other
    column named like a FIBERMAP or REDSHIFTS column (e.g. BGS_TARGET, FLUX_R, ZERR, SUBTYPE) is
    written as given. With ``sumfile`` the directory's checksum list
    (``redux_iron_tiles_cumulative_TILEID_NIGHT.sha256sum``) is rewritten to cover its files.
    """
    from astropy.io import fits

    tileid, petal, night = int(tileid), int(petal), int(night)
    if not 0 <= petal <= 9:
        raise ValueError(f"petal {petal}: DESI petals are 0..9")
    t = _targets(targets)
    n = len(t["TARGETID"])
    coadd_path, redrock_path = tile_paths(out_root, tileid, petal, night)
    coadd_path.parent.mkdir(parents=True, exist_ok=True)

    ra = t["TARGET_RA"].astype(float)
    dec = t["TARGET_DEC"].astype(float)
    z = t["Z"].astype(float)
    device = np.arange(n) + 100
    fm = {
        "PETAL_LOC": np.full(n, petal), "DEVICE_LOC": device, "LOCATION": petal * 1000 + device,
        "FIBER": petal * 500 + np.arange(n), "REF_EPOCH": np.full(n, 2015.5), "LAMBDA_REF": np.full(n, 5400.0),
        "FA_TARGET": np.full(n, 1 << 60), "FA_TYPE": np.ones(n), "OBJTYPE": np.full(n, "TGT"),
        "FIBERASSIGN_X": rng.uniform(-400, 400, n), "FIBERASSIGN_Y": rng.uniform(-400, 400, n),
        "PRIORITY": np.full(n, 2000), "SUBPRIORITY": rng.random(n), "OBSCONDITIONS": np.full(n, 4),
        "RELEASE": np.full(n, 9011),
        "BRICKNAME": np.full(n, f"{int(ra.mean() * 10) % 3600:04d}p{int(abs(dec.mean()) * 10):03d}"),
        "BRICKID": rng.integers(1, 662174, n), "BRICK_OBJID": rng.integers(0, 5000, n),
        "MORPHTYPE": rng.choice(["REX", "EXP", "DEV", "SER"], n), "EBV": rng.uniform(0.01, 0.1, n),
        "FLUX_G": rng.lognormal(1.0, 0.6, n), "FLUX_R": rng.lognormal(1.6, 0.6, n),
        "FLUX_Z": rng.lognormal(2.0, 0.6, n), "FLUX_W1": rng.lognormal(1.8, 0.6, n),
        "FLUX_W2": rng.lognormal(1.6, 0.6, n), "FLUX_IVAR_G": rng.uniform(100, 600, n),
        "FLUX_IVAR_R": rng.uniform(50, 200, n), "FLUX_IVAR_Z": rng.uniform(20, 60, n),
        "FLUX_IVAR_W1": rng.uniform(1, 5, n), "FLUX_IVAR_W2": rng.uniform(0.5, 1.5, n),
        "SERSIC": np.ones(n), "SHAPE_R": rng.uniform(0.3, 2.0, n), "PHOTSYS": np.where(dec >= 32.375, "N", "S"),
        "PRIORITY_INIT": np.full(n, 2000), "NUMOBS_INIT": np.ones(n), "DESI_TARGET": np.full(n, 1 << 60),
        "BGS_TARGET": np.full(n, 2), "PLATE_RA": ra, "PLATE_DEC": dec, "TILEID": np.full(n, tileid),
        "COADD_NUMEXP": np.full(n, nexp), "COADD_EXPTIME": np.full(n, 300.0 * nexp), "COADD_NUMNIGHT": np.ones(n),
        "COADD_NUMTILE": np.ones(n), "MEAN_FIBER_RA": ra, "MEAN_FIBER_DEC": dec,
        "MEAN_PSF_TO_FIBER_SPECFLUX": np.full(n, 0.78),
    }
    for band in "GRZ":
        fm[f"FIBERFLUX_{band}"] = 0.6 * fm[f"FLUX_{band}"]
        fm[f"FIBERTOTFLUX_{band}"] = 0.6 * fm[f"FLUX_{band}"]
    fm.update({k: v for k, v in t.items() if k in dict(_spec(FIBERMAP))})

    exp_ids = 100000 + tileid % 1000 * 10 + np.arange(nexp)
    exp = {
        "TARGETID": np.repeat(fm["TARGETID"], nexp), "PRIORITY": np.repeat(fm["PRIORITY"], nexp),
        "SUBPRIORITY": np.repeat(fm["SUBPRIORITY"], nexp), "NIGHT": np.full(n * nexp, night),
        "EXPID": np.tile(exp_ids, n), "MJD": np.tile(59300.0 + np.arange(nexp) * 0.01, n),
        "TILEID": np.full(n * nexp, tileid), "EXPTIME": np.full(n * nexp, 300.0),
        "PETAL_LOC": np.full(n * nexp, petal), "DEVICE_LOC": np.repeat(device, nexp),
        "LOCATION": np.repeat(fm["LOCATION"], nexp), "FIBER": np.repeat(fm["FIBER"], nexp),
        "FIBERASSIGN_X": np.repeat(fm["FIBERASSIGN_X"], nexp), "FIBERASSIGN_Y": np.repeat(fm["FIBERASSIGN_Y"], nexp),
        "LAMBDA_REF": np.full(n * nexp, 5400.0), "PLATE_RA": np.repeat(ra, nexp), "PLATE_DEC": np.repeat(dec, nexp),
        "NUM_ITER": np.full(n * nexp, 2), "FIBER_X": np.repeat(fm["FIBERASSIGN_X"], nexp),
        "FIBER_Y": np.repeat(fm["FIBERASSIGN_Y"], nexp), "FIBER_RA": np.repeat(ra, nexp),
        "FIBER_DEC": np.repeat(dec, nexp), "PSF_TO_FIBER_SPECFLUX": np.full(n * nexp, 0.78),
    }
    spectra = _spectra(z, rng, np.asarray(fm["FLUX_R"], dtype=float))
    tsnr = {c: rng.uniform(0, 1000, n) for c in TSNR2}
    scores = dict(tsnr)
    for cam in CAMERAS:
        flux, ivar, _, _ = spectra[cam]
        scores[f"INTEG_COADD_FLUX_{cam}"] = flux.sum(axis=1) * 0.8
        scores[f"MEDIAN_COADD_FLUX_{cam}"] = np.median(flux, axis=1)
        scores[f"MEDIAN_COADD_SNR_{cam}"] = np.median(flux * np.sqrt(ivar), axis=1)

    # ---------------------------------------------------------------- coadd
    prim = fits.PrimaryHDU()
    h = prim.header
    cams_order = ("r", "z", "b")
    k = 0
    for e in exp_ids:
        for cam in cams_order:
            h[f"INFIL{k:03d}"] = f"SPECPROD/exposures/{night}/{e:08d}/cframe-{cam}{petal}-{e:08d}.fits.gz"
            k += 1
    for key, value in (("SPGRP", "cumulative"), ("SPGRPVAL", night), ("NIGHT", night), ("TILEID", tileid),
                       ("SPECTRO", petal), ("PETAL", petal), ("FIBERMIN", petal * 500), ("LONGSTRN", "OGIP 1.0")):
        h[key] = value
    for i, (name, ver) in enumerate(DEPS):
        h[f"DEPNAM{i:02d}"] = name
        h[f"DEPVER{i:02d}"] = ver
    hdus = [prim]
    fm_deps = [d for d in DEPS if d[0] != "mpi4py"]
    hdus.append(_table_hdu("FIBERMAP", _spec(FIBERMAP), fm, n, cards=(
        ("ENCODING", "ascii"), ("EXTNAME", "FIBERMAP"), ("LONGSTRN", "OGIP 1.0"),
        *((f"DEP{w}{i:02d}", v) for i, d in enumerate(fm_deps) for w, v in zip(("NAM", "VER"), d)))))
    hdus.append(_table_hdu("EXP_FIBERMAP", _spec(EXP_FIBERMAP), exp, n * nexp,
                           cards=(("ENCODING", "ascii"), ("EXTNAME", "EXP_FIBERMAP"))))
    for cam in CAMERAS:
        flux, ivar, mask, res = spectra[cam]
        for what, arr, unit in (("WAVELENGTH", wavelength(cam), "Angstrom"), ("FLUX", flux, FLUX_UNIT),
                                ("IVAR", ivar, IVAR_UNIT), ("MASK", mask, None), ("RESOLUTION", res, None)):
            img = fits.ImageHDU(arr, name=f"{cam}_{what}")
            if unit:
                img.header["BUNIT"] = unit
            hdus.append(img)
    hdus.append(_table_hdu("SCORES", [("TARGETID", "K")] + [(c, "E") for c in SCORES],
                           {"TARGETID": fm["TARGETID"], **scores}, n,
                           cards=(("ENCODING", "ascii"), ("EXTNAME", "SCORES"))))
    for hdu in hdus:  # DESI's coadds carry CHECKSUM/DATASUM; a fixed stamp keeps the bytes reproducible
        hdu.add_datasum(when=f"data unit checksum updated {CHECKSUM_STAMP}")
        hdu.add_checksum(when=f"HDU checksum updated {CHECKSUM_STAMP}", override_datasum=True)
    fits.HDUList(hdus).writeto(coadd_path, overwrite=True)

    # ---------------------------------------------------------------- redrock
    spectype = np.char.upper(np.asarray(t["SPECTYPE"], dtype=str))
    ncoeff = np.where(spectype == "QSO", 4, np.where(spectype == "STAR", 5, 10))
    rr = {
        "TARGETID": t["TARGETID"], "Z": z, "ZERR": t.get("ZERR", 1e-5 * (1 + z) * rng.uniform(0.5, 2.0, n)),
        "ZWARN": t["ZWARN"], "CHI2": t.get("CHI2", rng.uniform(7000, 9000, n)),
        "COEFF": np.where(np.arange(10)[None, :] < ncoeff[:, None], rng.normal(0, 300, (n, 10)), 0.0),
        "NPIXELS": np.full(n, sum(WAVE[c][1] for c in CAMERAS)), "SPECTYPE": spectype,
        "SUBTYPE": t.get("SUBTYPE", np.full(n, "")), "NCOEFF": ncoeff, "DELTACHI2": t["DELTACHI2"],
    }
    prim = fits.PrimaryHDU()
    h = prim.header
    h["LONGSTRN"] = "OGIP 1.0"
    h["RRVER"] = ("0.17.0", "Redrock version")
    for i, (name, ver) in enumerate(RR_TEMPLATES):
        h[f"TEMNAM{i:02d}"] = name
        h[f"TEMVER{i:02d}"] = ver
    deps = [d for d in DEPS if d[0] != "mpi4py"] + [("RR_TEMPLATE_DIR", RR_TEMPLATE_DIR)]
    for i, (name, ver) in enumerate(deps):
        h[f"DEPNAM{i:02d}"] = name
        h[f"DEPVER{i:02d}"] = ver
    for key, value in (("SPGRP", "cumulative"), ("SPGRPVAL", night), ("TILEID", tileid), ("SPECTRO", petal),
                       ("PETAL", petal), ("NIGHT", night)):
        h[key] = value
    rr_hdu = _table_hdu("REDSHIFTS", [(c, f) for c, f, _, _ in REDSHIFTS], rr, n,
                        tnull={c: v for c, _, v, _ in REDSHIFTS if v is not None},
                        dims={c: d for c, _, _, d in REDSHIFTS if d})
    hdus = [prim, rr_hdu,
            _table_hdu("FIBERMAP", _spec(FIBERMAP), fm, n, tnull=REDROCK_FIBERMAP_TNULL),
            _table_hdu("EXP_FIBERMAP", _spec(EXP_FIBERMAP), exp, n * nexp),
            _table_hdu("TSNR2", [("TARGETID", "K")] + [(c, "E") for c in TSNR2],
                       {"TARGETID": fm["TARGETID"], **tsnr}, n)]
    fits.HDUList(hdus).writeto(redrock_path, overwrite=True)
    if sumfile:
        write_sumfile(coadd_path.parent, f"{TILES_DIR}/{int(tileid)}/{int(night)}")
    return coadd_path, redrock_path
