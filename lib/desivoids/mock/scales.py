"""Scale presets of the mock sky: how many rows, tracers, voids and zones, and which footprint.

"dr1" reproduces the real DR1 counts (desi-data-formats.md): FastSpecFit rows per nside-1 file,
VoidFinder voids and holes, REVOLVER and ZOBOV voids, zones and GALZONE tracers per cap (VIDE's
voids follow from its linking and central-density cuts, as in VAST). The smaller presets keep
the tracer density high enough (>~ 15 per square degree) that the footprint grid rebuilt from
the tracers (N = 2 cells per degree) reproduces the footprint, and so use smaller footprints.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .. import formats


@dataclass(frozen=True)
class Scale:
    name: str
    footprint: str
    #: GALZONE tracers per cap (the volume-limited sample that passes every cut)
    tracers: dict
    #: VoidFinder voids and holes per cap
    vf_voids: dict
    vf_holes: dict
    #: V2 zones (= ZOBOV voids) and REVOLVER voids per cap (REVOLVER's minimum radius is chosen
    #: to keep this many zones, DESIVAST's share; VIDE's count follows from its own cuts)
    zones: dict
    revolver: dict
    #: radius range of the largest sphere (MAXIMALS.RADIUS) [Mpc/h]
    radius: tuple
    #: exact FastSpecFit rows per nside-1 file, or None (then ``rows`` in total, natural split)
    hp_rows: Optional[tuple] = None
    rows: Optional[int] = None
    #: emission lines written in FASTSPEC (full 46 at tiny; a subset keeps files manageable)
    lines: tuple = formats.FASTSPEC_LINES
    #: smallest row count of an nside-1 file (the real twelve are never empty)
    min_hp_rows: int = 12
    #: rows per chunk when streaming
    chunk: int = 200_000
    #: fractions of the non-tracer rows: faint z<=ZLIMU, failing-cut tracer-like, z>ZLIMU, QSO, STAR
    mix: dict = field(default_factory=lambda: {"faint": 0.42, "fail": 0.10, "high": 0.34,
                                               "qso": 0.05, "star": 0.09})


_SUBSET_LINES = ("OII_3726", "OII_3729", "HBETA", "OIII_5007", "HALPHA", "NII_6584")

SCALES = {
    "tiny": Scale(
        "tiny", "tiny",
        tracers={"NGC": 2400, "SGC": 620},
        vf_voids={"NGC": 70, "SGC": 20}, vf_holes={"NGC": 420, "SGC": 110},
        zones={"NGC": 36, "SGC": 10}, revolver={"NGC": 24, "SGC": 7},
        radius=(8.0, 18.0), rows=4800),
    "small": Scale(
        "small", "small",
        tracers={"NGC": 52_000, "SGC": 13_000},
        vf_voids={"NGC": 600, "SGC": 150}, vf_holes={"NGC": 9_000, "SGC": 2_200},
        zones={"NGC": 540, "SGC": 130}, revolver={"NGC": 310, "SGC": 70},
        radius=(13.0, 34.0), rows=150_000, lines=_SUBSET_LINES, min_hp_rows=300),
    "dr1": Scale(
        "dr1", "dr1",
        tracers={c: formats.DESIVAST_ROWS[("V2", "GALZONE")][c] for c in formats.CAPS},
        vf_voids=formats.DESIVAST_ROWS[("VoidFinder", "MAXIMALS")],
        vf_holes=formats.DESIVAST_ROWS[("VoidFinder", "HOLES")],
        zones=formats.DESIVAST_ROWS[("V2", "ZONEVOID")],
        revolver=formats.DESIVAST_ROWS[("REVOLVER", "VOIDS")],
        radius=(12.0, 32.0), hp_rows=formats.FASTSPEC_V3_ROWS, lines=_SUBSET_LINES, chunk=100_000,
        mix={"faint": 0.40, "fail": 0.02, "high": 0.47, "qso": 0.05, "star": 0.06}),
}


def get(scale: str) -> Scale:
    try:
        return SCALES[scale]
    except KeyError:
        raise ValueError(f"unknown mock scale {scale!r}; choose one of {sorted(SCALES)}") from None
