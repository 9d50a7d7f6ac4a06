"""VoidFinder's field galaxies: how many void galaxies are field galaxies.

VoidFinder removes isolated tracers (its *field* galaxies) before it grows holes, so field
galaxies, unlike wall galaxies, can lie inside holes. VAST writes them in a FIELD HDU (X, Y, Z,
float32, Mpc/h); DESIVAST's VAC files carry none, and then nothing is reported. A galaxy is a
field galaxy when a FIELD row lies within :data:`FIELD_MATCH` of its comoving position: VAST's
positions differ from ours by up to 6e-4 Mpc/h (and float32 rounds 300 Mpc/h to 2e-5), while
two tracers are never that close (DR7: the nearest pair is far wider).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError

__all__ = ["FIELD_MATCH", "read_field", "field_match", "field_summary"]

#: Mpc/h: a FIELD row this close to a galaxy's comoving position is that galaxy
FIELD_MATCH = 0.01


def read_field(path: str | Path) -> np.ndarray | None:
    """(n, 3) comoving positions of the FIELD HDU of a VoidFinder file, None without one.
    Column names in any case; a FIELD HDU without X, Y or Z is an InputError naming them."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul[1:] if h.name.upper() == "FIELD"), None)
        if hdu is None:
            return None
        names = {n.upper(): n for n in (hdu.columns.names or [])}
        missing = [c for c in "XYZ" if c not in names]
        if missing:
            raise InputError.all([InputError(path, "FIELD", c, "column missing (VAST writes X, "
                                             "Y, Z)") for c in missing])
        return np.column_stack([np.asarray(hdu.data[names[c]], np.float64) for c in "XYZ"])


def field_match(field_xyz: np.ndarray, xyz: np.ndarray, match: float = FIELD_MATCH
                ) -> np.ndarray:
    """Which of ``xyz`` are field galaxies (a FIELD row within ``match`` Mpc/h)."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    if len(field_xyz) == 0 or len(xyz) == 0:
        return np.zeros(len(xyz), bool)
    ok = np.all(np.isfinite(xyz), axis=1)
    d, _ = cKDTree(np.asarray(field_xyz, np.float64)).query(
        np.where(ok[:, None], xyz, 0.0), k=1, distance_upper_bound=match)
    return ok & np.isfinite(d)


def field_summary(cap: str, field_xyz: np.ndarray | None, xyz: np.ndarray, void: np.ndarray,
                  tracer: np.ndarray, match: float = FIELD_MATCH) -> dict:
    """One cap: FIELD rows, how many of them match a galaxy, and of the void galaxies (and
    void tracers) how many are field galaxies; counts are None without a FIELD HDU."""
    row = {"cap": cap, "field_hdu": field_xyz is not None, "field_galaxies": None,
           "field_matched": None, "void_galaxies": int(void.sum()),
           "void_tracers": int((void & tracer).sum()), "void_field_galaxies": None,
           "void_field_tracers": None}
    if field_xyz is None:
        return row
    is_field = field_match(field_xyz, xyz, match)
    matched = field_match(xyz[is_field], field_xyz, match) if is_field.any() \
        else np.zeros(len(field_xyz), bool)
    row.update(field_galaxies=int(len(field_xyz)), field_matched=int(matched.sum()),
               void_field_galaxies=int((void & is_field).sum()),
               void_field_tracers=int((void & is_field & tracer).sum()))
    return row
