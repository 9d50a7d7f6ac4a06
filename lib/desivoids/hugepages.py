"""numpy's transparent huge pages, off for the pipeline's own processes.

numpy asks Linux for transparent huge pages (madvise) on every array of 4 MB or more. On a
kernel whose THP defrag policy is ``madvise`` (this project's reference machine) the first
touch of such an array then waits for the kernel to compact memory whenever free memory is
fragmented, which a page cache full of FITS and Parquet leaves it: a second 1.2 GB array took
8-10 s to fill, against 0.8 s in 4 kB pages (and 0.1 s in huge pages on unfragmented memory).
Measured on the DR1-scale density stage: 62 s (40 s of it system time) with numpy's default,
45 s (15 s) without huge pages. So the ``desivoids`` command and the stage kernels it starts run
with numpy's documented switch ``NUMPY_MADVISE_HUGEPAGE=0``, unless the user set it (a
machine with ``defrag=never`` or plenty of free memory may prefer 1). numpy reads it once, at
import: it is set before numpy is imported, in the process's environment, which the kernels
inherit. A notebook opened in JupyterLab keeps numpy's default.
"""
from __future__ import annotations

import os

__all__ = ["VARIABLE", "environment", "set_default"]

VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def environment() -> dict[str, str]:
    """The setting a stage process gets: the user's own value, else "0"."""
    return {VARIABLE: os.environ.get(VARIABLE, "0")}


def set_default() -> None:
    """Put the setting into this process's environment (kept if the user set it); effective for
    numpy only if numpy is not imported yet, and for every child process."""
    os.environ.setdefault(VARIABLE, "0")
