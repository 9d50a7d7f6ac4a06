"""The survey footprint rebuilt from the tracers, the radial limits and the 10 Mpc/h edge rule.

Where a file carries VAST's own MASK HDU (files VAST writes itself), that is the mask
(:func:`mask_footprint`). DESIVAST ships no mask, so it is otherwise rebuilt as VAST's
VoidFinder builds its own (science.md): an
RA-Dec grid of shape (360 N, 180 N), N = 1 + int(radians(1) * DLIMU / 10) cells per degree; a
tracer at (ra mod 360, dec) marks cell (int(N ra), int(N dec) + 90 N), int truncating toward
zero; one smoothing pass over the *unsmoothed* grid fills an empty cell with at least 3 of its 4
index-space neighbours in (no wrap at RA 0/360; the outermost rows and columns are never
filled). A point is outside when its cell is out, or r == 0, r < DLIML or r > DLIMU; it is near
the edge when any of the six points EDGE_BUFFER away along +-x, +-y, +-z is outside.

Also the catalogue's redshift range and cap (:func:`in_catalogue`): a galaxy with Z <= 0,
Z > ZLIMU or in the other cap cannot be classified by that cap's catalogue (flag 9, never wall).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formats

__all__ = ["EDGE_BUFFER", "cells_per_degree", "cell_index", "footprint_grid", "Footprint",
           "xyz_to_radec_r", "in_catalogue", "HealpixFootprint", "mask_footprint"]

EDGE_BUFFER = 10.0  # Mpc/h


def cells_per_degree(dlimu: float) -> int:
    """VAST's mask resolution: about one cell per 10 Mpc/h at the far limit."""
    return 1 + int(np.radians(1.0) * float(dlimu) / 10.0)


