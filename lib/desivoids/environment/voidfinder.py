"""VoidFinder membership: a void is the union of its HOLES spheres.

A galaxy is in a void (flag 1) when its comoving position lies inside a hole by more than the
surface tolerance, |x - centre| < RADIUS - surface_tol, tested *before* the footprint (a hole
galaxy outside the mask is still 1); its void is the VOID of the first such hole in file order
(holes.hole_index). Other galaxies are 9 outside the footprint, 2 near its edge, else 0.

Surface galaxies: VoidFinder grows each hole until it touches wall galaxies, so the galaxies
that bound a hole lie on its surface to rounding (|d - R| ~ 1e-12 Mpc/h), and VAST's strict
|x - c| < RADIUS decides them by the last bits of two codes' arithmetic. Here a galaxy within
``surface_tol`` of a hole's surface and inside no hole by more than it is a *surface galaxy*:
not a void galaxy (footprint rules decide it), and recorded (Assignment.surface) with whether
VAST's strict rule would call it void, so the answer can be shown both ways (methods.md).

Speed: VAST tests galaxies one at a time against every hole. Here the galaxies of a chunk go
into a KD-tree and every hole asks it, in one vectorised ball query (each hole with its own
radius plus the tolerance), for the galaxies that can be inside or on its surface: only
(galaxy, hole) pairs that touch are ever formed, however different the radii are. The exact
distance tests on those pairs decide, and the smallest file index per galaxy is its hole.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy.spatial import cKDTree

from .. import formats
from .flags import (EDGE, NO_VOID, NOT_SURFACE, OUTSIDE, SURFACE, SURFACE_STRICT_VOID, VOID,
                    WALL, Assignment)
from .mask import Footprint
from .voids import VoidTable

__all__ = ["SURFACE_TOL", "HoleHits", "HoleSpheres", "VoidFinderMembership"]

#: default surface tolerance in Mpc/h (the environment stage's ``surface_tol``): above VAST's
#: 1e-12 Mpc/h contact and the 6e-4 Mpc/h by which two codes' positions differ, far below any
#: physical scale (methods.md)
SURFACE_TOL = 1e-3

#: holes per ball query: bounds the Python lists the query returns at once
_HOLE_BLOCK = 20_000


def inside_hole(distance, radius, surface_tol):
    """Inside a hole by more than the tolerance, |x - c| < RADIUS - surface_tol: a galaxy on
    (or within the tolerance of) a hole's surface is not in it."""
    return distance < radius - surface_tol


def on_surface(distance, radius, surface_tol):
    """Within the tolerance of a hole's surface, |d - RADIUS| <= surface_tol."""
    return np.abs(distance - radius) <= surface_tol


@dataclass
class HoleHits:
    """Per point: the first hole (file order) containing it by more than the tolerance (-1 if
    none); whether it is a surface galaxy (on a surface, in no hole); whether VAST's strict
    |x - c| < RADIUS puts it in some hole."""

    first: np.ndarray    # int64
    surface: np.ndarray  # bool
    strict: np.ndarray   # bool

    def surface_code(self) -> np.ndarray:
        """Assignment.surface: NOT_SURFACE, SURFACE or SURFACE_STRICT_VOID."""
        return np.where(~self.surface, NOT_SURFACE,
                        np.where(self.strict, SURFACE_STRICT_VOID, SURFACE)).astype(np.int8)


