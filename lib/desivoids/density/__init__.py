"""A continuous environment for every galaxy, and the quenched fraction as a function of it.

- :mod:`.knn`: the k-NN density contrast delta_k of the volume-limited tracers, corrected for
  the survey edge by points filling each k-NN sphere (a scrambled Sobol set);
- :mod:`.voidcentric`: the distance to the centre of the galaxy's (or the nearest) void in
  effective radii, per algorithm;
- :mod:`.tweb`: the T-Web class from the tidal tensor of the CIC-deposited, smoothed tracer
  field, by FFT;
- :mod:`.answer`: the profiles and comparisons (statistics of :mod:`desivoids.systematics`);
- :mod:`.expected`: on a mock run, the profile the mock planted (its truth, read only);
- :mod:`.figures`, :mod:`.tables`: the book's figures, and its opening and tables;
- :mod:`.stage`: the stage (``run``).
"""
from .knn import MIN_EDGE_FRACTION, CapDensity, ball_points, edge_fraction, footprint_volume, \
    knn_radius, local_density
from .tweb import OUTSIDE_WEB, WEB_CLASSES, Box, WebGrid, cic_density, tidal_classes, web_grid
from .voidcentric import void_centric
from .expected import planted_profile
from .stage import TABLE, ULLAH_2026, DensityResult, column_of, run

__all__ = ["MIN_EDGE_FRACTION", "CapDensity", "ball_points", "edge_fraction", "footprint_volume",
           "knn_radius", "local_density", "OUTSIDE_WEB", "WEB_CLASSES", "Box", "WebGrid",
           "cic_density", "tidal_classes", "web_grid", "void_centric", "planted_profile", "TABLE", "ULLAH_2026",
           "DensityResult", "column_of", "run"]
