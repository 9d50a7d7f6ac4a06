"""convert after a failure in one chunk (issue 20): it returns only once every chunk that was
running has ended, so nothing writes into the staging folder after it is removed, and nothing
is left behind. dask raises at the first failed task and left the others running in its shared
thread pool; on a full disk they went on writing into the removed staging folder."""
from __future__ import annotations

import threading
import time

import pytest

from convert_fixtures import convert_dir, write_sky
from desivoids.convert import fastspecfit


def test_a_failed_chunk_waits_for_the_running_ones_and_leaves_nothing(tmp_path, monkeypatch):
    write_sky(tmp_path / "raw", nfiles=2, rows=300)
    real = fastspecfit.convert_chunk
    lock = threading.Lock()
    state = {"running": 0, "started": 0, "failing": None}

    def chunk(plan, start, stop, part_path, *args, **kwargs):
        # The chunk that starts while another runs is the one that fails: which chunk dask
        # starts first depends on its ordering and the machine's load, so a fixed failing
        # chunk could run last, alone, and let convert return early unnoticed.
        with lock:
            fails = state["failing"] is None and state["running"] >= 1
            if fails:
                state["failing"] = part_path
            else:
                state["running"] += 1
                state["started"] += 1
        if fails:
            time.sleep(0.2)  # the other is still in its 1.5 s
            raise OSError(28, "No space left on device (injected in one chunk)")
        try:
            time.sleep(1.5)
            return real(plan, start, stop, part_path, *args, **kwargs)
        finally:
            with lock:
                state["running"] -= 1

    monkeypatch.setattr(fastspecfit, "convert_chunk", chunk)
    with pytest.raises(OSError, match="injected in one chunk"):
        convert_dir(tmp_path, chunk_rows=50, num_workers=3, scheduler="threads")
    running_at_return = state["running"]
    time.sleep(2.0)  # long enough for any abandoned chunk to finish
    assert state["failing"] and state["started"] >= 1, state  # a chunk ran beside the failed one
    assert running_at_return == 0, f"convert returned while {running_at_return} chunk(s) still ran"
    assert not (tmp_path / "convert").exists()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".convert.")]
    assert not left, f"staging left behind: {left}"
