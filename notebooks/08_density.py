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
# # density: a continuous environment for every galaxy
#
# The local density, the distance to the void centre and the cosmic-web class of every galaxy,
# and how the quenched fraction changes along them.

# %% tags=["parameters"]
data_dir: str = "data/mock"  # run folder (reads convert/, plausibility/, environment/; writes density/)
db_url: str = ""  # database URL; empty: the run's SQLite file
scheduler_address: str = ""  # dask.distributed scheduler address (empty: the local scheduler)
k: int = 5  # [1, 1000] the k of the k-th nearest tracer
edge_points: int = 64  # [8, 65536] points filling a k-NN sphere that crosses the survey's edge, for its edge fraction
cell: float = 2.0  # (0, 100] Mpc/h: the T-Web grid's cell
smooth: float = 4.0  # [0, 100] Mpc/h: the Gaussian smoothing of the tracer field
lambda_th: float = 0.2  # [-10, 10] tidal eigenvalue threshold of the T-Web classes
chunk_rows: int = 1000000  # [1, 100000000] galaxies per Dask task
num_workers: int = 0  # [0, 256] local Dask workers (0: all cores)
seed: int = 20251202  # [0, 4294967295] seed of the scrambled Sobol points of the edge fraction
definition: str = "ssfr"  # {ssfr, dn4000, ur} the quenched definition of the profiles
delta_bins: int = 5  # [1, 100] quantile bins of delta_k
r_edges: list = [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]  # bin edges of r / R_eff
mass_edges: list = [9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0]  # log10 M*/Msun bins of the mass standardisation
n_patches: dict = {"NGC": 32, "SGC": 12}  # jackknife patches per cap
alpha: float = 0.05  # (0, 1) 1 - the confidence of the intervals
caps: list = []  # caps to measure (NGC, SGC); empty: every cap whose void files are present

# %%
from desivoids import density, display
from desivoids.density import figures, tables
from desivoids.runinfo import banner

banner(data_dir)  # mock or DESI DR1, the chapter's first line; a MOCK mark on a mock run's figures

result = density.run(data_dir=data_dir, db_url=db_url, scheduler_address=scheduler_address, k=k,
                     edge_points=edge_points, cell=cell, smooth=smooth, lambda_th=lambda_th,
                     chunk_rows=chunk_rows, num_workers=num_workers, seed=seed,
                     definition=definition, delta_bins=delta_bins, r_edges=r_edges,
                     mass_edges=mass_edges, n_patches=n_patches, alpha=alpha, caps=caps)
display.summary(tables.opening(result))

# %% tags=["remove-output"]
display.figure("density-profile",
               figures.profile_figure(result.profiles, density.planted_profile(data_dir)),
               "Quenched fraction at fixed stellar mass against the distance to the void "
               "centre in effective radii, one line per void catalogue; bars are 95% "
               "delete-one-patch jackknife intervals, the dotted line is the void's effective "
               "radius. On a mock run the dashed line is the profile the mock planted in "
               "VoidFinder's voids (its expected value per bin, from the mock's truth).")

