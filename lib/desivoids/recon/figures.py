"""The recon chapter's findings, tables and figure, from the inventory (tested on a tiny run, so
the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame; ``findings``
the chapter's opening sentences.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["findings", "by_kind_table", "kinds_figure", "files_table", "hdus_table",
           "desivast_columns_table", "other_columns_table", "faults_table", "notes_table"]

#: columns of the other (FastSpecFit, spectra) HDUs named in the overview of their columns
FIRST_COLUMNS = 8


def _name(path: pd.Series) -> pd.Series:
    return path.str.rsplit("/", n=1).str[-1]


def by_kind_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per kind of DESI file: files, HDUs, table rows and MB on disk (largest first)."""
    files, hdus = inv["files"], inv["hdus"]
    rows = hdus.merge(files[["path", "kind"]], on="path").groupby("kind", dropna=False).agg(
        hdus=("index", "size"), rows=("rows", "sum"))
    table = files.groupby("kind", dropna=False).agg(files=("path", "size"),
                                                    MB=("size_bytes", "sum")).join(rows)
    table["MB"] = (table["MB"] / 1e6).round(2)
    table = table.fillna({"hdus": 0, "rows": 0}).astype({"hdus": int, "rows": int})
    return table.sort_values("MB", ascending=False)[["files", "hdus", "rows", "MB"]]


def findings(result, inv: dict[str, pd.DataFrame]) -> list[str]:
    """What recon found, in a few sentences computed from the inventory."""
    files = inv["files"]
    kinds = by_kind_table(inv)
    n_rows = int(kinds["rows"].sum())
    out = [f"Recon opened {len(files):,d} FITS files ({files.size_bytes.sum() / 1e6:,.1f} MB) "
           f"holding {len(inv['hdus']):,d} HDUs and {n_rows:,d} table rows."]
    biggest = kinds.index[0] if len(kinds) else None
    if biggest is not None:
        out.append(f"The largest kind is {biggest} ({int(kinds.loc[biggest, 'files']):,d} files, "
                   f"{kinds.loc[biggest, 'MB']:,.1f} MB, {int(kinds.loc[biggest, 'rows']):,d} rows); "
                   f"{len(kinds):,d} kinds of DESI file in all.")
    published = files.published_sha256_match.notna()
    out.append(f"{int(files.published_sha256_match.eq(True).sum()):,d} of {int(published.sum()):,d} "
               "files with a published sha256 match it." if published.any()
               else "No file has a published sha256 beside it.")
    faulty = files[files.fault.notna()]
    out.append("Every file opened, is complete and has every HDU and column its kind requires."
               if faulty.empty else
               f"{len(faulty):,d} files have faults: {', '.join(_name(faulty.path))}.")
    noted = sum(1 for f in result.files if f.notes)
    if noted:
        out.append(f"{noted:,d} files carry notes (accepted by convert, listed below).")
    return out


def kinds_figure(inv: dict[str, pd.DataFrame]) -> Figure:
    """Bytes on disk and table rows per kind of file, side by side on log scales (the FastSpecFit
    catalogues dwarf the void catalogues), each bar labelled with its number of files."""
    kinds = by_kind_table(inv).iloc[::-1]  # largest at the top
    y = np.arange(len(kinds))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 0.45 * len(kinds) + 1.6), sharey=True)
    a1.barh(y, kinds["MB"].clip(lower=1e-3), color="C0")
    a1.set(xscale="log", xlabel="size on disk [MB]", title="bytes per kind of file")
    a2.barh(y, kinds["rows"].clip(lower=1), color="C2")
    a2.set(xscale="log", xlabel="table rows (all HDUs)", title="rows per kind of file")
    a1.set_yticks(y, kinds.index)
    for k, (mb, n) in enumerate(zip(kinds["MB"], kinds["files"])):
        a1.annotate(f"{n:,d} file{'s' if n != 1 else ''}", (max(mb, 1e-3), k), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def files_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per FITS file: folder, file, kind, MB, HDUs, the start of its sha256, whether it
    matches DESI's published sum (a dash: none published), fault and notes."""
    f = inv["files"]
    return pd.DataFrame({
        "folder": f.path.str.rsplit("/", n=1).str[0].where(f.path.str.contains("/"), "."),
        "file": _name(f.path), "kind": f.kind, "MB": (f.size_bytes / 1e6).round(2),
        "HDUs": f.hdus, "sha256": f.sha256.str[:12], "published sha256": f.published_sha256_match,
        "fault": f.fault, "notes": f.notes})


def hdus_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every HDU of every file: its EXTNAME, type, rows (tables) or shape (images), columns and
    the header keys the pipeline reads later."""
    h = inv["hdus"]
    return pd.DataFrame({"file": _name(h.path), "HDU": h["index"], "EXTNAME": h.extname,
                         "type": h["type"], "rows": h.rows, "shape": h["shape"],
                         "columns": h["columns"], "header keys": h.header})


def desivast_columns_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The DESIVAST tables' columns (rows: HDU and column) and their FITS format in each file
    (columns; a dash: the file has no such column)."""
    cols = inv["columns"]
    d = cols[cols.path.str.contains("DESIVAST")]
    if d.empty:
        return pd.DataFrame(columns=["EXTNAME", "column"])
    wide = d.assign(file=_name(d.path)).pivot_table(
        index=["extname", "column"], columns="file", values="format", aggfunc="first", sort=False)
    wide.columns.name = None
    return wide.rename_axis(["EXTNAME", "column"]).reset_index()


def other_columns_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The other files' HDUs (FastSpecFit, spectra; hundreds of columns each): how many columns
    each carries and the first few."""
    cols = inv["columns"]
    o = cols[~cols.path.str.contains("DESIVAST")]
    if o.empty:
        return pd.DataFrame(columns=["file", "EXTNAME", "columns", "first columns"])
    g = o.assign(file=_name(o.path)).groupby(["file", "extname"], sort=False).column
    return pd.DataFrame({"columns": g.size(),
                         "first columns": g.agg(lambda c: ", ".join(c[:FIRST_COLUMNS]))}
                        ).rename_axis(["file", "EXTNAME"]).reset_index()


def faults_table(inv: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The files later stages must not trust, with their faults."""
    f = inv["files"]
    return f.loc[f.fault.notna(), ["path", "fault"]].reset_index(drop=True)


def notes_table(files) -> pd.DataFrame:
    """One row per note (accepted by convert, worth knowing; strict ignores notes)."""
    return pd.DataFrame([{"path": f.path, "note": n} for f in files for n in f.notes],
                        columns=["path", "note"])
