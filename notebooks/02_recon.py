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
# Before anything reads a column, recon looks at what arrived: every FITS file that acquire
# verified, with its HDUs, row counts, columns, units, header keys, size and sha256, each judged
# as convert will judge it.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads acquire/raw, writes recon/)
input_dir: str = ""  # folder to inventory; empty: what acquire verified (<data_dir>/acquire/raw)
strict: bool = False  # fail the stage if any file has a fault
checksum: bool = True  # compute sha256 of every file (one read of every byte)

# %%
from desivoids import display, recon
from desivoids.recon import figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = recon.run(data_dir=data_dir, input_dir=input_dir, strict=strict, checksum=checksum)
inv = result.tables()
display.summary(figures.findings(result, inv))

# %% tags=["remove-output"]
display.figure("recon-kinds", figures.kinds_figure(inv),
               "What arrived, by kind of DESI file: megabytes on disk (left) and table rows in "
               "all HDUs (right), on log scales; each bar is labelled with its number of files.")

# %% [markdown]
# ```{glue:figure} recon-kinds
# :alt: Two horizontal bar charts sharing one row per kind of file: size on disk in megabytes and table rows, both on log scales.
# :name: fig-recon-kinds
#
# {glue:md}`recon-kinds-caption`
# ```

# %%
display.table(figures.by_kind_table(inv), caption="Files, HDUs, table rows and MB per kind of file")

# %% [markdown]
# ## How a file is judged
#
# A file is judged as the convert stage will judge it (`desivoids.formats.check_file`, one
# specification for both): a file that is not FITS, is truncated, lacks an HDU or a column its
# kind must have, stores a column in an encoding that is not the documented value, or whose HDUs
# are not row-matched is listed with its faults; with `strict = True` the stage fails and names
# it. What convert accepts but a reader should know (a V2 file without the visualisation HDUs,
# absent optional columns, `ZWARN` stored as a logical) is a note, not a fault. The complete
# inventory is `recon/inventory.json` (and `files`, `hdus`, `columns` as Parquet) below the
# run's data folder, for later stages and for anyone checking a copy of the data.
#
# ## Faults and notes
#
# Files the later stages must not trust (an empty table: every file opened, is complete and has
# every HDU its kind requires), and notes on files convert reads as they are (`strict` ignores
# notes).

# %%
display.table(figures.faults_table(inv), caption="Files with faults")

# %%
display.table(figures.notes_table(result.files), caption="Notes")

# %% [markdown]
# ## The inventory in full
#
# Every file, grouped by folder, with the kind of DESI file its name says it is and the start of
# its sha256; `published sha256` compares it with DESI's `.sha256sum` list where one sits beside
# the file (a dash: none published). Then every HDU by `EXTNAME` with its rows (tables) or shape
# (images) and the header keys the pipeline reads later (`OMEGAM`, `ZLIMU`, `DLIMU`, `MAGLIM`,
# ...). Click a table to open it.

# %%
display.table(figures.files_table(inv), caption="Every FITS file", collapsed=True)

# %%
display.table(figures.hdus_table(inv), caption="Every HDU", collapsed=True)

# %% [markdown]
# The DESIVAST tables' columns with their FITS formats in each file. Lengths carry the unit
# string `Mpc h-1`; astropy would parse the `h` as hours, so the pipeline keeps them as Mpc/h and
# never converts them. The FastSpecFit and spectra files have hundreds of columns per HDU: how
# many each carries, and the first few.

# %%
display.table(figures.desivast_columns_table(inv), caption="DESIVAST columns and FITS formats",
              collapsed=True)

# %%
display.table(figures.other_columns_table(inv), caption="Columns of the other HDUs", collapsed=True)
