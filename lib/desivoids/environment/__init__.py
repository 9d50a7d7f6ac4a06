"""Void membership of every galaxy, per algorithm and cap, following VAST (science.md).

- :mod:`.flags`: WALL 0, VOID 1, EDGE 2, OUTSIDE 9 and the :class:`Assignment` result;
- :mod:`.mask`: footprint rebuilt from the tracers, radial limits, 10 Mpc/h edge rule, and the
  catalogue's redshift range and cap;
- :mod:`.voidfinder`: VoidFinder, a void as the union of its holes;
- :mod:`.v2`: REVOLVER, VIDE, ZOBOV, the zone of the nearest tracer;
- :mod:`.voids`: distance to the void centre in effective radii, interior voids;
- :mod:`.membership`: the common interface, per-cap structures, chunked assignment;
- :mod:`.summary`: galaxies per void, tracer and volume fractions in voids, label agreement;
- :mod:`.explorer`: the data of the book's interactive slab figure;
- :mod:`.stage`: the stage (``run``): every galaxy, every algorithm, on Dask.
"""
from .flags import (EDGE, FLAG_NAMES, NO_VOID, NOT_SURFACE, OUTSIDE, SURFACE,
                    SURFACE_STRICT_VOID, VOID, WALL, Assignment, interior_only)
from .mask import EDGE_BUFFER, Footprint, cells_per_degree, footprint_grid, in_catalogue
from .membership import (GALAXY_COLUMNS, TABLE_COLUMNS, CapCatalogue, Limits, Membership, Positions,
                         assign_all, assign_cap, assign_chunk, build_catalogues, header_limits)
from .v2 import Tessellation, V2Membership, ZoneVoids
from .voidfinder import SURFACE_TOL, HoleHits, HoleSpheres, VoidFinderMembership
from .voids import VoidTable
from .stage import EnvironmentResult, run
from . import explorer, summary

__all__ = [
    "WALL", "VOID", "EDGE", "OUTSIDE", "FLAG_NAMES", "NO_VOID", "Assignment", "interior_only",
    "NOT_SURFACE", "SURFACE", "SURFACE_STRICT_VOID", "SURFACE_TOL", "HoleHits",
    "EDGE_BUFFER", "Footprint", "cells_per_degree", "footprint_grid", "in_catalogue",
    "Limits", "header_limits", "Membership", "Positions", "CapCatalogue", "build_catalogues",
    "assign_cap", "assign_chunk", "assign_all", "GALAXY_COLUMNS", "TABLE_COLUMNS",
    "HoleSpheres", "VoidFinderMembership", "Tessellation", "ZoneVoids", "V2Membership",
    "VoidTable", "run", "EnvironmentResult", "explorer", "summary",
]
