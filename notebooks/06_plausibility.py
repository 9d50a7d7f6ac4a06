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
# Which galaxies are DESIVAST's tracers, what each cut removes, and whether any value lies outside
# its physical range.

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
from desivoids import display, plausibility
from desivoids.plausibility import figures, tables
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = plausibility.run(data_dir=data_dir, db_url=db_url, survey=survey, program=program,
                          bgs_bit=bgs_bit, spectype=spectype, zwarn=zwarn,
                          min_deltachi2=min_deltachi2, zmin=zmin, zlimu=zlimu, maglim=maglim)
display.summary(tables.opening(result))

# %% tags=["remove-output"]
display.figure("plausibility-waterfall", figures.waterfall_figure(result.waterfall),
               "Galaxies remaining after each cut of the tracer selection, in order, per cap and "
               "for both caps (log scale); the last step removes FastSpecFit's failed fits.")

# %% [markdown]
# ```{glue:figure} plausibility-waterfall
# :alt: Line chart of the number of galaxies remaining after each selection cut, falling step by step from the converted catalogue to the sample, one line per cap and one for both caps, on a log scale.
# :name: fig-plausibility-waterfall
#
# {glue:md}`plausibility-waterfall-caption`
# ```
#
# ## How the sample is selected
#
# Physical ranges are **findings** with counts, for the whole catalogue and for the selected
# sample: a value outside what the data model and the physics lead one to expect is reported
# here, never cut silently, and no threshold moves to make a finding go away.
#
# The **tracer selection** is DESIVAST's ({doc}`/book/methods`): SURVEY main, PROGRAM bright, the
# BGS_BRIGHT bit of BGS_TARGET, SPECTYPE GALAXY, ZWARN = 0, DELTACHI2 > 40, 0 < Z <= ZLIMU and
# $M_r = \mathrm{ABSMAG01\_SDSS\_R} + 0.97\,(Z - 0.1) \le$ MAGLIM, each threshold a parameter
# whose default is DESIVAST's, ZLIMU and MAGLIM read from the void catalogues' headers. A row is
# charged to the first cut it fails, so the **waterfall** accounts for every galaxy. FastSpecFit's
# **failed fits** (every template coefficient zero: LOGMSTAR = 0 and SFR = 0 together) are a cut
# of their own after the tracers: they have no physical properties and never count as quenched.
# The waterfall is counted per cap (NGC: 83 < RA < 304 deg) and for both caps together.

# %%
display.table(tables.thresholds_table(result.report), caption="The cuts as run, in order")

# %%
display.table(tables.waterfall_table(result), caption="Rows removed by each cut and remaining",
              collapsed=True)

# %% [markdown]
# ## Does the selection reproduce DESIVAST's tracers?
#
# GALZONE lists the tracers DESIVAST's V2 runs used, so comparing the selected tracers (before
# the failed-fit cut: DESIVAST kept them) with its TARGETs, per cap, tests that the selection
# reproduces DESIVAST's (on the mock they must agree exactly).

# %%
display.table(tables.reproduction_table(result), caption="Selected tracers against GALZONE")

# %% [markdown]
# ## Physical ranges: findings
#
# Rows outside the expected range, per quantity, for the whole catalogue and for the sample, and
# where the expected range comes from.

# %%
display.table(tables.findings_table(result), caption="Physical ranges", collapsed=True)

# %% [markdown]
# ## The selected sample
#
# The sample is volume-limited in $M_r$, not in stellar mass. Below: the distributions behind
# the three quenched definitions, with the thresholds the systematics chapter uses, and where the
# sample lies on the sky.

# %% tags=["remove-output"]
sample = figures.sample(data_dir)
display.figure("plausibility-sample", figures.sample_figure(sample),
               "The selected sample: stellar mass against redshift; star-formation rate against "
               "stellar mass (SFR = 0 drawn in red at the bottom); the specific star-formation "
               "rate, the 4000 Å break and the rest-frame u − r colour with each quenched "
               "threshold (red line); and the redshift distribution of each cap.")

# %% [markdown]
# ```{glue:figure} plausibility-sample
# :alt: Six panels: a density plot of stellar mass against redshift, a density plot of star-formation rate against stellar mass, histograms of specific star-formation rate, Dn4000 and u minus r colour each with a vertical threshold line, and redshift histograms of the two caps.
# :name: fig-plausibility-sample
#
# {glue:md}`plausibility-sample-caption`
# ```

# %% tags=["remove-output"]
display.figure("plausibility-sky", figures.sky_figure(sample),
               "The selected sample on the sky: galaxies per cell, with the colour bar on a log "
               "scale.")

# %% [markdown]
# ```{glue:figure} plausibility-sky
# :alt: Sky map of right ascension and declination, the sample's galaxies in the two caps shaded by their density, with a colour bar.
# :name: fig-plausibility-sky
#
# {glue:md}`plausibility-sky-caption`
# ```
