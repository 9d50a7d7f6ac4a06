"""The release chapter's figures and tables, and the result in one figure (tested on a tiny run,
so the notebook only calls them).

The answer figure is :func:`desivoids.systematics.figures.forest`: one row per distinct result
(algorithm and quenched definition), the mass-matched difference of quenched fractions, void
minus wall, with its 95% jackknife interval (both caps, all voids). On a mock run it carries
the MOCK mark and, where the mock planted an answer, the expected value beside each estimate.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from .. import paths
from ..systematics.figures import WIDTH, forest

from .hats import partition_figure

__all__ = ["answer_figure", "answer", "answer_of", "partition_figure", "opening", "files_figure",
           "files_table", "provenance_table", "dictionary_table", "citation_block"]


def answer_figure(summary: pd.DataFrame, path: Path, *, mock: bool = False,
                  expected: pd.DataFrame | None = None) -> Path:
    """Write the figure (PNG) from the systematics summary, and close it.

    ``mock``: draw the MOCK mark. ``expected``: :func:`desivoids.systematics.beside_expected`'s
    table, whose expected value per algorithm is drawn as a marker."""
    fig = answer(summary, mock=mock, expected=expected)
    fig.savefig(path)
    plt.close(fig)
    return path


def answer(summary: pd.DataFrame, *, mock: bool = False, expected: pd.DataFrame | None = None):
    """The answer figure as a matplotlib Figure (see :func:`answer_figure`)."""
    return forest(summary, expected, mock=mock)


def answer_of(data_dir: str = "data/mock") -> Figure:
    """The answer figure of a run, from its systematics summary (through the run layout), with
    the mock's expected values on a mock run: what the release writes as figures/answer.png."""
    from ..runinfo import run_info
    from ..systematics.expected import expected_of

    summary = pq.read_table(paths.RunLayout.of(data_dir).file("systematics", "summary")).to_pandas()
    return answer(summary, mock=run_info(data_dir).mock, expected=expected_of(data_dir, summary))


def files_table(result) -> pd.DataFrame:
    """Every promised file: its size and whether it exists, reads, matches SHA256SUMS and has
    its documented columns."""
    f = result.files()
    return f[["file", "bytes", "exists", "reads", "checksum", "columns", "ok"]].rename(
        columns={"checksum": "sha256 as listed", "columns": "documented columns"})


def files_figure(result) -> Figure:
    """The release's files by size (log scale)."""
    f = result.files().assign(MB=lambda t: t.bytes / 1e6).sort_values("MB")
    fig, ax = plt.subplots(figsize=(WIDTH, 1.2 + 0.28 * len(f)), layout="constrained")
    ax.barh(f.file, f.MB.clip(lower=1e-4), color="C0")
    ax.set(xscale="log", xlabel="size [MB]")
    ax.tick_params(axis="y", labelsize=9)
    return fig


def provenance_table(prov: dict) -> pd.DataFrame:
    """The software and source state that computed the release, one row per fact."""
    rows = {"git commit": prov["git"]["commit"], "working tree dirty": prov["git"]["dirty"],
            "input files": len(prov["inputs"]["files"]), "inputs listed by": prov["inputs"]["from"],
            **{f"version of {k}": v for k, v in prov["software"].items()}}
    return pd.DataFrame({"what": list(rows), "value": [str(v) for v in rows.values()]})


def opening(result) -> list[str]:
    """The chapter's first lines: what was released, its checks, and its size."""
    f = result.files()
    ok = int(f.ok.sum())
    lines = [f"Release {result.out_dir.name}: {len(f)} files and catalogues, "
             f"{f.bytes.sum() / 1e6:,.1f} MB, {ok} of {len(f)} complete (present, readable, "
             "their sha256 as listed in SHA256SUMS, their documented columns).",
             f"{len({r['table'] for r in result.dictionary})} tables with "
             f"{len(result.dictionary):,d} documented columns, as Parquet and as HATS "
             "catalogues that LSDB opens."]
    git = result.provenance.get("git", {})
    if git.get("commit"):
        lines.append(f"Computed at commit {str(git['commit'])[:12]}"
                     + (" with uncommitted changes." if git.get("dirty") else "."))
    return lines


def dictionary_table(result) -> pd.DataFrame:
    """The data dictionary (generated from the written files' schemas), one row per column."""
    return pd.DataFrame(result.dictionary)


def citation_block(result) -> str:
    """The release's CITATION.cff as a Markdown code block."""
    return "```yaml\n" + (result.out_dir / "CITATION.cff").read_text() + "```"
