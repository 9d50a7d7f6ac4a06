"""benchmarks/measure.py: a cold read is cold. The page-cache eviction is verified with mincore
(a posix_fadvise that left the files cached once made a "cold" read take 0.70 s after one of
9.75 s), and the reference reads report the cold and the warm read of what a stage reads."""
from __future__ import annotations

import mmap
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import paths


@pytest.fixture
def measure(monkeypatch):
    monkeypatch.syspath_prepend(str(paths.BENCHMARKS))
    monkeypatch.delitem(sys.modules, "measure", raising=False)
    import measure

    return measure


def _cached_file(path, nbytes=4 << 20):
    with open(path, "wb") as fh:  # written back (clean pages), then read back
        fh.write(os.urandom(nbytes))
        fh.flush()
        os.fsync(fh.fileno())
    with open(path, "rb") as fh:  # read back: every page in the cache
        while fh.read(1 << 20):
            pass
    return path


def _can_evict(measure, path) -> bool:
    """Whether the file system drops clean pages on advice (tmpfs does not)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return measure.resident_bytes(path)[0] <= 0.01 * path.stat().st_size


def test_residency_is_counted_and_eviction_verified(measure, tmp_path):
    f = _cached_file(tmp_path / "a.bin")
    assert measure.resident_bytes(f) == (f.stat().st_size, f.stat().st_size)
    if not _can_evict(measure, _cached_file(tmp_path / "probe.bin")):
        pytest.skip("this file system keeps its pages (tmpfs?): nothing to evict")
    assert measure.resident_fraction([f]) == 1.0
    left = measure.evict_verified([f])
    assert left <= measure.COLD_RESIDENT_MAX
    assert measure.resident_fraction([f]) == left


def test_a_file_just_written_is_evicted_too(measure, tmp_path):
    # dirty pages: posix_fadvise(DONTNEED) alone leaves them cached
    f = tmp_path / "dirty.bin"
    with open(f, "wb") as fh:
        fh.write(os.urandom(4 << 20))
    if not _can_evict(measure, _cached_file(tmp_path / "probe.bin")):
        pytest.skip("this file system keeps its pages (tmpfs?): nothing to evict")
    assert measure.evict_verified([f]) <= measure.COLD_RESIDENT_MAX


def test_an_eviction_that_leaves_the_pages_is_refused(measure, tmp_path):
    f = _cached_file(tmp_path / "mapped.bin")
    # pages mapped by a process are never dropped by the advice: the check must notice
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as m:
        for i in range(0, len(m), mmap.PAGESIZE):
            m[i]
        with pytest.raises(measure.EvictionFailed, match="still in the page cache"):
            measure.evict_verified([f], attempts=2)


def test_a_cold_read_is_refused_when_nothing_was_evicted(measure, tmp_path, monkeypatch):
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"a": np.arange(200_000), "b": np.ones(200_000)}), part)
    part.read_bytes()  # in the page cache
    monkeypatch.setattr(measure, "evict", lambda files: None)  # an advice that does nothing
    with pytest.raises(measure.EvictionFailed):
        measure.read_columns(part, ["a"])


def test_reference_reads_cold_and_warm(measure, tmp_path):
    if not _can_evict(measure, _cached_file(tmp_path / "probe.bin")):
        pytest.skip("this file system keeps its pages (tmpfs?): nothing to evict")
    folder = tmp_path / "galaxies"
    folder.mkdir()
    for i in range(3):
        pq.write_table(pa.table({"a": np.arange(100_000) + i, "b": np.ones(100_000)}),
                       folder / f"part-{i}.parquet")
    db = tmp_path / "db.sqlite"
    import sqlite3

    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE t (x TEXT)")
        c.executemany("INSERT INTO t VALUES (?)", [("f",)] * 1000)
    ref = measure.reference_reads([(folder, ["a"], True), (db, "SELECT x FROM t")],
                                  warm_repeats=2)
    assert ref["cold_resident_before"] <= measure.COLD_RESIDENT_MAX
    assert ref["resident_after"] > 0.5  # the warm reads brought the files in
    assert ref["cold_seconds"] > 0 and ref["warm_seconds"] > 0 and ref["warm_repeats"] == 2


def test_a_reference_whose_files_stay_cached_has_no_cold_read(measure, tmp_path):
    f = tmp_path / "part.parquet"
    pq.write_table(pa.table({"a": np.arange(100_000)}), f)
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ) as m:
        for i in range(0, len(m), mmap.PAGESIZE):
            m[i]
        ref = measure.reference_reads([(f, ["a"])], warm_repeats=1)
    assert ref["cold_seconds"] is None and "still in the page cache" in ref["cold_error"]
    assert ref["warm_seconds"] > 0
