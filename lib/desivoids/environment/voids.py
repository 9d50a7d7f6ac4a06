"""Per-void properties a member galaxy carries: distance to the centre in effective radii, and
whether the void is interior.

VoidFinder: centre = MAXIMALS X, Y, Z (the maximal sphere's), effective radius R_EFF, interior
when EDGE == 0. V2: centre = VOIDS X, Y, Z, effective radius RADIUS, interior when
EDGE_AREA / TOT_AREA <= 0.1. In the convert stage's voids table these are x, y, z, r_eff, edge
and edge_area_ratio.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formats
from ..convert.columns import V2_EDGE_AREA_RATIO
from .flags import EDGE_VOID, INTERIOR, NO_VOID, UNKNOWN

__all__ = ["VoidTable", "lookup"]


def lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row of each query value in the sorted unique int64 ``keys``, -1 when absent.

    Ids here are small non-negative integers (void and zone numbers), so a dense table answers
    in one gather; other keys fall back to a binary search."""
    query = np.asarray(query, dtype=np.int64)
    out = np.full(len(query), -1, dtype=np.int64)
    if len(keys) == 0 or len(query) == 0:
        return out
    lo, hi = int(keys[0]), int(keys[-1])
    if lo >= 0 and hi < 4 * len(keys) + 1_000_000:
        table = np.full(hi + 1, -1, dtype=np.int64)
        table[keys] = np.arange(len(keys))
        ok = np.flatnonzero((query >= 0) & (query <= hi))
        out[ok] = table[query[ok]]
        return out
    pos = np.clip(np.searchsorted(keys, query), 0, len(keys) - 1)
    hit = keys[pos] == query
    out[hit] = pos[hit]
    return out


@dataclass
class VoidTable:
    """Voids of one (algorithm, cap), sorted by void id (picklable arrays)."""

    void: np.ndarray       # int64, sorted, unique
    centre: np.ndarray     # (n, 3) float64
    r_eff: np.ndarray      # float64, NaN when null
    interior: np.ndarray   # int8 tri-state

    @classmethod
    def from_columns(cls, algorithm: str, void, x, y, z, r_eff, edge=None,
                     edge_area_ratio=None) -> "VoidTable":
        """From voids-table columns (null as NaN). The family's interior rule decides:
        ``edge`` for VoidFinder, ``edge_area_ratio`` for the V2 algorithms."""
        void = np.asarray(void, dtype=np.int64)
        order = np.argsort(void, kind="stable")
        void = void[order]
        if len(void) > 1 and np.any(void[1:] == void[:-1]):
            dup = np.unique(void[1:][void[1:] == void[:-1]])[:5].tolist()
            raise ValueError(f"{algorithm}: void ids repeated in the voids table: {dup}")
        def f(a):
            return np.asarray(a, dtype=np.float64)[order]

        centre = np.column_stack([f(x), f(y), f(z)])
        if formats.family(algorithm).interior_column == "EDGE":  # the maximal sphere's EDGE
            e = f(edge)
            interior = np.where(np.isfinite(e), np.where(e == 0, INTERIOR, EDGE_VOID), UNKNOWN)
        else:
            q = f(edge_area_ratio)
            interior = np.where(np.isfinite(q),
                                np.where(q <= V2_EDGE_AREA_RATIO, INTERIOR, EDGE_VOID), UNKNOWN)
        return cls(void, centre, f(r_eff), interior.astype(np.int8))

    def describe(self, void: np.ndarray, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(|x - centre| / r_eff, interior) for each galaxy's void id; NaN / UNKNOWN where the
        id is NO_VOID or not in this table."""
        void = np.asarray(void, dtype=np.int64)
        dist = np.full(len(void), np.nan)
        interior = np.full(len(void), UNKNOWN, dtype=np.int8)
        if len(self.void) == 0:
            return dist, interior
        has = np.flatnonzero(void != NO_VOID)
        row = lookup(self.void, void[has])
        hit = row >= 0
        found, k = has[hit], row[hit]
        d = np.sqrt(np.sum((xyz[found] - self.centre[k]) ** 2, axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            dist[found] = d / self.r_eff[k]
        interior[found] = self.interior[k]
        return dist, interior
