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
# # systematics: are void galaxies quenched less often than wall galaxies of the same mass?
#
# The answer per void-finding algorithm and quenched definition, at fixed stellar mass, with
# errors that respect the clustering of galaxies in voids.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads plausibility/ and environment/, writes systematics/)
mass_edges: list = [9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0]  # log M* bin edges for the matching
n_patches: dict = {"NGC": 32, "SGC": 12}  # equal-area HEALPix jackknife patches per cap
regression: bool = True  # also fit the logistic regression (the slow part)
spline_df: int = 4  # [3, 12] degrees of freedom of the B-spline in log M*
alpha: float = 0.05  # (0, 0.5) 1 - confidence of every interval
scheduler_address: str = ""  # dask.distributed scheduler address (empty: the local scheduler)
num_workers: int = 0  # [0, 256] local Dask workers (0: all cores)

# %%
from desivoids import display, systematics
from desivoids.runinfo import banner, run_info
from desivoids.systematics import figures, tables

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = systematics.run(data_dir=data_dir, mass_edges=mass_edges, n_patches=n_patches,
                         regression=regression, spline_df=spline_df, alpha=alpha,
                         scheduler_address=scheduler_address, num_workers=num_workers)
beside = systematics.expected.expected_of(data_dir, result.summary)
display.summary(tables.opening(result, beside))

# %% tags=["remove-output"]
display.figure("systematics-forest",
               figures.forest(result.summary, beside, mock=run_info(data_dir).mock),
               "The answer: quenched fraction of void galaxies minus that of wall galaxies of the "
               "same stellar mass, per void-finding algorithm and quenched definition (one row "
               "per distinct result), with its 95% jackknife interval, both caps, all voids. The "
               "grey line is no difference; on a mock run the open diamonds are the values the "
               "mock planted.")

# %% [markdown]
# ```{glue:figure} systematics-forest
# :alt: Forest plot with one row per algorithm and quenched definition: a dot at the void minus wall difference of quenched fractions with a horizontal 95 percent interval, a vertical line at zero, and on a mock run an open diamond at the planted value.
# :name: fig-systematics-forest
#
# {glue:md}`systematics-forest-caption`
# ```
#
# ## How the comparison is made
#
# The sample is DESIVAST's tracers from the plausibility stage, less FastSpecFit's failed fits,
# with their void membership from the environment stage: **void** galaxies have flag 1,
# **wall** galaxies flag 0; edge (2) and outside (9) galaxies are left out and counted. A galaxy
# is quenched by each of three definitions ({doc}`/book/methods`), reported side by side: a specific star
# formation rate $\log_{10}(\mathrm{SFR}/M_*) < -11$ (SFR = 0 counts as quenched), a 4000 Å
# break $D_n4000 > 1.6$, and a rest-frame colour $u - r \ge 2.22$.
#
# Void galaxies are less massive than wall galaxies, and quenching depends steeply on mass, so
# every comparison is made **at fixed stellar mass**: the wall galaxies are reweighted to the
# void galaxies' stellar-mass distribution (the matching bins are a parameter). For each
# algorithm (all voids, and interior voids only), definition and cap we report the quenched
# fractions, the risk difference $p_\mathrm{void} - p_\mathrm{wall}$ with Newcombe's interval,
# the risk ratio, Cohen's $h = 2\arcsin\sqrt{p_1} - 2\arcsin\sqrt{p_2}$, and the odds ratio of a
# logistic regression quenched ~ void + spline($\log M_*$) + $z$.
#
# Galaxies in one void are not independent, so the errors that count are the **jackknife**
# errors over equal-area HEALPix patches, NGC and SGC cut separately; the regression's errors
# are clustered on the same patches. The analytic intervals, which assume independent galaxies,
# are shown beside them. The three V2 prunings are one tessellation pruned three ways (three
# labellings of the same zones): their effects are not independent measurements, and their
# spread (or that of all four algorithms) is not a systematic error.

# %% [markdown]
# ## Against the mock's planted answer
#
# On a mock run the mock records, for each algorithm, the answer this statistic should give: the
# void-minus-wall difference of the *latent* quenched probability at fixed stellar mass (walls
# reweighted to the void mass histogram, all voids, both caps), computed by the mock's own code
# from its own membership of that algorithm. The quenching was planted as a smooth function of
# the distance to VoidFinder's void centres (methods, "The mock's planted answer"), scaled so that
# VoidFinder's void-minus-wall difference is -0.10; each V2 pruning gets what its own voids'
# overlap with them gives. Whether the jackknife 95%
# interval holds the expected value is said per row. The observed definitions misclassify a few
# per cent of galaxies each way, which pulls an estimate slightly towards zero. On real data
# there is no planted answer, and no table.

# %%
display.table(tables.expected_table(beside), caption="Estimates beside the planted values")

# %% [markdown]
# ## Every comparison, both caps
#
# Fractions and the risk difference are mass-matched; intervals are 95%: jackknife (over
# `patches` patches, its t quantile at `jackknife dof` degrees of freedom: fewer than patches - 1
# when the void galaxies sit in a few patches), Newcombe (analytic), and the regression's
# cluster-robust interval of the odds ratio. The same for each cap is in
# `systematics/summary.csv` of the run.

# %%
display.table(tables.summary_table(result.summary), caption="Every comparison, both caps",
              collapsed=True)

# %% [markdown]
# ## VoidFinder's surface galaxies, both ways
#
# VoidFinder grows its holes until they touch wall galaxies, so the galaxies bounding a hole sit
# on its surface to rounding. By default they are not void galaxies (the environment stage's
# `surface_tol`, methods); here VoidFinder's answer beside the one with every surface galaxy
# counted as void, as VAST's strict rule mostly does. Both caps.

# %%
display.table(tables.surface_table(result.summary), caption="Surface galaxies both ways")

# %% [markdown]
# ## Quenched fraction against stellar mass

# %% tags=["remove-output"]
display.figure("systematics-binned", figures.binned_figure(result.binned),
               "Quenched fraction against stellar mass in the matching bins, void galaxies "
               "(filled circles) and wall galaxies (open squares) with Wilson 95% intervals, per "
               "algorithm (rows) and quenched definition (columns); all voids, both caps.")

# %% [markdown]
# ```{glue:figure} systematics-binned
# :alt: A grid of small panels, one row per algorithm and one column per quenched definition, each plotting quenched fraction against log stellar mass for void and wall galaxies with error bars.
# :name: fig-systematics-binned
#
# {glue:md}`systematics-binned-caption`
# ```
#
# ## The algorithms are not independent
#
# How often two algorithms give a galaxy the same void-or-wall label (from the environment
# stage), beside their effects: the three V2 prunings are three labellings of one tessellation,
# so they agree far more than independent measurements would, and their spread is not a
# systematic error.

# %%
display.table(tables.agreement_table(result.report),
              caption="Share of tracers with the same void-or-wall label")

# %% [markdown]
# ## What was compared and what was left out
#
# Per algorithm, sample and definition: void and wall galaxies compared, edge and outside
# galaxies left out, and void or wall galaxies whose quenched state is undefined.

# %%
display.table(tables.counts_table(result.counts), caption="Galaxies compared and left out",
              collapsed=True)

# %% [markdown]
# ## Jackknife patches
#
# The equal-area HEALPix patches (clusters of the regression) per cap.

# %%
display.table(tables.patches_table(result.report), caption="Jackknife patches per cap")
