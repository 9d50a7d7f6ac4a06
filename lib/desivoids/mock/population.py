"""Who is in the mock catalogue: positions, redshifts, magnitudes, classes and targeting.

Components (column COMP of the core table):
0 tracer  volume-limited BGS galaxy (z <= 0.24, M_r <= -20) that passes every DESIVAST cut
1 fail    same population but failing one cut (ZWARN, DELTACHI2, BGS_BRIGHT bit, SURVEY/PROGRAM,
          SPECTYPE): in the volume, never a tracer
2 faint   z <= 0.24 galaxy fainter than M_r = -20 (flux-limited), follows the structure
3 high    galaxy at 0.24 < z <= 0.6 (beyond the void catalogues)
4 qso     quasar, 0.3 < z <= 6.4
5 star    star, z ~ 0
"""
from __future__ import annotations

import numpy as np
import astropy.units as u
from astropy_healpix import HEALPix

from .. import cosmology, formats
from . import sky

TRACER, FAIL, FAINT, HIGH, QSO, STAR = range(6)
COMP_NAMES = ("tracer", "fail", "faint", "high", "qso", "star")
Z_HIGH_MAX = 0.6
SPECTYPE_CODES = ("GALAXY", "QSO", "STAR")
SURVEYS = ("main", "sv1", "sv3", "special")
PROGRAMS = ("bright", "dark", "backup")

_HP1 = HEALPix(nside=1, order="nested")
_HP64 = HEALPix(nside=64, order="nested")


def healpix(nside_obj, ra, dec):
    return np.asarray(nside_obj.lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg),
                      dtype=np.int64)


def hp1(ra, dec):
    return healpix(_HP1, ra, dec)


def hp64(ra, dec):
    return healpix(_HP64, ra, dec)


def _pick_cap(rng, fps, n):
    areas = np.array([fps[c].area_deg2() for c in formats.CAPS])
    return rng.choice(len(formats.CAPS), size=n, p=areas / areas.sum())


def _angular(rng, fps, n, pixel=None):
    """n angular positions uniform over both footprints (optionally inside one nside-1 pixel)."""
    if pixel is None:
        caps = _pick_cap(rng, fps, n)
        ra, dec = np.empty(n), np.empty(n)
        for k, c in enumerate(formats.CAPS):
            m = caps == k
            ra[m], dec[m] = fps[c].sample(rng, int(m.sum()))
        return ra, dec
    out_ra, out_dec, have, tries = [], [], 0, 0
    while have < n:
        r, d = _angular(rng, fps, max(4 * (n - have), 20_000))
        ok = hp1(r, d) == pixel
        out_ra.append(r[ok])
        out_dec.append(d[ok])
        have += int(ok.sum())
        tries += 1
        if tries > 200 and have == 0:  # the footprint misses this pixel: use the whole pixel
            lon, lat = _HP1.healpix_to_lonlat(np.full(n, pixel), dx=rng.random(n), dy=rng.random(n))
            return lon.to_value(u.deg) % 360.0, lat.to_value(u.deg)
    return np.concatenate(out_ra)[:n], np.concatenate(out_dec)[:n]


def _structured_z(rng, capsky, n, keep_in_hole):
    xyz = sky.sample_structured(rng, capsky, n, keep_in_hole)
    ra, dec, z = sky.radec_z(xyz)
    z = np.clip(z, 1e-4, sky.ZLIMU - 1e-7)
    return ra, dec, z


def _faint_weight(r):
    """Relative number density of galaxies fainter than the tracer limit seen at distance r."""
    z = cosmology.z_at_distance(np.asarray(r, dtype=float), sky.OMEGA_M)
    mlim = np.minimum(sky.mag_limit(np.maximum(z, 1e-4)), -15.0)
    w = np.where(mlim > sky.MAGLIM + 0.01, sky.lf_fraction(sky.MAGLIM, mlim), 0.0)
    return w / sky.lf_fraction(sky.MAGLIM, -15.0)


def _faint(rng, capsky, n):
    """Flux-limited galaxies fainter than the tracer limit, following the structure."""
    xyz = sky.sample_structured(rng, capsky, n, keep_in_hole=0.65, radial_weight=_faint_weight)
    ra, dec, z = sky.radec_z(xyz)
    z = np.clip(z, 1e-4, sky.ZLIMU - 1e-7)
    mlim = np.maximum(np.minimum(sky.mag_limit(z), -15.0), sky.MAGLIM + 0.01)
    mr = sky.sample_mag(rng, np.full(n, sky.MAGLIM + 0.005), mlim)
    return ra, dec, z, mr


