"""What a process's children use: the peak of their summed resident memory, and their CPU
seconds. The runner measures each stage's kernel with it, the benchmarks each command they
time (``benchmarks/measure.run_polled``)."""
from __future__ import annotations

import resource
import threading
from typing import Callable

import psutil


class PeakRSS:
    """The largest resident memory of this process's children (a stage's kernel or a timed
    command, and anything it starts, summed), polled in a thread while in the ``with`` block;
    and the CPU seconds (user + system) of the children that ended meanwhile (with every process
    they waited for): one measured child at a time, as the runner's workers and the benchmarks
    run them. ``skip``: the pid of a child that is not measured (a kernel started ahead for the
    next stage), asked at each listing of the tree."""

    #: polls between two listings of the process tree
    RESCAN = 5

    def __init__(self, interval: float = 0.1, skip: Callable[[], int | None] | None = None):
        self.interval, self.peak, self.cpu_seconds = interval, 0, 0.0
        self._skip = skip
        self._cpu0 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        tree, polls = [], 0
        while True:
            # listing the tree reads the parent of every process on the machine: at every poll
            # it cost a worker 0.8 CPU s per 30 s of stage (measured at DR1 scale), so the list
            # is refreshed every RESCAN polls and the members' memory read at each
            if polls % self.RESCAN == 0:
                skip = self._skip() if self._skip is not None else None
                tree = [p for p in me.children(recursive=True) if p.pid != skip]
            polls += 1
            rss = 0
            for child in tree:
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            if self._stop.wait(self.interval):
                return

    @staticmethod
    def _children_cpu() -> float:
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        return used.ru_utime + used.ru_stime

    def __enter__(self) -> "PeakRSS":
        self._cpu0 = self._children_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._children_cpu() - self._cpu0
