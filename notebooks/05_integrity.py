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
# warn or fail) and the evidence behind it, in `integrity/report.json`, whose schema is
# documented and versioned (`lib/desivoids/integrity/report.schema.json`).
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
# `demote` parameter; every demotion is listed below. Thresholds never move to make a check pass.

# %% tags=["parameters"]
from desivoids.integrity import DEFAULT_MAX_NULL_FRACTION

data_dir: str = "data/mock"  # run folder (reads convert/ and the database, writes integrity/)
db_url: str = ""  # database URL; empty: the run's SQLite file
max_null_fraction: dict = DEFAULT_MAX_NULL_FRACTION  # galaxy column -> largest null or non-finite fraction allowed
z_range: list = [-0.01, 7.0]  # galaxy redshifts expected in [lo, hi] (DR1 quasars reach 6.4)
demote: list = []  # ids (or globs like nulls.galaxies.*) of failed checks to report as warnings

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from desivoids import integrity
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

pd.set_option("display.max_rows", 300)
pd.set_option("display.max_colwidth", 120)
result = integrity.run(data_dir=data_dir, db_url=db_url, max_null_fraction=max_null_fraction,
                       z_range=z_range, demote=demote)
print(result)

# %% [markdown]
# ## Every check
#
# Grouped by family; `status` is pass, warn or fail (a demoted failure reads `warn (demoted)`).

# %%
checks = result.table()
checks.assign(family=checks["id"].str.split(".").str[0]).set_index(["family", "id"])[["status", "check"]]

# %%
families = checks.assign(family=checks["id"].str.split(".").str[0]).pivot_table(
    index="family", columns="status", values="id", aggfunc="count", fill_value=0)
colours = {"pass": "C2", "warn": "C1", "fail": "C3"}
fig, ax = plt.subplots(figsize=(8, 0.45 * len(families) + 1))
left = np.zeros(len(families))
for status in [s for s in colours if s in families] + [s for s in families if s not in colours]:
    ax.barh(families.index, families[status], left=left, color=colours.get(status, "0.5"),
            label=status)
    left += families[status].to_numpy()
ax.set(xlabel="checks", title="checks per family and status")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show();

# %% [markdown]
# ## Demotions and warnings
#
# Checks demoted by the `demote` parameter, and the checks that warn.

# %%
pd.DataFrame({"demoted": result.report["demoted"] or ["(none)"]})

# %%
pd.DataFrame([{"id": c["id"], **{k: v for k, v in c["evidence"].items() if k != "examples"}}
              for c in result.checks if c["status"] == "warn"])

# %% [markdown]
# ## Source to database, per file
#
# Rows read from each FITS file by convert, rows of that file in the database table, and rows
# of that file in the database's `rejects`.

# %%
recon_rows = [dict(table=c["id"].split(".", 1)[1], **f) for c in result.checks
              if c["id"].startswith("reconciliation.") and "files" in c["evidence"]
              for f in c["evidence"]["files"]]
files = pd.DataFrame(recon_rows)
files.assign(source_file=files.source_file.str.split("/").str[-1]).set_index(["table", "source_file"])

# %% [markdown]
# ## Null rates of the critical columns

# %%
nulls = pd.DataFrame([{"column": c["id"].split(".")[-1], **c["evidence"], "status": c["status"]}
                      for c in result.checks if c["id"].startswith("nulls.")]).set_index("column")
nulls

# %%
fig, ax = plt.subplots(figsize=(9, 3.2))
x = np.arange(len(nulls))
ax.bar(x, nulls.fraction, color=[{"pass": "C2", "warn": "C1"}.get(s, "C3") for s in nulls.status],
       label="null or non-finite fraction")
ax.scatter(x, nulls.limit, marker="_", s=300, color="k", label="largest allowed (parameter)")
ax.set_xticks(x, nulls.index, rotation=60, ha="right", fontsize=8)
ax.set(ylabel="fraction of rows", title="nulls of the critical columns",
       ylim=(0, 1))
ax.set_yscale("symlog", linthresh=1e-4)
ax.legend(fontsize=8)
fig.tight_layout()
plt.show();

# %% [markdown]
# ## References between the tables

# %%
pd.DataFrame([{"id": c["id"], "status": c["status"],
               **{k: v for k, v in c["evidence"].items() if not isinstance(v, (list, dict))}}
              for c in result.checks if c["id"].startswith(("refs.", "tessellation."))]).set_index("id")

# %% [markdown]
# ## The three V2 labellings
#
# The three V2 files of a cap are one tessellation (the same GALZONE, the same zones) pruned
# three ways, as VAST's sortVoids prunes it: each file has its own voids and its own ZONEVOID,
# so the same zone can be in a REVOLVER void and in no VIDE void. Per file: its voids, the share
# of the zones in them, and the share of the tracers with a zone (GALZONE rows with ZONE >= 0)
# in them.

# %%
result.v2_labellings().set_index(["cap", "algorithm"])
