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
# # plausibility: physical ranges, DESIVAST's tracer sample, and what each cut removes
#
# Stage 2 of the validation looks at the values. Physical ranges are **findings** with counts,
# for the whole catalogue and for the selected sample: a value outside what the data model and
# the physics lead one to expect is reported here, never cut silently, and no threshold moves to
# make a finding go away.
#
# The **tracer selection** is DESIVAST's ({doc}`../methods`): SURVEY main, PROGRAM bright, the
# BGS_BRIGHT bit of BGS_TARGET, SPECTYPE GALAXY, ZWARN = 0, DELTACHI2 > 40, 0 < Z <= ZLIMU and
# $M_r = \mathrm{ABSMAG01\_SDSS\_R} + 0.97\,(Z - 0.1) \le$ MAGLIM, each threshold a parameter
# whose default is DESIVAST's, ZLIMU and MAGLIM read from the void catalogues' headers. A row is
# charged to the first cut it fails, so the **waterfall** accounts for every galaxy. FastSpecFit's
# **failed fits** (every template coefficient zero: LOGMSTAR = 0 and SFR = 0 together) are a cut
# of their own after the tracers: they have no physical properties and never count as quenched.
#
# GALZONE lists the tracers DESIVAST's V2 runs used, so comparing the selected tracers with it,
# per cap, tests that the selection reproduces DESIVAST's (on the mock they must agree exactly).

# %% tags=["parameters"]
from desivoids.formats import TRACER_SELECTION

data_dir: str = "data/mock"  # run folder (reads convert/, writes plausibility/ and the selection table)
db_url: str = ""  # database URL; empty: the run's SQLite file
survey: str = TRACER_SELECTION["SURVEY"]  # {main, sv1, sv2, sv3, special, cmx} SURVEY kept
program: str = TRACER_SELECTION["PROGRAM"]  # {bright, dark, backup, other} PROGRAM kept
bgs_bit: str = TRACER_SELECTION["BGS_TARGET_BIT"]  # {BGS_FAINT, BGS_BRIGHT, BGS_WISE, BGS_FAINT_HIP, BGS_FAINT_NORTH, BGS_BRIGHT_NORTH, BGS_WISE_NORTH, BGS_FAINT_SOUTH, BGS_BRIGHT_SOUTH, BGS_WISE_SOUTH} bit of BGS_TARGET required (desitarget's bgs_mask name)
spectype: str = TRACER_SELECTION["SPECTYPE"]  # {GALAXY, QSO, STAR} SPECTYPE kept
zwarn: int = TRACER_SELECTION["ZWARN"]  # [0, inf) ZWARN value kept (0: no redrock warning)
min_deltachi2: float = TRACER_SELECTION["DELTACHI2_GT"]  # [0, inf) kept: DELTACHI2 above this
zmin: float = 0.0  # [0, 7) kept: Z above this
zlimu: float | None = None  # (0, 7] kept: Z at most this; None: ZLIMU of the DESIVAST headers
maglim: float | None = None  # [-30, 0] kept: M_r at most this; None: MAGLIM of the DESIVAST headers

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from desivoids import plausibility
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

pd.set_option("display.max_rows", 200)
pd.set_option("display.max_colwidth", 100)
result = plausibility.run(data_dir=data_dir, db_url=db_url, survey=survey, program=program,
                          bgs_bit=bgs_bit, spectype=spectype, zwarn=zwarn,
                          min_deltachi2=min_deltachi2, zmin=zmin, zlimu=zlimu, maglim=maglim)
print(result)

# %% [markdown]
# ## The thresholds as run

# %%
pd.Series(result.report["thresholds"], name="value").to_frame()

# %% [markdown]
# ## Retention waterfall
#
# Rows in, rows removed by each cut in order, rows out, per cap (NGC: 83 < RA < 304 deg) and
# both caps together. The steps sum exactly: every galaxy is removed once or kept.

# %%
w = result.waterfall
w.pivot_table(index=["step", "cut"], columns="cap", values=["removed", "remaining"],
              sort=False).astype(int)

# %%
fig, ax = plt.subplots(figsize=(10, 4))
for cap, marker in (("NGC", "o"), ("SGC", "s"), ("both", "^")):
    d = w[w.cap == cap]
    ax.plot(d.step, d.remaining, marker=marker, label=cap)
