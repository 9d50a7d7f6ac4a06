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
# # acquire: verified files from DESI DR1
#
# The pipeline starts from files, so this stage makes sure they are the right files: the
# DESIVAST void catalogues, the FastSpecFit catalogues and, optionally, tile spectra, each
# checked against every sum there is for it. With the mock profile the source is the mock
# mirror, read through exactly the same code as DESI's portal.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (relative paths: to the repository root)
source: str = ""  # empty: the mock mirror under data_dir; or https, s3, s3://bucket, a URL, a folder
s3_endpoint: str = ""  # another S3 server; empty: AWS
sets: list = ["desivast", "fastspecfit"]  # among desivast, fastspecfit, tiles, healpix, dir
desivast_version: str = "v1.0"  # DESIVAST release folder
fastspec_version: str = "v3.0"  # {v3.0, v2.1} v3.0 (12 nside-1 files) or v2.1 (one file)
hp: list = []  # v3.0 nside-1 pixels to fetch; empty: all twelve
tiles: list = []  # TILEID, TILEID/YYYYMMDD or TILEID/YYYYMMDD/PETALS, or @FILE; empty: every tile at the source
max_tiles: int = 0  # [0, inf) with no tiles given: only the first N tiles by TILEID; 0: all
petals: list = []  # empty: every petal found
healpix: list = []  # SURVEY/PROGRAM/PIXEL, for the healpix set
dirs: list = []  # folders of the relative layout, for the dir set (recursive)
workers: int = 4  # [1, 64] parallel transfers
retries: int = 5  # [0, 100] retries per file, with exponential backoff
backoff: float = 0.5  # [0, 3600] seconds before the first retry, doubling
connect_timeout: float = 10.0  # (0, 3600] seconds to connect to the source
read_timeout: float = 60.0  # (0, 86400] seconds without a byte before a transfer is retried
chunk_kb: int = 1024  # [4, 1048576] bytes read per step of a transfer (KiB): the most a kill can lose of a file
min_free_gb: float = 1.0  # [0, inf) disk guard: stop before less than this is free
dry_run: bool = False  # plan only: list, size and estimate; download nothing
resume: bool = False  # finish the manifest's plan without planning again
rehash: bool = False  # re-hash verified files instead of checking their sizes
spectra: bool = True  # convert fetched coadd + redrock pairs to Parquet
spectype: list = ["GALAXY"]  # SPECTYPE values kept; empty: any
zwarn_zero: bool = True  # keep only ZWARN 0
min_deltachi2: float = 40.0  # [0, inf) keep DELTACHI2 above this (DESIVAST's cut)
scheduler_address: str = ""  # dask.distributed scheduler for the spectra conversion (empty: local threads)

# %%
from desivoids import acquire, display
from desivoids.acquire import figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = acquire.run(
    data_dir=data_dir, source=source, s3_endpoint=s3_endpoint, sets=sets,
    desivast_version=desivast_version, fastspec_version=fastspec_version, hp=hp, tiles=tiles,
    max_tiles=max_tiles, petals=petals, healpix=healpix, dirs=dirs, workers=workers,
    retries=retries, backoff=backoff, connect_timeout=connect_timeout, read_timeout=read_timeout,
    chunk_kb=chunk_kb, min_free_gb=min_free_gb, dry_run=dry_run, resume=resume, rehash=rehash, spectra=spectra,
    spectype=spectype, zwarn_zero=zwarn_zero, min_deltachi2=min_deltachi2,
    scheduler_address=scheduler_address)
display.summary(figures.findings(result, source))

# %% tags=["remove-output"]
display.figure("acquire-states", figures.state_figure(result),
               "What is on disk after acquire: megabytes per file set, split by state (verified: "
               "the bytes match a published or offered checksum; complete: size checked, sha256 "
               "recorded, nothing to compare it with).")

# %% [markdown]
# ```{glue:figure} acquire-states
# :alt: Horizontal stacked bars, one per file set, of megabytes on disk split by state, verified or complete, each labelled with its number of files.
# :name: fig-acquire-states
#
# {glue:md}`acquire-states-caption`
# ```

# %%
display.table(figures.state_table(result), caption="Files and MB per set and state")

