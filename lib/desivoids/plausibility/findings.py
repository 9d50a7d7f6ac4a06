"""Physical ranges as findings with counts: values outside what the data model and the physics
lead one to expect are counted and reported, never cut silently and never used to move a
threshold. Two populations: the whole catalogue (what the real DR1 files hold: stars with
LOGMSTAR near -12, quasars up to Z 6.4 and LOGMSTAR 15.6, see desi-data-formats.md) and the
selected sample (bright galaxies, M_r <= -20 at Z <= 0.24, where the ranges are tighter)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Expected", "CATALOGUE", "SAMPLE", "findings", "tally", "from_tallies"]


@dataclass(frozen=True)
class Expected:
    id: str
    quantity: str  # a column of the table, or "u_r" (ABSMAG01_SDSS_U - ABSMAG01_SDSS_R)
    lo: float
    hi: float
    why: str


#: the whole converted catalogue
CATALOGUE = (
    Expected("logmstar", "logmstar", -13.0, 16.0, "DR1 spans about -12 to 15.6 (stars, QSOs)"),
    Expected("sfr", "sfr", 0.0, 1e6, "SFR is never negative in fastspecfit 3.x"),
    Expected("dn4000", "dn4000", 0.0, 10.0, "a flux ratio: positive"),
    Expected("z", "z", -0.01, 7.0, "DR1 redshifts reach 6.4 (quasars)"),
    Expected("u_r", "u_r", -5.0, 10.0, "rest-frame colours of any object"),
)
#: the selected sample: bright galaxies at low redshift
SAMPLE = (
    Expected("logmstar", "logmstar", 8.5, 12.5, "M_r <= -20 galaxies: 10^8.5 to 10^12.5 Msun"),
    Expected("sfr", "sfr", 0.0, 1e3, "no galaxy of the sample forms 1000 Msun/yr"),
    Expected("log_ssfr", "log_ssfr", -14.0, -8.0, "the observed range of galaxies (1/yr)"),
    Expected("dn4000", "dn4000", 0.8, 2.5, "young (~1) to old (~2.2) stellar populations"),
    Expected("u_r", "u_r", 0.0, 4.0, "blue cloud (~1.5) to red sequence (~2.5)"),
    Expected("z", "z", 0.0, 0.24, "the selection's redshift range (ZLIMU)"),
)


def _values(columns: dict[str, np.ndarray], quantity: str) -> np.ndarray:
    if quantity == "u_r":
        return columns["absmag01_sdss_u"] - columns["absmag01_sdss_r"]
    return columns[quantity]


def tally(columns: dict[str, np.ndarray], expected) -> list[tuple]:
    """Per expected range: (rows, finite rows, rows outside it, min, max of the finite values;
    None without any), the counts :func:`findings` reports, for one part of the rows: a table
    read a part at a time is tallied part by part and :func:`from_tallies` adds them up (the
    catalogue's 6.4 million rows at DR1 scale never held, nor their 51 MB temporaries)."""
    out = []
    for e in expected:
        v = np.asarray(_values(columns, e.quantity), dtype=float)
        values = v[np.isfinite(v)]
        out.append((len(v), len(values),
                    int(np.count_nonzero((values < e.lo) | (values > e.hi))),
                    float(values.min()) if len(values) else None,
                    float(values.max()) if len(values) else None))
    return out


def from_tallies(tallies: list[list[tuple]], expected, population: str) -> list[dict]:
    """One finding per expected range from the :func:`tally` of every part of the rows."""
    out = []
    for i, e in enumerate(expected):
        parts = [t[i] for t in tallies]
        rows = sum(p[0] for p in parts)
        finite = sum(p[1] for p in parts)
        n_outside = sum(p[2] for p in parts)
        lows = [p[3] for p in parts if p[3] is not None]
        highs = [p[4] for p in parts if p[4] is not None]
        out.append({"id": f"{population}.{e.id}", "population": population,
                    "quantity": e.quantity, "expected": [e.lo, e.hi], "why": e.why,
                    "rows": int(rows), "not_finite": int(rows - finite),
                    "outside": int(n_outside),
                    "fraction_outside": round(n_outside / rows if rows else 0.0, 8),
                    "min": min(lows) if lows else None,
                    "max": max(highs) if highs else None,
                    "status": "finding" if n_outside else "ok"})
    return out


def findings(columns: dict[str, np.ndarray], expected, population: str) -> list[dict]:
    """One finding per expected range: rows, rows outside it, their fraction, min and max."""
    return from_tallies([tally(columns, expected)], expected, population)
