"""Small FITS files in DESI's formats for the convert tests, written with astropy directly.

Column names, order and TFORMs come from desivoids.formats (the project's executable format
specification); values are random but plausible, with the awkward real cases planted: SFR
exactly 0, IVAR exactly 0, a NaN-free sky. Each writer returns what it wrote so tests can
compare the Parquet output with the source values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from desivoids import formats

# Columns written for each FastSpecFit HDU: every column the convert stage reads plus a few
# neighbours (so lookups happen in realistic, wider tables).
_META = ("TARGETID SURVEY PROGRAM HEALPIX TILEID_LIST RA DEC COADD_FIBERSTATUS DESI_TARGET "
         "BGS_TARGET MWS_TARGET SCND_TARGET Z ZWARN DELTACHI2 SPECTYPE SUBTYPE Z_RR "
         "PHOTSYS FLUX_G FLUX_R EBV").split()
_SPECPHOT = ("TARGETID SURVEY PROGRAM HEALPIX COEFF VDISP TAUV AGE AGE_IVAR ZZSUN LOGMSTAR "
             "LOGMSTAR_IVAR SFR SFR_IVAR DN4000 DN4000_OBS DN4000_IVAR ABSMAG01_SDSS_U "
             "ABSMAG01_IVAR_SDSS_U ABSMAG01_SDSS_G ABSMAG01_SDSS_R ABSMAG01_SDSS_I").split()
_LINES = ("HALPHA", "HBETA", "OII_3726", "OII_3729", "OIII_5007", "NII_6584")
_FASTSPEC = (["TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "SNR_B", "APERCORR"]
             + [f"{ln}_{s}" for ln in _LINES for s in ("AMP", "FLUX", "FLUX_IVAR", "SIGMA",
                                                        "EW", "EW_IVAR")])
_FASTSPEC_V21 = (["TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "Z", "COEFF", "AV", "AGE", "ZZSUN",
                  "LOGMSTAR", "SFR", "DN4000", "DN4000_OBS", "DN4000_IVAR", "ABSMAG01_SDSS_U",
                  "ABSMAG01_SDSS_G", "ABSMAG01_SDSS_R"]
                 + [f"{ln}_{s}" for ln in _LINES for s in ("FLUX", "FLUX_IVAR", "EW", "EW_IVAR")])


def _spec(kind: str, extname: str) -> dict[str, formats.Column]:
    return {c.name: c for c in formats.columns(kind, extname)}


def _value(name: str, tform: str, n: int, rng, base: dict) -> np.ndarray:
    if name in base:
        return base[name]
    rep = int(tform[:-1] or 1)
    code = tform[-1]
    if code == "A":
        return np.array(["x"] * n)
    if code == "L":
        return rng.random(n) < 0.5
    if code in "BIJK":
        return rng.integers(0, 100, size=(n, rep) if rep > 1 else n)
    return rng.normal(size=(n, rep) if rep > 1 else n)


def _table(kind: str, extname: str, names: list[str], n: int, rng, base: dict,
           header: dict | None = None) -> fits.BinTableHDU:
    spec = _spec(kind, extname)
    cols = []
    for name in [n for n in names if n in spec]:  # v2.1 METADATA has no SUBTYPE
        c = spec[name]
        arr = _value(name, c.tform, n, rng, base)
        cols.append(fits.Column(name=name, format=c.tform, array=arr,
                                bzero=c.tzero if c.tzero is not None else None))
    hdu = fits.BinTableHDU.from_columns(cols, name=extname)
    for k, v in (header or {}).items():
        hdu.header[k] = v
    return hdu


def galaxy_values(n: int, rng, tid0: int, hp: int) -> dict:
    """Shared per-row values of one FastSpecFit file (row-matched across HDUs)."""
    sfr = rng.lognormal(0, 1, n)
    sfr[::7] = 0.0                      # SFR exactly zero: quenched, not missing
    logm_ivar = rng.uniform(1, 100, n)
    logm_ivar[::11] = 0.0               # IVAR zero: error must be null
    return {
        "TARGETID": tid0 + np.arange(n, dtype=np.int64) * 3,
        "SURVEY": np.array(["main "] * n), "PROGRAM": np.array(["bright"] * n),
        "HEALPIX": np.full(n, 1000 + hp, dtype=np.int32),
        "RA": rng.uniform(0, 360, n), "DEC": rng.uniform(-20, 80, n),
        "Z": rng.uniform(0.01, 0.5, n), "ZWARN": rng.choice([0, 0, 0, 4], n).astype(np.int8),
        "DELTACHI2": rng.uniform(0, 500, n),
        "SPECTYPE": rng.choice(["GALAXY", "QSO", "STAR"], n),
        "BGS_TARGET": rng.choice([2, 1, 514], n), "DESI_TARGET": np.full(n, 1 << 60),
        "LOGMSTAR": rng.uniform(8, 12, n).astype(np.float32), "LOGMSTAR_IVAR": logm_ivar,
        "SFR": sfr.astype(np.float32), "SFR_IVAR": rng.uniform(0, 10, n),
        "DN4000": rng.uniform(1.0, 2.0, n), "DN4000_IVAR": rng.uniform(1, 50, n),
        "ABSMAG01_SDSS_R": rng.uniform(-23, -17, n),
        "ABSMAG01_SDSS_U": rng.uniform(-21, -15, n),
        "ABSMAG01_SDSS_G": rng.uniform(-22, -16, n),
    }


def write_fastspec_v3(path: Path, n: int, seed: int, tid0: int, hp: int = 0,
                      values: dict | None = None) -> dict:
    rng = np.random.default_rng(seed)
    base = galaxy_values(n, rng, tid0, hp)
    base.update(values or {})
    prim = fits.PrimaryHDU()
    prim.header.update({"SPECPROD": "iron", "COADDTYP": "healpix", "NSIDE": 1, "NEST": True,
                        "DEPNAM00": "fastspecfit", "DEPVER00": "3.1.5"})
    hdus = [prim,
            _table("fastspec_v3", "METADATA", _META, n, rng, base),
            _table("fastspec_v3", "SPECPHOT", _SPECPHOT, n, rng, base),
            _table("fastspec_v3", "FASTSPEC", _FASTSPEC, n, rng, base)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return base


def write_fastspec_v21(path: Path, n: int, seed: int, tid0: int) -> dict:
    rng = np.random.default_rng(seed)
    base = galaxy_values(n, rng, tid0, 0)
    prim = fits.PrimaryHDU()
    prim.header.update({"SPECPROD": "iron", "COADDTYP": "healpix"})
    hdus = [prim,
            _table("fastspec_v21", "FASTSPEC", _FASTSPEC_V21, n, rng, base),
            _table("fastspec_v21", "METADATA", _META, n, rng, base)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return base


VAST_HEADER = {"OMEGAM": 0.315, "HP": 4, "ZLIML": 0.0, "ZLIMU": 0.24, "DLIML": 0.0,
               "DLIMU": 677.0, "MAGLIM": -20.0}


def write_desivast(directory: Path, seed: int = 1, nvoid: int = 12, nhole: int = 40,
                   nzone: int = 15, ngal: int = 60) -> dict:
    """All eight DESIVAST files; returns {file name: {EXTNAME: values}}."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for cap in formats.CAPS:
        name = formats.voidfinder_filename(cap)
        x, y, z = rng.uniform(-500, 500, (3, nvoid))
        ra = np.degrees(np.arctan(y / x)) + np.where(x < 0, 180, 0)  # VAST's RA: may be < 0
        maxi = {"X": x, "Y": y, "Z": z, "RADIUS": rng.uniform(5, 20, nvoid),
                "VOID": np.arange(nvoid), "EDGE": rng.integers(0, 3, nvoid),
                "R": np.sqrt(x**2 + y**2 + z**2), "RA": ra, "DEC": rng.uniform(-10, 80, nvoid),
                "R_EFF": rng.uniform(10, 30, nvoid), "R_EFF_UNCERT": rng.uniform(0, 2, nvoid)}
        holes = {"X": rng.uniform(-500, 500, nhole), "Y": rng.uniform(-500, 500, nhole),
                 "Z": rng.uniform(-500, 500, nhole), "RADIUS": rng.uniform(5, 20, nhole),
                 "VOID": rng.integers(0, nvoid, nhole)}
        prim = fits.PrimaryHDU()
        prim.header.update({**VAST_HEADER, "VOLUME": 1e8, "GALAXY": 1000, "WALLNUM": 900,
                            "FIELDNUM": 100, "DENSITY": 1e-3, "AVSEP": 10.0, "VOID": nvoid})
        fits.HDUList([prim, _table("voidfinder", "MAXIMALS", list(maxi), nvoid, rng, maxi,
                                   {"VOID": nvoid}),
                      _table("voidfinder", "HOLES", list(holes), nhole, rng, holes,
                             {"VOID": nvoid, "HOLE": nhole})]).writeto(directory / name)
        out[name] = {"MAXIMALS": maxi, "HOLES": holes}
        zonevoid = {"ZONE": np.arange(nzone), "VOID0": rng.integers(-1, nvoid, nzone),
                    "VOID1": rng.integers(-1, nvoid, nzone)}
        galzone = {"GAL": np.arange(ngal), "TARGET": 39627000000000000 + np.arange(ngal),
                   "X": rng.uniform(-500, 500, ngal), "Y": rng.uniform(-500, 500, ngal),
                   "Z": rng.uniform(-500, 500, ngal), "ZONE": rng.integers(-1, nzone, ngal),
                   "DEPTH": rng.integers(0, 5, ngal), "EDGE": rng.integers(0, 2, ngal),
                   "OUT": rng.integers(0, 2, ngal)}
        for alg in formats.V2_ALGORITHMS:
            name = formats.v2_filename(alg, cap)
            vx, vy, vz = rng.uniform(-500, 500, (3, nvoid))
            voids = {"VOID": np.arange(nvoid), "X": vx, "Y": vy, "Z": vz,
                     "REDSHIFT": rng.uniform(0.05, 0.24, nvoid), "RA": rng.uniform(0, 360, nvoid),
                     "DEC": rng.uniform(-10, 80, nvoid), "RADIUS": rng.uniform(10, 30, nvoid),
                     **{f"{a}{i}": rng.normal(size=nvoid) for i in (1, 2, 3) for a in "XYZ"},
                     "TOT_AREA": rng.uniform(100, 200, nvoid),
                     "EDGE_AREA": rng.uniform(0, 40, nvoid)}
            kind = "v2_zobov" if alg == "ZOBOV" else "v2"
            hdus = [fits.PrimaryHDU(), _table(kind, "VOIDS", list(voids), nvoid, rng, voids),
                    _table(kind, "ZONEVOID", list(zonevoid), nzone, rng, zonevoid),
                    _table(kind, "GALZONE", list(galzone), ngal, rng, galzone)]
            hdus[0].header.update(VAST_HEADER)
            if alg != "ZOBOV":
                hdus += [_table(kind, "TRIANGLE", formats.column_names(kind, "TRIANGLE"), 7, rng,
                                {}),
                         _table(kind, "GALVIZ", formats.column_names(kind, "GALVIZ"), 5, rng, {})]
            fits.HDUList(hdus).writeto(directory / name)
            out[name] = {"VOIDS": voids, "ZONEVOID": zonevoid, "GALZONE": galzone}
    return out


