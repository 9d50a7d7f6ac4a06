"""The systematics chapter's tables and its opening sentences, from the stage's result (tested on a
tiny run, so the notebook only calls them).

Every table function returns a DataFrame of words and numbers as a reader sees them: intervals as
``[lo, hi]`` text, an en dash where a value does not apply (never NaN), counts as integers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import formats

__all__ = ["NOT_APPLICABLE", "DEFINITION_NAME", "distinct_results", "summary_table",
           "expected_table", "surface_table", "counts_table", "patches_table",
           "agreement_table", "opening"]

#: what a cell shows when a value does not apply
NOT_APPLICABLE = "–"
#: the quenched definitions by name, as a label or a table row says them
DEFINITION_NAME = {"ssfr": "sSFR", "dn4000": "Dn4000", "ur": "u − r colour"}


def _interval(lo, hi, digits: int = 3) -> list[str]:
    return [f"[{a:+.{digits}f}, {b:+.{digits}f}]" if np.isfinite(a) and np.isfinite(b)
            else NOT_APPLICABLE for a, b in zip(np.asarray(lo, float), np.asarray(hi, float))]


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(np.nan, frame.index)


def distinct_results(summary: pd.DataFrame, expected: pd.DataFrame | None = None,
                     cap: str = "both", sample: str = "all voids") -> pd.DataFrame:
    """One row per distinct result: per quenched definition, the algorithms whose void and wall
    samples and estimates are identical share a row (the V2 prunings often do), in the order of
    formats.ALGORITHMS. Columns: algorithms (text), definition, rd, rd_jk_lo, rd_jk_hi, n_void,
    n_wall, and with ``expected`` (:func:`.expected.beside_expected`) expected and covered."""
    s = summary[(summary.cap == cap) & (summary["sample"] == sample)]
    groups: dict[tuple, list[str]] = {}
    for algorithm in formats.ALGORITHMS:
        a = s[s.algorithm == algorithm].sort_values("definition")
        if a.empty:
            continue
        key = tuple((r.definition, int(r.n_void), int(r.n_wall),
                     *(round(float(getattr(r, c, np.nan)), 12)
                       for c in ("rd", "rd_jk_lo", "rd_jk_hi"))) for r in a.itertuples())
        groups.setdefault(key, []).append(algorithm)
    e = (expected.set_index(["algorithm", "definition"]) if expected is not None and len(expected)
         else None)
    out = []
    for algorithms in groups.values():
        for definition in [d for d in DEFINITION_NAME if d in set(s.definition)]:
            first = s[(s.algorithm == algorithms[0]) & (s.definition == definition)].iloc[0]
            row = {"algorithms": ", ".join(algorithms), "definition": definition,
                   **{c: float(first.get(c, np.nan)) for c in ("rd", "rd_jk_lo", "rd_jk_hi")},
                   "n_void": int(first.n_void), "n_wall": int(first.n_wall)}
            if e is not None:
                values = [e.expected.get((a, definition), np.nan) for a in algorithms]
                row["expected"] = float(values[0]) if len(set(values)) == 1 else float("nan")
                row["covered"] = (e.covered.get((algorithms[0], definition)) if "covered" in e
                                  else None)
            out.append(row)
    return pd.DataFrame(out)


def summary_table(summary: pd.DataFrame, cap: str = "both") -> pd.DataFrame:
    """Every comparison of one cap: sample sizes, mass-matched fractions, the risk difference
    with its jackknife and Newcombe intervals, the risk ratio, Cohen's h and the regression's
    odds ratio."""
    s = summary[summary.cap == cap]
    return pd.DataFrame({
        "algorithm": s.algorithm, "sample": s["sample"],
        "definition": s.definition.map(DEFINITION_NAME),
        "void galaxies": s.n_void.astype(int), "wall galaxies": s.n_wall.astype(int),
        "quenched, void": _column(s, "p_void").round(3),
        "quenched, wall": _column(s, "p_wall").round(3),
        "void − wall": _column(s, "rd").round(3),
        "jackknife 95%": _interval(_column(s, "rd_jk_lo"), _column(s, "rd_jk_hi")),
        "patches": _column(s, "n_patches"), "jackknife dof": _column(s, "jk_dof").round(1),
        "Newcombe 95%": _interval(_column(s, "rd_lo"), _column(s, "rd_hi")),
        "risk ratio": _column(s, "rr").round(3), "Cohen's h": _column(s, "h").round(3),
        "odds ratio": _column(s, "logit_or").round(3),
        "odds ratio 95%": _interval(_column(s, "logit_or_lo"), _column(s, "logit_or_hi")),
    }).reset_index(drop=True)


#: the columns of :func:`expected_table`
EXPECTED_COLUMNS = ("algorithm", "definition", "estimate", "jackknife 95%", "expected (planted)",
                    "interval covers it", "note")


def expected_table(beside: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`.expected.beside_expected` as a reader reads it (no rows off a mock run)."""
    if beside is None:
        return pd.DataFrame(columns=list(EXPECTED_COLUMNS))
    covered = beside.covered.map({True: "yes", False: "no"}).fillna(NOT_APPLICABLE)
    return pd.DataFrame({
        "algorithm": beside.algorithm, "definition": beside.definition.map(DEFINITION_NAME),
        "estimate": beside.estimate.round(3),
        "jackknife 95%": _interval(beside.jk_lo, beside.jk_hi),
        "expected (planted)": beside.expected.round(3), "interval covers it": covered,
        "note": beside.note.replace("", NOT_APPLICABLE)})


