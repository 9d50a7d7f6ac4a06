"""The plausibility chapter's tables and opening sentences, from the stage's result (tested on a
tiny run, so the notebook only calls them)."""
from __future__ import annotations

import pandas as pd

__all__ = ["opening", "thresholds_table", "waterfall_table", "reproduction_table",
           "findings_table"]


def _both(result) -> pd.DataFrame:
    w = result.waterfall
    return w[w.cap == "both"].reset_index(drop=True)


def opening(result) -> list[str]:
    """The chapter's first lines: how many galaxies became tracers and the sample, the cut that
    removed most, whether the tracers reproduce GALZONE's, and the findings."""
    both = _both(result)
    n_in, n_out = int(both.remaining.iloc[0]), int(both.remaining.iloc[-1])
    cuts = both.iloc[1:]
    biggest = cuts.loc[cuts.removed.idxmax()] if len(cuts) else None
    rep = result.reproduction
    lines = [f"Of {n_in:,d} galaxies in the converted catalogue, {n_out:,d} "
             f"({100 * n_out / n_in:.1f}%) are in the sample: DESIVAST's tracer selection "
             "less FastSpecFit's failed fits, every galaxy charged to the first cut it fails."]
    if biggest is not None and int(biggest.removed):
        lines.append(f"The cut that removes most is {biggest.cut} ({biggest.description}): "
                     f"{int(biggest.removed):,d} galaxies.")
    if len(rep):
        agree = int(rep.selected_only.sum()) == 0 and int(rep.galzone_only.sum()) == 0
        lines.append(("The selected tracers are exactly GALZONE's in every cap "
                      f"({int(rep.both.sum()):,d} galaxies)." if agree else
                      f"The selected tracers differ from GALZONE's: "
                      f"{int(rep.selected_only.sum()):,d} selected only, "
                      f"{int(rep.galzone_only.sum()):,d} in GALZONE only."))
    f = result.findings
    found = f[f.status == "finding"]
    lines.append("Every physical range holds." if found.empty else
                 f"{len(found)} physical range{'s are' if len(found) > 1 else ' is'} exceeded: "
                 + "; ".join(f"{r.quantity} in the {r.population}, {int(r.outside):,d} of "
                             f"{int(r.rows):,d} rows outside {r.expected}"
                             for r in found.itertuples()) + " (reported, not cut).")
    return lines


def thresholds_table(report: dict) -> pd.DataFrame:
    """Each cut as run: its rule in words and what it defines (tracers or the sample)."""
    return pd.DataFrame(report["cuts"]).rename(columns={"name": "cut", "description": "rule"})


def waterfall_table(result) -> pd.DataFrame:
    """Rows removed by each cut, in order, and rows remaining, per cap and both caps."""
    w = result.waterfall
    wide = w.pivot_table(index=["step", "cut"], columns="cap", values=["removed", "remaining"],
                         sort=False).astype(int)
    wide.columns = [f"{what}, {cap}" for what, cap in wide.columns]
    order = [f"{what}, {cap}" for cap in dict.fromkeys(w.cap) for what in ("removed", "remaining")]
    return wide[order].reset_index().drop(columns="step")


def reproduction_table(result) -> pd.DataFrame:
    """The selected tracers against GALZONE's, per cap."""
    return result.reproduction.drop(columns=["examples_selected_only", "examples_galzone_only"]
                                    ).rename(columns={
        "selected": "tracers selected", "galzone": "GALZONE tracers", "both": "in both",
        "selected_only": "selected only", "galzone_only": "GALZONE only",
        "galzone_out": "GALZONE, OUT = 1"})


def findings_table(result) -> pd.DataFrame:
    """Per quantity, in the catalogue and in the sample: rows outside the expected range and
    where that range comes from."""
    f = result.findings
    return pd.DataFrame({
        "quantity": f.quantity, "in": f.population, "expected range": f.expected.map(
            lambda r: f"[{r[0]:g}, {r[1]:g}]"),
        "rows": f.rows, "not finite": f.not_finite, "outside": f.outside,
        "fraction outside": f.fraction_outside, "min": f["min"], "max": f["max"],
        "status": f.status, "why this range": f.why})
