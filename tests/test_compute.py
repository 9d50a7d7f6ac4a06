"""desivoids.compute's choice of engine: the local schedulers by name, without dask.distributed."""
from __future__ import annotations

import subprocess
import sys

import dask
import pytest

from desivoids import compute


@pytest.mark.parametrize("scheduler", ["threads", "processes", "synchronous"])
def test_local_schedulers_compute_the_tasks(scheduler):
    tasks = [dask.delayed(pow)(i, 2) for i in range(5)]
    assert compute.compute(tasks, scheduler=scheduler, num_workers=2) == (0, 1, 4, 9, 16)


def test_an_unknown_scheduler_is_named_in_the_error():
    with pytest.raises(ValueError, match="'thread'.*threads, processes or synchronous"):
        compute.compute([dask.delayed(abs)(-1)], scheduler="thread")


def test_the_local_scheduler_does_not_import_dask_distributed():
    """Given a scheduler name, dask imports dask.distributed to look for a client (0.6 s)."""
    code = ("import sys, dask; from desivoids import compute; "
            "assert compute.compute([dask.delayed(abs)(-3)]) == (3,); "
            "print('distributed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_in_this_process_knows_every_local_scheduler_name():
    """Tasks of the threads and synchronous schedulers (any of dask's names) run here; those
    of worker processes or a cluster do not."""
    from desivoids import compute

    for name in ("threads", "Threading", "synchronous", "sync", "single-threaded"):
        assert compute.in_this_process(name)
    assert not compute.in_this_process("processes")
    assert not compute.in_this_process("multiprocessing")
    assert not compute.in_this_process("threads", "tcp://127.0.0.1:8786")
