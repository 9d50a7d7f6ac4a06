"""A mock DESI DR1 sky in the real file formats, with a planted, known answer.

``generate(out_dir, seed=..., scale="tiny"|"small"|"dr1", fastspec_version="v3.0"|"v2.1",
tiles=N)`` writes DESIVAST void catalogues, FastSpecFit catalogues and DESI-style .sha256sum
files in DESI's relative layout under ``out_dir``, and the planted truth under
``out_dir/truth`` (read only by tests and by the book's mock-only tables and figures). See
generate.py for the steps and truth.py for the membership rules the truth follows.

The planted answer: a galaxy's quenched probability is a function of its stellar mass
(generate.quenched_probability) plus a shift that is a smooth function of x = r / R_eff, its
distance to the centre of its VoidFinder void (MAXIMALS X, Y, Z; R_EFF), or to the nearest
VoidFinder centre for a galaxy in no void (truth.void_centric): A (1 + cos(pi x / 1.5)) / 2 for
x < 1.5, 0 beyond (generate.planted_shape), the full shift A at the centre, none from 1.5
R_eff on. A is scaled so that VoidFinder void tracers minus wall tracers is ``planted_offset``
(-0.10) on average (generate.planted_amplitude). truth.json records the shape and A
(``planted_profile``), the expected VoidFinder profile per r / R_eff bin and each algorithm's
expected void-minus-wall answer, both from the latent probabilities; truth/galaxies.parquet
each galaxy's x (R_OVER_REFF_VOIDFINDER) and latent probability (P_QUENCHED).
"""
from __future__ import annotations

from .generate import PLANTED_OFFSET, generate
from .scales import SCALES

__all__ = ["generate", "SCALES", "PLANTED_OFFSET"]
