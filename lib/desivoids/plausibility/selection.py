"""DESIVAST's tracer selection as an ordered list of cuts, and the retention waterfall.

Each cut is a named predicate on the galaxies table; a row is charged to the first cut it
fails, so every row is either kept or counted once, with its reason (science.md):
SURVEY main, PROGRAM bright, the BGS_BRIGHT bit of BGS_TARGET, SPECTYPE GALAXY, ZWARN == 0,
DELTACHI2 > 40, Z > 0, Z <= ZLIMU, M_r <= MAGLIM: the tracers (the sample DESIVAST's V2 runs
used, GALZONE). Then FastSpecFit's failed fits (every template coefficient zero, so LOGMSTAR ==
0 and SFR == 0 together) are a cut of their own: they are tracers, but have no physical
properties, so they never reach a quenched fraction. A null value fails the cut that reads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import formats

__all__ = ["Cut", "tracer_cuts", "FAILED_FIT", "first_failed", "waterfall", "SELECTION_COLUMNS"]

#: galaxies columns the cuts read
SELECTION_COLUMNS = ("targetid", "ra", "survey", "program", "bgs_target", "spectype", "zwarn",
                     "deltachi2", "z", "m_r", "logmstar", "sfr")


@dataclass(frozen=True)
class Cut:
    name: str
    description: str
    keep: Callable[[pa.Table], np.ndarray]  # True where the row passes


def _bool(a) -> np.ndarray:
    """An arrow boolean array as numpy, null as False (a null value fails its cut)."""
    return np.asarray(pc.fill_null(a, False).to_numpy(zero_copy_only=False), dtype=bool)


def tracer_cuts(survey: str, program: str, bgs_bit: str, spectype: str, zwarn: int,
                min_deltachi2: float, zmin: float, zlimu: float, maglim: float | None,
                maglim_note: str = "") -> list[Cut]:
    """The cuts in order; ``maglim`` None: no magnitude cut (a step that keeps every row and
    says why, ``maglim_note``), as when VAST's headers say that none was made."""
    bit = 1 << formats.BGS_TARGET_BITS[bgs_bit]
    if maglim is None:
        mag = Cut("maglim", "no magnitude cut" + (f": {maglim_note}" if maglim_note else ""),
                  lambda t: np.ones(t.num_rows, dtype=bool))
    else:
        mag = Cut("maglim", f"M_r = ABSMAG01_SDSS_R + {formats.TRACER_SELECTION['KCORR_SLOPE']:g} "
                  f"(Z - {formats.TRACER_SELECTION['KCORR_PIVOT']:g}) <= MAGLIM = {maglim:g}",
                  lambda t: _bool(pc.less_equal(t["m_r"], maglim)))
    return [
        Cut("survey", f"SURVEY == '{survey}'", lambda t: _bool(pc.equal(t["survey"], survey))),
        Cut("program", f"PROGRAM == '{program}'", lambda t: _bool(pc.equal(t["program"], program))),
        Cut("bgs_bit", f"BGS_TARGET has the {bgs_bit} bit ({bit})",
            lambda t: _bool(pc.not_equal(pc.bit_wise_and(t["bgs_target"], bit), 0))),
        Cut("spectype", f"SPECTYPE == '{spectype}'",
            lambda t: _bool(pc.equal(t["spectype"], spectype))),
        Cut("zwarn", f"ZWARN == {zwarn}", lambda t: _bool(pc.equal(t["zwarn"], zwarn))),
        Cut("deltachi2", f"DELTACHI2 > {min_deltachi2:g}",
            lambda t: _bool(pc.greater(t["deltachi2"], min_deltachi2))),
        Cut("zmin", f"Z > {zmin:g}", lambda t: _bool(pc.greater(t["z"], zmin))),
        Cut("zlimu", f"Z <= ZLIMU = {zlimu:g}", lambda t: _bool(pc.less_equal(t["z"], zlimu))),
        mag,
    ]


def _not_failed_fit(t: pa.Table) -> np.ndarray:
    failed = pc.and_(pc.equal(t["logmstar"], 0.0), pc.equal(t["sfr"], 0.0))
    return ~_bool(failed)


FAILED_FIT = Cut("failed_fit", "FastSpecFit fit failed (LOGMSTAR == 0 and SFR == 0)",
                 _not_failed_fit)


def first_failed(t: pa.Table, cuts: list[Cut]) -> np.ndarray:
    """Index of the first cut each row fails, len(cuts) for rows that pass them all."""
    out = np.full(t.num_rows, len(cuts), dtype=np.int16)
    alive = np.ones(t.num_rows, dtype=bool)
    for i, cut in enumerate(cuts):
        fails = alive & ~cut.keep(t)
        out[fails] = i
        alive &= ~fails
    return out


def waterfall(first: np.ndarray, caps: np.ndarray, cuts: list[Cut]) -> pd.DataFrame:
    """Per cap and both caps: rows in, rows removed by each cut in order, rows out; the steps
    sum exactly (every row is removed once or kept). ``caps``: each row's cap, a name of
    formats.CAPS or its index there (:func:`desivoids.formats.cap_index_of_ra`)."""
    caps = np.asarray(caps)
    by_index = np.issubdtype(caps.dtype, np.integer)
    rows = []
    for i, cap in enumerate((*formats.CAPS, "both")):
        f = first if cap == "both" else first[caps == (i if by_index else cap)]
        remaining = len(f)
        rows.append({"cap": cap, "step": 0, "cut": "rows in", "description": "the converted "
                     "FastSpecFit catalogue", "removed": 0, "remaining": remaining})
        counts = np.bincount(f, minlength=len(cuts) + 1)
        for i, cut in enumerate(cuts, start=1):
            remaining -= int(counts[i - 1])
            rows.append({"cap": cap, "step": i, "cut": cut.name, "description": cut.description,
                         "removed": int(counts[i - 1]), "remaining": remaining})
    return pd.DataFrame(rows)
