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
# The convert stage's Parquet tables (galaxies, voids, holes, zonevoid, galzone, rejects) go
# into a SQL database through one SQLAlchemy Core schema: a SQLite file by default (no
# server), or PostgreSQL when `db_url` names one. Each table keeps the keys the database
# enforces: galaxies by `targetid`, voids by `(algorithm, cap, void)`, holes by
# `(cap, hole_index)`, zonevoid by `(algorithm, cap, zone)`, galzone by `(algorithm, cap, gal)`.
#
# The load is **one transaction**: a table whose input changed is rebuilt (PostgreSQL: in a
# staging schema, swapped in before the commit), so any failure leaves the previous database
# intact. It is **idempotent**: a table whose Parquet parts (sha256) are unchanged is left
# alone, and a changed input replaces that table's rows. PostgreSQL receives the data through
# `COPY ... FROM STDIN (FORMAT BINARY)` streamed from Arrow batches.
#
# Spatial queries use an index on galaxy positions: on SQLite an R*Tree over boxes of
# galaxies packed along a space-filling curve, on PostgreSQL Q3C (the index survey archives use)
# for cones and a GiST index for spheres. An exact test on stored float64 values follows every
# index filter, so both databases return identical rows. Which galaxies lie in which void is the
# environment stage's question; this stage provides the generic queries.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads convert/, writes load/ and the database)
db_url: str = ""  # database URL; empty: the run's SQLite file (<data_dir>/database/desivoids.sqlite)
force: bool = False  # reload every table even when its Parquet input is unchanged
sky_index: str = "auto"  # {auto, q3c, blocks} PostgreSQL cone index (auto: q3c when available)

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from desivoids import load, paths
from desivoids.load import report
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 160)
result = load.run(data_dir=data_dir, db_url=db_url, force=force, sky_index=sky_index)
layout = paths.RunLayout.of(data_dir)
url = layout.db_url(db_url)
print(f"database: {result.dialect}; cone index: {result.sky_index}")

# %% [markdown]
# ## Every Parquet row is in the database
#
# Row counts in the database against the row counts in the Parquet footers, per table, and the
# packed spatial table `galaxy_positions`, which must hold one row per galaxy.

# %%
rec = report.reconcile(layout.convert, url)
rec

# %%
fig, ax = plt.subplots(figsize=(8, 3))
y = np.arange(len(rec))
ax.barh(y - 0.2, rec.parquet_rows.clip(lower=0.8), 0.4, label="Parquet footers", color="C0")
ax.barh(y + 0.2, rec.db_rows.clip(lower=0.8), 0.4, label=f"database ({result.dialect})", color="C2")
ax.set_yticks(y, rec.table)
ax.invert_yaxis()
ax.set(xscale="log", xlabel="rows (log)", title="rows per table, source and database")
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
plt.show();

# %% [markdown]
# Provenance kept in the database: each Parquet part with its row count and sha256 (the
# digest that decides whether the next load can skip the table).

# %%
prov = report.provenance(url)
prov.assign(sha256=prov["sha256"].str[:16] + "…")

# %% [markdown]
# ## Indexes
#
# Primary keys, the B-tree on redshift, and the spatial index (`galaxy_blocks`: R*Tree on
# SQLite; Q3C on `galaxies` and GiST on `galaxy_blocks` on PostgreSQL).

# %%
report.index_list(url)

# %% [markdown]
# ## Example queries on one void
#
# The largest VoidFinder void: the galaxies inside the sphere of its effective
# radius around its centre (a comoving-space query), and the galaxies within the angle that
# sphere subtends on the sky and within the redshift slice its depth spans (a cone query).
# Every galaxy of the sphere must also be in the cone.

# %%
voids = pd.read_sql("SELECT cap, void, r_eff FROM voids WHERE algorithm = 'VoidFinder'",
                    load.engine(url))
vf = voids.sort_values(["r_eff", "cap", "void"], ascending=[False, True, True]).iloc[0]
ex = report.void_example(url, "VoidFinder", vf["cap"], int(vf["void"]))
in_sphere, in_cone = ex["sphere"], ex["cone"]
shared = set(in_sphere["targetid"]) & set(in_cone["targetid"])
assert len(shared) == len(in_sphere)
pd.DataFrame({
    "quantity": ["void (cap, id)", "centre distance [Mpc/h]", "effective radius [Mpc/h]",
                 "galaxies in the sphere", "cone half-angle [deg]", "redshift slice",
                 "galaxies in the cone and slice", "sphere galaxies also in the cone"],
    "value": [f"{ex['void']['cap']} {ex['void']['void']}", f"{ex['distance']:.1f}",
              f"{ex['radius']:.2f}", len(in_sphere), f"{ex['angle_deg']:.3f}",
              f"{ex['zmin']:.4f} .. {ex['zmax']:.4f}", len(in_cone),
              f"{len(shared)} of {len(in_sphere)}"],
})

# %% [markdown]
# The two queries on the sky: every galaxy of the cone and redshift slice (grey), and those also
# inside the void's sphere (blue); the circle is the cone.

# %%
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
a1.scatter(in_cone.ra, in_cone.dec, s=6, color="0.6", label=f"cone and slice ({len(in_cone):,d})")
a1.scatter(in_sphere.ra, in_sphere.dec, s=8, color="C0", label=f"sphere ({len(in_sphere):,d})")
ra0, dec0 = ex["void"]["ra"], ex["void"]["dec"]
t = np.linspace(0, 2 * np.pi, 200)
a1.plot(ra0 + ex["angle_deg"] * np.cos(t) / np.cos(np.radians(dec0)),
        dec0 + ex["angle_deg"] * np.sin(t), color="k", lw=0.8)
a1.set(xlabel="RA [deg]", ylabel="Dec [deg]", title="the cone around the void's centre")
a1.invert_xaxis()
a1.legend(fontsize=8, loc="upper right")
a2.hist([in_cone.z, in_sphere.z], bins=30, color=["0.6", "C0"], label=["cone and slice", "sphere"])
for zz in (ex["zmin"], ex["zmax"]):
    a2.axvline(zz, color="k", lw=0.8)
a2.set(xlabel="redshift", ylabel="galaxies", title="the redshift slice the void spans")
a2.legend(fontsize=8)
fig.tight_layout()
plt.show();

# %%
in_sphere.head(10).round(5)
