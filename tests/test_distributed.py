"""Every heavy stage gives identical results on the local scheduler and on a dask.distributed
cluster: a LocalCluster of two worker processes on 127.0.0.1, started here, reached through
the run-level parameter ``scheduler_address`` exactly as a user's cluster would be.

- convert: every Parquet table (galaxies dataset, voids, holes, zonevoid, galzone, rejects);
- tile spectra (acquire's coadd + redrock conversion): every output and manifest record;
- environment: every galaxy's flags (tests/test_environment_stage.py, on the same kind of
  cluster, compares the stage's whole assignment table);
- systematics: every comparison's row, binned fraction and count of what was left out.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import pandas as pd

from desivoids import convert, environment, paths, plausibility, systematics
from desivoids.acquire.spectra import Selection
from desivoids.acquire.steps import convert_spectra

pytestmark = pytest.mark.slow  # a dask.distributed cluster of processes

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c:
        yield c


def _computed(cluster) -> set[str]:
    """Names of the functions whose tasks the cluster's workers have computed so far."""
    return {name for name, p in cluster.scheduler.task_prefixes.items()
            if p.all_durations.get("compute", 0) > 0}


def _tables(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*.parquet")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = pq.read_table(p).replace_schema_metadata(None)
    return out


def test_convert_on_a_cluster_writes_the_same_tables(loaded_run, tiny_sky, cluster, tmp_path):
    root, _ = tiny_sky
    d = tmp_path / "run"
    res = convert.run(data_dir=str(d), input_dir=str(root), chunk_rows=2000,
                      scheduler_address=cluster.scheduler_address)
    assert res is not None
    local, remote = _tables(loaded_run / "convert"), _tables(d / "convert")
    assert local.keys() == remote.keys() and any(k.startswith("galaxies/") for k in local)
    for name in local:
        assert remote[name].equals(local[name]), name
    assert "convert_chunk_or_error" in _computed(cluster)  # the workers did the work


def _spectra(d: Path, root: Path, scheduler_address: str):
    raw = paths.RunLayout.of(str(d)).raw
    shutil.copytree(root / "dr1" / "spectro", raw / "dr1" / "spectro")
    return convert_spectra(str(d), Selection(("GALAXY",), True, 40.0),
                           inputs=[str(raw / "dr1" / "spectro")], progress=False,
                           scheduler_address=scheduler_address)


def test_tile_spectra_on_a_cluster_are_the_same(tiny_sky, cluster, tmp_path):
    root, _ = tiny_sky
    a = _spectra(tmp_path / "local", root, "")
    assert not {n for n in _computed(cluster) if "convert_one" in n}
    b = _spectra(tmp_path / "cluster", root, cluster.scheduler_address)
    assert {n for n in _computed(cluster) if "convert_one" in n}, _computed(cluster)
    assert a.pairs == b.pairs >= 1 and not a.failed and not b.failed
    assert (a.done, a.empty, a.kept, a.targets) == (b.done, b.empty, b.kept, b.targets)

    def key(r):
        return r["coadd"], r["output"]

    strip = ("batch", "updated", "seconds", "started", "finished")
    ra = [{k: v for k, v in r.items() if k not in strip} for r in sorted(a.records, key=key)]
    rb = [{k: v for k, v in r.items() if k not in strip} for r in sorted(b.records, key=key)]
    assert ra == rb
    sa = _tables(paths.RunLayout.of(str(tmp_path / "local")).spectra)
    sb = _tables(paths.RunLayout.of(str(tmp_path / "cluster")).spectra)
    assert sa.keys() == sb.keys() and sa
    for name in sa:
        assert sb[name].equals(sa[name]), name



def test_systematics_on_a_cluster_gives_the_same_tables(loaded_run, cluster, tmp_path):
    """The comparisons are independent tasks: on two worker processes they give the same
    summary, binned fractions and counts, in the same order, as on the local threads."""
    d = tmp_path / "run"
    for sub in ("convert", "database"):  # the database: the stages publish beside load's tables
        shutil.copytree(loaded_run / sub, d / sub)
    plausibility.run(data_dir=str(d))
    environment.run(data_dir=str(d), randoms=5_000)
    n_patches = {"NGC": 8, "SGC": 4}
    local = systematics.run(data_dir=str(d), n_patches=n_patches)
    assert "comparisons" not in _computed(cluster)
    remote = systematics.run(data_dir=str(d), n_patches=n_patches,
                             scheduler_address=cluster.scheduler_address)
    assert "comparisons" in _computed(cluster)  # the workers did the work
    assert len(local.summary) == (4 * 2 + 1) * 3 * 3 and local.summary.rd.notna().any()
    for a, b in ((local.summary, remote.summary), (local.binned, remote.binned),
                 (local.counts, remote.counts)):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
