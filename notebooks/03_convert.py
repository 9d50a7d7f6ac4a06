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
# # convert: FITS catalogues to Parquet, with every row accounted for
#
# The FastSpecFit catalogues become one Parquet dataset of galaxies with a documented column set
# and a few derived quantities; the eight DESIVAST files become a unified voids table plus the
# VoidFinder holes and the V2 zone tables. Every source row lands in an output table or in
# `rejects` with its reason.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads acquire/raw, writes convert/)
input_dir: str = ""  # folder of FITS files to read; empty: what acquire verified
extra_columns: list = []  # more FastSpecFit columns to keep (FITS names, any HDU), e.g. ["EBV"]
chunk_rows: int = 100000  # [1, 100000000] rows per Dask task and Parquet row group
scheduler: str = "threads"  # {threads, processes, synchronous} Dask local scheduler
scheduler_address: str = ""  # dask.distributed scheduler address (empty: the local scheduler)
num_workers: int = 0  # [0, 256] local Dask workers (0: two threads or one process per core)
fastspec_version: str = "auto"  # {auto, v3.0, v2.1} auto: v3.0 if present, else v2.1
omega_m: float = 0.0  # [0, 1) Omega_m for distances (0: OMEGAM from the DESIVAST headers)
strict: bool = False  # True: a row that would be rejected stops the stage instead
compression: str = "lz4"  # {lz4, none, snappy, zstd} Parquet codec (lz4 the fastest here)
direct_io: bool = True  # read the FITS rows around the page cache (O_DIRECT) where possible

# %%
from desivoids import convert, display
from desivoids.convert import figures
from desivoids.runinfo import banner

result = convert.run(data_dir=data_dir, input_dir=input_dir, extra_columns=extra_columns,
                     chunk_rows=chunk_rows, scheduler=scheduler,
                     scheduler_address=scheduler_address, num_workers=num_workers,
                     fastspec_version=fastspec_version, omega_m=omega_m, strict=strict,
                     compression=compression, direct_io=direct_io)
banner(data_dir)  # mock or DESI DR1 (after convert: the galaxy count is convert's own, so a rerun shows the same)
display.summary(figures.findings(result))

# %% tags=["remove-output"]
display.figure("convert-first-look", figures.first_look_figure(result.out_dir),
               "A first look at the converted tables: the galaxies' redshifts (left), their "
               "specific star-formation rate against stellar mass with the sSFR quenching "
               "threshold (middle; galaxies with SFR = 0 have no log sSFR and are counted in the "
               "title), and the effective radii of each algorithm's voids (right).")

# %% [markdown]
# ```{glue:figure} convert-first-look
# :alt: Three panels: a histogram of galaxy redshifts on a log scale, a density map of log specific star-formation rate against log stellar mass with a horizontal line at the quenching threshold, and step histograms of void effective radius in Mpc/h for VoidFinder, REVOLVER, VIDE and ZOBOV.
# :name: fig-convert-first-look
#
# {glue:md}`convert-first-look-caption`
# ```

# %%
display.table(figures.totals_table(result.reconciliation), caption="Rows per output table")

# %%
display.table(figures.voids_table(result.out_dir), caption="Voids per algorithm and cap")

# %% [markdown]
# ## How the files are read
#
# The FastSpecFit catalogues (v3.0: `METADATA`, `SPECPHOT`, `FASTSPEC` per HEALPix file; or
# v2.1: one file with `FASTSPEC`, `METADATA`) give the galaxies, with log sSFR, errors from
# inverse variances, the DESIVAST absolute magnitude $M_r$, comoving distance and position. The
# files are found by their DESI names anywhere below the input folder (DESI's layout, a flat
# folder, any tree). Reading is chunked: Dask tasks over (file, row range) read raw bytes from
# the data offset, so memory stays bounded whatever the file size. HDUs are selected by
# `EXTNAME`; the HDUs of a FastSpecFit file are checked to be row-matched on `TARGETID` in every
# chunk.
#
# The reconciliation must balance exactly, and is checked against the Parquet files actually
# written before anything is published. Bad input (a truncated file, a missing HDU or needed
# column, shuffled HDUs, duplicate `TARGETID`s, an empty table) stops the stage with an error
# naming the file, HDU and column of every problem at once, and leaves the previous output
# untouched.
#
# ## Reconciliation per file
#
# One row per source file, HDU and output table: rows read, rows written, rows rejected by
# reason (`<reason>:<column>`). `balanced` is rows read = rows written + rows rejected; the stage
# publishes nothing unless every entry balances and matches the rows actually written.

# %%
display.table(figures.entries_table(result), caption="Reconciliation per file and HDU", collapsed=True)

# %% [markdown]
# HDUs that are deliberately not converted (the V2 `TRIANGLE` and `GALVIZ` HDUs only serve
# visualisation), and the settings of this conversion: the cosmology used for distances and
# voids kept with a non-finite value (the value is null; no void is ever dropped).

# %%
display.table(figures.skipped_table(result.reconciliation), caption="HDUs not converted", collapsed=True)

# %%
display.table(figures.settings_table(result.reconciliation), caption="Settings of this conversion")

# %% [markdown]
# ## What the source files lack, and rejected rows
#
# A file needs only the columns the science and the output contract need
# (`desivoids.formats.required_columns`: the `required` column of the dictionary below); every
# other output column is taken where the file has it and is null where it does not. The same
# output schema comes out whatever the input. Notes are what was accepted but should be known,
# e.g. a `ZWARN` stored as a FITS logical (astropy writes int8 so): only `zwarn == 0` is then
# meaningful. Rejected rows are not in an output table; the first few are shown with their file,
# HDU, row and key, all of them are in `convert/rejects.parquet`.

# %%
display.table(figures.absent_table(result.reconciliation), caption="Columns the source files lack")

# %%
display.table(figures.notes_table(result.reconciliation), caption="Notes on source files")

# %%
display.table(figures.rejects_table(result.out_dir), caption="Rejected rows (the first few)")

# %% [markdown]
# ## Column dictionary
#
# Every output column with its type, source (FITS column, or `derived`), whether a source file
# must have it (`required`; otherwise null where absent), unit and meaning; the same text is
# stored in each Parquet field's metadata and in the release's data dictionary.

# %%
display.table(figures.dictionary_table(), caption="Every output column", collapsed=True)
