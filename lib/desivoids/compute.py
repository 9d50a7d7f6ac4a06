"""Run a stage's tasks on Dask: the local scheduler by default, a dask.distributed cluster when
the run-level parameter ``scheduler_address`` names one. The pipeline runs on existing engines;
this module only chooses which one."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

__all__ = ["client", "compute", "scatter", "completed", "as_completed"]


@contextmanager
def client(address: str) -> Iterator[object | None]:
    """A dask.distributed Client for ``address``, or None for the local scheduler."""
    if not address:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - a dependency of desivoids
        raise RuntimeError("a scheduler address needs dask.distributed") from exc
    c = Client(address)
    try:
        yield c
    finally:
        c.close()


def scatter(c, value):
    """``value`` sent once to every worker of the cluster (a future), or itself locally."""
    return value if c is None else c.scatter(value, broadcast=True)


def compute(tasks: list, c=None, *, scheduler: str = "threads", num_workers: int | None = None
            ) -> tuple:
    """dask.compute of ``tasks`` on the cluster of client ``c``, else on the local scheduler.

    The local scheduler is passed as its get function: given a name, dask imports
    dask.distributed to look for a default client (0.6 s of a command's start, measured),
    which a named local scheduler would not use anyway.

    When a task fails, this returns (raises) only after every task already running has ended:
    dask raises at the first failure and leaves the others running in its shared thread pool
    (or on the cluster), where they went on writing into a staging folder that the caller's
    cleanup had just removed (convert on a full disk). The threads scheduler therefore runs on
    a pool of its own, shut down (waiting for running tasks, cancelling queued ones) before this
    returns; on a cluster the remaining futures are waited for.
    """
    import dask

    if not tasks:
        return ()
    if c is None:
        get = _local_get(scheduler)
        if scheduler.lower() not in _THREADS:  # synchronous; processes shuts its pool down itself
            return dask.compute(*tasks, scheduler=get, num_workers=num_workers)
        from dask.system import CPU_COUNT
        from dask.threaded import ContextAwareThreadPoolExecutor

        pool = ContextAwareThreadPoolExecutor(num_workers or CPU_COUNT)
        try:
            return dask.compute(*tasks, scheduler=get, pool=pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    futures = c.compute(list(tasks))
    try:
        return tuple(c.gather(futures))
    except BaseException:
        from distributed import wait

        wait(futures)  # every task ended (finished or failed) before the caller cleans up
        raise


_THREADS = ("threads", "threading")
_SYNC = ("synchronous", "sync", "single-threaded")


def in_this_process(scheduler: str, scheduler_address: str = "") -> bool:
    """Whether tasks run in this process (a local threads or synchronous scheduler), so that
    state prepared here (e.g. a cached distance grid) is the tasks' own."""
    return not scheduler_address and scheduler.lower() in _THREADS + _SYNC


def _local_get(scheduler: str) -> Callable:
    """dask's local scheduler of that name: threads, processes or synchronous."""
    name = scheduler.lower()
    if name in _THREADS:
        from dask.threaded import get
    elif name in ("processes", "multiprocessing"):
        from dask.multiprocessing import get
    elif name in _SYNC:
        from dask.local import get_sync as get
    else:
        raise ValueError(f"unknown Dask local scheduler {scheduler!r}: expected threads, "
                         "processes or synchronous")
    return get


def completed(fn: Callable, items: Iterable, c=None, *, workers: int = 2) -> Iterator[tuple]:
    """``(item, fn(item))`` for every item, in the order they finish: on the cluster of client
    ``c`` (``fn`` and the items must pickle; the workers must see the same files), else in a
    local pool of ``workers`` threads. For tasks whose results the caller records one by one
    (the acquire manifest lives in the driver, not on the workers)."""
    items = list(items)
    if c is None:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        with ThreadPoolExecutor(max(1, workers)) as pool:
            futures = {pool.submit(fn, item): item for item in items}
            for f in as_completed(futures):
                yield futures[f], f.result()
        return
    from distributed import as_completed as distributed_completed

    futures = c.map(fn, items, pure=False)
    index = {f.key: item for f, item in zip(futures, items)}
    for f in distributed_completed(futures):
        yield index[f.key], f.result()


def as_completed(tasks: list, c=None, *, num_workers: int | None = None
                 ) -> Iterator[tuple[int, object]]:
    """``(index, result)`` of each of ``tasks`` (dask.delayed) as it finishes, so that the
    caller can use the first results while the others still run: on the cluster of client
    ``c``, else on a pool of ``num_workers`` threads (default: one per core), each task run by
    dask's synchronous scheduler (tasks start in order).

    As for :func:`compute`, a failure, of a task or of the caller (which closes the
    generator), returns only after every running task has ended: queued tasks are cancelled,
    on a cluster the remaining futures are cancelled and waited for."""
    if not tasks:
        return
    import dask

    if c is None:
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import as_completed as finished

        from dask.system import CPU_COUNT

        get = _local_get("synchronous")
        pool = ThreadPoolExecutor(num_workers or CPU_COUNT)
        try:
            futures = {pool.submit(dask.compute, t, scheduler=get): i
                       for i, t in enumerate(tasks)}
            for f in finished(futures):
                yield futures[f], f.result()[0]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return
    from distributed import as_completed as finished
    from distributed import wait

    futures = c.compute(list(tasks))
    index = {f.key: i for i, f in enumerate(futures)}
    done = False
    try:
        for f in finished(futures):
            yield index[f.key], f.result()
        done = True
    finally:
        if not done:
            c.cancel(futures)
            wait(futures)