def write_sky(raw: Path, *, nfiles: int = 2, rows: int = 300, version: str = "v3.0",
              seed: int = 7) -> dict:
    """A small raw directory in DESI's relative layout: FastSpecFit files plus DESIVAST."""
    written = {"fastspec": {}, "desivast": write_desivast(raw / formats.DESIVAST_DIR, seed)}
    if version == "v3.0":
        for hp in range(nfiles):
            p = raw / formats.FASTSPEC_V3_DIR / formats.fastspec_v3_filename(hp)
            written["fastspec"][p.name] = write_fastspec_v3(p, rows + 17 * hp, seed + hp,
                                                            39627000000000000 + hp * 10**9, hp)
    else:
        p = raw / formats.FASTSPEC_V21_DIR / formats.FASTSPEC_V21_FILENAME
        written["fastspec"][p.name] = write_fastspec_v21(p, rows, seed, 39627000000000000)
    return written


def convert_dir(d, **kwargs):
    """The convert stage on a test's run folder ``d``: its FITS files in ``d/raw`` (any folder
    works as input_dir), the Parquet output in ``d/convert`` (RunLayout.convert)."""
    from desivoids import convert

    return convert.run(data_dir=str(d), input_dir=str(Path(d) / "raw"), **kwargs)


# --------------------------------------------------------------------------------------------
# Files as other code writes them: the columns and encodings chosen here by hand (not from
# desivoids.formats, not by desivoids.mock), a few rows each.
# --------------------------------------------------------------------------------------------

