"""FastSpecFit catalogues of the mock: physical properties and every column, streamed per file.

Values are a deterministic function of (seed, nside-1 pixel, chunk, column name), so an HDU can
be regenerated chunk by chunk when the next HDU is written, and v3.0 and v2.1 layouts hold the
same galaxies with the same values. Quenched galaxies (a latent flag planted from the void
membership) get sSFR < -11 (often SFR == 0 exactly), DN4000 > 1.6 and u - r >= 2.22 with
realistic scatter, so the three observational definitions disagree a little.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .. import cosmology, formats
from . import population as pop
from . import sky
from .fitsio_stream import FitsStreamWriter

SFR_GRID_DEX = 0.1  # the coarse template grid of DR1 SFRs (ties, lumpy sSFR)
DEPENDENCIES = {
    "v3.0": [("python", "3.10.14"), ("numpy", "1.22.4"), ("scipy", "1.8.1"),
             ("astropy", "5.2.1"), ("fitsio", "1.2.1"), ("desiutil", "3.4.2"),
             ("desispec", "0.63.2"), ("fastspecfit", "3.1.5")],
    "v2.1": [("python", "3.10.14"), ("numpy", "1.22.4"), ("scipy", "1.8.1"),
             ("astropy", "5.2.1"), ("fitsio", "1.2.1"), ("desiutil", "3.4.2"),
             ("desispec", "0.60.2"), ("fastspecfit", "2.5.0")],
}
_BANDS7 = ("G", "R", "Z", "W1", "W2", "W3", "W4")
#: approximate extinction coefficients (A_band / E(B-V)) for MW_TRANSMISSION
_RCOEF = {"G": 3.214, "R": 2.165, "Z": 1.211, "W1": 0.184, "W2": 0.113, "W3": 0.0241,
          "W4": 0.00910}
#: rough colours (band - r) of blue / red galaxies for the photometry columns
_COL_BLUE = {"G": 0.45, "R": 0.0, "Z": -0.35, "W1": -0.4, "W2": 0.1, "W3": -1.5, "W4": -2.0}
_COL_RED = {"G": 0.95, "R": 0.0, "Z": -0.55, "W1": -0.2, "W2": 0.35, "W3": 0.8, "W4": 0.9}


class ColumnRNG:
    """Independent, reproducible random streams per (seed, pixel, chunk, column)."""

    def __init__(self, seed: int, hp: int, chunk: int):
        self.key = (int(seed), 1000 + int(hp), int(chunk))

    def __call__(self, name: str) -> np.random.Generator:
        return np.random.default_rng(list(self.key) + [zlib.crc32(name.encode())])


def physics(core: dict, rngs: ColumnRNG) -> dict:
    """Physical properties of a chunk of rows (float32 where the file stores E)."""
    n = len(core["Z"])
    comp, z, q = core["COMP"], core["Z"], core["QUENCHED"]
    gal = core["SPECTYPE"] == 0
    logm = core["LOGM"].astype(np.float64)
    r = rngs("physics")
    # specific SFR: main sequence or quenched (half of the quenched at SFR == 0 exactly)
    lss = np.where(q, r.normal(-12.0, 0.5, n), r.normal(-9.8 - 0.25 * (logm - 10.0), 0.32, n))
    logsfr = np.round((lss + logm) / SFR_GRID_DEX) * SFR_GRID_DEX
    sfr = np.where(q & (r.random(n) < 0.5), 0.0, 10.0 ** logsfr)
    sfr = np.where(gal, sfr, 10.0 ** r.normal(0.0, 1.0, n) * (r.random(n) < 0.5))
    dn = np.where(q, r.normal(1.82, 0.12, n), r.normal(1.27 + 0.07 * (logm - 10.0), 0.09, n))
    ur = np.where(q, r.normal(2.56, 0.16, n), r.normal(1.72 + 0.12 * (logm - 10.0), 0.22, n))
    gr = 0.33 * ur + 0.06 + r.normal(0.0, 0.03, n)
    mr_abs = core["MR"] - 0.97 * (z - 0.1)  # ABSMAG01_SDSS_R (so M_r of the cut is recovered)
    dl = cosmology.comoving_distance(np.maximum(z, 1e-5), sky.OMEGA_M) * (1 + np.maximum(z, 0))
    mag_r = np.where(comp == pop.STAR, r.uniform(14.0, 19.5, n),
                     np.where(comp == pop.QSO, r.uniform(17.5, 21.0, n),
                              core["MR"] + 5 * np.log10(np.maximum(dl, 1e-3)) + 25 + 1.2 * z))
    age = np.where(q, r.uniform(6.0, 11.5, n), r.uniform(0.8, 5.5, n))
    tauv = np.clip(np.where(q, r.normal(0.15, 0.12, n), r.normal(0.6, 0.3, n)), 0, None)
    def f32(a):
        return np.asarray(a, dtype=np.float32)

    return {
        "LOGMSTAR": f32(logm), "SFR": f32(sfr),
        "DN4000": f32(dn), "DN4000_OBS": f32(dn + r.normal(0, 0.02, n)),
        "DN4000_MODEL": f32(dn + r.normal(0, 0.03, n)),
        "ABSMAG01_SDSS_R": f32(mr_abs), "ABSMAG01_SDSS_U": f32(mr_abs + ur),
        "ABSMAG01_SDSS_G": f32(mr_abs + gr), "ABSMAG01_SDSS_I": f32(mr_abs - 0.35 - 0.08 * q),
        "ABSMAG01_SDSS_Z": f32(mr_abs - 0.65 - 0.12 * q), "AGE": f32(age),
        "ZZSUN": f32(r.normal(-0.1 + 0.1 * q, 0.2, n)), "TAUV": f32(tauv),
        "AV": f32(1.086 * tauv), "VDISP": f32(np.where(q, r.uniform(120, 300, n), r.uniform(60, 180, n))),
        "MAG_R": mag_r, "UR": ur, "Q": q, "DL": dl,
        "EBV": f32(np.clip(r.lognormal(np.log(0.03), 0.6, n), 0.002, 0.5)),
    }


def _ivar(rng, value_scale, n, zero_frac=0.02):
    s = np.abs(value_scale) * rng.uniform(0.02, 0.2, n) + 1e-3
    iv = 1.0 / s ** 2
    iv[rng.random(n) < zero_frac] = 0.0
    return iv


def column_values(col: formats.Column, core: dict, ph: dict, rngs: ColumnRNG):
    """Values of one column for a chunk (dispatch on the column name)."""
    name = col.name
    n = len(core["Z"])
    if name in ph and name not in ("MAG_R", "UR", "Q", "DL"):
        return ph[name]
    rng = rngs(name)
    q = ph["Q"]
    flux_r = 10 ** (-0.4 * (ph["MAG_R"] - 22.5))
    if name == "TARGETID":
        return core["TARGETID"]
    if name == "SURVEY":
        return np.asarray(pop.SURVEYS)[core["SURVEY"]]
    if name == "PROGRAM":
        return np.asarray(pop.PROGRAMS)[core["PROGRAM"]]
    if name == "HEALPIX":
        return core["HEALPIX"].astype(np.int32)
    if name in ("RA", "DEC", "Z", "ZWARN", "DELTACHI2", "BGS_TARGET", "DESI_TARGET", "MWS_TARGET"):
        return core[name]
    if name == "SPECTYPE":
        return np.asarray(pop.SPECTYPE_CODES)[core["SPECTYPE"]]
    if name == "SUBTYPE":
        return np.where(core["SPECTYPE"] == 2, rng.choice(["K", "G", "M", "F", "WD"], n), "")
    if name == "Z_RR":
        return np.where(core["SPECTYPE"] == 1, core["Z"] + rng.normal(0, 0.01, n) * (rng.random(n) < 0.2),
                        core["Z"])
    if name == "SCND_TARGET":
        return np.where(rng.random(n) < 0.01, np.int64(1) << rng.integers(0, 40, n), 0).astype(np.int64)
    if name == "COADD_FIBERSTATUS":
        return np.where(rng.random(n) < 0.01, np.int64(1) << rng.integers(0, 12, n), 0).astype(np.int64)
    if name == "TILEID_LIST":
        t1 = rng.integers(1000, 42000, n)
        two = rng.random(n) < 0.35
        t2 = t1 + rng.integers(1, 500, n)
        return np.where(two, np.char.add(np.char.add(t1.astype(str), " "), t2.astype(str)),
                        t1.astype(str))
    if name == "PHOTSYS":
        return np.where(core["NORTH"], "N", "S")
    if name == "LS_ID":
        return ((core["TARGETID"] >> 22) << 16) ^ rng.integers(0, 1 << 16, n)
    if name.startswith("TSNR2_"):
        base = {"BGS": 1500.0, "LRG": 80.0, "ELG": 100.0, "QSO": 40.0, "LYA": 60.0}[name[6:]]
        return (base * rng.lognormal(0.0, 0.4, n)).astype(np.float32)
    if name.startswith("MW_TRANSMISSION_"):
        return (10 ** (-0.4 * _RCOEF[name.rsplit("_", 1)[1]] * ph["EBV"])).astype(np.float32)
    if name.startswith(("FLUX_IVAR_", "FIBERFLUX_", "FIBERTOTFLUX_", "FLUX_")) and \
            not name.startswith("FLUX_SYNTH"):
        band = name.rsplit("_", 1)[1]
        colour = np.where(q, _COL_RED.get(band, 0.0), _COL_BLUE.get(band, 0.0))
        f = flux_r * 10 ** (-0.4 * colour)
        if name.startswith("FLUX_IVAR_"):
            return _ivar(rng, f, n, 0.01 if band in "GRZ" else 0.05).astype(np.float32)
        if name.startswith("FIBERFLUX_"):
            f = f * rng.uniform(0.15, 0.5, n)
        elif name.startswith("FIBERTOTFLUX_"):
            f = f * rng.uniform(0.2, 0.6, n)
        return (f * rng.normal(1.0, 0.03, n)).astype(np.float32)
    if name.startswith("FLUX_SYNTH"):
        band = name.rsplit("_", 1)[1]
        colour = np.where(q, _COL_RED.get(band, 0.0), _COL_BLUE.get(band, 0.0))
        return (flux_r * 10 ** (-0.4 * colour) * rng.normal(1.0, 0.08, n)).astype(np.float32)
    if name.startswith("ABSMAG"):
        # ABSMAGxx[_SYNTH][_IVAR]_BAND
        if "_IVAR_" in name:
            return _ivar(rng, np.ones(n), n, 0.03).astype(np.float32)
        band = name.split("_", 1)[1].replace("SYNTH_", "")
        base = ph["ABSMAG01_SDSS_R"].astype(np.float64)
        off = {"DECAM_G": 0.5, "DECAM_R": 0.0, "DECAM_Z": -0.45, "U": 1.1, "B": 0.65, "V": 0.2,
               "TWOMASS_J": -1.1, "SDSS_U": 1.6, "SDSS_G": 0.55, "SDSS_R": 0.0, "SDSS_I": -0.35,
               "SDSS_Z": -0.65, "W1": -0.9}.get(band, 0.0)
        return (base + off + 0.25 * (q - 0.5) * (off != 0) + rng.normal(0, 0.03, n)).astype(np.float32)
    if name.startswith("KCORR"):
        return rng.normal(0.1, 0.15, n).astype(np.float32)
    if name == "SEED":
        return rng.integers(0, 2 ** 31, n).astype(np.int64)
    if name == "COEFF":
        return (rng.lognormal(-1.0, 1.5, (n, 5)) * (rng.random((n, 5)) < 0.6)).astype(np.float32)
    if name.startswith("RCHI2") or name.endswith("_CHI2"):
        return (1.0 + np.abs(rng.normal(0, 0.25, n))).astype(np.float32)
    if name.startswith("SNR_"):
        return rng.lognormal(1.2, 0.6, n).astype(np.float32)
    if name.startswith("SMOOTHCORR_"):
        return rng.normal(0, 3.0, n).astype(np.float32)
    if name.startswith("APERCORR"):
        return (1.0 + rng.lognormal(0.0, 0.5, n)).astype(np.float32)
    if name.startswith("INIT_SIGMA_"):
        return rng.uniform(50, 300, n).astype(np.float32)
    if name.startswith("INIT_VSHIFT_"):
        return rng.normal(0, 30, n).astype(np.float32)
    if name == "INIT_BALMER_BROAD":
        return (rng.random(n) < 0.02) | (core["SPECTYPE"] == 1)
    if name == "DELTA_LINECHI2":
        return np.abs(rng.normal(0, 10, n)).astype(np.float32)
    if name == "DELTA_LINENDOF":
        return rng.integers(0, 8, n).astype(np.int32)
    if "_DOUBLET_RATIO" in name:
        if name.endswith("_IVAR"):
            return _ivar(rng, np.ones(n), n, 0.3).astype(np.float32)
        return rng.uniform(0.4, 1.5, n).astype(np.float32)
    if name.startswith(("LOGLNU_", "LOGL_")):
        if name.endswith("_IVAR"):
            return _ivar(rng, np.ones(n), n, 0.3).astype(np.float32)
        return rng.normal(1.0, 0.8, n).astype(np.float32)
    if name.endswith("_CONT") or name.endswith("_CONT_IVAR"):
        cont = 0.283 * flux_r * rng.normal(1, 0.1, n)
        if name.endswith("_IVAR"):
            return _ivar(rng, cont, n).astype(np.float32)
        return cont.astype(np.float32)
    if name.endswith("_IVAR") and name[:-5] in ph:  # e.g. LOGMSTAR_IVAR, SFR_IVAR, AGE_IVAR
        base = np.where(ph[name[:-5]] == 0, 1.0, ph[name[:-5]])
        return _ivar(rng, base, n, 0.02).astype(np.float32)
    if name == "DN4000_MODEL_IVAR" or name == "TAUV_IVAR" or name == "VDISP_IVAR" or \
            name == "ZZSUN_IVAR":
        return _ivar(rng, np.ones(n), n, 0.05).astype(np.float32)
    line = _line_of(name)
    if line is not None:
        return _line_column(name, line, core, ph, rng, flux_r)
    if "MOMENT" in name:
        if name.endswith("_IVAR"):
            return _ivar(rng, np.ones(n), n, 0.5).astype(np.float32)
        return rng.normal(0, 2.0, n).astype(np.float32)
    raise KeyError(f"mock has no rule for FastSpecFit column {name}")


_LINE_RATIO = {"HALPHA": 1.0, "HBETA": 0.30, "NII_6584": 0.40, "NII_6548": 0.13,
               "OIII_5007": 0.25, "OIII_4959": 0.08, "OII_3726": 0.35, "OII_3729": 0.45,
               "SII_6716": 0.15, "SII_6731": 0.11, "HGAMMA": 0.14, "HDELTA": 0.08}
_LINE_WAVE = {"HALPHA": 6564.6, "HBETA": 4862.7, "NII_6584": 6585.3, "NII_6548": 6549.9,
              "OIII_5007": 5008.2, "OIII_4959": 4960.3, "OII_3726": 3727.1, "OII_3729": 3729.9,
              "SII_6716": 6718.3, "SII_6731": 6732.7}
_SUFFIXES = tuple({s for s, _, _ in formats.FASTSPEC_LINE_SUFFIXES + formats.FASTSPEC_V21_LINE_SUFFIXES})


def _line_of(name):
    for ln in formats.FASTSPEC_LINES:
        if name.startswith(ln + "_") and name[len(ln) + 1:] in _SUFFIXES:
            return ln
    return None


def _line_column(name, line, core, ph, rng, flux_r):
    n = len(core["Z"])
    suf = name[len(line) + 1:]
    # Halpha flux in 1e-17 erg/s/cm2 from the SFR (Kennicutt 1998), other lines by ratio
    dl_cm = ph["DL"] * 3.0857e24
    ha = ph["SFR"].astype(np.float64) / 7.9e-42 / (4 * np.pi * dl_cm ** 2) * 1e17
    ha = np.where(np.isfinite(ha), ha, 0.0)
    flux = ha * _LINE_RATIO.get(line, 0.03) * rng.lognormal(0.0, 0.25, n)
    lr = np.random.default_rng(rng.integers(0, 2 ** 63))
    sigma = lr.uniform(40.0, 200.0, n)
    wave = _LINE_WAVE.get(line, 5000.0)
    cont = 0.283 * flux_r * (6200.0 / wave) ** 2
    if suf in ("FLUX", "BOXFLUX"):
        v = flux if suf == "FLUX" else flux * rng.normal(1.0, 0.1, n)
    elif suf in ("AMP", "MODELAMP"):
        v = flux / (np.sqrt(2 * np.pi) * wave * sigma / 3e5 * (1 + core["Z"]))
    elif suf == "EW":
        v = flux / np.maximum(cont, 1e-6) / (1 + np.maximum(core["Z"], 0))
    elif suf == "CONT":
        v = cont
    elif suf == "SIGMA":
        v = sigma
    elif suf == "VSHIFT":
        v = rng.normal(0, 20, n)
    elif suf == "FLUX_LIMIT":
        v = 1e-17 * rng.lognormal(0.0, 0.3, n)
    elif suf == "EW_LIMIT":  # 2.x only
        v = rng.lognormal(0.0, 0.3, n)
    elif suf == "CHI2":
        v = 1.0 + np.abs(rng.normal(0, 0.3, n))
    elif suf == "NPIX":
        return rng.integers(8, 60, n).astype(np.int32)
    elif suf.endswith("_IVAR"):
        base = {"FLUX_IVAR": flux, "BOXFLUX_IVAR": flux, "EW_IVAR": flux / np.maximum(cont, 1e-6),
                "AMP_IVAR": flux, "CONT_IVAR": cont}.get(suf, np.ones(n))
        v = _ivar(rng, np.maximum(base, 0.05), n, 0.05)
    else:  # pragma: no cover
        raise KeyError(name)
    return np.asarray(v, dtype=np.float32)


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------


def primary_cards(version: str):
    cards = [("SPECPROD", "iron"), ("COADDTYP", "healpix")]
    if version == "v3.0":
        cards += [("NSIDE", 1), ("NEST", True),
                  ("INPUTZ", False), ("INPUTS", False), ("CONSAGE", False), ("USEQNET", True),
                  ("NMONTE", 50), ("SEED", 1), ("NOSCORR", False), ("NOPHOTO", False),
                  ("BRDLFIT", True), ("UFLOOR", 0.01), ("SNRBBALM", 2.5)]
    for i, (nam, ver) in enumerate(DEPENDENCIES[version]):
        cards += [(f"DEPNAM{i:02d}", nam), (f"DEPVER{i:02d}", ver)]
    return cards


def hdu_columns(version: str, lines) -> list[tuple[str, tuple]]:
    if version == "v3.0":
        return [("METADATA", formats.METADATA_V3_COLUMNS),
                ("SPECPHOT", formats.SPECPHOT_V3_COLUMNS),
                ("FASTSPEC", formats.fastspec_v3_columns(lines))]
    if version == "v2.1":
        return [("FASTSPEC", formats.fastspec_v21_columns(tuple(ln for ln in lines
                                                                  if ln in formats.FASTSPEC_V21_LINES))),
                ("METADATA", formats.METADATA_V21_COLUMNS)]
    raise ValueError(f"unknown FastSpecFit version {version!r}; choose v3.0 or v2.1")


def write_file(path: Path, version: str, core: dict, pieces, seed: int, lines, chunk: int,
               on_chunk=None, progress=None) -> int:
    """Write one FastSpecFit file. ``pieces`` is a list of (hp, row indices) in file order.

    ``on_chunk(hp, chunk_index, rows, physics)`` is called once per chunk (first HDU pass) so
    the caller can record the truth from the values as written.
    """
    nrows = int(sum(len(ix) for _, ix in pieces))
    with FitsStreamWriter(path) as w:
        w.primary(primary_cards(version))
        for h, (ext, cols) in enumerate(hdu_columns(version, lines)):
            t = w.table(ext, cols, nrows)
            for hp, ix in pieces:
                for ci, s in enumerate(range(0, len(ix), chunk)):
                    rows = ix[s:s + chunk]
                    cc = {k: v[rows] for k, v in core.items()}
                    rngs = ColumnRNG(seed, hp, ci)
                    ph = physics(cc, rngs)
                    if h == 0 and on_chunk is not None:
                        on_chunk(hp, ci, rows, ph)
                    t.write({c.name: column_values(c, cc, ph, rngs) for c in cols}, len(rows))
                    if progress is not None:
                        progress.update(len(rows))
            t.close()
    return nrows