@dataclass
class HoleSpheres:
    """The holes of one cap in file order (plain arrays: cheap to pickle)."""

    centre: np.ndarray  # (n, 3)
    radius: np.ndarray  # (n,)
    void: np.ndarray    # (n,) VOID of each hole

    def __post_init__(self):
        self.centre = np.ascontiguousarray(self.centre, dtype=np.float64).reshape(-1, 3)
        self.radius = np.asarray(self.radius, dtype=np.float64)
        self.void = np.asarray(self.void, dtype=np.int64)

    @classmethod
    def from_columns(cls, hole_index, x, y, z, radius, void) -> "HoleSpheres":
        """From holes-table columns of one cap; rows are put in hole_index (file) order."""
        order = np.argsort(np.asarray(hole_index, dtype=np.int64), kind="stable")
        return cls(np.column_stack([np.asarray(x, np.float64)[order],
                                    np.asarray(y, np.float64)[order],
                                    np.asarray(z, np.float64)[order]]),
                   np.asarray(radius, np.float64)[order], np.asarray(void, np.int64)[order])

    def classify(self, xyz: np.ndarray, surface_tol: float = SURFACE_TOL,
                 workers: int = -1) -> HoleHits:
        """Each point against every hole: first containing hole, surface galaxy, strict rule."""
        if not surface_tol >= 0:
            raise ValueError(f"surface_tol must be >= 0 Mpc/h, got {surface_tol!r}")
        xyz = np.ascontiguousarray(xyz, dtype=np.float64).reshape(-1, 3)
        nh = len(self.radius)
        first = np.full(len(xyz), nh, dtype=np.int64)
        touch = np.zeros(len(xyz), dtype=bool)
        strict = np.zeros(len(xyz), dtype=bool)
        ok = np.all(np.isfinite(xyz), axis=1)
        if nh and ok.any():
            keep = np.flatnonzero(ok)
            tree = cKDTree(xyz[keep], balanced_tree=False, compact_nodes=False)
            for s in range(0, nh, _HOLE_BLOCK):
                c, r = self.centre[s:s + _HOLE_BLOCK], self.radius[s:s + _HOLE_BLOCK]
                found = tree.query_ball_point(c, r + surface_tol, workers=workers,
                                              return_sorted=False)
                count = np.fromiter(map(len, found), np.int64, len(found))
                gal = keep[np.fromiter(chain.from_iterable(found), np.int64, int(count.sum()))]
                hole = np.repeat(np.arange(s, s + len(found)), count)
                d = np.sqrt(np.sum((xyz[gal] - self.centre[hole]) ** 2, axis=1))
                rad = self.radius[hole]
                ins = inside_hole(d, rad, surface_tol)
                np.minimum.at(first, gal[ins], hole[ins])
                touch[gal[on_surface(d, rad, surface_tol)]] = True
                strict[gal[d < rad]] = True
        first[first == nh] = -1
        return HoleHits(first, touch & (first < 0), strict)

    def first_containing(self, xyz: np.ndarray, surface_tol: float = SURFACE_TOL,
                         workers: int = -1) -> np.ndarray:
        """File-order index of the first hole containing each point by more than the
        tolerance, -1 if none."""
        return self.classify(xyz, surface_tol, workers).first


@dataclass
class VoidFinderMembership:
    """VoidFinder membership of one cap: holes, voids, footprint and redshift limit."""

    cap: str
    holes: HoleSpheres
    voids: VoidTable
    footprint: Footprint
    zlimu: float
    omega_m: float
    algorithm: str = "VoidFinder"
    surface_tol: float = SURFACE_TOL

    def assign(self, positions, rows: np.ndarray | None = None) -> Assignment:
        """Assignment of ``positions`` (a :class:`~desivoids.environment.membership.Positions`
        of galaxies inside this catalogue's range; ``rows`` selects some of them)."""
        xyz = positions.xyz if rows is None else positions.xyz[rows]
        hits = self.holes.classify(xyz, self.surface_tol)
        first = hits.first
        inside = first >= 0
        out = positions.outside(self.footprint, rows)
        near = positions.near_edge(self.footprint, rows)
        flag = np.where(inside, VOID, np.where(out, OUTSIDE, np.where(near, EDGE, WALL)))
        void = np.where(inside, self.holes.void[np.maximum(first, 0)], NO_VOID)
        dist, interior = self.voids.describe(void, xyz)
        return Assignment(self.algorithm, np.full(len(xyz), formats.CAPS.index(self.cap), np.int8),
                          flag.astype(np.int8), void, dist, interior, hits.surface_code())
