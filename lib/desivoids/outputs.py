"""Atomic publication of a stage's output folder.

A stage builds its whole output in a temporary sibling folder (``.<name>.tmp-XXXXXXXX``) and
swaps it into place with two renames only when everything succeeded: readers see the old output
or the new one, never half of each, and a failure leaves the previous output untouched. Stages
whose outputs grow file by file (acquire) instead write each file as ``NAME.part`` and rename it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["staged", "publish", "write_text_atomic", "write_json", "jsonable"]


def _sibling(target: Path, tag: str) -> Path:
    return target.parent / f".{target.name}.{tag}-{uuid.uuid4().hex[:8]}"


def publish(tmp: Path, target: Path) -> None:
    """Swap ``tmp`` into ``target``: two renames, then the old output is removed."""
    old = None
    if target.exists():
        old = _sibling(target, "old")
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged(target: str | Path) -> Iterator[Path]:
    """``with staged(out) as tmp:`` write into ``tmp``; on success it replaces ``out``, on any
    error it is removed and ``out`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        publish(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write a text file through a temporary name in the same folder, then rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def jsonable(obj):
    """``obj`` with numpy scalars as Python numbers and NaN/inf as null: strict JSON, which
    JavaScript and jsonschema read (Python's json writes a bare NaN otherwise)."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: str | Path, doc) -> Path:
    """A report as strict JSON (see :func:`jsonable`), indented, ending in a newline."""
    import json

    path = Path(path)
    path.write_text(json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n")
    return path
