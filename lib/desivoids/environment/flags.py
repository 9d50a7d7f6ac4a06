"""Membership flags and the result of assigning galaxies to one catalogue.

Flags follow VAST: 0 wall, 1 void, 2 edge (within 10 Mpc/h of the survey boundary), 9 outside
(outside the footprint or the catalogue's redshift range, or in the other cap: never a wall).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formats

__all__ = ["WALL", "VOID", "EDGE", "OUTSIDE", "FLAG_NAMES", "NO_VOID", "INTERIOR", "EDGE_VOID",
           "UNKNOWN", "NOT_SURFACE", "SURFACE", "SURFACE_STRICT_VOID", "Assignment",
           "interior_only"]

WALL, VOID, EDGE, OUTSIDE = 0, 1, 2, 9
FLAG_NAMES = {WALL: "wall", VOID: "void", EDGE: "edge", OUTSIDE: "outside"}
#: void id of a galaxy that is in no void
NO_VOID = -1
#: values of Assignment.void_interior (a tri-state: numpy has no nullable bool)
INTERIOR, EDGE_VOID, UNKNOWN = 1, 0, -1
#: values of Assignment.surface (VoidFinder only): not a surface galaxy; within the surface
#: tolerance of a hole's surface and inside no hole by more than it, which VAST's strict
#: |x - c| < RADIUS leaves out, or which it calls void (rounding decides between the two)
NOT_SURFACE, SURFACE, SURFACE_STRICT_VOID = 0, 1, 2


def interior_only(flag: np.ndarray, void_interior: np.ndarray) -> np.ndarray:
    """Flags of the interior-only variant: a void galaxy whose void is not known to be interior
    becomes EDGE (2), so it drops out of a void-versus-wall comparison like any edge galaxy;
    every other flag is unchanged."""
    flag = np.asarray(flag)
    demote = (flag == VOID) & (np.asarray(void_interior) != INTERIOR)
    return np.where(demote, EDGE, flag).astype(np.int8)


_FIELDS = ("cap_code", "flag", "void", "void_distance", "void_interior", "surface")


@dataclass
class Assignment:
    """Membership of n galaxies for one algorithm.

    ``cap_code``: the cap whose catalogue decided each row, as an index into formats.CAPS (int8;
    :attr:`cap` gives the names); ``flag`` int8;
    ``void`` int64, NO_VOID (-1) when the flag is not VOID; ``void_distance`` float64, distance
    to the void's centre in units of its effective radius, NaN (null) when there is no void or
    the void id is not in the algorithm's voids table; ``void_interior`` int8 tri-state
    (INTERIOR 1, EDGE_VOID 0, UNKNOWN -1: no void, void not in the table, or its edge value is
    null); ``surface`` int8, VoidFinder's surface galaxies (NOT_SURFACE 0, SURFACE 1,
    SURFACE_STRICT_VOID 2; always 0 for V2).
    """

    algorithm: str
    cap_code: np.ndarray
    flag: np.ndarray
    void: np.ndarray
    void_distance: np.ndarray
    void_interior: np.ndarray
    surface: np.ndarray | None = None  # None: no surface galaxies (zeros)

    def __post_init__(self):
        if self.surface is None:
            self.surface = np.zeros(len(self.flag), np.int8)

    def __len__(self) -> int:
        return len(self.flag)

    @property
    def cap(self) -> np.ndarray:
        """'NGC' / 'SGC' of each row."""
        return np.asarray(formats.CAPS)[self.cap_code]

    @classmethod
    def outside(cls, algorithm: str, cap, n: int) -> "Assignment":
        """n rows flagged OUTSIDE by the catalogue of ``cap`` (a name, or codes per row)."""
        code = np.full(n, formats.CAPS.index(cap), np.int8) if isinstance(cap, str) \
            else np.asarray(cap, np.int8)
        return cls(algorithm, code, np.full(n, OUTSIDE, np.int8), np.full(n, NO_VOID, np.int64),
                   np.full(n, np.nan), np.full(n, UNKNOWN, np.int8))

    def put(self, rows, other: "Assignment") -> None:
        """Overwrite ``rows`` with the rows of ``other`` (same algorithm)."""
        if other.algorithm != self.algorithm:
            raise ValueError(f"cannot put {other.algorithm} rows into {self.algorithm}")
        for name in _FIELDS:
            getattr(self, name)[rows] = getattr(other, name)

    def take(self, rows) -> "Assignment":
        return Assignment(self.algorithm, *(getattr(self, n)[rows] for n in _FIELDS))

    @staticmethod
    def concat(parts: list["Assignment"]) -> "Assignment":
        if not parts:
            raise ValueError("nothing to concatenate")
        return Assignment(parts[0].algorithm, *(np.concatenate([getattr(p, n) for p in parts])
                                                for n in _FIELDS))

    def interior_flag(self) -> np.ndarray:
        """Flags of the interior-only variant (see :func:`interior_only`)."""
        return interior_only(self.flag, self.void_interior)

    def to_arrow(self, targetid=None):
        """A pyarrow table with nulls instead of the numpy sentinels: (targetid,) algorithm,
        cap, flag, void, r_over_reff (``void_distance``), interior (``void_interior``: null when
        unknown), flag_interior (the flag of the interior-only variant)."""
        import pyarrow as pa

        n = len(self)
        cols = {}
        if targetid is not None:
            cols["targetid"] = pa.array(np.asarray(targetid, np.int64))
        cols["algorithm"] = pa.array(np.full(n, self.algorithm))
        cols["cap"] = pa.DictionaryArray.from_arrays(
            pa.array(self.cap_code), pa.array(list(formats.CAPS))).cast(pa.string())
        cols["flag"] = pa.array(self.flag.astype(np.int8))
        cols["void"] = pa.array(self.void, mask=self.void == NO_VOID)
        cols["r_over_reff"] = pa.array(self.void_distance, mask=~np.isfinite(self.void_distance))
        cols["interior"] = pa.array(self.void_interior == INTERIOR,
                                    mask=self.void_interior == UNKNOWN)
        cols["flag_interior"] = pa.array(self.interior_flag())
        return pa.table(cols)
