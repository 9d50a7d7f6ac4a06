"""The systematics stage: it recovers the mock's planted effect within its stated intervals on a
seed the default run does not use, its intervals cover zero at the stated rate when nothing is
planted, and its outputs (summary, binned fractions, what was left out, the paragraph) agree with
each other."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import convert, environment, formats, load, mock, plausibility, systematics
from desivoids.load.queries import dispose_engines

TRUTH_SEED = 4242  # not params/mock.yml's 20251125 nor the tests' tiny 12345
MASS_EDGES = list(inspect.signature(systematics.run).parameters["mass_edges"].default)
DEFINITION_TRUTH = {"ssfr": "QUENCHED_SSFR", "dn4000": "QUENCHED_DN4000", "ur": "QUENCHED_COLOR"}


def pipeline(d: Path, *, scale: str, seed: int, planted_offset: float = -0.10,
             n_patches=None, regression: bool = True, randoms: int = 20_000):
    """A mock sky through convert, load, plausibility, environment and systematics."""
    mock.generate(d / "mirror", seed=seed, scale=scale, tiles=0, planted_offset=planted_offset)
    convert.run(data_dir=str(d), input_dir=str(d / "mirror"))
    load.run(data_dir=str(d))  # the run's database, beside which the later stages publish
    plausibility.run(data_dir=str(d))
    environment.run(data_dir=str(d), randoms=randoms)
    kw = {} if n_patches is None else {"n_patches": n_patches}
    result = systematics.run(data_dir=str(d), regression=regression, **kw)
    dispose_engines()
    return result


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("truth") / "run"
    return d, pipeline(d, scale="small", seed=TRUTH_SEED)


@pytest.mark.slow
def test_the_planted_offset_is_recovered_within_the_stated_intervals(small):
    d, result = small
    truth = json.loads((d / "mirror" / "truth" / "truth.json").read_text())
    planted = truth["planted_offset"]["VoidFinder"]
    s = result.summary.set_index(["algorithm", "sample", "definition", "cap"])
    for definition, key in DEFINITION_TRUTH.items():
        row = s.loc[("VoidFinder", "all voids", definition, "both")]
        realised = truth["realised_offsets"]["tracers"]["VoidFinder"][key]["weighted_offset"]
        # the offset the mock realised in this definition, computed by the mock's own code
        assert row.rd_jk_lo <= realised <= row.rd_jk_hi, (definition, row.rd, realised)
        assert row.rd_lo <= realised <= row.rd_hi, (definition, row.rd, realised)
        assert row.rd_jk_hi < 0  # and the effect is detected
        assert abs(row.rd - planted) < 0.03  # observed definitions dilute the planted -0.10 a little
    # the V2 variants are three labellings of one tessellation: three different answers
    v2 = [s.loc[(a, "all voids", "ssfr", "both"), "rd"] for a in formats.V2_ALGORITHMS]
    assert len(set(v2)) == 3


@pytest.mark.slow
def test_each_estimate_beside_the_mocks_expected_answer(small):
    d, result = small
    expected = systematics.read_expected(str(d))
    table = systematics.beside_expected(result.summary, expected, MASS_EDGES)
    assert len(table) == len(formats.ALGORITHMS) * 3
    e = table[table.definition == "ssfr"].set_index("algorithm")
    # each algorithm its own expected answer: VoidFinder the planted effect, the V2 prunings
    # what their overlap with VoidFinder voids gives, each different
    planted = json.loads((d / "mirror" / "truth" / "truth.json").read_text())["planted_offset"]
    assert abs(e.loc["VoidFinder", "expected"] - planted["VoidFinder"]) < 0.02
    v2 = e.loc[list(formats.V2_ALGORITHMS), "expected"].dropna()
    assert len(v2) >= 2 and v2.nunique() == len(v2)
    judged = table[table.covered.notna()]
    assert len(judged) >= 9 and judged.covered.mean() >= 0.75
    assert e.loc["VoidFinder", "covered"]
    # a real run (no mock truth) has no such table
    assert systematics.beside_expected(result.summary, None, MASS_EDGES) is None


@pytest.mark.slow
def test_outputs_agree_with_each_other(small):
    d, result = small
    out = d / "systematics"
    summary = pq.read_table(out / "summary.parquet").to_pandas()
    # all voids and interior voids for every algorithm; VoidFinder's surface galaxies as void
    assert len(summary) == (len(formats.ALGORITHMS) * 2 + 1) * 3 * 3
    both = summary[summary.cap == "both"].set_index(["algorithm", "sample", "definition"])
    assert set(summary.algorithm[summary["sample"] == "surface as void"]) == {"VoidFinder"}
    n_surface = pq.read_table(d / "environment" / "voidfinder_surface.parquet").num_rows
    for definition in ("ssfr", "dn4000", "ur"):
        tol = both.loc[("VoidFinder", "all voids", definition)]
        rounding = both.loc[("VoidFinder", "surface as void", definition)]
        assert tol.n_void < rounding.n_void <= tol.n_void + n_surface
        assert rounding.n_void + rounding.n_wall <= tol.n_void + tol.n_wall + n_surface
    table = systematics.surface_table(summary)
    assert set(table.index.get_level_values("sample")) == {"all voids", "surface as void"}
    counts = result.counts.set_index(["algorithm", "sample", "definition", "cap"])
    for r in summary.itertuples():
        c = counts.loc[(r.algorithm, r.sample, r.definition, r.cap)]
        assert (c.void, c.wall) == (r.n_void, r.n_wall)
    # NGC + SGC = both, for every count
    for _, g in counts.groupby(level=[0, 1, 2]):
        g = g.droplevel([0, 1, 2])
        assert (g.loc["NGC"] + g.loc["SGC"] == g.loc["both"]).all()
    sel = pq.read_table(d / "plausibility" / "sample.parquet").num_rows
    tot = counts.xs("both", level="cap")[["void", "wall", "edge", "outside", "undefined"]].sum(axis=1)
    assert (tot == sel).all()  # every sample galaxy is compared or counted as left out
    binned = pq.read_table(out / "binned.parquet").to_pandas()
    filled = binned[binned.n > 0]  # empty cells are kept, with NaN fractions
    assert set(binned.group) == {"void", "wall"} and (filled.lo <= filled.fraction).all()
    assert binned[binned.n == 0].fraction.isna().all()
    report = json.loads((out / "report.json").read_text())
    text = report["paragraph"]
    vf = summary[(summary.algorithm == "VoidFinder") & (summary["sample"] == "all voids")
                 & (summary.cap == "both") & (summary.definition == "ssfr")].iloc[0]
    assert f"{int(vf.n_void):,d} void" in text and "percentage points" in text
    assert text.count("In VoidFinder voids") == 1 and "+0." not in text  # words, not a template
    assert report["agreement"] is not None
    assert np.isfinite(summary.logit_or).any() and (summary.logit_n_clusters > 10).any()


@pytest.mark.slow
def test_intervals_cover_zero_when_nothing_is_planted(tmp_path):
    """20 tiny null mocks: the jackknife 95% interval of VoidFinder's mass-matched risk
    difference (both caps, sSFR) covers zero in at least 16 (the probability of 15 or fewer
    under exact 95% coverage is 1.6%), for all voids and for interior voids only, whose few
    void galaxies sit in a few patches (the t quantile then takes the jackknife variance's
    Satterthwaite dof). Seeds 9500-9519 are those on which the benchmark found t with K - 1
    dof covering 15 of 20 for interior voids: this test fails without the fix. Printed for the
    report."""
    n = 20
    covered = {(s, m): 0 for s in ("all voids", "interior voids") for m in ("jackknife", "Newcombe")}
    for k in range(n):
        r = pipeline(tmp_path / f"null{k}", scale="tiny", seed=9500 + k, planted_offset=0.0,
                     n_patches={"NGC": 10, "SGC": 5}, regression=False, randoms=2_000)
        rows = r.summary.set_index(["algorithm", "sample", "definition", "cap"])
        for sample in ("all voids", "interior voids"):
            row = rows.loc[("VoidFinder", sample, "ssfr", "both")]
            covered[sample, "jackknife"] += row.rd_jk_lo <= 0 <= row.rd_jk_hi
            covered[sample, "Newcombe"] += row.rd_lo <= 0 <= row.rd_hi
    print("null coverage over", n, "mocks:", {f"{s}, {m}": c for (s, m), c in covered.items()})
    assert all(c >= 16 for c in covered.values()), covered
