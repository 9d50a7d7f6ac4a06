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
# # environment: which galaxies are in voids, by each algorithm's own rules
#
# Every galaxy placed in a void, a wall, near the survey's edge or outside it, by each of the
# four DESIVAST void catalogues.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads convert/ and plausibility/, writes environment/)
db_url: str = ""  # database URL; empty: the run's SQLite file
scheduler_address: str = ""  # dask.distributed scheduler address (empty: the local scheduler)
chunk_rows: int = 1000000  # [1, 100000000] galaxies per Dask task
num_workers: int = 0  # [0, 256] local Dask workers (0: every core but one, which the database insert takes)
randoms: int = 200000  # [1000, 100000000] random points per cap for the volume fractions
seed: int = 20251201  # [0, 4294967295] seed of the random points
surface_tol: float = 1e-3  # [0, 1] Mpc/h: within this of a VoidFinder hole's surface and in no hole by more is not void
caps: list = []  # caps to classify (NGC, SGC); empty: every cap whose void files are present

# %%
from desivoids import display, environment
from desivoids.environment import figures
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = environment.run(data_dir=data_dir, db_url=db_url, scheduler_address=scheduler_address,
                         chunk_rows=chunk_rows, num_workers=num_workers, randoms=randoms, seed=seed,
                         surface_tol=surface_tol, caps=caps)
drawn = figures.inputs(data_dir)
display.summary(figures.opening(result))

# %% tags=["remove-output"]
display.figure("environment-fractions", figures.fractions_figure(result.fractions),
               "How much of the survey is void, per algorithm: the share of tracers (blue) and of "
               "the volume (green) in voids, void / (void + wall), both caps, beside VAST's SDSS "
               "DR7 values (black ticks) where VAST published them.")

# %% [markdown]
# ```{glue:figure} environment-fractions
# :alt: Bar chart with two bars per void-finding algorithm, the percentage of tracers and of volume in voids, and black tick marks at the SDSS DR7 reference values.
# :name: fig-environment-fractions
#
# {glue:md}`environment-fractions-caption`
# ```
#
# ## How a galaxy is placed
#
# Every galaxy of the converted catalogue, not only the tracers, is placed by each of the four
# DESIVAST catalogues, following VAST's own catalogue code ({doc}`/book/methods`):
#
# - **VoidFinder**: a galaxy is in a void when its comoving position lies inside one of the
#   void's holes by more than the surface tolerance, $|\mathbf{x} - \mathbf{c}| < R - \epsilon$
#   ($\epsilon$ = `surface_tol`), checked before the footprint; its void is that of the first
#   such hole, in file order. A galaxy within $\epsilon$ of a hole's surface and inside no hole
#   by more (VoidFinder grows its holes until they touch galaxies) is a *surface galaxy*: not a
#   void galaxy; they are counted below.
# - **V2** (REVOLVER, VIDE, ZOBOV, one tessellation pruned three ways): a galaxy takes the zone of
#   its nearest GALZONE tracer, and is in a void when that zone's `VOID0` (joined on the zone
#   value) in the algorithm's own file is not -1: each pruning has its own ZONEVOID. A point outside the survey stays outside (VAST's code would let it inherit a
#   void zone).
# - Otherwise a galaxy is **outside** (9) when it is outside the footprint rebuilt from the cap's
#   tracers the way VoidFinder builds its mask, outside the radial limits, at $Z \le 0$ or beyond
#   ZLIMU, or in the other cap; **edge** (2) when one of the six points 10 Mpc/h away along
#   $\pm x, \pm y, \pm z$ is outside; else **wall** (0).
#
# The interior-only variants keep the void galaxies of interior voids (VoidFinder `EDGE` = 0; V2
# `EDGE_AREA / TOT_AREA` $\le 0.1$) and treat the others like edge galaxies. The work runs as Dask
# tasks (the local scheduler, or the cluster of `scheduler_address`).

# %% [markdown]
# ## Flags
#
# Galaxies and tracers per algorithm and flag: wall, void, edge and outside.

# %%
display.table(figures.flag_table(result.report), caption="Galaxies and tracers per flag")

# %% [markdown]
# ## Galaxies on VoidFinder's hole surfaces
#
# VoidFinder grows each hole until it touches wall galaxies, so the galaxies that bound a hole lie
# on its surface to rounding, and VAST's strict $|\mathbf{x} - \mathbf{c}| < R$ decides them by
# the last bits of the arithmetic. Here a galaxy within `surface_tol` of a surface and inside no
# hole by more is not a void galaxy. Per cap: how many galaxies and tracers are surface galaxies,
# how many of them VAST's strict rule would call void, and the tracers' void / (void + wall) with
# the tolerance and with every surface galaxy counted as void (the systematics chapter gives the
# answer both ways).

