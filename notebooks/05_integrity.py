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
# # integrity: is every row there, and does every reference hold?
#
# Stage 1 of the validation looks at the tables as tables, before any science: the convert
# stage's Parquet and the database the load stage filled. Each check has an id, a status (pass,
# warn or fail) and the evidence behind it, in `integrity/report.json`.

# %% tags=["parameters"]
from desivoids.integrity import DEFAULT_MAX_NULL_FRACTION

data_dir: str = "data/mock"  # run folder (reads convert/ and the database, writes integrity/)
db_url: str = ""  # database URL; empty: the run's SQLite file
max_null_fraction: dict = DEFAULT_MAX_NULL_FRACTION  # galaxy column -> largest null or non-finite fraction allowed
z_range: list = [-0.01, 7.0]  # galaxy redshifts expected in [lo, hi] (DR1 quasars reach 6.4)
demote: list = []  # ids (or globs like nulls.galaxies.*) of failed checks to report as warnings

# %%
from desivoids import display, integrity
from desivoids.integrity import figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = integrity.run(data_dir=data_dir, db_url=db_url, max_null_fraction=max_null_fraction,
                       z_range=z_range, demote=demote)
display.summary(figures.findings(result))

# %% tags=["remove-output"]
display.figure("integrity-families", figures.families_figure(result),
               "The integrity checks per family (reconciliation, keys, types, nulls, ranges, "
               "references, tessellation), split by status: pass, warn (including demoted "
               "failures) or fail.")

# %% [markdown]
# ```{glue:figure} integrity-families
# :alt: Horizontal stacked bars, one per family of checks, of the number of checks that passed, warned or failed.
# :name: fig-integrity-families
#
# {glue:md}`integrity-families-caption`
# ```

# %%
display.table(figures.families_table(result), caption="Checks per family and status")

# %% [markdown]
# ## What is checked
#
# - **reconciliation**: for every source file and table, the rows convert read equal the rows
#   in the database plus the rows in its `rejects` table;
# - **keys** and **types**: primary keys unique in Parquet and in the database, column types as
#   the convert contract documents them;
# - **nulls** and **ranges**: null and non-finite rates of the critical columns under their
#   thresholds (parameters), coordinates, redshifts and radii in range;
# - **references**: every GALZONE tracer is a galaxy, every hole's void exists, every ZONEVOID
#   void id is a void of its own file's VOIDS, every GALZONE zone exists, and the three V2 files
#   of a cap are one tessellation (identical GALZONE, the same zones) pruned three ways.
#
# A failed check stops the pipeline, naming it. A check can be demoted to a warning with the
# `demote` parameter; every demotion is listed below. Thresholds never move to make a check
# pass. The report's schema is documented and versioned
# (`lib/desivoids/integrity/report.schema.json`).
#
# ## Demotions and warnings

# %%
display.table(figures.demoted_table(result), caption="Checks demoted by the demote parameter")

# %%
display.table(figures.warnings_table(result), caption="Checks that warn")

# %% [markdown]
# ## Null rates of the critical columns
#
# The null or non-finite fraction of each critical galaxy column against the largest fraction
# allowed (the `max_null_fraction` parameter).

# %% tags=["remove-output"]
display.figure("integrity-nulls", figures.nulls_figure(result),
               "Null or non-finite fraction of each critical galaxy column (bars, coloured by "
               "status) and the largest fraction allowed (black ticks), on a scale linear near "
               "zero and logarithmic above.")

# %% [markdown]
# ```{glue:figure} integrity-nulls
# :alt: Bars of the null fraction per galaxy column with black tick marks at each column's allowed maximum.
# :name: fig-integrity-nulls
#
# {glue:md}`integrity-nulls-caption`
# ```

# %%
display.table(figures.nulls_table(result), caption="Null rates of the critical columns", collapsed=True)

# %% [markdown]
# ## Every check, and the evidence
#
# Every check with its family and status; rows read from each FITS file by convert against the
# rows of that file in the database table and in the database's `rejects`; and the references
# between the tables with their evidence. Click a table to open it.

# %%
display.table(figures.checks_table(result), caption="Every check", collapsed=True)

# %%
display.table(figures.files_table(result), caption="Source to database, per file", collapsed=True)

# %%
display.table(figures.references_table(result), caption="References between the tables", collapsed=True)

# %% [markdown]
# ## The three V2 labellings
#
# The three V2 files of a cap are one tessellation (the same GALZONE, the same zones) pruned
# three ways, as VAST's sortVoids prunes it: each file has its own voids and its own ZONEVOID,
# so the same zone can be in a REVOLVER void and in no VIDE void. Per file: its voids, the share
# of the zones in them, and the share of the tracers with a zone (GALZONE rows with ZONE >= 0)
# in them.

# %%
display.table(figures.v2_table(result), caption="The V2 labellings")
