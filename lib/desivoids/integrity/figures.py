"""The integrity chapter's findings, tables and figures, from the stage's report (tested on a
tiny run, so the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame; ``findings``
the chapter's opening sentences. (``desivoids.integrity.tables`` holds the table checks
themselves, so the chapter's tables live here.)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["STATUS_COLOURS", "family", "findings", "families_table", "families_figure",
           "checks_table", "demoted_table", "warnings_table", "files_table", "nulls_table",
           "nulls_figure", "references_table", "v2_table"]

#: colours of a check's status
STATUS_COLOURS = {"pass": "C2", "warn": "C1", "fail": "C3"}
#: null fractions below this are drawn on a linear scale (the y axis is symlog above it)
LINEAR_BELOW = 1e-4


def family(check_id: str) -> str:
    """A check's family: the first part of its id (``nulls.galaxies.z`` -> ``nulls``)."""
    return check_id.split(".")[0]


def _evidence(c: dict) -> str | None:
    """A check's scalar evidence as ``key value; ...`` (lists and mappings left to the report)."""
    items = [(k, v) for k, v in c["evidence"].items() if not isinstance(v, (list, dict))]
    return "; ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, (int, np.integer))
                     and not isinstance(v, bool) else f"{k.replace('_', ' ')} {v}"
                     for k, v in items) or None


def families_table(result) -> pd.DataFrame:
    """Checks per family (rows, in the report's order) and status (columns)."""
    t = pd.DataFrame([{"family": family(c["id"]), "status": c["status"]} for c in result.checks])
    counts = pd.crosstab(t.family, t.status).reindex(list(dict.fromkeys(t.family)))
    cols = [s for s in STATUS_COLOURS if s in counts] + [s for s in counts if s not in STATUS_COLOURS]
    return counts[cols].rename_axis(index="family", columns=None)


def findings(result) -> list[str]:
    """What integrity found, in a few sentences computed from its report."""
    s = result.report["summary"]
    fams = families_table(result)
    out = [f"Integrity ran {len(result.checks):,d} checks in {len(fams):,d} families "
           f"({', '.join(fams.index)}) on convert's Parquet and the load stage's database: "
           f"{s['pass']:,d} passed, {s['warn']:,d} warned and {s['fail']:,d} failed."]
    bad = [c for c in result.checks if c["status"] != "pass"]
    if bad:
        out.append("Not passed: " + ", ".join(f"{c['id']} ({c['status']})" for c in bad) + ".")
    else:
        out.append("Every source row is in the database or in its rejects, every key is unique, "
                   "every type is the documented one and every reference between the tables "
                   "holds.")
    nulls = nulls_table(result)
    if len(nulls):
        top = nulls.sort_values(["fraction", "column"], ascending=[False, True]).iloc[0]
        out.append(f"The largest null or non-finite fraction of a critical galaxy column is "
                   f"{top.fraction:.2%} ({top.column}; at most {top.limit:.2%} allowed).")
    demoted = result.report["demoted"]
    out.append(f"Demoted to warnings by the demote parameter: {', '.join(demoted)}."
               if demoted else "No check was demoted.")
    return out


def families_figure(result) -> Figure:
    """Horizontal stacked bars: checks per family, by status."""
    fams = families_table(result)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(fams) + 1.2))
    left = np.zeros(len(fams))
    for status in fams.columns:
        ax.barh(fams.index, fams[status], left=left, color=STATUS_COLOURS.get(status, "0.5"),
                label=f"{status} ({int(fams[status].sum()):,d})")
        left += fams[status].to_numpy()
    ax.invert_yaxis()
    ax.set(xlabel="checks", ylabel="family")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def checks_table(result) -> pd.DataFrame:
    """Every check: family, id, status (a demoted failure reads ``warn (demoted)``), what it
    checks."""
    t = result.table()
    return t.assign(family=t["id"].map(family))[["family", "id", "status", "check"]]


def demoted_table(result) -> pd.DataFrame:
    """The checks demoted to warnings by the ``demote`` parameter."""
    return pd.DataFrame({"demoted": result.report["demoted"]}, columns=["demoted"])


def warnings_table(result) -> pd.DataFrame:
    """The checks that warn, with their evidence."""
    return pd.DataFrame([{"id": c["id"], "evidence": _evidence(c)} for c in result.checks
                         if c["status"] == "warn"], columns=["id", "evidence"])


def files_table(result) -> pd.DataFrame:
    """Per table and source file: rows convert read, rows in the database table, rows in the
    database's rejects."""
    rows = [dict(table=c["id"].split(".", 1)[1], **f) for c in result.checks
            if c["id"].startswith("reconciliation.") and "files" in c["evidence"]
            for f in c["evidence"]["files"]]
    t = pd.DataFrame(rows)
    if t.empty:
        return pd.DataFrame(columns=["table", "source_file"])
    return t.assign(source_file=t.source_file.str.split("/").str[-1])


def nulls_table(result) -> pd.DataFrame:
    """Per critical galaxy column: rows, nulls, non-finite values, their fraction, the largest
    fraction allowed and the status."""
    return pd.DataFrame([{"column": c["id"].split(".")[-1], **c["evidence"], "status": c["status"]}
                         for c in result.checks if c["id"].startswith("nulls.")],
                        columns=["column", "rows", "null", "nonfinite", "fraction", "limit",
                                 "status"])


def nulls_figure(result) -> Figure:
    """Bars: each critical column's null or non-finite fraction, coloured by status; ticks: the
    largest fraction allowed (symlog: zero and small fractions both visible)."""
    nulls = nulls_table(result)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(nulls))
    ax.bar(x, nulls.fraction, color=[STATUS_COLOURS.get(s, "0.5") for s in nulls.status],
           label="null or non-finite fraction")
    ax.scatter(x, nulls.limit, marker="_", s=300, color="k", label="largest allowed (parameter)")
    ax.set_xticks(x, nulls.column, rotation=60, ha="right")
    ax.set(ylabel="fraction of rows", xlabel="galaxy column", ylim=(0, 1))
    ax.set_yscale("symlog", linthresh=LINEAR_BELOW)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def references_table(result) -> pd.DataFrame:
    """The checks of references between the tables and of the V2 tessellations: id, status and
    their scalar evidence."""
    return pd.DataFrame([{"id": c["id"], "status": c["status"], "evidence": _evidence(c)}
                         for c in result.checks if c["id"].startswith(("refs.", "tessellation."))],
                        columns=["id", "status", "evidence"])


def v2_table(result) -> pd.DataFrame:
    """Per V2 file (cap, algorithm): its voids, the zones and tracers in them, and their shares."""
    t = result.v2_labellings()
    if t.empty:
        return t
    return t.sort_values(["cap", "algorithm"]).set_index(["cap", "algorithm"]).round(3)