# %%
display.table(figures.surface_table(result.report), caption="Surface galaxies per cap")

# %% [markdown]
# VoidFinder removes isolated tracers (its *field* galaxies) before growing holes, so only field
# galaxies can lie inside a hole: where a VoidFinder file carries VAST's FIELD HDU (DESIVAST's
# VAC files do not), how many void galaxies are field galaxies (matched on position); a dash
# where the file has no FIELD HDU.

# %%
display.table(figures.field_table(result.report), caption="VoidFinder's field galaxies")

# %% [markdown]
# ## How much of the survey is void?
#
# The fraction of tracers, and of the volume (random points uniform inside each cap's footprint
# and radial limits), in voids, per algorithm: `void / (void + wall)`, beside VAST's reference
# on SDSS DR7 (which cut 30 Mpc/h inside the survey boundary; we leave out the galaxies within
# 10 Mpc/h of it). That the V2 prunings call most of the survey void is a property of the
# algorithms, not a bug.

# %%
display.table(figures.fractions_table(result.fractions), caption="Percent in voids")

# %% [markdown]
# ## Voids and galaxies on the sky

# %% tags=["remove-output"]
display.figure("environment-sky", figures.sky_figure(drawn["sample"], drawn["voids"]),
               "The selected tracers (grey, per cell, colour bar on a log scale) and each "
               "algorithm's voids, drawn at their effective radius projected at their distance "
               "(ellipses 1/cos Dec wide in RA, so they are circles on the sky); blue interior, "
               "orange edge voids.")

# %% [markdown]
# ```{glue:figure} environment-sky
# :alt: Four sky maps, one per algorithm, of right ascension and declination: the tracers as a grey density with a colour bar, and each void as an outline at its angular size.
# :name: fig-environment-sky
#
# {glue:md}`environment-sky-caption`
# ```
#
# ## A slice through comoving space

# %% tags=["remove-output"]
display.figure("environment-slab", figures.slab_figure(drawn["sample"], drawn["assign"],
                                                       drawn["holes"], drawn["voids"], cap="NGC"),
               "A slab 20 Mpc/h thick through the middle of the NGC: its tracers coloured by "
               "their flag under each algorithm, and where that algorithm's voids cut the slab's "
               "mid plane (VoidFinder: its holes; the V2 prunings: each void's effective sphere).")

# %% [markdown]
# ```{glue:figure} environment-slab
# :alt: Four panels of comoving x against y in megaparsecs per h, one per algorithm, with the slab's tracers as dots coloured wall, void, edge or outside and blue circles where the voids cut the slab.
# :name: fig-environment-slab
#
# {glue:md}`environment-slab-caption`
# ```

# %% [markdown]
# ## Turn the slab yourself
#
# A cube 300 Mpc/h wide around the middle of the NGC: turn the slab (sliders, or drag the
# picture), move it and change its thickness. Galaxies inside the slab are coloured by their flag
# under the algorithm you choose (grey wall, blue void, orange edge, light grey outside); each
# algorithm's voids are a layer of circles where its spheres cut the slab's mid plane. VoidFinder's
# circles are exact cuts of its holes; a V2 void is a union of Voronoi cells, drawn as its
# effective sphere, while its galaxies' colours are exact.

# %%
from IPython.display import HTML

HTML(environment.explorer.slab_html(drawn["explorer"]))

# %% [markdown]
# ## Void sizes and galaxies per void

# %% tags=["remove-output"]
display.figure("environment-sizes", figures.sizes_figure(drawn["voids"]),
               "Effective radii of the voids per algorithm (VoidFinder: of the union of a void's "
               "holes; V2: of the void's volume); the legend gives each algorithm's number of "
               "voids.")

# %% [markdown]
# ```{glue:figure} environment-sizes
# :alt: Step histograms of void effective radius in megaparsecs per h, one line per algorithm.
# :name: fig-environment-sizes
#
# {glue:md}`environment-sizes-caption`
# ```
#
# Every void of each catalogue (zero counts included); void ids that a file's ZONEVOID names but
# its VOIDS table lacks are counted apart (none in a consistent file: integrity fails on them).

# %%
display.table(figures.counts_table(drawn["counts"]), caption="Galaxies per void")

# %% [markdown]
# ## Do the algorithms agree?
#
# For every pair of algorithms, of the tracers both call void or wall: the share with the same
# label, and Cohen's kappa (agreement beyond chance). The three V2 prunings are one tessellation
# pruned three ways (each with its own ZONEVOID), so their labels differ but overlap far more
# than independent measurements would: their effects in the systematics chapter are not
# independent measurements.

# %%
display.table(figures.agreement_table(result.agreement, "same_label"),
              caption="Share of tracers with the same void-or-wall label")

# %%
display.table(figures.agreement_table(result.agreement, "kappa"), caption="Cohen's kappa")
