"""The acquire chapter's findings, tables and figures, from the stage's result and its manifest
(tested on a tiny run, so the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame; ``findings``
the chapter's opening sentences. A dry run, a resumed plan or a run without tile spectra gives
empty tables (and a figure that says what is missing), never an error.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .spectra import read_spectra
from .stage import AcquireResult
from .steps import manifest_rows

__all__ = ["findings", "manifest_table", "state_table", "state_figure", "plan_table",
           "plan_totals_table", "transfer_table", "spectra_table", "pairs_table",
           "spectrum_figure"]

#: characters of a file's sha256 shown in the manifest table
SHA_SHOWN = 16
#: colours of a file's state
STATE_COLOURS = {"verified": "C2", "complete": "C1", "empty": "0.6", "failed": "C3"}
#: the three cameras of a DESI spectrograph and the colours they are drawn in
CAMERAS = {"B": "tab:blue", "R": "tab:red", "Z": "darkred"}


def _mb(n) -> pd.Series:
    return (pd.to_numeric(n, errors="coerce") / 1e6).round(2)


def _manifest(result: AcquireResult) -> pd.DataFrame:
    cols = ["path", "set", "kind", "bytes", "checksum", "state", "sha256", "against"]
    if not Path(result.manifest).exists():
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(manifest_rows(result.manifest), columns=cols + [
        "source_digest", "attempts", "error"])


def findings(result: AcquireResult, source: str = "") -> list[str]:
    """What acquire did, in a few sentences computed from the result and the manifest."""
    where = source or "the mock mirror (a local folder in DESI's layout)"
    out = []
    if result.plan is not None:
        out.append(f"Acquire planned {len(result.plan.planned):,d} files "
                   f"({result.plan.total_bytes / 1e6:,.1f} MB) from {where}.")
    else:
        out.append(f"Acquire finished the manifest's plan from {where} without planning again.")
    if result.summary is None:
        out.append("This was a dry run: nothing was downloaded.")
        return out
    m = _manifest(result)
    states = m.state.value_counts()
    data = m[m.kind == "data"]
    out.append(f"{int(states.get('verified', 0)):,d} files "
               f"({pd.to_numeric(m.bytes[m.state == 'verified']).sum() / 1e6:,.1f} MB) "
               "are verified: their bytes match DESI's published sha256 or a digest the source "
               f"offered; {int(states.get('complete', 0)):,d} are complete (size checked and sha256 "
               "recorded, with nothing published to compare it with"
               + (": the checksum lists themselves)." if (m.state == "complete").sum()
                  == ((m.state == "complete") & (m.kind == "checksums")).sum() else ")."))
    failed = int(states.get("failed", 0))
    out.append(f"{failed:,d} files failed." if failed else
               f"No file failed; all {len(data):,d} data files are in place.")
    s = result.spectra
    if s is not None:
        out.append(f"{s.pairs:,d} tile coadd/redrock pairs gave {s.kept:,d} of {s.targets:,d} "
                   f"targets as Parquet spectra (selection {s.selection}).")
    return out


def manifest_table(result: AcquireResult) -> pd.DataFrame:
    """One row per file of the manifest: its state, what its bytes were checked against and the
    start of the sha256 of the bytes on disk."""
    m = _manifest(result)
    return pd.DataFrame({"path": m.path, "set": m.set, "kind": m.kind, "MB": _mb(m.bytes),
                         "state": m.state, "checked against": m.against,
                         "sha256": m.sha256.str[:SHA_SHOWN]})


def state_table(result: AcquireResult) -> pd.DataFrame:
    """Files and MB per set and state."""
    m = _manifest(result).assign(MB=lambda t: _mb(t.bytes))
    return m.groupby(["set", "state"]).agg(files=("path", "size"), MB=("MB", "sum")).round(2)


def state_figure(result: AcquireResult) -> Figure:
    """Megabytes per file set, split by state (verified, complete, ...), each bar labelled with
    its number of files."""
    t = state_table(result).reset_index()
    sets = list(dict.fromkeys(t["set"]))
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(len(sets), 1) + 1.5))
    left = np.zeros(len(sets))
    for state in [s for s in STATE_COLOURS if s in set(t.state)]:
        mine = t[t.state == state].set_index("set").reindex(sets)
        mb, files = mine.MB.fillna(0).to_numpy(), mine.files.fillna(0).astype(int)
        ax.barh(sets, mb, left=left, color=STATE_COLOURS[state],
                label=f"{state} ({int(files.sum()):,d} files)")
        left += mb
    for y, (total, n) in enumerate(zip(left, t.groupby("set", sort=False).files.sum().reindex(sets))):
        ax.annotate(f"{int(n):,d} files", (total, y), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.set(xlabel="size on disk [MB]", ylabel="file set", xlim=(0, max(left.max(initial=0), 1) * 1.2))
    if len(t):
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "nothing fetched (dry run)", ha="center", va="center",
                transform=ax.transAxes)
    fig.tight_layout()
    return fig


def plan_table(result: AcquireResult) -> pd.DataFrame:
    """The plan, one row per file: path, set, kind, MB, what it will be checked against and its
    status (empty when the manifest's plan was resumed)."""
    rows = pd.DataFrame(result.plan.rows() if result.plan is not None else [],
                        columns=["path", "set", "kind", "bytes", "checksum", "status"])
    return rows.assign(MB=_mb(rows.bytes))[["path", "set", "kind", "MB", "checksum", "status"]]


def plan_totals_table(result: AcquireResult) -> pd.DataFrame:
    """The plan's totals (files, bytes, checksums, already in place, to fetch, ...)."""
    return pd.DataFrame(result.plan.totals() if result.plan is not None else [],
                        columns=["quantity", "value"])


def transfer_table(result: AcquireResult) -> pd.DataFrame:
    """The transfer's summary: files per state, verified and complete apart (empty for a dry
    run)."""
    return pd.DataFrame(result.summary.rows() if result.summary is not None else [],
                        columns=["quantity", "value"])


def spectra_table(result: AcquireResult) -> pd.DataFrame:
    """The tile spectra conversion's summary: selection, pairs, targets read, dropped by each cut
    and kept (empty without tile spectra)."""
    return pd.DataFrame(result.spectra.rows() if result.spectra is not None else [],
                        columns=["quantity", "value"])


def pairs_table(result: AcquireResult) -> pd.DataFrame:
    """Per coadd + redrock pair: its state and the targets each cut dropped and kept, and the
    Parquet file written (a dash: nothing kept)."""
    cols = ["coadd", "state", "n_targets", "n_spectype", "n_zwarn", "n_deltachi2", "n_kept", "output"]
    p = pd.DataFrame(result.spectra.records if result.spectra is not None else [], columns=cols)
    return pd.DataFrame({
        "coadd": p.coadd.str.split("/").str[-1], "state": p.state, "targets": p.n_targets,
        "dropped: SPECTYPE": p.n_spectype, "dropped: ZWARN": p.n_zwarn,
        "dropped: DELTACHI2": p.n_deltachi2, "kept": p.n_kept,
        "file": p.output.str.split("/").str[-1].where(p.state == "done")})


def spectrum_figure(result: AcquireResult) -> Figure:
    """The first kept spectrum of the first converted pair, read back from its Parquet file and
    the stored wavelength grids: flux per camera against wavelength."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    done = [r for r in (result.spectra.records if result.spectra is not None else [])
            if r["state"] == "done"]
    ax.set(xlabel="wavelength [Angstrom]", ylabel="flux [1e-17 erg/s/cm2/Angstrom]")
    if not done:
        ax.text(0.5, 0.5, "no tile spectrum was converted in this run", ha="center",
                va="center", transform=ax.transAxes)
        return fig
    table, waves = read_spectra(result.spectra_dir / done[0]["output"])
    row = table.slice(0, 1).to_pylist()[0]
    for cam, colour in CAMERAS.items():
        ax.plot(waves[cam], row[f"{cam}_FLUX"], lw=0.4, color=colour, label=f"{cam} camera")
    ax.set_title(f"TARGETID {row['TARGETID']}, {row['SPECTYPE']} at z = {row['Z']:.3f}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig
