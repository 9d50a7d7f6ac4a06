"""The density chapter's opening sentences and tables, from the stage's result and outputs
(for :func:`desivoids.display.table` / :func:`desivoids.display.summary`; no computation
beyond summarising what the stage wrote)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import formats, paths
from .stage import ULLAH_2026
from .tweb import WEB_CLASSES

__all__ = ["opening", "profile_table", "web_counts_table", "comparison_table",
           "agreement_table", "ullah_table", "INSIDE", "BEYOND"]

#: r / R_eff bins whose upper edge is at most INSIDE are "inside the void" in the opening, and
#: those whose lower edge is at least BEYOND "well outside"
INSIDE, BEYOND = 1.0, 1.5


def _pooled(p: pd.DataFrame) -> float:
    """Galaxy-weighted mean of the bins' mass-standardised fractions (NaN without galaxies)."""
    ok = p[np.isfinite(p.fraction) & (p.n > 0)]
    return float(np.average(ok.fraction, weights=ok.n)) if len(ok) else float("nan")


def _pct(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{100 * x:.0f}%"


def opening(result) -> list[str]:
    """The chapter's first sentences: what was measured, the quenched fraction inside the voids
    and well outside them per algorithm, along delta_k, and how much of the survey the T-Web
    calls void and how often it agrees with each labelling."""
    r = result.report
    par = r["parameters"]
    edge = sum(int(c["edge_flagged"]) for c in r["caps"])
    lines = [f"{int(r['galaxies']):,d} galaxies in {len(r['caps'])} cap(s) have a local density "
             f"contrast (k = {par['k']}), a distance to the void centre for each void catalogue "
             f"and a T-Web class; {edge:,d} of them are flagged at the survey's edge (less than "
             "half their k-NN sphere inside) and left out of the density profile."]
    p = result.profiles
    rp = p[p.quantity == "r_over_reff"]
    pairs = [(alg, _pooled(a[a.x_hi <= INSIDE]), _pooled(a[a.x_lo >= BEYOND]))
             for alg, a in ((alg, rp[rp.algorithm == alg]) for alg in formats.ALGORITHMS)
             if len(a)]
    if pairs:
        lines.append(f"At fixed stellar mass, the quenched fraction ({par['definition']}) within "
                     f"{INSIDE:g} R_eff of a void centre against beyond {BEYOND:g} R_eff is "
                     + "; ".join(f"{alg} {_pct(i)} against {_pct(o)}" for alg, i, o in pairs)
                     + " (bins averaged, weighted by galaxies).")
    dp = p[(p.quantity == "delta_k") & np.isfinite(p.fraction)].sort_values("x_lo")
    if len(dp) > 1:
        lines.append(f"Along the local density it goes from {_pct(dp.fraction.iloc[0])} in the "
                     f"least dense of {len(dp)} quantile bins of delta_k to "
                     f"{_pct(dp.fraction.iloc[-1])} in the densest.")
    cells = {n: sum(int(c["web_cells"][n]) for c in r["caps"]) for n in WEB_CLASSES}
    total = sum(cells.values())
    agree = pd.DataFrame(r.get("web_agreement", []))
    if total:
        text = (f"The T-Web calls {100 * cells['void'] / total:.0f}% of the survey's grid cells "
                "void")
        if len(agree):
            text += (f", and gives a sample galaxy the same void-or-wall label as the DESIVAST "
                     f"catalogues {100 * agree.same_label.min():.0f}% to "
                     f"{100 * agree.same_label.max():.0f}% of the time")
        lines.append(text + ".")
    return lines


def profile_table(profiles: pd.DataFrame) -> pd.DataFrame:
    """Every profile bin: galaxies, quenched, the mass-standardised fraction with its jackknife
    interval and the raw fraction, percent."""
    t = pd.DataFrame({
        "quantity": profiles.quantity.map({"r_over_reff": "r / R_eff", "delta_k": "delta_k"}),
        "algorithm": profiles.algorithm.replace("", "–"),
        "from": profiles.x_lo, "to": profiles.x_hi, "galaxies": profiles.n,
        "quenched": profiles.k, "fraction (%)": 100 * profiles.fraction,
        "95% low (%)": 100 * profiles.jk_lo, "95% high (%)": 100 * profiles.jk_hi,
        "raw (%)": 100 * profiles.raw})
    return t.round({"from": 3, "to": 3, "fraction (%)": 1, "95% low (%)": 1,
                    "95% high (%)": 1, "raw (%)": 1})


def web_counts_table(data_dir: str) -> pd.DataFrame:
    """Grid cells and tracers per web class (rows) and cap."""
    t = pd.read_parquet(paths.RunLayout.of(data_dir).file("density", "web_counts"))
    return t.pivot(index="web_class", columns="cap", values=["cells", "tracers"]).reindex(
        list(WEB_CLASSES)).rename_axis("web class")


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Void minus wall at fixed stellar mass per labelling, T-Web's void class among them."""
    cols = {"n_void": "void galaxies", "n_wall": "wall galaxies", "p_void": "void quenched",
            "p_wall": "wall quenched", "rd": "void − wall", "rd_jk_lo": "95% low",
            "rd_jk_hi": "95% high"}
    return comparison.set_index("labelling")[[c for c in cols if c in comparison]].rename(
        columns=cols).round(4)


def agreement_table(report: dict) -> pd.DataFrame:
    """T-Web voids against each labelling: sample galaxies both place, the share with the same
    void-or-wall label, both void, Cohen's kappa."""
    t = pd.DataFrame(report["web_agreement"])
    if t.empty:
        return t
    return t.rename(columns={"a": "web", "b": "labelling", "same_label": "same label",
                             "both_void": "both void"}).round(3)


def ullah_table(fractions: pd.DataFrame, definition: str) -> pd.DataFrame:
    """Quenched fraction by web class here beside Ullah et al. 2026's red fraction (for
    orientation: their method differs; never a target)."""
    t = fractions.set_index("web_class")
    return pd.DataFrame({
        "galaxies": t.n,
        f"quenched here ({definition}), %": (100 * t.fraction).round(2),
        "95% low, %": (100 * t.lo).round(1), "95% high, %": (100 * t.hi).round(1),
        "Ullah et al. 2026 red, %": [ULLAH_2026[c][0] for c in t.index],
        "their error, %": [ULLAH_2026[c][1] for c in t.index]}).rename_axis("web class")
