# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # recon: an inventory of every FITS file
#
# Before anything reads a column, we look at what arrived: every FITS file that the acquire
# stage verified, with its HDUs (by `EXTNAME`), row counts, columns with their FITS formats and
# units, the header keys that carry the catalogue's parameters (`OMEGAM`, `ZLIMU`, `DLIMU`,
# `MAGLIM`, ...), its size and sha256. A file is judged as the convert stage will judge it
# (`desivoids.formats.check_file`, one specification for both): a file that is not FITS, is
# truncated, lacks an HDU or a column its kind must have, stores a column in an encoding that is
# not the documented value, or whose HDUs are not row-matched is listed with its faults; with
# `strict = True` the stage fails and names it. What convert accepts but a reader should know (a
# V2 file without the visualisation HDUs, absent optional columns, `ZWARN` stored as a logical)
# is listed as a note, not a fault.
#
# The complete inventory is written as `recon/inventory.json` (and as Parquet tables) below the
# run's data folder, for later stages and for anyone checking a copy of the data.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads acquire/raw, writes recon/)
input_dir: str = ""  # folder to inventory; empty: what acquire verified (<data_dir>/acquire/raw)
strict: bool = False  # fail the stage if any file has a fault
checksum: bool = True  # compute sha256 of every file (one read of every byte)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from desivoids import recon
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = recon.run(data_dir=data_dir, input_dir=input_dir, strict=strict, checksum=checksum)
files, inv = result.files, result.tables()
pd.set_option("display.max_rows", 200)
pd.set_option("display.max_colwidth", 90)

# %% [markdown]
# ## Files
#
# One row per FITS file below the input folder, grouped by folder, with the kind of DESI file its
# name says it is and the first characters of its sha256.
# `published_sha256_match` compares our checksum with DESI's published `.sha256sum` file where
# one sits beside the file.

# %%
files_table = inv["files"].assign(
    folder=inv["files"].path.str.rsplit("/", n=1).str[0],
    file=inv["files"].path.str.rsplit("/", n=1).str[-1],
    size_MB=(inv["files"].size_bytes / 1e6).round(2),
    sha256=inv["files"].sha256.str[:12])
files_table.set_index(["folder", "file"])[["kind", "size_MB", "hdus", "sha256", "published_sha256_match", "fault", "notes"]]

# %%
summary = pd.DataFrame({
    "FITS files": [len(files)],
    "HDUs": [len(inv["hdus"])],
    "table rows": [int(inv["hdus"].rows.fillna(0).sum())],
    "bytes": [int(inv["files"].size_bytes.sum())],
    "files with faults": [int(inv["files"].fault.notna().sum())],
})
summary

# %% [markdown]
# What arrived, by kind of file: bytes on disk and table rows (log scales: the FastSpecFit
# catalogues dwarf the void catalogues).

# %%
by_kind = inv["files"].groupby("kind").agg(files=("path", "size"), bytes=("size_bytes", "sum"))
rows_by_kind = (inv["hdus"].merge(inv["files"][["path", "kind"]], on="path")
                .groupby("kind").rows.sum())
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.2), sharey=True)
a1.barh(by_kind.index, by_kind.bytes / 1e6, color="C0")
a1.set(xscale="log", xlabel="MB on disk", title="bytes per kind of file")
a2.barh(rows_by_kind.index, rows_by_kind.reindex(by_kind.index).fillna(0).clip(lower=1), color="C2")
a2.set(xscale="log", xlabel="table rows (all HDUs)", title="rows per kind of file")
for ax, values in ((a1, by_kind.files), (a2, None)):
    if values is not None:
        for y, (_k, n) in enumerate(values.items()):
            ax.annotate(f"{n} file{'s' if n != 1 else ''}", (by_kind.bytes.iloc[y] / 1e6, y),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
fig.tight_layout()
plt.show();

# %% [markdown]
# ## HDUs
#
# Every HDU of every file, by `EXTNAME`, with its row count (tables) or shape (images), and the
# header keys the pipeline reads later.

# %%
inv["hdus"].assign(path=inv["hdus"].path.str.split("/").str[-1])[
    ["path", "index", "extname", "type", "rows", "shape", "columns", "header"]]

# %% [markdown]
# ## Columns
#
# The DESIVAST tables in full (names, FITS formats and units). Lengths carry the unit string
# `Mpc h-1`; astropy would parse the `h` as hours, so the pipeline keeps them as Mpc/h and never
# converts them.

# %%
cols = inv["columns"]
desivast = cols[cols.path.str.contains("DESIVAST")]
desivast.assign(path=desivast.path.str.split("/").str[-1]).pivot_table(
    index=["extname", "column"], columns="path", values="format", aggfunc="first", sort=False).fillna("")

# %% [markdown]
# The FastSpecFit and spectra files have hundreds of columns per HDU; here is how many each HDU
# carries, and the first few of each.

# %%
other = cols[~cols.path.str.contains("DESIVAST")]
(other.assign(file=other.path.str.split("/").str[-1])
      .groupby(["file", "extname"], sort=False)
      .agg(columns=("column", "size"), first=("column", lambda c: ", ".join(c[:8]))))

# %% [markdown]
# ## Faults
#
# Files the later stages must not trust. An empty table means every file opened, is complete,
# and has every HDU its kind requires.

# %%
inv["files"].loc[inv["files"].fault.notna(), ["path", "fault"]]

# %% [markdown]
# ## Notes
#
# Files convert reads as they are, with something worth knowing: one row per note (files with
# notes are not faulty, and `strict` ignores notes).

# %%
pd.DataFrame([{"path": f.path, "note": n} for f in files for n in f.notes], columns=["path", "note"])
