"""plausibility's findings (issue 25: the counts from the finite values taken once, and the
catalogue's tallied part by part as the stage reads it) give what the mask-per-count method gave
on the whole columns, on values with NaN, infinities, values on the bounds and beyond, float32
columns, empty parts and parts without a finite value."""
from __future__ import annotations

import numpy as np

from desivoids.plausibility.findings import (CATALOGUE, SAMPLE, _values, findings, from_tallies,
                                             tally)


def _old_findings(columns, expected, population):
    """The findings as computed before issue 25."""
    out = []
    for e in expected:
        v = np.asarray(_values(columns, e.quantity), dtype=float)
        finite = np.isfinite(v)
        outside = finite & ((v < e.lo) | (v > e.hi))
        out.append({"id": f"{population}.{e.id}", "population": population,
                    "quantity": e.quantity, "expected": [e.lo, e.hi], "why": e.why,
                    "rows": int(len(v)), "not_finite": int((~finite).sum()),
                    "outside": int(outside.sum()),
                    "fraction_outside": round(float(outside.mean()) if len(v) else 0.0, 8),
                    "min": float(v[finite].min()) if finite.any() else None,
                    "max": float(v[finite].max()) if finite.any() else None,
                    "status": "finding" if outside.any() else "ok"})
    return out


def _columns(rng, n, dtype):
    cols = {}
    for c, (lo, hi) in {"logmstar": (-14, 17), "sfr": (-1, 2e3), "log_ssfr": (-15, -7),
                        "dn4000": (-0.5, 11), "z": (-0.02, 7.5), "absmag01_sdss_u": (-25, -10),
                        "absmag01_sdss_r": (-26, -12)}.items():
        v = rng.uniform(lo, hi, n)
        v[rng.random(n) < 0.05] = np.nan
        if not c.startswith("absmag"):  # (inf - inf in u - r would warn)
            v[rng.random(n) < 0.01] = np.inf
            v[rng.random(n) < 0.01] = -np.inf
        v[rng.random(n) < 0.02] = 0.0
        cols[c] = v.astype(dtype)
    return cols


def test_the_same_findings_as_before():
    rng = np.random.default_rng(2501)
    for n, dtype in ((50_000, np.float32), (20_000, np.float64), (3, np.float32)):
        cols = _columns(rng, n, dtype)
        for e in (*CATALOGUE, *SAMPLE):  # a value exactly on each bound
            if e.quantity in cols and n > 10:
                cols[e.quantity][:2] = (e.lo, e.hi)
        for expected, population in ((CATALOGUE, "catalogue"), (SAMPLE, "sample")):
            assert findings(cols, expected, population) == _old_findings(cols, expected,
                                                                          population)
    empty = {c: np.zeros(0, np.float32) for c in _columns(rng, 0, np.float32)}
    all_nan = {c: np.full(5, np.nan) for c in empty}
    for cols in (empty, all_nan):
        assert findings(cols, SAMPLE, "sample") == _old_findings(cols, SAMPLE, "sample")
    got = findings(_columns(rng, 50_000, np.float32), CATALOGUE, "catalogue")
    assert all(f["outside"] and f["not_finite"] for f in got)  # every path taken


def test_tallies_of_the_parts_give_the_findings_of_the_whole():
    rng = np.random.default_rng(2502)
    cols = _columns(rng, 30_000, np.float32)
    for c in cols:  # a part without any finite value, and one without rows
        cols[c][1000:1500] = np.nan
    bounds = [0, 700, 1000, 1500, 1500, 9000, 29_999, 30_000]
    parts = [{c: v[a:b] for c, v in cols.items()} for a, b in zip(bounds[:-1], bounds[1:])]
    for expected, population in ((CATALOGUE, "catalogue"), (SAMPLE, "sample")):
        got = from_tallies([tally(p, expected) for p in parts], expected, population)
        assert got == _old_findings(cols, expected, population)
    assert from_tallies([], CATALOGUE, "catalogue") == _old_findings(
        {c: np.zeros(0) for c in cols}, CATALOGUE, "catalogue")
