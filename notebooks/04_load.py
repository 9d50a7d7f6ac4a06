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
# # load: Parquet into a SQL database, transactionally, with spatial indexes
#
# The convert stage's Parquet tables go into a SQL database (a SQLite file by default, or
# PostgreSQL when `db_url` names one) in one transaction, with the keys the database enforces
# and a spatial index on galaxy positions for the cone and sphere queries later stages use.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads convert/, writes load/ and the database)
db_url: str = ""  # database URL; empty: the run's SQLite file (<data_dir>/database/desivoids.sqlite)
force: bool = False  # reload every table even when its Parquet input is unchanged
sky_index: str = "auto"  # {auto, q3c, blocks} PostgreSQL cone index (auto: q3c when available)

# %%
from desivoids import display, load
from desivoids.load import figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = load.run(data_dir=data_dir, db_url=db_url, force=force, sky_index=sky_index)
url = figures.database(data_dir, db_url)
rec = figures.reconcile_table(data_dir, db_url)
ex = figures.example(url)
display.summary(figures.findings(result, rec, ex))

# %% tags=["remove-output"]
display.figure("load-rows", figures.rows_figure(rec, result.dialect),
               "Every Parquet row is in the database: rows per table in the Parquet footers "
               "and in the database, side by side on a log scale (galaxy_positions, the packed "
               "spatial table, holds one row per galaxy).")

# %% [markdown]
# ```{glue:figure} load-rows
# :alt: Paired horizontal bars per table, rows in the Parquet footers and rows in the database, of equal length for every table, on a log scale.
# :name: fig-load-rows
#
# {glue:md}`load-rows-caption`
# ```

# %%
display.table(rec, caption="Rows per table, Parquet and database")

# %% [markdown]
# ## How the load works
#
# Each table keeps the keys the database enforces: galaxies by `targetid`, voids by
# `(algorithm, cap, void)`, holes by `(cap, hole_index)`, zonevoid by `(algorithm, cap, zone)`,
# galzone by `(algorithm, cap, gal)`. The load is **one transaction**: a table whose input
# changed is rebuilt (PostgreSQL: in a staging schema, swapped in before the commit), so any
# failure leaves the previous database intact. It is **idempotent**: a table whose Parquet parts
# (sha256) are unchanged is left alone, and a changed input replaces that table's rows.
# PostgreSQL receives the data through `COPY ... FROM STDIN (FORMAT BINARY)` streamed from Arrow
# batches.
#
# Spatial queries use an index on galaxy positions: on SQLite an R*Tree over boxes of galaxies
# packed along a space-filling curve, on PostgreSQL Q3C (the index survey archives use) for
# cones and a GiST index for spheres. An exact test on stored float64 values follows every index
# filter, so both databases return identical rows. Which galaxies lie in which void is the
# environment stage's question; this stage provides the generic queries.
#
# ## Indexes and provenance
#
# Primary keys, the B-tree on redshift, and the spatial index (`galaxy_blocks`: R*Tree on
# SQLite; Q3C on `galaxies` and GiST on `galaxy_blocks` on PostgreSQL); then each Parquet part
# loaded, with its row count and sha256 (the digest that decides whether the next load can skip
# the table).

# %%
display.table(figures.index_table(url), caption="Indexes")

# %%
display.table(figures.provenance_table(url), caption="Parquet parts loaded", collapsed=True)

# %% [markdown]
# ## Example queries on one void
#
# The largest VoidFinder void: the galaxies inside the sphere of its effective radius around its
# centre (a comoving-space query), and the galaxies within the angle that sphere subtends on the
# sky and within the redshift slice its depth spans (a cone query). Every galaxy of the sphere
# must also be in the cone (the chapter fails otherwise).

# %%
display.table(figures.example_table(ex), caption="The example void and its queries")

# %% tags=["remove-output"]
display.figure("load-example", figures.example_figure(ex),
               "The two queries around the largest VoidFinder void: on the sky (left), every "
               "galaxy of the cone and redshift slice (grey) and those also inside the void's "
               "sphere (blue), with the cone's circle; their redshifts (right), with the slice "
               "the void spans.")

# %% [markdown]
# ```{glue:figure} load-example
# :alt: Left, a sky scatter in RA and Dec of galaxies in a circular cone, those inside the void's sphere highlighted; right, histograms of their redshifts between two vertical lines marking the redshift slice.
# :name: fig-load-example
#
# {glue:md}`load-example-caption`
# ```

# %%
display.table(figures.sphere_table(ex), caption="The first galaxies of the sphere")
