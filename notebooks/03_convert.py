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
# The FastSpecFit catalogues (v3.0: `METADATA`, `SPECPHOT`, `FASTSPEC` per HEALPix file; or
# v2.1: one file with `FASTSPEC`, `METADATA`) become one Parquet dataset of galaxies with a
# documented column set and a few derived quantities (log sSFR, errors from inverse variances,
# the DESIVAST absolute magnitude $M_r$, comoving distance and position). The eight DESIVAST
# files become a unified voids table plus the VoidFinder holes and the V2 zone tables.
#
# The files are found by their DESI names anywhere below the input folder (DESI's layout, a
# flat folder, any tree). Reading is chunked: Dask tasks over (file, row range) read raw bytes
# from the data offset, so memory stays bounded whatever the file size. HDUs are selected by
# `EXTNAME`; the HDUs of a FastSpecFit file are checked to be row-matched on `TARGETID` in
# every chunk.
#
# Every source row either lands in an output table or in `rejects` with its reason; the
# reconciliation below must balance exactly, and is checked against the Parquet files actually
# written before anything is published. Bad input (a truncated file, a missing HDU or needed
# column, shuffled HDUs, duplicate `TARGETID`s, an empty table) stops the stage with an error
# naming the file, HDU and column of every problem at once, and leaves the previous output
# untouched.

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
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow.parquet as pq

from desivoids import convert, formats
from desivoids.convert import columns
from desivoids.runinfo import banner

pd.set_option("display.max_rows", 200)
pd.set_option("display.max_colwidth", 100)
result = convert.run(data_dir=data_dir, input_dir=input_dir, extra_columns=extra_columns,
                     chunk_rows=chunk_rows, scheduler=scheduler,
                     scheduler_address=scheduler_address, num_workers=num_workers,
                     fastspec_version=fastspec_version, omega_m=omega_m, strict=strict,
                     compression=compression, direct_io=direct_io)
banner(data_dir)  # mock or DESI DR1 (after convert: the galaxy count is convert's own, so a rerun shows the same)
rec = result.reconciliation
out = result.out_dir

# %% [markdown]
# ## Reconciliation
#
# One row per source file, HDU and output table: rows read, rows written, rows rejected by
# reason (`<reason>:<column>`). `balanced` is `rows_in == rows_out + rows_rejected`; the stage
# publishes nothing unless every entry balances and matches the rows actually written.

# %%
result.table()

# %%
totals = pd.DataFrame([{"table": t, "rows_in": v["rows_in"], "rows_out": v["rows_out"],
                        "rows_rejected": sum(v["rejected"].values()),
                        "rejected_by_reason": ", ".join(f"{k}={n}" for k, n in sorted(v["rejected"].items()))}
                       for t, v in sorted(rec["totals"].items())])
totals

# %% [markdown]
# HDUs that are deliberately not converted (the V2 `TRIANGLE` and `GALVIZ` HDUs only serve
# visualisation), voids kept with a non-finite value (the value is null and named in
# `nonfinite_columns`; no void is ever dropped), and the cosmology used for distances.

# %%
pd.DataFrame(rec["skipped_hdus"]).assign(source_file=lambda d: d.source_file.str.split("/").str[-1]) \
    if rec["skipped_hdus"] else pd.DataFrame(columns=["source_file", "hdu", "rows", "why"])

# %%
pd.Series({"Omega_m": rec["omega_m"], "Omega_m from": rec["omega_m_source"],
           "FastSpecFit version": ", ".join(rec["fastspec_versions"]) or "none",
           "FastSpecFit files with no rows": len(rec.get("empty_files", [])),
           "voids with non-finite values": sum(rec.get("voids_with_nonfinite_values", {}).values()),
           "extra columns": ", ".join(rec["extra_columns"]) or "none"}, name="value").to_frame()

# %% [markdown]
# ## What the source files lack
#
# A file needs only the columns the science and the output contract need
# (`desivoids.formats.required_columns`: the `required` column of the dictionary below); every
# other output column is taken where the file has it and is null where it does not. The same
# output schema comes out whatever the input, and the columns each file lacked are listed
# here. Notes are what was accepted but should be known, e.g. a `ZWARN` stored as a FITS
# logical (astropy writes int8 so): only `zwarn == 0` is then meaningful.

# %%
pd.DataFrame([{"source_file": f.split("/")[-1], "absent": len(cs), "columns": ", ".join(cs)}
              for f, cs in rec.get("absent_columns", {}).items()],
             columns=["source_file", "absent", "columns"])

# %%
pd.DataFrame([{"source_file": f.split("/")[-1], "note": n}
              for f, notes in rec.get("file_notes", {}).items() for n in notes],
             columns=["source_file", "note"])

# %% [markdown]
# ## Rejected rows
#
# Rows that are not in an output table, with the file, HDU, row and key (first 20).

# %%
rejects = pq.read_table(out / "rejects.parquet").to_pandas()
rejects.assign(source_file=rejects.source_file.str.split("/").str[-1]).head(20)

# %% [markdown]
# ## Column dictionary
#
# Every output column with its type, source (FITS column, or `derived`), whether a source file
# must have it (`required`; otherwise null where absent), unit and meaning; the same text is
# stored in each Parquet field's metadata.

# %%
columns.column_dictionary()

# %% [markdown]
# ## A first look at the converted tables
#
# Redshift and stellar-mass distributions of the galaxies, the specific star-formation rate
# against stellar mass (galaxies with SFR = 0 have no log sSFR; they are counted separately,
# and the sSFR quenched definition treats them as quenched), and the effective radii of the
# voids per algorithm.

# %%
gal = pq.read_table(out / "galaxies", columns=["z", "logmstar", "log_ssfr", "sfr_zero", "m_r"]).to_pandas()
fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
ax[0].hist(gal.z.clip(0, 1), bins=100, color="0.3")
ax[0].set(xlabel="redshift Z (clipped to 1)", ylabel="galaxies", yscale="log")
ok = gal.log_ssfr.notna() & gal.logmstar.between(6, 13)
ax[1].hexbin(gal.logmstar[ok], gal.log_ssfr[ok], gridsize=60, bins="log", cmap="Greys",
             extent=(6, 13, -15, -7))
ax[1].axhline(-11, color="C3", lw=1, label="log sSFR = -11")
ax[1].set(xlabel="log M* [Msun]", ylabel="log sSFR [1/yr]",
          title=f"SFR = 0: {int(gal.sfr_zero.sum()):,d} of {len(gal):,d} galaxies")
ax[1].legend(loc="lower left")
voids = pq.read_table(out / "voids.parquet").to_pandas()
for alg in formats.ALGORITHMS:
    ax[2].hist(voids.r_eff[voids.algorithm == alg].dropna(), bins=40, histtype="step", label=alg)
ax[2].set(xlabel="effective radius r_eff [Mpc/h]", ylabel="voids")
ax[2].legend()
fig.tight_layout()
plt.show();

# %%
(voids.groupby(["algorithm", "cap"])
      .agg(voids=("void", "size"), edge_voids=("is_edge", lambda s: int(s.eq(True).sum())),
           median_r_eff=("r_eff", "median"))
      .round(2))
