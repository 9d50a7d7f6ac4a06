"""On a mock run: the quenching profile the mock planted, beside the stage's profile.

The mock (desivoids.mock) plants its environment effect as a smooth function of a galaxy's
distance to the centre of its VoidFinder void (or the nearest one) in effective radii, and
writes the expected VoidFinder profile per r / R_eff bin, from its latent quenched
probabilities and with its own code, in truth.json (``planted_profile``). Here it is only read;
on real data there is none.
"""
from __future__ import annotations

import json

import pandas as pd

from .. import paths

__all__ = ["planted_profile"]


def planted_profile(data_dir: str = "data/mock") -> pd.DataFrame | None:
    """The planted profile of a mock run: one row per bin (algorithm, x_lo, x_hi, n, expected,
    without_plant), or None when the run has no mock truth or its truth has no profile."""
    path = paths.RunLayout.of(data_dir).mock_truth
    if not path.exists():
        return None
    plant = json.loads(path.read_text()).get("planted_profile")
    if not plant:
        return None
    bins = pd.DataFrame(plant["expected"]["bins"])
    bins.insert(0, "algorithm", plant["algorithm"])
    return bins
