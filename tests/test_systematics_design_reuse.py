"""systematics fits the same rows once per quenched definition (only the outcome differs), so a
thread reuses its regression design when the rows are the same (issue 25): the design is built
once, every number equals that of a fit from a fresh design, a design of other rows is rebuilt,
and the stage's comparisons come back in the order of the loops over definition, algorithm,
sample and cap, each equal to the comparison computed alone (the method before issue 25)."""
from __future__ import annotations

import threading
from functools import partial

import numpy as np
import pandas as pd

from desivoids import formats
from desivoids.systematics import regression
from desivoids.systematics.matching import mass_bin_index
from desivoids.systematics.quenched import DEFINITIONS, quenched
from desivoids.systematics.stage import VARIANTS, _comparison, _patches, run_comparisons

MASS_EDGES = [9.5, 10.0, 10.5, 11.0, 11.5, 12.0]


def _fresh(fn):
    """``fn()`` in a new thread: no design of an earlier fit to reuse."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def _fit_sample(rng, n=6000):
    m = rng.normal(10.6, 0.3, n)
    z = rng.uniform(0.05, 0.24, n)
    v = rng.random(n) < 0.35
    g = rng.integers(0, 30, n)
    eta = -0.5 + 1.0 * (m - 10.6) + 2.0 * (z - 0.15) - 0.4 * v
    q1 = rng.random(n) < 1 / (1 + np.exp(-eta))
    q2 = rng.random(n) < 1 / (1 + np.exp(-(eta + 0.3)))
    return pd.DataFrame({"q1": q1, "q2": q2, "void": v, "logmstar": m, "z": z, "patch": g})


def test_a_thread_reuses_its_design_for_the_same_rows_and_the_fits_are_unchanged():
    d = _fit_sample(np.random.default_rng(251))
    v, m, z = d.void.to_numpy(), d.logmstar.to_numpy(), d.z.to_numpy()

    def both_outcomes():
        first = regression._design(v, m, z, 4)
        again = regression._design(v.copy(), m.copy(), z.copy(), 4)
        reused = again is first
        return reused, [regression.logit_void_effect(d, outcome=o) for o in ("q1", "q2")]

    reused, fits = _fresh(both_outcomes)
    assert reused  # the same rows: the design is not built again
    for o, fit in zip(("q1", "q2"), fits):
        alone = _fresh(partial(regression.logit_void_effect, d, outcome=o))
        assert fit.ok and fit == alone  # every number as from a fresh design, bit for bit


def test_a_design_of_other_rows_is_built_anew():
    d = _fit_sample(np.random.default_rng(252))
    other = d.assign(void=~d.void.to_numpy())  # the void column differs, and nothing else
    shifted = d.assign(z=d.z + 0.01)

    def in_turn():
        return [regression.logit_void_effect(x, outcome="q1") for x in (d, other, shifted, d)]

    got = _fresh(in_turn)
    want = [_fresh(lambda x=x: regression.logit_void_effect(x, outcome="q1"))
            for x in (d, other, shifted, d)]
    assert all(f.ok for f in got) and got == want
    assert got[1] != got[0] and got[2] != got[0]  # other rows: other fits
    assert got[0] == got[3]


def _stage_inputs(rng, n=5000):
    ngc = rng.random(n) < 0.75
    ra = np.where(ngc, rng.uniform(120, 260, n), rng.uniform(-40, 40, n) % 360)
    dec = rng.uniform(-5, 60, n)
    logm = rng.normal(10.6, 0.5, n)
    sfr = np.where(rng.random(n) < 0.1, 0.0, 10 ** rng.normal(0.0, 0.8, n))
    sample = pd.DataFrame({
        "targetid": rng.choice(2**50, n, replace=False), "ra": ra, "dec": dec,
        "cap": np.where(ngc, "NGC", "SGC"), "z": rng.uniform(0.03, 0.24, n), "logmstar": logm,
        "sfr": sfr, "dn4000": rng.uniform(1.0, 2.2, n),
        "absmag01_sdss_u": rng.normal(-19.5, 1.0, n), "absmag01_sdss_r": rng.normal(-21.5, 0.8, n)})
    wide = {}
    for algorithm in formats.ALGORITHMS:
        flag = rng.choice([0, 1, 2, 9], n, p=[0.55, 0.3, 0.1, 0.05])
        wide["flag", algorithm] = flag
        wide["flag_interior", algorithm] = np.where((flag == 1) & (rng.random(n) < 0.2), 2, flag)
    wide["flag_surface", "VoidFinder"] = np.where(
        (wide["flag", "VoidFinder"] == 0) & (rng.random(n) < 0.1), 1, wide["flag", "VoidFinder"])
    wide = pd.DataFrame(wide, index=pd.Index(sample.targetid, name="targetid"))
    return sample, wide


def test_the_comparisons_in_the_loops_order_each_as_computed_alone():
    sample, wide = _stage_inputs(np.random.default_rng(253))
    n_patches = {"NGC": 12, "SGC": 10}
    patches = _patches(sample, n_patches)
    summary, binned, counts, _ = run_comparisons(sample, wide, MASS_EDGES, n_patches, True, 4,
                                                 0.05, num_workers=2, patches=patches)
    # the method before issue 25: one comparison at a time, in the loops' order
    s = sample.assign(patch=patches.patch, mass_bin=mass_bin_index(
        sample.logmstar.to_numpy(np.float64), MASS_EDGES))
    aligned = wide.reindex(s.targetid)
    caps = (*formats.CAPS, "both")
    incaps = {cap: np.ones(len(s), bool) if cap == "both" else s.cap.to_numpy() == cap
              for cap in caps}
    done = []
    for definition in DEFINITIONS:
        q = quenched(s, definition)
        for algorithm in formats.ALGORITHMS:
            for variant, column in VARIANTS.items():
                if (column, algorithm) not in wide.columns:
                    continue
                for cap in caps:
                    labels = {"algorithm": algorithm, "sample": variant,
                              "definition": definition, "cap": cap}
                    done.append(_fresh(partial(
                        _comparison, s, q, aligned[(column, algorithm)].to_numpy(),
                        incaps[cap], labels, MASS_EDGES, True, 4, 0.05)))
    pd.testing.assert_frame_equal(summary, pd.DataFrame([r[1] for r in done]), check_exact=True)
    pd.testing.assert_frame_equal(counts, pd.DataFrame([r[0] for r in done]), check_exact=True)
    pd.testing.assert_frame_equal(binned, pd.concat([r[2] for r in done if r[2] is not None],
                                                    ignore_index=True), check_exact=True)
    assert summary.logit_reason.eq("").sum() >= 20  # the regressions ran, most of them usable
