"""VoidFinder membership: a void is the union of its HOLES spheres.

A galaxy is in a void (flag 1) when its comoving position lies strictly inside any hole,
|x - centre| < RADIUS, tested *before* the footprint (a hole galaxy outside the mask is still
1); its void is the VOID of the first containing hole in file order (holes.hole_index). Other
galaxies are 9 outside the footprint, 2 near its edge, else 0.

Speed: VAST tests galaxies one at a time against every hole. Here the galaxies of a chunk go
into a KD-tree and every hole asks it, in one vectorised ball query (each hole with its own
radius), for the galaxies within RADIUS: only (galaxy, hole) pairs that touch are ever formed,
however different the radii are. The strict test |x - c| < RADIUS on those pairs decides
(the ball query includes the surface), and the smallest file index per galaxy is its hole.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy.spatial import cKDTree

from .. import formats
from .flags import EDGE, NO_VOID, OUTSIDE, VOID, WALL, Assignment
from .mask import Footprint
from .voids import VoidTable

__all__ = ["HoleSpheres", "VoidFinderMembership"]

#: holes per ball query: bounds the Python lists the query returns at once
_HOLE_BLOCK = 20_000


def strictly_inside(distance, radius):
    """VoidFinder's rule |x - c| < RADIUS: a galaxy on a hole's surface is not in it."""
    return distance < radius


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

    def first_containing(self, xyz: np.ndarray, workers: int = -1) -> np.ndarray:
        """File-order index of the first hole strictly containing each point, -1 if none."""
        xyz = np.ascontiguousarray(xyz, dtype=np.float64).reshape(-1, 3)
        nh = len(self.radius)
        first = np.full(len(xyz), nh, dtype=np.int64)
        ok = np.all(np.isfinite(xyz), axis=1)
        if nh and ok.any():
            keep = np.flatnonzero(ok)
            tree = cKDTree(xyz[keep], balanced_tree=False, compact_nodes=False)
            for s in range(0, nh, _HOLE_BLOCK):
                c, r = self.centre[s:s + _HOLE_BLOCK], self.radius[s:s + _HOLE_BLOCK]
                found = tree.query_ball_point(c, r, workers=workers, return_sorted=False)
                count = np.fromiter(map(len, found), np.int64, len(found))
                gal = keep[np.fromiter(chain.from_iterable(found), np.int64, int(count.sum()))]
                hole = np.repeat(np.arange(s, s + len(found)), count)
                d = np.sqrt(np.sum((xyz[gal] - self.centre[hole]) ** 2, axis=1))
                inside = strictly_inside(d, self.radius[hole])
                np.minimum.at(first, gal[inside], hole[inside])
        first[first == nh] = -1
        return first


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

    def assign(self, positions, rows: np.ndarray | None = None) -> Assignment:
        """Assignment of ``positions`` (a :class:`~desivoids.environment.membership.Positions`
        of galaxies inside this catalogue's range; ``rows`` selects some of them)."""
        xyz = positions.xyz if rows is None else positions.xyz[rows]
        first = self.holes.first_containing(xyz)
        inside = first >= 0
        out = positions.outside(self.footprint, rows)
        near = positions.near_edge(self.footprint, rows)
        flag = np.where(inside, VOID, np.where(out, OUTSIDE, np.where(near, EDGE, WALL)))
        void = np.where(inside, self.holes.void[np.maximum(first, 0)], NO_VOID)
        dist, interior = self.voids.describe(void, xyz)
        return Assignment(self.algorithm, np.full(len(xyz), formats.CAPS.index(self.cap), np.int8),
                          flag.astype(np.int8), void, dist, interior)