def _high(rng, fps, n, pixel=None):
    """Galaxies beyond ZLIMU (0.24 < z <= 0.6), flux limited."""
    d_lo = sky.DLIMU
    d_hi = float(cosmology.comoving_distance(Z_HIGH_MAX, sky.OMEGA_M))
    ref = sky.lf_fraction(-23.5, sky.mag_limit(sky.ZLIMU))
    zs, have = [], 0
    while have < n:
        m = 3 * (n - have) + 256
        r = np.cbrt(d_lo ** 3 + rng.random(m) * (d_hi ** 3 - d_lo ** 3))
        z = cosmology.z_at_distance(r, sky.OMEGA_M)
        ok = rng.random(m) < sky.lf_fraction(-23.5, sky.mag_limit(z)) / ref
        zs.append(z[ok])
        have += int(ok.sum())
    z = np.maximum(np.concatenate(zs)[:n], sky.ZLIMU + 1e-4)
    ra, dec = _angular(rng, fps, n, pixel)
    mr = sky.sample_mag(rng, np.full(n, -23.5), sky.mag_limit(z))
    return ra, dec, z, mr


def _qso_z(rng, n):
    z = 0.3 + rng.gamma(2.6, 0.62, n)
    z = np.where(z > 6.4, rng.uniform(4.5, 6.4, n), z)
    if n >= 50:
        z[:2] = (6.4, 5.7)  # the real catalogue reaches z = 6.4
    return z


def build(rng_factory, scale, fps, capskies) -> dict:
    """The core table (one entry per FastSpecFit row) before physical properties."""
    parts = []  # (comp, ra, dec, z, mr, cap or -1)
    n_tracers = {c: scale.tracers[c] for c in formats.CAPS}
    tot_tr = sum(n_tracers.values())
    if scale.hp_rows is not None:
        total = int(sum(scale.hp_rows))
    else:
        total = int(scale.rows)
    rest = total - tot_tr
    if rest <= 0:
        raise ValueError("scale has more tracers than rows")
    mix = scale.mix
    n_fail = int(round(rest * mix["fail"]))
    n_faint = int(round(rest * mix["faint"]))
    n_qso = int(round(rest * mix["qso"]))
    n_star = int(round(rest * mix["star"]))
    n_high = rest - n_fail - n_faint - n_qso - n_star

    for k, cap in enumerate(formats.CAPS):
        rng = rng_factory("tracers", k)
        share = n_tracers[cap] / tot_tr
        ra, dec, z = _structured_z(rng, capskies[cap], n_tracers[cap], keep_in_hole=0.55)
        mr = sky.nudge_away(sky.sample_mag(rng, np.full(len(z), -23.5), np.full(len(z), sky.MAGLIM)),
                            sky.MAGLIM, 5e-3)
        parts.append((TRACER, ra, dec, z, mr))
        nf = int(round(n_fail * share)) if k == 0 else n_fail - int(round(n_fail * (1 - share)))
        rng = rng_factory("fail", k)
        ra, dec, z = _structured_z(rng, capskies[cap], nf, keep_in_hole=0.55)
        mr = sky.nudge_away(sky.sample_mag(rng, np.full(len(z), -23.5), np.full(len(z), sky.MAGLIM)),
                            sky.MAGLIM, 5e-3)
        parts.append((FAIL, ra, dec, z, mr))
        nfa = int(round(n_faint * share)) if k == 0 else n_faint - int(round(n_faint * (1 - share)))
        rng = rng_factory("faint", k)
        parts.append((FAINT,) + _faint(rng, capskies[cap], nfa))
    rng = rng_factory("high", 0)
    parts.append((HIGH,) + _high(rng, fps, n_high))
    rng = rng_factory("qso", 0)
    ra, dec = _angular(rng, fps, n_qso)
    parts.append((QSO, ra, dec, _qso_z(rng, n_qso), rng.uniform(-27.0, -22.0, n_qso)))
    rng = rng_factory("star", 0)
    ra, dec = _angular(rng, fps, n_star)
    parts.append((STAR, ra, dec, rng.normal(0.0, 2.5e-4, n_star), rng.uniform(-2.0, 12.0, n_star)))

    core = {
        "COMP": np.concatenate([np.full(len(p[1]), p[0], np.int8) for p in parts]),
        "RA": np.concatenate([p[1] for p in parts]) % 360.0,
        "DEC": np.concatenate([p[2] for p in parts]),
        "Z": np.concatenate([p[3] for p in parts]),
        "MR": np.concatenate([p[4] for p in parts]),
    }
    core["HP"] = hp1(core["RA"], core["DEC"])
    if scale.hp_rows is not None:
        core = _match_hp_counts(rng_factory("hpfill", 0), core, scale.hp_rows, fps)
    else:
        core = _fill_empty_pixels(rng_factory("hpfill", 0), core, scale.min_hp_rows)
    _targeting(rng_factory("targeting", 0), core)
    return core


