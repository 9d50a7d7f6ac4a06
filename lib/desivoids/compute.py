"""Run a stage's tasks on Dask: the local scheduler by default, a dask.distributed cluster when
the run-level parameter ``scheduler_address`` names one. The pipeline runs on existing engines;
this module only chooses which one."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

__all__ = ["client", "compute", "scatter"]


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
    """dask.compute of ``tasks`` on the cluster of client ``c``, else on the local scheduler."""
    import dask

    if not tasks:
        return ()
    if c is None:
        return dask.compute(*tasks, scheduler=scheduler, num_workers=num_workers)
    return dask.compute(*tasks, scheduler=c)
