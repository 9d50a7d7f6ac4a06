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


def test_as_completed_gives_every_result_with_its_index():
    tasks = [dask.delayed(pow)(i, 2) for i in range(7)]
    got = dict(compute.as_completed(tasks, num_workers=2))
    assert got == {i: i * i for i in range(7)}
    assert list(compute.as_completed([])) == []


def test_as_completed_returns_a_failure_only_after_the_running_tasks_ended():
    """As compute(): the caller's cleanup must not race tasks still running; queued tasks are
    cancelled rather than run."""
    import threading
    import time

    started, ended = [], []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        if i == 0:
            raise OSError("task 0 failed (injected)")
        time.sleep(0.3)
        with lock:
            ended.append(i)
        return i

    tasks = [dask.delayed(work, pure=False)(i) for i in range(20)]
    with pytest.raises(OSError, match="injected"):
        for _ in compute.as_completed(tasks, num_workers=2):
            pass
    assert sorted(ended) == sorted(i for i in started if i != 0)  # none left running
    assert len(started) < 20  # the queued ones never ran


def test_as_completed_closed_by_its_caller_waits_for_the_running_tasks():
    import threading
    import time

    ended = []
    lock = threading.Lock()

    def work(i):
        time.sleep(0.2)
        with lock:
            ended.append(i)
        return i

    tasks = [dask.delayed(work, pure=False)(i) for i in range(20)]
    gen = compute.as_completed(tasks, num_workers=2)
    next(gen)
    running = threading.active_count()
    gen.close()
    assert len(ended) < 20 and threading.active_count() <= running - 1
