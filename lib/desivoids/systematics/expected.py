"""On a mock run: each algorithm's estimate beside the answer the mock planted.

The mock (desivoids.mock) writes, per algorithm and cap, the expected value of the headline
statistic (the mass-matched risk difference, all voids) computed from its latent quenched
probabilities with its own code, never with this package's statistics. Here that expected
value is put beside the run's estimate for every quenched definition, with whether the
jackknife interval covers it. The expected value is for the latent quenched state; the three
observed definitions misclassify a few per cent of galaxies each way, which pulls an estimate
slightly towards zero. On real data there is no truth, and no table.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from .. import paths

__all__ = ["read_expected", "beside_expected", "expected_of"]


def read_expected(data_dir: str = "data/mock") -> dict | None:
    """The mock truth's expected answers (``expected_answers`` of truth.json), or None when the
    run has no mock truth (real data, or a mock written before they existed)."""
    path = paths.RunLayout.of(data_dir).mock_truth
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("expected_answers")


def beside_expected(summary: pd.DataFrame, expected: dict | None, mass_edges,
                    cap: str = "both", sample: str = "all voids") -> pd.DataFrame | None:
    """One row per algorithm and definition: the estimate (rd) with its jackknife interval, the
    mock's expected value, and whether the interval covers it. None without ``expected``.

    ``mass_edges`` are the run's matching bins: an expected value weighted on other bins is
    shown but not judged (``covered`` empty, ``note`` says why)."""
    if not expected:
        return None
    same_bins = np.allclose(np.asarray(mass_edges, float), np.asarray(expected["mass_edges"], float)) \
        if len(mass_edges) == len(expected["mass_edges"]) else False
    s = summary[(summary.cap == cap) & (summary["sample"] == sample)]
    rows = []
    for r in s.itertuples():
        e = expected["by_algorithm"].get(r.algorithm, {}).get(cap, {})
        value = e.get("expected_rd")
        rd = getattr(r, "rd", math.nan)
        lo, hi = getattr(r, "rd_jk_lo", math.nan), getattr(r, "rd_jk_hi", math.nan)
        note, covered = "", None
        if value is None:
            note = "no expected value: no void or no wall galaxies"
        elif not same_bins:
            note = f"expected value weighted on the mass bins {expected['mass_edges']}"
        elif not (np.isfinite(lo) and np.isfinite(hi)):
            note = "no jackknife interval"
        else:
            covered = bool(lo <= value <= hi)
        rows.append({"algorithm": r.algorithm, "definition": r.definition,
                     "estimate": rd, "jk_lo": lo, "jk_hi": hi,
                     "expected": math.nan if value is None else float(value),
                     "covered": covered, "note": note})
    return pd.DataFrame(rows)


def expected_of(data_dir: str, summary: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`beside_expected` for a run: its mock truth beside ``summary``, judged on the
    matching bins its systematics stage ran with (its report); None on real data."""
    report = paths.RunLayout.of(data_dir).file("systematics", "report")
    edges = json.loads(report.read_text()).get("parameters", {}).get("mass_edges")
    return beside_expected(summary, read_expected(data_dir), edges) if edges else None
