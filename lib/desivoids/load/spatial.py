"""Geometry shared by the loader and the queries: unit vectors, the Morton order and blocks of
galaxy_positions, and the bounding boxes of spheres and cones.

Every box computed here is a *filter* that must contain every galaxy the exact test accepts;
the exact tests (squared distances on stored float64 columns, see :mod:`.queries`) decide. Boxes
are therefore padded outward by far more than float64 rounding, never shrunk.

Cones are boxes on the unit sphere: for an axis e at angle a from the cone's centre u, the
e-component of every unit vector within angle t of u lies in [cos(min(a + t, pi)),
cos(max(a - t, 0))]. This is exact at the poles and has no RA = 0/360 seam, because it never
looks at RA. A sphere of radius R around a centre at distance d > R lies within the cone of
half-angle asin(R/d) around the centre's direction, and at comoving distances [d - R, d + R].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["unit_vectors", "morton_order", "Blocks", "make_blocks", "cap_box", "sphere_box",
           "cone_box", "chord2", "NO_DISTANCE", "UNBOUNDED", "PAD"]

#: Comoving distance stored in galaxy_blocks for galaxies without a comoving position (Z < 0).
NO_DISTANCE = -1.0
#: Stand-in for an unconstrained box side (finite: the R*Tree stores float32, cube float64).
UNBOUNDED = 1.0e30
#: Relative/absolute outward padding of every filter box.
PAD = 1.0e-9


def unit_vectors(ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, z) of the unit vector towards (ra, dec) in degrees, float64."""
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cd = np.cos(dec)
    return cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)


def _spread3(v: np.ndarray) -> np.ndarray:
    """Spread the low 21 bits of v so that bit i lands at bit 3i (Morton interleave)."""
    v = v.astype(np.uint64) & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF),
                        (8, 0x100F00F00F00F00F), (4, 0x10C30C30C30C30C3),
                        (2, 0x1249249249249249)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def _morton3(p: np.ndarray) -> np.ndarray:
    """Morton key of points p (n, 3), quantized to 21 bits per axis over their bounding cube."""
    if len(p) == 0:
        return np.zeros(0, dtype=np.uint64)
    lo = p.min(axis=0)
    span = float((p.max(axis=0) - lo).max()) or 1.0
    q = np.floor((p - lo) / span * (2**21 - 1)).astype(np.int64).clip(0, 2**21 - 1)
    return _spread3(q[:, 0]) | (_spread3(q[:, 1]) << np.uint64(1)) | \
        (_spread3(q[:, 2]) << np.uint64(2))


def morton_order(targetid, unit, comoving) -> tuple[np.ndarray, int]:
    """(row order, rows with a comoving position) along a Morton curve: galaxies with a comoving
    position by their comoving (x, y, z), then those without (comoving NaN) by their unit vector;
    ties by targetid, so the
    order (and every block) depends only on the data, not on the order of the Parquet parts."""
    targetid = np.asarray(targetid)
    unit = np.asarray(unit, dtype=np.float64)
    comoving = np.asarray(comoving, dtype=np.float64)
    has = np.isfinite(comoving).all(axis=1)
    idx_a, idx_b = np.flatnonzero(has), np.flatnonzero(~has)
    order_a = idx_a[_by_key_then(_morton3(comoving[idx_a]), targetid[idx_a])]
    order_b = idx_b[_by_key_then(_morton3(unit[idx_b]), targetid[idx_b])]
    return np.concatenate([order_a, order_b]), len(order_a)


