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
# The sample is DESIVAST's tracers from the plausibility stage, less FastSpecFit's failed fits,
# with their void membership from the environment stage: **void** galaxies have flag 1,
# **wall** galaxies flag 0; edge (2) and outside (9) galaxies are left out and counted. A galaxy
# is quenched by each of three definitions (science.md), reported side by side: a specific star
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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from desivoids import formats, systematics
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

pd.set_option("display.max_rows", 200)
pd.set_option("display.width", 200)
result = systematics.run(data_dir=data_dir, mass_edges=mass_edges, n_patches=n_patches,
                         regression=regression, spline_df=spline_df, alpha=alpha,
                         scheduler_address=scheduler_address, num_workers=num_workers)
s = result.summary

# %% [markdown]
# ## The result
#
# Computed by this run, for both caps together and all voids (the intervals are the jackknife
# 95% intervals):

# %%
display(Markdown(result.report["paragraph"]));

# %% [markdown]
# ## Summary table
#
# Both caps together. Fractions and the risk difference are mass-matched; `[lo, hi]` are 95%
# intervals: jackknife (`jk`, over `patches` patches, its t quantile at `jk dof` degrees of
# freedom: fewer than patches - 1 when the void galaxies sit in a few patches), Newcombe
# (analytic), and the regression's cluster-robust interval of the odds ratio.

# %%
def interval(lo, hi):
    return [f"[{a:+.3f}, {b:+.3f}]" if np.isfinite(a) and np.isfinite(b) else "" for a, b in zip(lo, hi)]


both = s[s.cap == "both"].copy()
table = pd.DataFrame({
    "algorithm": both.algorithm, "sample": both["sample"], "definition": both.definition,
    "n void": both.n_void, "n wall": both.n_wall,
    "q void": both.p_void.round(3), "q wall": both.p_wall.round(3),
    "risk difference": both.rd.round(3), "jk 95%": interval(both.rd_jk_lo, both.rd_jk_hi),
    "patches": both.n_patches, "jk dof": both.jk_dof.round(1),
    "Newcombe 95%": interval(both.rd_lo, both.rd_hi), "risk ratio": both.rr.round(3),
    "h": both.h.round(3), "odds ratio": both.get("logit_or", pd.Series(np.nan, both.index)).round(3),
    "OR 95%": interval(both.get("logit_or_lo", pd.Series(np.nan, both.index)),
                       both.get("logit_or_hi", pd.Series(np.nan, both.index)))})
table.set_index(["algorithm", "sample", "definition"])

# %% [markdown]
# ## Against the mock's planted answer
#
# On a mock run the mock records, for each algorithm, the answer this statistic should give: the
# void-minus-wall difference of the *latent* quenched probability at fixed stellar mass (walls
# reweighted to the void mass histogram, all voids, both caps), computed by the mock's own code
# from its own membership of that algorithm. The quenching was planted in VoidFinder voids only;
# each V2 pruning gets what its own voids' overlap with them gives. `covered`: whether the
# jackknife 95% interval holds the expected value. The observed definitions misclassify a few
# per cent of galaxies each way, which pulls an estimate slightly towards zero. On real data
# there is no planted answer.

# %%
beside = systematics.beside_expected(s, systematics.read_expected(data_dir), mass_edges)
(beside.round(3).set_index(["algorithm", "definition"]) if beside is not None
 else Markdown("No planted answer: this run is not on a mock sky."))

# %% [markdown]
# ## VoidFinder's surface galaxies, both ways
#
# VoidFinder grows its holes until they touch wall galaxies, so the galaxies bounding a hole sit
# on its surface to rounding. By default they are not void galaxies (the environment stage's
# `surface_tol`, methods); here VoidFinder's answer beside the one with every surface galaxy
# counted as void, as VAST's strict rule mostly does. Both caps.

# %%
systematics.surface_table(s).round(3)

# %% [markdown]
# ## Quenched fraction against stellar mass
#
# Void (filled) and wall (open) galaxies in the matching bins, with Wilson intervals; all voids,
# both caps.

# %%
b = result.binned[result.binned["sample"] == "all voids"]
fig, axes = plt.subplots(len(formats.ALGORITHMS), 3, figsize=(13, 12), sharex=True, sharey=True)
for i, algorithm in enumerate(formats.ALGORITHMS):
    for j, definition in enumerate(systematics.DEFINITIONS):
        ax = axes[i, j]
        d = b[(b.algorithm == algorithm) & (b.definition == definition)]
        for group, style in (("void", dict(fmt="o", color="C0")), ("wall", dict(fmt="s", color="C3", mfc="none"))):
            g = d[d.group == group]
            mid = 0.5 * (g.bin_lo + g.bin_hi)
            ax.errorbar(mid, g.fraction, yerr=[g.fraction - g.lo, g.hi - g.fraction], label=group, **style)
        ax.set_title(f"{algorithm}: {definition}", fontsize=9)
        if i == len(formats.ALGORITHMS) - 1:
            ax.set_xlabel("log M* [Msun]")
        if j == 0:
            ax.set_ylabel("quenched fraction")
axes[0, 0].legend()
fig.tight_layout()
plt.show();

# %% [markdown]
# ## The effect per algorithm and definition
#
# The mass-matched risk difference with its jackknife (thick) and analytic (thin) 95% intervals,
# per cap and both caps together.

# %%
fig, ax = plt.subplots(figsize=(9, 10))
rows = s[s["sample"] == "all voids"].reset_index(drop=True)
y = np.arange(len(rows))[::-1]
colours = {"NGC": "C0", "SGC": "C1", "both": "k"}
for yy, r in zip(y, rows.itertuples()):
    ax.plot([r.rd_lo, r.rd_hi], [yy, yy], color=colours[r.cap], lw=1)
    ax.plot([r.rd_jk_lo, r.rd_jk_hi], [yy, yy], color=colours[r.cap], lw=3, alpha=0.6)
    ax.plot(r.rd, yy, "o", color=colours[r.cap])
ax.axvline(0, color="0.5", lw=0.8)
ax.set_yticks(y, [f"{r.algorithm} {r.definition} {r.cap}" for r in rows.itertuples()], fontsize=7)
ax.set_xlabel("quenched fraction, voids minus walls (mass-matched)")
ax.set_title("Forest plot: all voids")
fig.tight_layout()
plt.show();

# %% [markdown]
# ## The algorithms are not independent
#
# How often two algorithms give a galaxy the same void-or-wall label (from the environment
# stage), beside their effects: the three V2 prunings are three labellings of one tessellation,
# so they agree far more than independent measurements would, and their spread is not a
# systematic error.

# %%
agreement = result.report.get("agreement")
pd.DataFrame(agreement).round(3) if agreement else print("no agreement matrix (environment report missing)")

# %% [markdown]
# ## What was compared and what was left out
#
# Per algorithm, sample, definition and cap: void and wall galaxies compared, edge and outside
# galaxies left out, and void or wall galaxies whose quenched state is undefined.

# %%
result.counts[result.counts.cap == "both"].set_index(["algorithm", "sample", "definition"]).drop(columns="cap")

# %% [markdown]
# ## Jackknife patches
#
# The equal-area HEALPix patches (clusters of the regression) per cap.

# %%
pd.DataFrame(result.report["sample"]["patches"]).groupby("cap").agg(
    patches=("patch", "size"), area_deg2=("area_deg2", "sum"), galaxies=("n_objects", "sum"),
    min_galaxies=("n_objects", "min"), max_galaxies=("n_objects", "max"))