def _match_hp_counts(rng, core, targets, fps) -> dict:
    """Drop or add non-tracer rows so each nside-1 pixel holds exactly its real row count."""
    keep = np.ones(len(core["COMP"]), dtype=bool)
    add = []
    for pix, want in enumerate(targets):
        idx = np.flatnonzero(core["HP"] == pix)
        have = len(idx)
        if have > want:
            cand = idx[core["COMP"][idx] != TRACER]
            if len(cand) < have - want:
                raise ValueError(f"pixel {pix}: {have - len(cand)} tracers exceed {want} rows")
            keep[rng.choice(cand, have - want, replace=False)] = False
        elif have < want:
            ra, dec, z, mr = _high(rng, fps, want - have, pixel=pix)
            add.append((ra, dec, z, mr, np.full(want - have, pix)))
    out = {k: v[keep] for k, v in core.items()}
    if add:
        out["COMP"] = np.concatenate([out["COMP"]] + [np.full(len(a[0]), HIGH, np.int8) for a in add])
        for j, key in enumerate(("RA", "DEC", "Z", "MR", "HP")):
            out[key] = np.concatenate([out[key]] + [a[j] for a in add])
    return out


def _in_pixel(rng, pixel, n):
    lon, lat = _HP1.healpix_to_lonlat(np.full(n, pixel), dx=rng.random(n), dy=rng.random(n))
    return lon.to_value(u.deg) % 360.0, lat.to_value(u.deg)


def _fill_empty_pixels(rng, core, min_rows: int) -> dict:
    """Every nside-1 file gets at least ``min_rows`` rows (the real twelve are never empty):
    beyond-ZLIMU galaxies placed anywhere in the short pixels, outside the void footprint,
    replacing as many random beyond-ZLIMU rows elsewhere (the total row count is kept)."""
    counts = np.bincount(core["HP"], minlength=12)
    need = np.maximum(min_rows - counts, 0)
    if need.sum() == 0:
        return core
    donors = np.flatnonzero((core["COMP"] == HIGH) & (counts[core["HP"]] > 2 * min_rows))
    drop = rng.choice(donors, int(need.sum()), replace=False)
    keep = np.ones(len(core["COMP"]), dtype=bool)
    keep[drop] = False
    out = {k: v[keep] for k, v in core.items()}
    add = {k: [] for k in ("RA", "DEC", "Z", "MR", "HP")}
    for pix in np.flatnonzero(need):
        k = int(need[pix])
        ra, dec = _in_pixel(rng, pix, k)
        z = rng.uniform(sky.ZLIMU + 0.01, Z_HIGH_MAX, k)
        for key, val in (("RA", ra), ("DEC", dec), ("Z", z),
                         ("MR", sky.sample_mag(rng, np.full(k, -23.5), sky.mag_limit(z))),
                         ("HP", np.full(k, pix))):
            add[key].append(val)
    for key, parts in add.items():
        out[key] = np.concatenate([out[key]] + parts)
    out["COMP"] = np.concatenate([out["COMP"], np.full(int(need.sum()), HIGH, np.int8)])
    return out