def surface_table(summary: pd.DataFrame, cap: str = "both") -> pd.DataFrame:
    """VoidFinder's answer both ways: surface galaxies not void (the default) and counted as
    void, per quenched definition."""
    from .stage import surface_table as by_sample

    t = by_sample(summary, cap).reset_index()
    t = t.sort_values("definition", key=lambda d: d.map(list(DEFINITION_NAME).index), kind="stable")
    return pd.DataFrame({
        "definition": t.definition.map(DEFINITION_NAME),
        "surface galaxies": t["sample"].map({"all voids": "not void (default)",
                                             "surface as void": "counted as void"}),
        "void galaxies": t.n_void.astype(int), "wall galaxies": t.n_wall.astype(int),
        "void − wall": _column(t, "rd").round(3),
        "jackknife 95%": _interval(_column(t, "rd_jk_lo"), _column(t, "rd_jk_hi"))})


def counts_table(counts: pd.DataFrame, cap: str = "both") -> pd.DataFrame:
    """Per algorithm, sample and definition: galaxies compared and left out."""
    c = counts[counts.cap == cap]
    return c.assign(definition=c.definition.map(DEFINITION_NAME)).drop(columns="cap").rename(
        columns={"undefined": "void or wall, quenched state undefined"}).reset_index(drop=True)


def patches_table(report: dict) -> pd.DataFrame:
    """The jackknife patches per cap: how many, their area, and galaxies per patch."""
    p = pd.DataFrame(report["sample"]["patches"])
    return p.groupby("cap").agg(
        patches=("patch", "size"), area_deg2=("area_deg2", "sum"), galaxies=("n_objects", "sum"),
        fewest_galaxies=("n_objects", "min"), most_galaxies=("n_objects", "max"),
    ).round({"area_deg2": 1}).rename(columns={"area_deg2": "area [deg²]"}).reset_index()


def agreement_table(report: dict, value: str = "same_label") -> pd.DataFrame:
    """Algorithm by algorithm (from the environment report): the share of tracers given the same
    void-or-wall label, or Cohen's kappa; no rows without the environment's matrix."""
    a = pd.DataFrame(report.get("agreement") or [])
    if a.empty:
        return pd.DataFrame(columns=["algorithm", *formats.ALGORITHMS])
    return a.pivot(index="a", columns="b", values=value).reindex(
        index=formats.ALGORITHMS, columns=formats.ALGORITHMS).round(3).rename_axis(
        index="algorithm", columns=None).reset_index()


def opening(result, beside: pd.DataFrame | None) -> list[str]:
    """The chapter's first lines: the answer in words (one sentence per distinct result, both
    caps, all voids), and on a mock run how often the intervals cover the planted value."""
    lines = [result.report["paragraph"]]
    if beside is not None:
        judged = beside.covered.dropna()
        lines.append(f"On this mock, the 95% jackknife interval covers the planted value in "
                     f"{int(judged.sum())} of {len(judged)} comparisons (both caps, all voids).")
    return lines
