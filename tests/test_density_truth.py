"""The density stage recovers the mock's planted quenching as a profile in the void-centric
distance, on a seed no other test or run uses.

The mock plants its effect on VoidFinder membership (the quenched probability of a galaxy
strictly inside a VoidFinder hole is lowered by truth.json's planted offset); seen against
r / R_eff it is a drop inside the voids. The expected profile is computed here from the mock's
truth (each galaxy's latent quenched probability, from its true stellar mass and its true flag,
by the mock's own function), standardised to the sample's stellar masses with the stage's mass
bins and r / R_eff bins; the stage's profile (observed quenched definition, jackknife intervals)
must cover it in all but at most one of the eight bins (the observed sSFR definition dilutes the
latent probabilities a little, and 95% intervals miss now and then) and show the drop."""
from __future__ import annotations

import inspect
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import convert, density, environment, load, mock, plausibility
from desivoids.load.queries import dispose_engines
from desivoids.mock.generate import quenched_probability
from desivoids.systematics.matching import mass_bin_index

SEED = 4343  # not params/mock.yml's, the tests' tiny 12345 nor systematics' truth seed 4242
MASS_EDGES = list(inspect.signature(density.run).parameters["mass_edges"].default)


@pytest.fixture(scope="module")
def truth_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("density_truth") / "run"
    mock.generate(d / "mirror", seed=SEED, scale="small", tiles=0)
    convert.run(data_dir=str(d), input_dir=str(d / "mirror"))
    load.run(data_dir=str(d))
    plausibility.run(data_dir=str(d))
    environment.run(data_dir=str(d), randoms=20_000)
    result = density.run(data_dir=str(d))
    dispose_engines()
    return d, result


def _expected(r, logm, p, x_edges):
    """The latent probability p standardised to the sample's mass distribution per r bin."""
    xb, mb = mass_bin_index(r, x_edges), mass_bin_index(logm, MASS_EDGES)
    ok = (xb >= 0) & (mb >= 0)
    nm = len(MASS_EDGES) - 1
    ref = np.bincount(mb[ok], minlength=nm).astype(float)
    cell = xb[ok] * nm + mb[ok]
    n = np.bincount(cell, minlength=(len(x_edges) - 1) * nm).reshape(-1, nm)
    k = np.bincount(cell, weights=p[ok], minlength=n.size).reshape(-1, nm)
    w = np.where(n > 0, ref, 0.0)
    return (w * np.where(n > 0, k / np.maximum(n, 1), 0)).sum(1) / w.sum(1)


@pytest.mark.slow
def test_the_planted_voidfinder_profile_is_recovered(truth_run):
    d, result = truth_run
    tdir = d / "mirror" / "truth"
    offset = json.loads((tdir / "truth.json").read_text())["planted_offset"]["VoidFinder"]
    truth = pq.read_table(tdir / "galaxies.parquet").to_pandas().set_index("TARGETID")
    env = pq.read_table(d / "density" / "galaxy_environment.parquet").to_pandas()
    s = pq.read_table(d / "plausibility" / "sample.parquet", columns=["targetid", "logmstar"]
                      ).to_pandas().merge(env, on="targetid")
    t = truth.loc[s.targetid]
    p = np.clip(quenched_probability(t.LOGMSTAR_TRUE.to_numpy())
                + offset * (t.FLAG_VOIDFINDER.to_numpy() == 1), 0, 1)
    prof = result.profiles
    a = prof[(prof.quantity == "r_over_reff") & (prof.algorithm == "VoidFinder")]
    edges = np.r_[a.x_lo.to_numpy(), a.x_hi.to_numpy()[-1]]
    r = s[density.column_of("VoidFinder")].to_numpy(np.float64, na_value=np.nan)
    expected = _expected(r, s.logmstar.to_numpy(np.float64), p, edges)
    covered = (a.jk_lo.to_numpy() <= expected) & (expected <= a.jk_hi.to_numpy())
    assert covered.sum() >= len(covered) - 1, (a.fraction.to_numpy(), expected)
    inside, outside = a.x_hi.to_numpy() <= 0.75, a.x_lo.to_numpy() >= 1.25
    drop = a.fraction[inside].mean() - a.fraction[outside].mean()
    assert drop < offset / 2, drop  # the planted drop (-0.10) inside VoidFinder's voids