# %% [markdown]
# ```{glue:figure} density-profile
# :alt: Line plot of the mass-standardised quenched fraction against distance to the void centre in effective radii, one line with error bars per void-finding algorithm, a dotted vertical line at one effective radius.
# :name: fig-density-profile
#
# {glue:md}`density-profile-caption`
# ```
#
# ## How the environment is measured
#
# For every galaxy of the catalogue, in the cap environment placed it in:
#
# - **local density**: $r_k$, the comoving distance to the $k$-th nearest volume-limited tracer
#   (a tracer does not count itself), as the contrast
#   $\delta_k = k / (f\,\tfrac43\pi r_k^3\,\bar n) - 1$ with $\bar n$ the cap's tracers over its
#   volume and $f$ the fraction of the sphere inside the survey (mask and radial limits): 1 for a
#   sphere wholly inside, else the share of `edge_points` points filling the sphere evenly (a
#   scrambled Sobol set) that the mask and radial limits keep; $f < 1/2$ is flagged and left out
#   of the profiles; a galaxy outside the survey (mask or radial limits) has none of them;
# - **void-centric distance**, per algorithm: the distance to the centre of the galaxy's void
#   (or of the nearest void centre, for wall and edge galaxies) in units of that void's
#   effective radius;
# - **T-Web class** (Forero-Romero et al. 2009): the tracers deposited on a comoving grid
#   (cloud-in-cell), the survey's outside set to the mean, a Gaussian smoothing, the potential
#   $\nabla^2\phi = \delta$ by FFT and the eigenvalues of the tidal tensor
#   $\partial_i\partial_j\phi$: the number above `lambda_th` makes a cell void (0), sheet (1),
#   filament (2) or knot (3).
#
# The quenched fractions are standardised to the sample's stellar-mass distribution in every
# bin, with delete-one-patch jackknife intervals over the same HEALPix patches as the
# systematics chapter. In the figure above every galaxy is in the bin of its $r / R_\mathrm{eff}$
# (inside its own void below 1 for VoidFinder's maximal sphere and the V2 effective spheres,
# roughly).
#
# On a mock run the mock planted its quenching as a function of this distance for VoidFinder
# (methods, "The mock's planted answer"): the quenched probability is lowered most at a void's
# centre and the shift falls smoothly to zero at 1.5 effective radii. The dashed line is that
# profile's expected value per bin, computed by the mock from its own latent probabilities; the
# measured VoidFinder profile should cover it within its intervals.
#
# ## Quenched fraction against the local density
#
# Quantile bins of $\delta_k$ (galaxies whose k-NN sphere is at least half inside the survey).

# %% tags=["remove-output"]
display.figure("density-delta", figures.delta_figure(result.profiles),
               "Quenched fraction at fixed stellar mass in quantile bins of the local density "
               "contrast delta_k, at the bins' centres; bars are 95% jackknife intervals.")

# %% [markdown]
# ```{glue:figure} density-delta
# :alt: Points with error bars of the mass-standardised quenched fraction against the logarithm of one plus the local density contrast, one point per quantile bin.
# :name: fig-density-delta
#
# {glue:md}`density-delta-caption`
# ```

# %%
display.table(tables.profile_table(result.profiles), caption="Every profile bin",
              collapsed=True)

# %% [markdown]
# ## The web
#
# Grid cells per class in the survey, and the tracers in them, per cap; then a slice through
# the middle of the NGC grid with the DESIVAST voids that cut it.

# %%
display.table(tables.web_counts_table(data_dir), caption="Grid cells and tracers per web class")

# %% tags=["remove-output"]
display.figure("density-web-slice", figures.web_slice_figure(data_dir, cap="NGC"),
               "The T-Web class of every grid cell in the middle z slice of the NGC grid "
               "(blank: outside the survey), with VoidFinder's holes (black circles) and the "
               "V2 prunings' effective spheres (dashed) where they cut the slice.")

# %% [markdown]
# ```{glue:figure} density-web-slice
# :alt: Map of a slice through the NGC grid coloured by web class, void, sheet, filament and knot, with circles where the void catalogues' holes and effective spheres cut the slice.
# :name: fig-density-web-slice
#
# {glue:md}`density-web-slice-caption`
# ```
#
# ## T-Web voids beside the four labellings
#
# The void-minus-wall difference at fixed stellar mass (mass-matched as in the systematics
# chapter, jackknife interval) with the T-Web void class as the void sample and the other three
# classes as the wall, beside each DESIVAST labelling; then, of the sample galaxies both call
# void or wall, how often T-Web and each labelling agree.

# %%
display.table(tables.comparison_table(result.comparison),
              caption="Void minus wall per labelling, T-Web's void class among them")

# %%
display.table(tables.agreement_table(result.report),
              caption="T-Web voids against each labelling")

# %% [markdown]
# ## Quenched fractions by web class, beside Ullah et al. 2026
#
# For orientation only: Ullah et al. (2026, arXiv:2604.02463) classify DESI DR1 BGS with their
# own T-Web (tracers, smoothing, threshold) and a colour cut; their red fractions at z ~ 0.2 are
# not a target for this measurement.

# %%
display.table(tables.ullah_table(result.web_fractions, definition),
              caption="Quenched fraction per web class")