def _targeting(rng, core) -> None:
    """SPECTYPE, ZWARN, DELTACHI2, targeting bits, SURVEY/PROGRAM, TARGETID, HEALPIX."""
    comp = core["COMP"]
    n = len(comp)
    spectype = np.zeros(n, np.int8)  # index into SPECTYPE_CODES
    spectype[comp == QSO] = 1
    spectype[comp == STAR] = 2
    zwarn = np.zeros(n, np.int16)
    dchi2 = 10 ** rng.normal(2.9, 0.55, n)  # typically hundreds to thousands
    bgs = np.full(n, 1 << formats.BGS_TARGET_BITS["BGS_BRIGHT"], np.int64)
    survey = np.zeros(n, np.int8)
    program = np.zeros(n, np.int8)

    # non-tracer rows fail things at realistic rates
    other = comp != TRACER
    r = rng.random(n)
    zw = other & (r < 0.03)
    zwarn[zw] = rng.choice([1 << 2, 1 << 1, 1 << 4, (1 << 2) | (1 << 9), 1 << 5], zw.sum())
    dchi2[zw] = rng.uniform(0.5, 12.0, zw.sum())
    low = other & (r >= 0.03) & (r < 0.08)
    dchi2[low] = rng.uniform(9.0, 40.0, low.sum())
    faint_bit = other & (rng.random(n) < 0.22)
    bgs[faint_bit] = 1 << formats.BGS_TARGET_BITS["BGS_FAINT"]
    nonmain = other & (rng.random(n) < 0.012)
    survey[nonmain] = rng.integers(0, len(SURVEYS), nonmain.sum())
    program[nonmain] = rng.integers(0, len(PROGRAMS), nonmain.sum())
    program[nonmain & (survey == 0) & (program == 0)] = 1  # not main/bright after all

    # the failing volume-limited galaxies: exactly one reason each
    f = np.flatnonzero(comp == FAIL)
    reason = rng.choice(5, len(f), p=[0.3, 0.3, 0.25, 0.1, 0.05])
    zwarn[f] = 0
    dchi2[f] = 10 ** rng.normal(2.9, 0.55, len(f))
    bgs[f] = 1 << formats.BGS_TARGET_BITS["BGS_BRIGHT"]
    survey[f] = 0
    program[f] = 0
    i = f[reason == 0]
    zwarn[i] = rng.choice([1 << 2, 1 << 1, 1 << 4, 1 << 5], len(i))
    dchi2[i] = rng.uniform(0.5, 12.0, len(i))
    i = f[reason == 1]
    dchi2[i] = rng.uniform(5.0, 39.5, len(i))
    i = f[reason == 2]
    bgs[i] = rng.choice([1 << formats.BGS_TARGET_BITS["BGS_FAINT"],
                         1 << formats.BGS_TARGET_BITS["BGS_WISE"],
                         1 << formats.BGS_TARGET_BITS["BGS_FAINT_HIP"]], len(i))
    i = f[reason == 3]
    survey[i] = rng.integers(1, len(SURVEYS), len(i))
    program[i] = rng.integers(0, len(PROGRAMS), len(i))
    i = f[reason == 4]
    spectype[i] = rng.choice([1, 2], len(i))
    tr = comp == TRACER
    dchi2[tr] = 40.5 + 10 ** rng.normal(2.8, 0.5, tr.sum())
    dchi2 = sky.nudge_away(dchi2, 40.0, 0.01)

    # stars are mostly MWS targets; a few stars / quasars carry BGS bits
    star = comp == STAR
    bgs[star & (rng.random(n) < 0.7)] = 0
    mws = np.where(star, np.int64(1) << rng.integers(0, 5, n), 0).astype(np.int64)
    desi = np.zeros(n, np.int64)
    desi[bgs != 0] |= np.int64(1) << formats.DESI_TARGET_BITS["BGS_ANY"]
    desi[mws != 0] |= np.int64(1) << formats.DESI_TARGET_BITS["MWS_ANY"]
    desi[comp == QSO] |= np.int64(1) << formats.DESI_TARGET_BITS["QSO"]
    # north/south photometry: BGS_BRIGHT_NORTH / _SOUTH alongside BGS_BRIGHT, as desitarget sets
    north = (core["DEC"] > 32.375) & (formats.cap_of_ra(core["RA"]) == "NGC")
    bb = (bgs & (1 << formats.BGS_TARGET_BITS["BGS_BRIGHT"])) != 0
    bgs[bb & north] |= 1 << formats.BGS_TARGET_BITS["BGS_BRIGHT_NORTH"]
    bgs[bb & ~north] |= 1 << formats.BGS_TARGET_BITS["BGS_BRIGHT_SOUTH"]

    core.update({"SPECTYPE": spectype, "ZWARN": zwarn, "DELTACHI2": dchi2, "BGS_TARGET": bgs,
                 "MWS_TARGET": mws, "DESI_TARGET": desi, "SURVEY": survey, "PROGRAM": program,
                 "NORTH": north})
    core["TARGETID"] = _targetids(rng, north)
    core["HEALPIX"] = hp64(core["RA"], core["DEC"]).astype(np.int32)
    core["HP"] = core["HP"].astype(np.int8)
    core["MR"] = core["MR"].astype(np.float32)


def _targetids(rng, north) -> np.ndarray:
    """Unique DESI-like TARGETIDs: RELEASE << 40 | BRICKID << 22 | OBJID (2.4e15 .. 4.4e16)."""
    n = len(north)
    release = np.where(north, 9010, 9011).astype(np.int64)
    odd = rng.random(n) < 0.04  # secondary / other-release targets span the full range
    release[odd] = rng.integers(2200, 40001, odd.sum())
    tid = (release << 40) | (rng.integers(0, 662_174, n).astype(np.int64) << 22) \
        | rng.integers(0, 1 << 22, n).astype(np.int64)
    while True:
        _, first, counts = np.unique(tid, return_index=True, return_counts=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        if not dup.any():
            return tid
        tid[dup] = (tid[dup] >> 22 << 22) | rng.integers(0, 1 << 22, dup.sum()).astype(np.int64)