#: the columns the science needs, per HDU of a v3.0 file, with the TFORM an independent writer
#: might choose (strings of their own width)
MINIMAL_V3 = {
    "METADATA": {"TARGETID": "K", "SURVEY": "4A", "PROGRAM": "6A", "RA": "D", "DEC": "D",
                 "Z": "D", "ZWARN": None, "DELTACHI2": "D", "SPECTYPE": "6A", "BGS_TARGET": "K"},
    "SPECPHOT": {"TARGETID": "K", "LOGMSTAR": "E", "SFR": "E", "DN4000": "E",
                 "ABSMAG01_SDSS_U": "E", "ABSMAG01_SDSS_R": "E"},
    "FASTSPEC": {"TARGETID": "K"},
}
THREE_LINES = ("HALPHA_FLUX", "HALPHA_EW", "HBETA_FLUX")


def minimal_values(n: int = 4, tid0: int = 39627000000000000) -> dict:
    """Plausible values of the minimal columns (ZWARN fits in int8 and is not only 0/4)."""
    rng = np.random.default_rng(tid0 % 1000)
    return {"TARGETID": tid0 + np.arange(n, dtype=np.int64) * 7,
            "SURVEY": np.array(["main"] * n), "PROGRAM": np.array(["bright"] * n),
            "RA": np.linspace(10.0, 300.0, n), "DEC": np.linspace(-5.0, 60.0, n),
            "Z": np.linspace(0.02, 0.2, n), "ZWARN": np.resize(np.array([0, 4, 0, 5], np.int8), n),
            "DELTACHI2": np.full(n, 100.0), "SPECTYPE": np.array(["GALAXY"] * n),
            "BGS_TARGET": np.full(n, 2, np.int64),
            "LOGMSTAR": rng.uniform(9, 11, n).astype(np.float32),
            "SFR": rng.uniform(0, 3, n).astype(np.float32),
            "DN4000": rng.uniform(1, 2, n).astype(np.float32),
            "ABSMAG01_SDSS_U": rng.uniform(-20, -18, n).astype(np.float32),
            "ABSMAG01_SDSS_R": rng.uniform(-22, -20, n).astype(np.float32),
            **{c: rng.normal(size=n).astype(np.float32) for c in THREE_LINES}}