# %% [markdown]
# ## How a file is fetched and checked
#
# The source is DESI's HTTPS portal, the anonymous `desidata` S3 bucket, or a local mirror in
# the same relative layout (tile spectra are coadd + redrock pairs).
#
# Every file is written to `NAME.part`, hashed as it arrives, and renamed into place only after
# its size matches and its bytes match every sum there is for them. The plan starts from DESI's
# published `.sha256sum` list in each folder (it names every file, so a server without index
# pages is planned just as well), then the folder listing where there is one; a file named but
# not listed is asked for with a HEAD request. Two states of a file in place are kept apart:
# **verified**, when its sha256 matched the published sum, or (with no published sum) its bytes
# matched a digest the source offered (an S3 ETag, which is the MD5 of a single-part object, or a
# `Digest`/`Content-MD5` header); and **complete**, when its size matched and its sha256 was
# computed and recorded, but nothing could say whether the bytes are right. A SQLite manifest
# records every file's state (`planned`, `partial`, `verified`, `complete`, `failed`, `empty`),
# what it was checked against, its attempts and last error, and a log per batch; a run killed at
# any moment resumes with `desivoids acquire -p resume true`, fetching nothing already in place
# and resuming partial files by byte range; a source that cannot be reached stops the run within
# seconds. Tile spectra are then selected and converted to Parquet, one row per target, with
# each wavelength grid stored once.

# %% [markdown]
# ## The plan
#
# Metadata only: DESI's checksum lists, directory listings and sizes. `checksum` says what the
# file will be checked against: a published sha256 (`published`), a digest the source offered
# (`source`), or nothing but its size (`computed`: the file will be *complete*, not verified).
# The checksum lists themselves are fetched too, so the run keeps the lists its files were
# verified against; a list has no published sum of its own, so it is *complete* unless the
# source offers a digest for it. (Empty when a resumed run finished the manifest's plan.)

# %%
display.table(figures.plan_totals_table(result), caption="The plan's totals")

# %%
display.table(figures.plan_table(result), caption="Every planned file", collapsed=True)

# %% [markdown]
# ## The transfer
#
# Files already in place are checked (size) and not fetched again. The summary counts every
# file of the manifest, verified and complete apart: a file that cannot be fetched, or a request
# that could not be planned, is listed with its reason, and the stage then fails rather than let
# later stages run on an incomplete set. (Empty for a dry run.)

# %%
display.table(figures.transfer_table(result), caption="The transfer")

# %% [markdown]
# ## The verified manifest
#
# One row per file, from `acquire/manifest.sqlite`: its state (`verified` or `complete`), what its
# bytes were checked against, and the first characters of the sha256 of the bytes now on disk.

# %%
display.table(figures.manifest_table(result), caption="Every file of the manifest", collapsed=True)

# %% [markdown]
# ## Tile spectra to Parquet
#
# Each coadd + redrock pair: the targets passing the selection (SPECTYPE, then ZWARN == 0, then
# DELTACHI2 above the minimum; every row is counted in exactly one column), with their redshift
# row, fibermap columns and B/R/Z flux, inverse variance and mask, one row per target in
# `acquire/spectra/<selection>/`, one folder per selection so that two selections never
# overwrite each other's files or records. The wavelength grids are written once, in
# `acquire/spectra/wavelength/`. A tile that keeps no target is recorded as `empty`.
# (Empty without the tiles set.)

# %%
display.table(figures.spectra_table(result), caption="The spectra conversion")

# %%
display.table(figures.pairs_table(result), caption="Per coadd and redrock pair")

# %% tags=["remove-output"]
display.figure("acquire-spectrum", figures.spectrum_figure(result),
               "One kept spectrum, read back from its Parquet file and the stored wavelength "
               "grids: flux against wavelength for the B, R and Z cameras.")

# %% [markdown]
# ```{glue:figure} acquire-spectrum
# :alt: A galaxy spectrum: flux against wavelength from about 3600 to 9800 Angstrom, in three overlapping segments for the B, R and Z cameras.
# :name: fig-acquire-spectrum
#
# {glue:md}`acquire-spectrum-caption`
# ```
