"""Progress bars: tqdm's, shown on a terminal only.

``progress=None`` (the default everywhere) lets tqdm decide: a bar on an interactive terminal,
nothing when output goes to a file or a notebook kernel, whose stderr the runner treats as a
warning. ``True``/``False`` force it on or off.
"""
from __future__ import annotations

from tqdm import tqdm

__all__ = ["bar"]


def bar(iterable=None, *, progress: bool | None = None, **kwargs) -> tqdm:
    return tqdm(iterable, disable=None if progress is None else not progress, **kwargs)
