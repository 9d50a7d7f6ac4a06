"""systematics: the stage's read of environment's flags (one row per galaxy and algorithm, joined to
the sample by TARGETID) on assignments files written here with pyarrow (not by the mock), in
TARGETID order and shuffled, against pandas' pivot of the same rows; bad files get InputError."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import formats, paths
from desivoids.errors import InputError
from desivoids.systematics import stage

ALGORITHMS = list(formats.ALGORITHMS)


def _assignments(rng, n_galaxies: int) -> pd.DataFrame:
    """One row per galaxy and algorithm, TARGETID-sized ids, flags 0, 1, 2 and 9."""
    ids = np.sort(rng.choice(2**50, n_galaxies, replace=False)) + 39_627_000_000_000_000
    frame = pd.DataFrame({"targetid": np.repeat(ids, len(ALGORITHMS)),
                          "algorithm": np.tile(ALGORITHMS, n_galaxies)})
    frame["flag"] = rng.choice(np.array([0, 1, 2, 9], np.int8), len(frame))
    frame["flag_interior"] = np.where(frame.flag == 1, rng.integers(0, 2, len(frame)),
                                      frame.flag).astype(np.int8)
    return frame


def _write(tmp_path, frame: pd.DataFrame, surface_ids, row_group_size: int = 1000):
    env = tmp_path / "environment"
    env.mkdir(exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, env / "galaxy_void_assignments.parquet", row_group_size=row_group_size)
    pq.write_table(pa.table({"targetid": pa.array(surface_ids, pa.int64())}),
                   env / "voidfinder_surface.parquet")
    return paths.RunLayout.of(tmp_path)


def _by_pivot(frame: pd.DataFrame, targetids, surface_ids) -> pd.DataFrame:
    """The reference: pandas' pivot of the sample's rows (the stage's read before issue 25)."""
    rows = frame[frame.targetid.isin(targetids)]
    wide = rows.pivot(index="targetid", columns="algorithm", values=["flag", "flag_interior"])
    wide = wide.reindex(targetids)
    vf = wide[("flag", "VoidFinder")]
    wide[("flag_surface", "VoidFinder")] = vf.where(~vf.index.isin(surface_ids), 1)
    return wide


@pytest.mark.parametrize("shuffled", [False, True])
def test_flags_are_the_pivot_of_the_sample_rows(tmp_path, shuffled):
    """The sample (a shuffled subset of the galaxies) gets each algorithm's flags in its own
    order, whether the file is in TARGETID order (searched per row group) or not (each row
    searched among the sample's), across row groups and with galaxies outside the sample."""
    rng = np.random.default_rng(3)
    frame = _assignments(rng, 2500)
    if shuffled:
        frame = frame.sample(frac=1.0, random_state=4).reset_index(drop=True)
    ids = frame.targetid.unique()
    targetids = rng.permutation(rng.choice(ids, 1700, replace=False))
    surface = rng.choice(targetids, 40, replace=False)
    layout = _write(tmp_path, frame, surface, row_group_size=777)
    got = stage._read_flags(layout, targetids)
    want = _by_pivot(frame, targetids, surface)
    assert list(got.index) == list(targetids)
    assert sorted(got.columns) == sorted(want.columns)
    for column in want.columns:
        assert np.array_equal(got[column].to_numpy(), want[column].to_numpy()), column
        assert got[column].dtype == np.int8


def test_flags_of_bad_assignments_are_input_errors(tmp_path):
    """A sample galaxy without a row, one row too many or too few for an algorithm, an
    unknown algorithm and a repeated sample TARGETID: each an InputError naming the problem
    (the pivot raised a bare ValueError for a repeated row and left NaN for a missing one)."""
    rng = np.random.default_rng(5)
    frame = _assignments(rng, 300)
    ids = frame.targetid.unique()
    targetids = ids[::2]

    def refused(bad: pd.DataFrame, match: str, sample=targetids):
        layout = _write(tmp_path, bad.sort_values("targetid", kind="stable"), [])
        with pytest.raises(InputError, match=match):
            stage._read_flags(layout, sample)

    refused(frame[frame.targetid != targetids[7]], "1 sample galaxies have no membership")
    refused(pd.concat([frame, frame.iloc[[8]]]), "1 with more than one")
    refused(frame.drop(index=[frame.index[(frame.targetid == targetids[3])
                                          & (frame.algorithm == "VIDE")][0]]),
            "VIDE: 1 galaxies without a row")
    refused(frame.assign(algorithm=frame.algorithm.replace("ZOBOV", "ZOBOV2")),
            "lack or add algorithms")
    refused(frame, "TARGETIDs repeat", sample=np.concatenate([targetids, targetids[:1]]))
    layout = _write(tmp_path, frame, [])
    assert len(stage._read_flags(layout, targetids)) == len(targetids)  # the good file reads