def cell_index(ra, dec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid cell (i, j) of (ra, dec) in degrees: (int(N (ra mod 360)), int(N dec) + 90 N).

    np.trunc is Python's int() (toward zero): dec in (-1/N, 1/N) all land in row 90 N. The
    indices are clipped into the grid (dec = +90 exactly would be row 180 N).
    """
    ra = np.mod(np.asarray(ra, dtype=np.float64), 360.0)
    i = np.trunc(n * ra).astype(np.int64)
    j = np.trunc(n * np.asarray(dec, dtype=np.float64)).astype(np.int64) + 90 * n
    np.clip(i, 0, 360 * n - 1, out=i)
    np.clip(j, 0, 180 * n - 1, out=j)
    return i, j


def footprint_grid(ra, dec, dlimu: float) -> np.ndarray:
    """Boolean (360 N, 180 N) grid marked by the tracers, then smoothed once."""
    n = cells_per_degree(dlimu)
    grid = np.zeros((360 * n, 180 * n), dtype=bool)
    if len(np.atleast_1d(ra)):
        i, j = cell_index(ra, dec, n)
        grid[i, j] = True
    g = grid.astype(np.int8)
    neighbours = np.zeros(grid.shape, dtype=np.int8)
    neighbours[1:-1, 1:-1] = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return grid | (neighbours >= 3)  # the border of `neighbours` stays 0: never filled


def xyz_to_radec_r(xyz: np.ndarray):
    """(ra in [0, 360), dec, r) in degrees and the units of xyz; dec = 0 where r == 0."""
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    return _radec_r(*(np.ascontiguousarray(xyz[:, k]) for k in range(3)))


def _radec_r(x, y, z):
    r = np.sqrt(x * x + y * y + z * z)
    ra = np.degrees(np.arctan2(y, x))
    ra[ra < 0] += 360.0
    ra[ra >= 360.0] = 0.0  # -tiny + 360 rounds to 360
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.degrees(np.arcsin(np.clip(z / r, -1.0, 1.0)))
    dec[~(r > 0)] = 0.0
    return ra, dec, r


@dataclass
class Footprint:
    """A cap's rebuilt mask and radial limits (picklable: a grid and two floats)."""

    grid: np.ndarray
    dliml: float
    dlimu: float

    @property
    def n(self) -> int:
        return self.grid.shape[0] // 360

    @classmethod
    def from_tracers(cls, tracer_xyz: np.ndarray, dliml: float, dlimu: float) -> "Footprint":
        """The mask of the tracers at comoving positions ``tracer_xyz`` (GALZONE X, Y, Z)."""
        ra, dec, _ = xyz_to_radec_r(tracer_xyz)
        return cls(footprint_grid(ra, dec, dlimu), float(dliml), float(dlimu))

    def outside(self, xyz: np.ndarray) -> np.ndarray:
        """True where a point is outside the footprint or the radial range (NaN: outside)."""
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        return self._outside(*(np.ascontiguousarray(xyz[:, k]) for k in range(3)))

    def _outside(self, x, y, z) -> np.ndarray:
        ra, dec, r = _radec_r(x, y, z)
        out = ~np.isfinite(r) | (r == 0) | (r < self.dliml) | (r > self.dlimu)
        look = np.flatnonzero(~out)
        i, j = cell_index(ra[look], dec[look], self.n)
        out[look] = ~self.grid[i, j]
        return out

    def near_edge(self, xyz: np.ndarray, buffer: float = EDGE_BUFFER) -> np.ndarray:
        """True where any of the six points ``buffer`` away along +-x, +-y, +-z is outside.

        The six-point test decides every point it is run on; it is skipped only for points
        that provably pass it (:meth:`_surely_inside`), the bulk of a survey's interior.
        """
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        cols = [np.ascontiguousarray(xyz[:, k]) for k in range(3)]
        near = np.zeros(len(xyz), dtype=bool)
        test = np.flatnonzero(~self._surely_inside(*cols, buffer))
        for axis in range(3):
            for sign in (1.0, -1.0):
                todo = test[~near[test]]  # a point already near the edge needs no more tests
                p = [c[todo] for c in cols]
                p[axis] += sign * buffer
                near[todo] = self._outside(*p)
        return near

    def ball_inside(self, xyz: np.ndarray, radius) -> np.ndarray:
        """True where the whole ball of ``radius`` (one, or one per point) around each point
        lies in the footprint and the radial range; False where that is not certain (the
        test of :meth:`_surely_inside`, conservative)."""
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        return self._surely_inside(*(np.ascontiguousarray(xyz[:, k]) for k in range(3)),
                                   np.asarray(radius, dtype=np.float64))

    def _surely_inside(self, x, y, z, buffer: float) -> np.ndarray:
        """True for points whose whole ball of radius ``buffer`` is inside the footprint.

        Any point q with |q - p| <= b < r = |p| lies within the angle asin(b / r) of p, so
        within dec +- theta and, where |dec| + theta < 90, RA +- asin(sin theta / cos(|dec| +
        theta)); and r - b <= |q| <= r + b. Cell indices are monotonic in RA and Dec, so if
        every cell of the index rectangle spanned by those bounds is in, and the radial range
        is inside (DLIML, DLIMU], no point of the ball is outside. Bounds are widened by a
        relative 1e-6 against round-off; points near RA 0/360 or the poles are left to the
        exact test.
        """
        ra, dec, r = _radec_r(x, y, z)
        ok = np.isfinite(r) & (r - buffer > self.dliml + 1e-6 * r) \
            & (r + buffer < self.dlimu - 1e-6 * r) & (r > buffer)
        idx = np.flatnonzero(ok)
        ra, dec, r = ra[idx], dec[idx], r[idx]
        if np.ndim(buffer):  # one radius per point
            buffer = np.asarray(buffer)[idx]
        theta = np.arcsin(buffer / r)
        far = np.abs(np.radians(dec)) + theta * (1 + 1e-6)
        good = far < np.radians(89.0)
        sin_ra = np.sin(theta) / np.cos(np.where(good, far, 0.0))
        good &= sin_ra < 1.0
        dra = np.degrees(np.arcsin(np.where(good, sin_ra, 0.0))) * (1 + 1e-6) + 1e-9
        ddec = np.degrees(theta) * (1 + 1e-6) + 1e-9
        good &= (ra - dra >= 0) & (ra + dra < 360.0)
        n = self.n
        i0 = np.trunc(n * (ra - dra)).astype(np.int64)
        i1 = np.trunc(n * (ra + dra)).astype(np.int64)
        j0 = np.trunc(n * (dec - ddec)).astype(np.int64) + 90 * n
        j1 = np.trunc(n * (dec + ddec)).astype(np.int64) + 90 * n
        good &= (i0 >= 0) & (i1 < 360 * n) & (j0 >= 0) & (j1 < 180 * n)
        i0, i1, j0, j1 = (np.where(good, a, 0) for a in (i0, i1, j0, j1))
        sat = self._summed()
        count = sat[i1 + 1, j1 + 1] - sat[i0, j1 + 1] - sat[i1 + 1, j0] + sat[i0, j0]
        good &= count == (i1 - i0 + 1) * (j1 - j0 + 1)
        out = np.zeros(len(x), dtype=bool)
        out[idx[good]] = True
        return out

    def _summed(self) -> np.ndarray:
        """Summed-area table of the grid: cells in over any index rectangle in four reads."""
        if getattr(self, "_sat", None) is None or self._sat.shape[0] != self.grid.shape[0] + 1:
            sat = np.zeros((self.grid.shape[0] + 1, self.grid.shape[1] + 1), dtype=np.int64)
            sat[1:, 1:] = self.grid.astype(np.int64).cumsum(0).cumsum(1)
            self._sat = sat
        return self._sat


def in_catalogue(z, ra, cap: str, zlimu: float, own_cap=None) -> np.ndarray:
    """True where the catalogue of ``cap`` can classify a galaxy: 0 < Z <= ZLIMU and the
    galaxy's own cap (formats.cap_of_ra: NGC is 83 < RA < 304 deg) is ``cap``. Everything else
    is OUTSIDE (9) for that catalogue, whatever its position. ``own_cap``: cap_of_ra(ra) if
    already computed."""
    z = np.asarray(z, dtype=np.float64)
    own = formats.cap_of_ra(ra) if own_cap is None else np.asarray(own_cap)
    return (z > 0) & (z <= float(zlimu)) & (own == cap)


@dataclass
class HealpixFootprint(Footprint):
    """A survey mask given as a HEALPix map (V2's MASK HDU: RING order, ``nside`` from the
    primary header's NSIDE) with the radial limits; ``grid`` holds the in-survey flag of each
    pixel. Every point takes the exact test (no summed-area shortcut)."""

    nside: int = 0

    def _outside(self, x, y, z) -> np.ndarray:
        import astropy.units as u
        from astropy_healpix import HEALPix

        ra, dec, r = _radec_r(x, y, z)
        out = ~np.isfinite(r) | (r == 0) | (r < self.dliml) | (r > self.dlimu)
        look = np.flatnonzero(~out)
        pix = HEALPix(self.nside, "ring").lonlat_to_healpix(ra[look] * u.deg, dec[look] * u.deg)
        out[look] = ~self.grid[np.asarray(pix, np.int64)]
        return out

    def _surely_inside(self, x, y, z, buffer: float) -> np.ndarray:
        return np.zeros(len(x), dtype=bool)


def mask_footprint(scheme: str, resolution: int, cells, dliml: float, dlimu: float) -> Footprint:
    """The footprint of a file's own MASK HDU (its in-survey cells as convert lists them in
    survey_masks.parquet): "radec", VoidFinder's (360 N, 180 N) grid with N = MSKRES, used as
    it is (VAST's mask is already smoothed), or "healpix_ring", V2's HEALPix map."""
    cells = np.asarray(cells, np.int64)
    if scheme == "radec":
        grid = np.zeros((360 * resolution) * (180 * resolution), dtype=bool)
        grid[cells] = True
        return Footprint(grid.reshape(360 * resolution, 180 * resolution), float(dliml),
                         float(dlimu))
    if scheme == "healpix_ring":
        grid = np.zeros(12 * resolution ** 2, dtype=bool)
        grid[cells] = True
        return HealpixFootprint(grid, float(dliml), float(dlimu), nside=int(resolution))
    raise ValueError(f"unknown survey mask scheme {scheme!r}")