ax.set_xticks(w[w.cap == "both"].step, w[w.cap == "both"].cut, rotation=35, ha="right")
ax.set(yscale="log", ylabel="galaxies remaining", title="Retention waterfall")
ax.legend()
fig.tight_layout()
plt.show();

# %% [markdown]
# ## Does the selection reproduce DESIVAST's tracers?
#
# The selected tracers (before the failed-fit cut: DESIVAST kept them) against the TARGETs of
# GALZONE, per cap.

# %%
result.reproduction.drop(columns=["examples_selected_only", "examples_galzone_only"]).set_index("cap")

# %% [markdown]
# ## Physical ranges: findings
#
# Rows outside the expected range, per quantity, for the whole catalogue and for the sample;
# `why` says where the expected range comes from.

# %%
result.findings.set_index("id")[["expected", "rows", "not_finite", "outside", "fraction_outside",
                                 "min", "max", "status", "why"]]

# %% [markdown]
# ## The selected sample
#
# Stellar mass against redshift (the sample is volume-limited in $M_r$, not in mass), the star
# formation rate against stellar mass (the main sequence and the quenched cloud; SFR = 0 drawn at
# the bottom), the distributions behind the three quenched definitions, and where the sample
# lies on the sky and in redshift.

# %%
s = pq.read_table(result.out_dir / "sample.parquet").to_pandas()
fig, ax = plt.subplots(2, 3, figsize=(14, 8))
ax[0, 0].hexbin(s.z, s.logmstar, gridsize=60, bins="log", cmap="Greys")
ax[0, 0].set(xlabel="redshift", ylabel="log M* [Msun]", title="stellar mass and redshift")
sfr_floor = 1e-3
pos = s.sfr > 0
ax[0, 1].hexbin(s.logmstar[pos], np.log10(s.sfr[pos]), gridsize=60, bins="log", cmap="Greys")
ax[0, 1].scatter(s.logmstar[~pos], np.full((~pos).sum(), np.log10(sfr_floor)), s=2, c="C3",
                 label=f"SFR = 0 ({(~pos).sum():,d})")
ax[0, 1].set(xlabel="log M* [Msun]", ylabel="log SFR [Msun/yr]", title="star formation")
ax[0, 1].legend(loc="lower right")
ax[0, 2].hist(s.log_ssfr.dropna(), bins=80, color="0.3")
ax[0, 2].axvline(-11, color="C3", label="log sSFR = -11")
ax[0, 2].set(xlabel="log sSFR [1/yr] (SFR > 0)", ylabel="galaxies")
ax[0, 2].legend()
ax[1, 0].hist(s.dn4000.dropna().clip(0.5, 2.8), bins=80, color="0.3")
ax[1, 0].axvline(1.6, color="C3", label="Dn4000 = 1.6")
ax[1, 0].set(xlabel="Dn4000", ylabel="galaxies")
ax[1, 0].legend()
ax[1, 1].hist((s.absmag01_sdss_u - s.absmag01_sdss_r).dropna().clip(-0.5, 4), bins=80, color="0.3")
ax[1, 1].axvline(2.22, color="C3", label="u - r = 2.22")
ax[1, 1].set(xlabel="u - r (rest frame, z = 0.1)", ylabel="galaxies")
ax[1, 1].legend()
for cap in ("NGC", "SGC"):
    ax[1, 2].hist(s.z[s.cap == cap], bins=60, histtype="step", label=cap)
ax[1, 2].set(xlabel="redshift", ylabel="galaxies", title="redshift by cap")
ax[1, 2].legend()
fig.tight_layout()
plt.show();

# %%
fig, ax = plt.subplots(figsize=(10, 4.5))
ra = np.where(s.ra > 300, s.ra - 360, s.ra)
ax.hexbin(ra, s.dec, gridsize=(180, 60), bins="log", cmap="viridis", mincnt=1)
ax.set(xlabel="RA [deg] (RA > 300 shown as RA - 360)", ylabel="Dec [deg]",
       title=f"The selected sample on the sky ({len(s):,d} galaxies)")
ax.invert_xaxis()
plt.show();
