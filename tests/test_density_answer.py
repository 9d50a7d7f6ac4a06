"""The density answer's join of plausibility's sample with galaxy_environment, on tables
written here (pyarrow): the rows and values of a left merge on targetid, each sample galaxy's
row of the environment table, and a clear error for a repeated targetid."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import paths
from desivoids.density.answer import SAMPLE_COLUMNS, _sample
from desivoids.errors import InputError


def _env(targetid: np.ndarray, rng) -> pa.Table:
    n = len(targetid)
    delta = rng.normal(size=n)
    web = rng.integers(-1, 4, n).astype(np.int8)
    void = rng.integers(0, 50, n)
    return pa.table({
        "targetid": pa.array(targetid), "cap": pa.array(rng.choice(["NGC", "SGC"], n)),
        "delta_k": pa.array(delta, mask=rng.random(n) < 0.2),
        "edge_flag": pa.array(rng.random(n) < 0.3),
        "web_class": pa.array(web, mask=web < 0),
        "void_centric_voidfinder": pa.array(rng.random(n) * 3, mask=rng.random(n) < 0.1),
        "nearest_void_voidfinder": pa.array(void, mask=rng.random(n) < 0.1)})


def _write_sample(tmp_path, targetid: np.ndarray, rng):
    n = len(targetid)
    cols = {c: rng.normal(size=n) for c in SAMPLE_COLUMNS}
    cols["targetid"], cols["cap"] = targetid, rng.choice(["NGC", "SGC"], n)
    cols["sfr_zero"] = rng.random(n) < 0.1
    out = tmp_path / "plausibility"
    out.mkdir(parents=True)
    pq.write_table(pa.table(cols), out / "sample.parquet")
    return paths.RunLayout.of(tmp_path)


def test_the_sample_joins_the_environment_as_a_left_merge(tmp_path):
    rng = np.random.default_rng(3)
    env_ids = np.sort(rng.choice(10**9, 5_000, replace=False)).astype(np.int64)
    env = _env(env_ids, rng)
    # an unordered sample: most galaxies in env, some not (no row: nulls), one past its end
    ids = np.concatenate([rng.choice(env_ids, 900, replace=False),
                          rng.choice(10**9, 40) + 10**9, [env_ids[-1] + 1]])
    layout = _write_sample(tmp_path, rng.permutation(ids).astype(np.int64), rng)

    got, row = _sample(layout, env)

    s = pq.read_table(layout.file("plausibility", "sample")).to_pandas()
    expected = s.merge(env.drop_columns(["cap"]).to_pandas(), on="targetid", how="left",
                       validate="one_to_one")
    assert list(got.columns) == list(expected.columns)
    for c in expected.columns:
        a = got[c].to_numpy(np.float64, na_value=np.nan) if c != "cap" else got[c].to_numpy()
        b = (expected[c].to_numpy(np.float64, na_value=np.nan) if c != "cap"
             else expected[c].to_numpy())
        assert (np.array_equal(a, b, equal_nan=True) if c != "cap" else (a == b).all()), c
    assert got.edge_flag.isna().sum() == 41  # no row: null, as the merge left it
    found = np.isin(got.targetid.to_numpy(), env_ids)
    assert np.array_equal(row >= 0, found) and found.sum() == 900
    assert np.array_equal(env_ids[row[found]], got.targetid.to_numpy()[found])


def test_a_repeated_sample_targetid_is_an_input_error(tmp_path):
    rng = np.random.default_rng(4)
    env_ids = np.arange(100, dtype=np.int64)
    layout = _write_sample(tmp_path, np.array([5, 7, 5, 9], np.int64), rng)
    with pytest.raises(InputError, match="targetid repeated: \\[5\\]"):
        _sample(layout, _env(env_ids, rng))
