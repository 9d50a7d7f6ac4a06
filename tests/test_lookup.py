"""The release's targetid lookups (desivoids.lookup) give Arrow's is_in / index_in
answers, by binary search on keys in order (without hashing them) and through Arrow's kernels
otherwise; rows_of reads a Parquet file's rows of given targetids as the whole file filtered."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from desivoids import lookup


def _plain(a):
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _chunked(values: np.ndarray, rng) -> pa.ChunkedArray:
    cuts = sorted(rng.integers(0, len(values) + 1, rng.integers(0, 4)).tolist())
    bounds = [0, *cuts, len(values)]
    return pa.chunked_array([values[a:b] for a, b in zip(bounds[:-1], bounds[1:])], pa.int64())


@pytest.mark.parametrize("seed", range(4))
def test_the_lookups_answer_as_arrows_kernels(seed):
    """Keys in order with repeats (the assignments: four rows per targetid), keys out of order,
    values absent from the keys, repeated, empty; chunked or not."""
    rng = np.random.default_rng(seed)
    for trial in range(200):
        keys = np.sort(rng.integers(0, 40, rng.integers(0, 60)))
        if trial % 4 == 0:
            keys = rng.permutation(keys)
        values = pa.array(rng.integers(-2, 45, rng.integers(0, 25)), pa.int64())
        for k in (_chunked(keys, rng), pa.array(keys, pa.int64())):
            assert _plain(lookup.is_in(k, values)).equals(_plain(pc.is_in(k, value_set=values)))
            ordered = pa.array(np.unique(values.to_numpy()), pa.int64())  # sorted, distinct
            assert _plain(lookup.is_in(k, ordered)).equals(
                _plain(pc.is_in(k, value_set=ordered)))
            assert _plain(lookup.index_in(k, values)).equals(
                _plain(pc.index_in(k, value_set=values)))
            assert _plain(lookup.index_in(values, k)).equals(
                _plain(pc.index_in(values, value_set=k)))


def test_keys_in_order_are_searched_not_hashed(monkeypatch):
    """On keys in order Arrow's hashing kernels are not called; a null falls back to them."""
    def refuse(*args, **kwargs):
        raise AssertionError("hashed")

    keys = pa.chunked_array([[1, 1, 2, 2, 5, 5], [7, 7, 9, 9]], pa.int64())
    values = pa.array([2, 7, 8], pa.int64())
    want = pc.is_in(keys, value_set=values), pc.index_in(values, value_set=keys)
    monkeypatch.setattr(lookup.pc, "is_in", refuse)
    monkeypatch.setattr(lookup.pc, "index_in", refuse)
    assert _plain(lookup.is_in(keys, values)).to_pylist() == _plain(want[0]).to_pylist()
    assert lookup.index_in(values, keys).to_pylist() == want[1].to_pylist() == [2, 6, None]
    with pytest.raises(AssertionError, match="hashed"):
        lookup.is_in(pa.array([1, None, 3], pa.int64()), values)


def test_a_value_set_is_the_values_sorted_and_distinct():
    """As numpy's unique gives them; values already so are taken as they are (not hashed)."""
    rng = np.random.default_rng(9)
    for values in (rng.integers(0, 50, 200), np.sort(rng.choice(10**9, 300, replace=False)),
                   np.array([3, 3, 4]), np.array([7]), np.zeros(0, np.int64)):
        for given in (values, pa.array(values, pa.int64()),
                      pa.chunked_array([values[:5], values[5:]], pa.int64())):
            assert np.array_equal(lookup.sorted_distinct(given), np.unique(values))
    ordered = np.arange(10, 20)
    assert lookup.sorted_distinct(ordered) is ordered


@pytest.mark.parametrize("ordered", [True, False])
def test_a_files_rows_of_some_targetids_are_the_whole_file_filtered(tmp_path, ordered):
    """rows_of: the rows the whole file read and filtered gives (in and out of targetid order;
    chosen columns or all; strings dictionary-encoded or decoded), chunked as that read's
    batches, so written as the same bytes; ids repeated, unordered, chunked; none wanted."""
    rng = np.random.default_rng(3)
    n = 300_000
    tid = np.repeat(np.sort(rng.choice(10**12, n // 4, replace=False)), 4)  # four rows each
    if not ordered:
        tid = rng.permutation(tid)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"targetid": tid, "delta_k": rng.random(n),
                             "web_class": rng.integers(0, 4, n).astype(np.int8),
                             "algorithm": np.tile(["V2", "VF", "RV", "ZB"], n // 4)}),
                   path, row_group_size=200_000)
    ids = pa.chunked_array([rng.choice(tid, 5000)[:2500], rng.choice(tid, 2500)])
    for columns, dictionary in ((["targetid", "web_class"], ()), (None, ("algorithm",)),
                                (["targetid", "algorithm", "delta_k"], ())):
        whole = pq.read_table(path, columns=columns, read_dictionary=list(dictionary))
        for wanted in (ids, ids.combine_chunks().to_numpy()[:0]):
            want = whole.filter(pc.is_in(whole["targetid"], value_set=pa.array(
                np.unique(np.asarray(wanted)), pa.int64())))
            got = lookup.rows_of(path, wanted, columns, dictionary)
            assert got.schema == want.schema and got.equals(want)
            if len(wanted):  # (Arrow's filter keeps no chunk of an empty result)
                assert [len(c) for c in got.column(0).chunks] == \
                    [len(c) for c in want.column(0).chunks]
                assert got.column(0).num_chunks > pq.ParquetFile(path).num_row_groups
            written = [pa.BufferOutputStream() for _ in range(2)]
            for table, sink in zip((got, want), written):
                pq.write_table(table, sink, compression="zstd")
            assert written[0].getvalue().equals(written[1].getvalue())
    assert lookup.rows_of(path, ids, dictionary=("algorithm",)).schema.field(
        "algorithm").type == pa.dictionary(pa.int32(), pa.string())
