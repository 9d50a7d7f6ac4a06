"""The void-centric distance of every galaxy, per algorithm, in units of the void's effective
radius: to the centre of its own void for a void galaxy (environment's void id; the same centre
and radius as environment's r_over_reff), to the centre of the nearest void (comoving distance
to the centre, scipy's cKDTree over the catalogue's centres) for wall and edge galaxies, NaN for
galaxies outside the catalogue (flag 9) and where the void's radius is unknown."""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..environment.flags import NO_VOID, OUTSIDE
from ..environment.voids import VoidTable

__all__ = ["void_centric"]


def void_centric(table: VoidTable, xyz: np.ndarray, flag: np.ndarray, void: np.ndarray,
                 workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(r / R_eff, the void it is measured to) for galaxies at ``xyz`` with environment's
    ``flag`` and ``void`` (NO_VOID for none) under one catalogue ``table``; (NaN, NO_VOID)
    where the galaxy is outside or no void applies."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    flag = np.asarray(flag)
    void = np.asarray(void, np.int64).copy()
    dist = np.full(len(xyz), np.nan)
    usable = np.isfinite(table.r_eff) & (table.r_eff > 0)
    free = np.flatnonzero((flag != OUTSIDE) & (void == NO_VOID) & np.all(np.isfinite(xyz), 1))
    if len(free) and usable.any():
        rows = np.flatnonzero(usable)
        _, i = cKDTree(table.centre[rows]).query(xyz[free], k=1, workers=workers)
        void[free] = table.void[rows[i]]
    void[flag == OUTSIDE] = NO_VOID
    has = void != NO_VOID
    dist[has], _ = table.describe(void[has], xyz[has])
    return dist, np.where(np.isfinite(dist), void, NO_VOID)
