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
# The pipeline starts from files, so this stage makes sure they are the right files. It fetches
# the DESIVAST void catalogues, the FastSpecFit catalogues and, optionally, tile spectra (coadd +
# redrock) from a source: DESI's HTTPS portal, the anonymous `desidata` S3 bucket, or a local
# mirror in the same relative layout. With the mock profile the source is the mock mirror, read
# through exactly the same code as the real portal.
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
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from desivoids import acquire
from desivoids.acquire.spectra import read_spectra
from desivoids.acquire.steps import manifest_rows
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

pd.set_option("display.max_rows", 200)
pd.set_option("display.max_colwidth", 110)
result = acquire.run(
    data_dir=data_dir, source=source, s3_endpoint=s3_endpoint, sets=sets,
    desivast_version=desivast_version, fastspec_version=fastspec_version, hp=hp, tiles=tiles,
    max_tiles=max_tiles, petals=petals, healpix=healpix, dirs=dirs, workers=workers,
    retries=retries, backoff=backoff, connect_timeout=connect_timeout, read_timeout=read_timeout,
    chunk_kb=chunk_kb, min_free_gb=min_free_gb, dry_run=dry_run, resume=resume, rehash=rehash, spectra=spectra,
    spectype=spectype, zwarn_zero=zwarn_zero, min_deltachi2=min_deltachi2,
    scheduler_address=scheduler_address)
print("source:", "mock mirror (a local folder in DESI's layout)" if not source else source)

# %% [markdown]
# ## The plan
#
# Metadata only: DESI's checksum lists, directory listings and sizes. `checksum` says what the
# file will be checked against: a published sha256 (`published`), a digest the source offered
# (`source`), or nothing but its size (`computed`: the file will be *complete*, not verified).
# The checksum lists themselves are fetched too, so the run keeps the lists its files were
# verified against; a list has no published sum of its own, so it is *complete* unless the
# source offers a digest for it.

# %%
if result.plan is not None:
    display(pd.DataFrame(result.plan.rows()).assign(MB=lambda t: (t["bytes"] / 1e6).round(2))[
        ["path", "set", "kind", "MB", "checksum", "status"]])
    display(pd.DataFrame(result.plan.totals()))
else:
    print("resumed the manifest's plan: nothing planned again")

# %% [markdown]
# ## The transfer
#
# Files already in place are checked (size) and not fetched again. The summary counts every
# file of the manifest, verified and complete apart: a file that cannot be fetched, or a request
# that could not be planned, is listed with its reason, and the stage then fails rather than let
# later stages run on an incomplete set.

# %%
if result.summary is None:
    print("dry run: nothing downloaded")
else:
    display(pd.DataFrame(result.summary.rows()))

# %% [markdown]
# ## The verified manifest
#
# One row per file, from `acquire/manifest.sqlite`: its state (`verified` or `complete`), what its
# bytes were checked against, and the first characters of the sha256 of the bytes now on disk.

# %%
if not dry_run:
    manifest = pd.DataFrame(manifest_rows(result.manifest))
    display(manifest.assign(MB=(manifest["bytes"] / 1e6).round(2), sha256=manifest["sha256"].str[:16])[
        ["path", "set", "kind", "MB", "state", "against", "sha256"]])
    display(manifest.groupby(["set", "state"]).agg(files=("path", "size"), MB=("bytes", lambda b: round(b.sum() / 1e6, 2))))

# %% [markdown]
# ## Tile spectra to Parquet
#
# Each coadd + redrock pair: the targets passing the selection (SPECTYPE, then ZWARN == 0, then
# DELTACHI2 above the minimum; every row is counted in exactly one column), with their redshift
# row, fibermap columns and B/R/Z flux, inverse variance and mask, one row per target in
# `acquire/spectra/<selection>/`, one folder per selection so that two selections never
# overwrite each other's files or records. The wavelength grids are written once, in
# `acquire/spectra/wavelength/`. A tile that keeps no target is recorded as `empty`.

# %%
if result.spectra is not None:
    display(pd.DataFrame(result.spectra.rows()))
    per_pair = pd.DataFrame(result.spectra.records)
    display(per_pair.assign(coadd=per_pair["coadd"].str.split("/").str[-1],
                            file=per_pair["output"].str.split("/").str[-1].where(per_pair["state"] == "done"))[
        ["coadd", "state", "n_targets", "n_spectype", "n_zwarn", "n_deltachi2", "n_kept", "file"]])

# %% [markdown]
# One kept spectrum, drawn from the Parquet file and the stored wavelength grids.

# %%
if result.spectra is not None and (per_pair["state"] == "done").any():
    first = per_pair[per_pair["state"] == "done"].iloc[0]
    table, waves = read_spectra(result.spectra_dir / first["output"])
    row = table.slice(0, 1).to_pylist()[0]
    fig, ax = plt.subplots(figsize=(9, 3))
    for cam, colour in zip("BRZ", ("tab:blue", "tab:red", "darkred")):
        ax.plot(waves[cam], row[f"{cam}_FLUX"], lw=0.4, color=colour, label=cam)
    ax.set(xlabel="wavelength [Angstrom]", ylabel="flux [1e-17 erg/s/cm2/A]",
           title=f"TARGETID {row['TARGETID']}, {row['SPECTYPE']} at z = {row['Z']:.3f}")
    ax.legend(loc="upper right");