def _by_key_then(key: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """The order of ``np.lexsort((tie, key))``: by key, equal keys by ``tie``. A stable sort
    of the key alone (a radix sort for integers), then a lexsort of the few rows whose keys
    are equal: 0.5 s instead of 1.4 s for 6.4e6 galaxies with 13,419 ties (measured)."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    same = k[1:] == k[:-1]
    if same.any():
        tied = np.zeros(len(k), dtype=bool)
        tied[1:] |= same
        tied[:-1] |= same
        at = np.flatnonzero(tied)  # runs of equal keys, in key order
        rows = order[at]
        order[at] = rows[np.lexsort((tie[rows], k[at]))]
    return order


@dataclass(frozen=True)
class Blocks:
    """Bounding boxes of runs of galaxy_positions: ``lo``/``hi`` are (n_blocks, 5) arrays over
    (unit_x, unit_y, unit_z, z, r); block i holds positions pos_lo[i]..pos_hi[i]."""

    lo: np.ndarray
    hi: np.ndarray
    pos_lo: np.ndarray
    pos_hi: np.ndarray

    def __len__(self) -> int:
        return len(self.pos_lo)

    def to_arrow(self, dims: tuple[str, ...]):
        """The galaxy_blocks rows (block, <dim>_min, <dim>_max ..., pos_lo, pos_hi) as Arrow,
        the same for every backend."""
        import pyarrow as pa

        cols: dict[str, object] = {"block": pa.array(range(len(self)), pa.int64())}
        for i, d in enumerate(dims):
            cols[f"{d}_min"] = self.lo[:, i]
            cols[f"{d}_max"] = self.hi[:, i]
        cols["pos_lo"] = self.pos_lo
        cols["pos_hi"] = self.pos_hi
        return pa.table(cols)


def make_blocks(dims: np.ndarray, n_with_distance: int, block_size: int) -> Blocks:
    """Blocks of ``block_size`` consecutive rows of ``dims`` (rows already in Morton order,
    columns unit_x, unit_y, unit_z, z, r). Blocks never mix rows with and without a comoving
    distance."""
    n = len(dims)
    starts = np.concatenate([np.arange(0, n_with_distance, block_size),
                             np.arange(n_with_distance, n, block_size)]).astype(np.int64)
    if n == 0:
        empty = np.zeros((0, dims.shape[1]))
        return Blocks(empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
    ends = np.append(starts[1:], n) - 1
    lo = np.minimum.reduceat(dims, starts, axis=0)
    hi = np.maximum.reduceat(dims, starts, axis=0)
    return Blocks(lo, hi, starts, ends)


def _pad_interval(lo: float, hi: float) -> tuple[float, float]:
    return (lo - PAD * (1.0 + abs(lo)), hi + PAD * (1.0 + abs(hi)))


def cap_box(u: np.ndarray, theta: float) -> list[tuple[float, float]]:
    """Per-axis ranges of the unit vectors within angle ``theta`` (radians) of unit vector u."""
    out = []
    for k in range(3):
        a = float(np.arccos(np.clip(u[k], -1.0, 1.0)))
        lo = float(np.cos(min(a + theta, np.pi)))
        hi = float(np.cos(max(a - theta, 0.0)))
        out.append(_pad_interval(lo, hi))
    return out


def sphere_box(x: float, y: float, z: float, radius: float) -> dict[str, tuple[float, float]]:
    """Filter box over (unit_x, unit_y, unit_z, z, r) for a comoving sphere."""
    c = np.array([x, y, z], dtype=np.float64)
    d = float(np.sqrt(c @ c))
    box: dict[str, tuple[float, float]] = {"z": (-UNBOUNDED, UNBOUNDED)}
    if d > radius * (1.0 + 1e-6) + 1e-6:
        theta = float(np.arcsin(radius / d))
        theta = theta * (1.0 + 1e-6) + 1e-9
        ux, uy, uz = cap_box(c / d, theta)
        box.update(unit_x=ux, unit_y=uy, unit_z=uz, r=_pad_interval(d - radius, d + radius))
    else:  # the sphere holds (or nearly holds) the observer: every direction; r >= 0 still
        # excludes the blocks of galaxies without a comoving position (r = NO_DISTANCE)
        full = (-1.0 - PAD, 1.0 + PAD)
        box.update(unit_x=full, unit_y=full, unit_z=full, r=(-PAD, d + radius + 1e-6))
    return box


def cone_box(ra: float, dec: float, radius_deg: float, zmin: float, zmax: float
             ) -> dict[str, tuple[float, float]]:
    """Filter box over (unit_x, unit_y, unit_z, z, r) for a cone and a redshift slice."""
    u = np.array(unit_vectors(ra, dec), dtype=np.float64)
    theta = float(np.radians(radius_deg)) * (1.0 + 1e-6) + 1e-9
    ux, uy, uz = cap_box(u, theta)
    return {"unit_x": ux, "unit_y": uy, "unit_z": uz, "z": _pad_interval(zmin, zmax),
            "r": (-UNBOUNDED, UNBOUNDED)}


def chord2(radius_deg: float) -> float:
    """Squared chord length between unit vectors ``radius_deg`` apart: the exact cone test is
    |u - u0|^2 <= chord2, well conditioned down to milliarcseconds (unlike u . u0 >= cos r)."""
    return float((2.0 * np.sin(np.radians(radius_deg) / 2.0)) ** 2)
