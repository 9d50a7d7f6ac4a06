"""Atomic publication of a stage's output folder.

A stage builds its whole output in a temporary sibling folder (``.<name>.tmp-XXXXXXXX``) and
swaps it into place with two renames only when everything succeeded: readers see the old output
or the new one, never half of each, and a failure leaves the previous output untouched. Stages
whose outputs grow file by file (acquire) instead write each file as ``NAME.part`` and rename it.

Just before the swap, :func:`staged` seals the folder: ``MANIFEST.sha256`` (``sha256sum``
format, so ``sha256sum -c MANIFEST.sha256`` checks it by hand) lists the sha256 of every file
it publishes. A reading stage checks a producer's folder against it (:func:`verify`, called for
every stage by :func:`desivoids.params.checked`), so a flipped bit, a truncated, added or
removed file between two stages fails the reader, naming the file and the stage to rerun.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["staged", "publish", "write_text_atomic", "write_json", "jsonable", "MANIFEST",
           "write_manifest", "manifest_problems", "verify"]

#: The list of every file a stage published with its sha256, at the top of the stage's folder.
MANIFEST = "MANIFEST.sha256"


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
def staged(target: str | Path, manifest: bool = True) -> Iterator[Path]:
    """``with staged(out) as tmp:`` write into ``tmp``; on success it replaces ``out``, on any
    error it is removed and ``out`` is left as it was. ``manifest``: seal the folder with
    :data:`MANIFEST` first (off only for folders that no stage reads through :func:`verify`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if manifest:
            write_manifest(tmp)
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


# -- manifests: the sha256 of every published file ------------------------------------------
def _files(folder: Path) -> list[str]:
    """Every file below ``folder`` (relative POSIX paths, sorted), the manifest excepted."""
    out = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        rel = Path(root).relative_to(folder)
        out += [(rel / n).as_posix() for n in names]
    return sorted(f for f in out if f != MANIFEST)


def _digests(folder: Path, names: list[str], strict: bool = True) -> dict[str, str | None]:
    """name -> hex sha256, hashed in threads (hashlib releases the GIL while it hashes, so the
    files of a folder are hashed on every core at the speed of the disk). ``strict=False``: an
    unreadable file gets None instead of raising."""
    def one(name: str) -> str | None:
        try:
            with open(folder / name, "rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            if strict:
                raise
            return None

    workers = max(1, min(8, os.cpu_count() or 1, len(names)))
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(names, pool.map(one, names)))


def write_manifest(folder: str | Path) -> Path:
    """Write ``folder/MANIFEST.sha256``: ``HEX  NAME`` per file, sorted by name."""
    folder = Path(folder)
    names = _files(folder)
    bad = [n for n in names if "\n" in n or "\\" in n]
    if bad:  # sha256sum would escape them: never written by a stage
        raise ValueError(f"{folder}: file names that a manifest cannot list: {bad}")
    digests = _digests(folder, names)
    return write_text_atomic(folder / MANIFEST, "".join(f"{digests[n]}  {n}\n" for n in names))


def manifest_problems(folder: str | Path) -> list[tuple[str, str]] | None:
    """``(name, problem)`` for every file of ``folder`` that differs from its manifest (changed,
    missing, or not listed), [] when all match, None when the folder has no manifest."""
    from .checksums import parse_sumfile

    folder = Path(folder)
    listing = folder / MANIFEST
    if not listing.is_file():
        return None
    try:
        want = parse_sumfile(listing.read_text(), str(listing))
    except (ValueError, UnicodeDecodeError) as exc:
        return [(MANIFEST, f"unreadable manifest ({exc})")]
    have = set(_files(folder))
    problems = [(n, "missing (listed in the manifest)") for n in sorted(set(want) - have)]
    problems += [(n, "not in the manifest (added after publication)")
                 for n in sorted(have - set(want))]
    got = _digests(folder, sorted(have & set(want)), strict=False)
    problems += [(n, "unreadable" if got[n] is None else
                  "sha256 differs from the manifest (changed after publication)")
                 for n in sorted(got) if got[n] != want[n]]
    return sorted(problems)


def verify(folder: str | Path, producer: str) -> None:
    """Check a producer stage's published folder against its manifest before reading it; an
    InputError lists every bad file at once and says to rerun ``producer``. A folder that does
    not exist or has no manifest (acquire, whose raw files recon checks against DESI's own
    checksums) is left to the reader."""
    from .errors import InputError

    folder = Path(folder)
    problems = manifest_problems(folder) if folder.is_dir() else None
    if not problems:
        return
    errors = [InputError(folder / name, None, None, f"{what}: the {producer} stage's output is "
                         f"not what it published; rerun `desivoids {producer}`")
              for name, what in problems]
    raise InputError.all(errors)
