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
# # release: the data product
#
# The run's tables, reports and answer in one versioned folder, checked file by file, with its
# provenance and citation.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads every stage's outputs, writes release/<version>/)
version: str = "v1"  # the release's folder name
sample_size: int = 10000  # [0, 100000000] rows of sample_10k
sample_seed: int = 20251201  # [0, 4294967295] seed of sample_10k's random subset
allow_failed_integrity: bool = False  # release although the run's integrity stage failed (README, provenance and CITATION say so)
hats_pixel_threshold: int = 1_000_000  # [100, 100000000] most rows in one HEALPix partition of the HATS catalogues
hats_margin_arcsec: float = 10.0  # (0, 3600] width of hats/galaxies' margin cache, the largest cross-match radius it serves
scheduler_address: str = ""  # dask.distributed scheduler for the HATS import (empty: a local cluster in this process)

# %%
from IPython.display import Markdown

from desivoids import display, release
from desivoids.release import downloads, figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = release.run(data_dir=data_dir, version=version, sample_size=sample_size,
                     sample_seed=sample_seed, allow_failed_integrity=allow_failed_integrity,
                     hats_pixel_threshold=hats_pixel_threshold,
                     hats_margin_arcsec=hats_margin_arcsec, scheduler_address=scheduler_address)
display.summary(figures.opening(result))

# %% tags=["remove-output"]
display.figure("release-answer", figures.answer_of(data_dir),
               "The result in one figure, as released (figures/answer.png): quenched fraction of "
               "void galaxies minus that of wall galaxies of the same stellar mass, per "
               "algorithm and quenched definition (one row per distinct result), with its 95% "
               "jackknife interval, both caps, all voids; the grey line is no difference and, on "
               "a mock run, the open diamonds are the values the mock planted.")

# %% [markdown]
# ```{glue:figure} release-answer
# :alt: Forest plot with one row per algorithm and quenched definition: a dot at the void minus wall difference of quenched fractions with a horizontal 95 percent interval, a vertical line at zero, and on a mock run an open diamond at the planted value.
# :name: fig-release-answer
#
# {glue:md}`release-answer-caption`
# ```
#
# ## What the release holds
#
# Everything a reader needs to use, check and cite the result, in one versioned folder,
# `release/<version>/`: the tracer sample with its analysis columns and quenched flags
# (`galaxies_core`), every void of the four algorithms with its galaxy counts
# (`voids_unified`), the sample's void membership under every algorithm
# (`galaxy_void_assignments`), a reproducible random subset for a first look (`sample_10k`), the
# validation and systematics reports, a data dictionary generated from the written files'
# schemas, the result in one figure, `provenance.json` (parameters, input files with their
# sha256, package versions, git commit, stage run times), `CITATION.cff` and `SHA256SUMS`
# (`sha256sum -c SHA256SUMS` checks a copy). Before anything is published, every promised file is
# checked: it exists, reads, matches its checksum and has its documented columns; a missing or
# inconsistent file fails the stage and the previous release stays as it was.

# %% [markdown]
# ## Download the release
#
# The release's files, each with its size and sha256, linked for download from this book.

# %%
downloads.download_list(result.out_dir)

# %% [markdown]
# ## What was released, and its checks
#
# Every promised file: present, readable, its sha256 as listed in `SHA256SUMS`, and (for the
# tables) exactly its documented columns.

# %%
display.table(figures.files_table(result), caption="Promised files and their checks",
              collapsed=True)

# %% tags=["remove-output"]
display.figure("release-files", figures.files_figure(result),
               "The release's files and HATS catalogues by size, in megabytes on a log scale.")

# %% [markdown]
# ```{glue:figure} release-files
# :alt: Horizontal bar chart of the size in megabytes of every file of the release, on a log scale.
# :name: fig-release-files
#
# {glue:md}`release-files-caption`
# ```
#
# ## The release as HATS catalogues
#
# `hats/galaxies` (galaxies_core with every algorithm's flag, void, r / r_eff and interior
# columns), its margin cache `hats/galaxies_margin` and `hats/voids` hold the same rows as
# HATS catalogues: HEALPix-partitioned Parquet (an IVOA note) that
# [LSDB](https://docs.lsdb.io) opens, cone-searches and cross-matches without reading the
# rest of the sky. Each partition holds at most `hats_pixel_threshold` rows, so dense
# regions get smaller pixels.

# %% tags=["remove-output"]
display.figure("release-partitions", figures.partition_figure(result.out_dir),
               "The partitions of hats/galaxies on the sky (Mollweide projection, RA increasing "
               "to the left), coloured by HEALPix order.")

# %% [markdown]
# ```{glue:figure} release-partitions
# :alt: Mollweide sky map with the HEALPix pixels that hold the galaxies catalogue's partitions, coloured by their order.
# :name: fig-release-partitions
#
# {glue:md}`release-partitions-caption`
# ```

# %% [markdown]
# To use them (not run here: the book builds offline), open the release with lsdb, cone-search
# it, and cross-match it with DESI DR1's redshift catalogue as served in HATS:
#
# ```python
# import lsdb
#
# galaxies = lsdb.read_hats("release/v1/hats/galaxies",
#                           margin_cache="release/v1/hats/galaxies_margin")
# voids = lsdb.read_hats("release/v1/hats/voids")
# near = galaxies.cone_search(ra=180.0, dec=30.0, radius_arcsec=3600).compute()
#
# # DESI DR1's zcat as HATS (catalogue desi_dr1_zcat): its address as listed at https://data.lsdb.io
# zcat = lsdb.read_hats(ZCAT_URL)
# matched = zcat.crossmatch(galaxies, n_neighbors=1, radius_arcsec=1.0,
#                           suffixes=("_zcat", "_voids")).compute()
# ```
#
# The margin cache (`hats_margin_arcsec` wide) lets a cross-match find pairs whose two
# members fall in neighbouring partitions; a radius beyond it would miss some of them.

# %% [markdown]
# ## Data dictionary
#
# Generated from the schemas of the files as written: every column, its type, unit, meaning and
# the stage and column it comes from (also `data_dictionary.md` of the release).

# %%
display.table(figures.dictionary_table(result), caption="Data dictionary", collapsed=True)

# %% [markdown]
# ## Provenance
#
# The software that computed this release and the state of its source.

# %%
display.table(figures.provenance_table(result.provenance), caption="Provenance",
              collapsed=True)

# %% [markdown]
# ## How to cite it

# %%
Markdown(figures.citation_block(result))
