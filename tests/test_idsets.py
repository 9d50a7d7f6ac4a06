"""desivoids.idsets: sorted-array set operations give exactly numpy's np.unique / np.isin."""
from __future__ import annotations

import numpy as np
import pytest

from desivoids import idsets


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_same_as_numpy_on_targetid_like_values(seed):
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 2**60, 5000)  # TARGETIDs: 64-bit, spread far apart
    values = rng.choice(pool, 8000)  # with repeats
    allowed = rng.choice(pool, 3000)
    np.testing.assert_array_equal(idsets.unique(values), np.unique(values))
    np.testing.assert_array_equal(idsets.isin(values, allowed), np.isin(values, allowed))
    np.testing.assert_array_equal(idsets.isin(values, np.sort(allowed), allowed_sorted=True),
                                  np.isin(values, allowed))
    want = np.unique(values[~np.isin(values, allowed)])
    assert len(want)
    np.testing.assert_array_equal(idsets.missing(values, allowed), want)


def test_edges_empty_and_mixed_types():
    empty = np.zeros(0, np.int64)
    assert idsets.unique(empty).shape == (0,)
    np.testing.assert_array_equal(idsets.unique(np.array([7])), [7])
    assert not idsets.isin(np.array([1, 2]), empty).any()
    assert idsets.isin(empty, np.array([1])).shape == (0,)
    np.testing.assert_array_equal(idsets.missing(np.array([3, 3, 1]), empty), [1, 3])
    # int32 void ids against int64 ones with a -1 sentinel, and a value above every allowed one
    v = np.array([5, -1, 9, 2**31 - 1, 5], np.int32)
    allowed = np.array([-1, 5, 9], np.int64)
    np.testing.assert_array_equal(idsets.isin(v, allowed), np.isin(v, allowed))
    np.testing.assert_array_equal(idsets.missing(v, allowed), [2**31 - 1])
    # a large value is not found by a clipped search position
    np.testing.assert_array_equal(idsets.isin(np.array([2**62]), np.array([1, 2])), [False])


def test_small_codes_are_numpys_unique_and_inverse_or_none():
    rng = np.random.default_rng(5)
    for labels in (rng.integers(0, 40, 7000), np.array([3, 3, 0, 17], np.int16), np.zeros(0, int)):
        uniques, codes = idsets.small_codes(labels)
        want_u, want_c = np.unique(labels, return_inverse=True)
        np.testing.assert_array_equal(uniques, want_u)
        np.testing.assert_array_equal(codes, want_c)
        assert uniques.dtype == labels.dtype
    # TARGETID-like labels would need a count as long as their largest value: left to the caller
    assert idsets.small_codes(rng.integers(0, 2**60, 100)) is None
    assert idsets.small_codes(np.array([-1, 2, 3])) is None
    assert idsets.small_codes(np.array([1.0, 2.0])) is None
    assert idsets.small_codes(np.array(["a", "b"])) is None


def test_positions_find_each_value_in_the_sorted_reference_and_minus_one_where_absent():
    rng = np.random.default_rng(3)
    ref = np.unique(rng.integers(39627000000000000, 39627000000100000, 5_000))
    values = np.concatenate([rng.choice(ref, 300), rng.integers(0, 10, 50), [ref[-1] + 1]])
    where = {v: i for i, v in enumerate(ref.tolist())}
    want = np.array([where.get(v, -1) for v in values.tolist()])
    np.testing.assert_array_equal(idsets.positions(values, ref), want)
    order = np.argsort(values, kind="stable")  # ascending values: searched as they are
    np.testing.assert_array_equal(idsets.positions(values[order], ref), want[order])
    np.testing.assert_array_equal(idsets.positions(values.reshape(-1, 3), ref),
                                  want.reshape(-1, 3))
    assert idsets.positions(values, ref[:0]).tolist() == [-1] * len(values)


@pytest.mark.parametrize("repeated", [False, True])
def test_stable_order_is_the_stable_sort(repeated):
    """The order of distinct ids (numpy's default sort, the one order there is) and of repeated
    ones (ties in the order given) is the stable argsort's."""
    rng = np.random.default_rng(23)
    key = rng.choice(10 ** 15, 200_000, replace=False)
    if repeated:
        key[rng.integers(0, len(key), 50_000)] = key[:50_000]
    want = np.argsort(key, kind="stable")
    assert np.array_equal(idsets.stable_order(key), want)
    assert repeated == (not np.array_equal(np.argsort(key), want))
    assert idsets.stable_order(np.zeros(0, np.int64)).size == 0