def write_minimal_fastspec_v3(path: Path, n: int = 4, *, zwarn: str = "B",
                              lines=THREE_LINES, drop=(), values: dict | None = None,
                              rows: dict | None = None, tforms: dict | None = None) -> dict:
    """A v3.0 file with only the needed columns plus ``lines`` in FASTSPEC.

    ``zwarn``: 'L' writes METADATA through astropy's Table writer (which stores int8 as a FITS
    logical); 'B' (TZERO -128, as fitsio writes int8), 'I', 'J' or 'K' write that code. ``drop``
    holds 'HDU.COLUMN' names to leave out, or 'HDU' for a whole HDU; ``rows`` {HDU: n} shortens
    an HDU; ``tforms`` {'HDU.COLUMN': TFORM} writes a column in another code. Returns the values
    written.
    """
    from astropy.table import Table

    v = {**minimal_values(n), **(values or {})}
    spec = {h: dict(c) for h, c in MINIMAL_V3.items()}
    spec["FASTSPEC"].update({c: "E" for c in lines})
    for key, tform in (tforms or {}).items():
        ext, col = key.split(".")
        spec[ext][col] = tform
    hdus = [fits.PrimaryHDU()]
    for ext, cols in spec.items():
        if ext in drop:
            continue
        k = (rows or {}).get(ext, n)
        names = [c for c in cols if f"{ext}.{c}" not in drop]
        if ext == "METADATA" and zwarn == "L":
            hdu = fits.table_to_hdu(Table({c: v[c][:k] for c in names}))
            hdu.name = ext
        else:
            fc = []
            for c in names:
                tform = cols[c] or zwarn
                arr = v[c][:k]
                if c == "ZWARN":
                    fc.append(fits.Column(c, tform, array=arr if tform == "B" else arr.astype(int),
                                          bzero=-128 if tform == "B" else None))
                else:
                    fc.append(fits.Column(c, tform, array=arr))
            hdu = fits.BinTableHDU.from_columns(fc, name=ext)
        hdus.append(hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return v


def write_minimal_v2(path: Path, nvoid: int = 3, *, drop=(), visualisation: bool = False) -> dict:
    """A DESIVAST V2 file (REVOLVER/VIDE name) with VOIDS, ZONEVOID and GALZONE, by hand, and
    TRIANGLE/GALVIZ only when ``visualisation``; ``drop`` as in write_minimal_fastspec_v3."""
    rng = np.random.default_rng(5)
    ell = {f"{a}{i}": rng.normal(size=nvoid) for i in (1, 2, 3) for a in "XYZ"}
    tables = {
        "VOIDS": {"VOID": np.arange(nvoid), "X": rng.uniform(-300, 300, nvoid),
                  "Y": rng.uniform(-300, 300, nvoid), "Z": rng.uniform(-300, 300, nvoid),
                  "REDSHIFT": rng.uniform(0.05, 0.2, nvoid), "RA": rng.uniform(0, 360, nvoid),
                  "DEC": rng.uniform(-5, 60, nvoid), "RADIUS": rng.uniform(10, 30, nvoid), **ell,
                  "TOT_AREA": np.full(nvoid, 100.0), "EDGE_AREA": np.linspace(0, 30, nvoid)},
        "ZONEVOID": {"ZONE": np.arange(4), "VOID0": np.array([0, 1, -1, 2]),
                     "VOID1": np.array([0, 1, -1, 2])},
        "GALZONE": {"GAL": np.arange(5), "TARGET": 39627000000000000 + np.arange(5),
                    "X": rng.uniform(-300, 300, 5), "Y": rng.uniform(-300, 300, 5),
                    "Z": rng.uniform(-300, 300, 5), "ZONE": np.array([0, 1, 2, 3, -1]),
                    "DEPTH": np.zeros(5, int), "EDGE": np.zeros(5, int), "OUT": np.zeros(5, int)},
    }
    if visualisation:
        tables["TRIANGLE"] = {"VOID": np.arange(2), **{f"N_{a}": np.zeros(2) for a in "XYZ"}}
        tables["GALVIZ"] = {"GID": np.arange(2), "G2V": np.arange(2), "G2V2": np.arange(2)}
    prim = fits.PrimaryHDU()
    prim.header.update(VAST_HEADER)
    hdus = [prim]
    for ext, cols in tables.items():
        if ext in drop:
            continue
        fc = [fits.Column(c, "K" if a.dtype.kind == "i" else "D", array=a)
              for c, a in cols.items() if f"{ext}.{c}" not in drop]
        hdus.append(fits.BinTableHDU.from_columns(fc, name=ext))
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return tables
