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

A run of a stage holds the stage's lock (:func:`stage_lock`, ``<data_dir>/.<stage>.lock``: taken
by ``desivoids <stage>`` and by ``desivoids run`` around each stage), so a second run of the same
stage on the same data_dir is refused with the holder's pid and start time; a lock left by a
process that died (kill -9) is taken over, and the new holder removes the staging folders that
killed runs of its stage left behind (:func:`remove_stale_staging`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import StageError

__all__ = ["staged", "publish", "write_text_atomic", "write_json", "jsonable", "MANIFEST",
           "write_manifest", "manifest_problems", "verify", "stage_lock",
           "remove_stale_staging", "restore_displaced", "holding", "StageLocked"]

#: The list of every file a stage published with its sha256, at the top of the stage's folder.
MANIFEST = "MANIFEST.sha256"
#: the names ``staged`` and ``write_text_atomic`` give their temporary and displaced siblings
STAGING = re.compile(r"\.(?P<name>.+)\.(?:tmp|old)-[0-9a-f]{8}")


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
def staged(target: str | Path, manifest: bool = True, commit=None) -> Iterator[Path]:
    """``with staged(out) as tmp:`` write into ``tmp``; on success it replaces ``out``, on any
    error it is removed and ``out`` is left as it was. ``manifest``: seal the folder with
    :data:`MANIFEST` first (off only for folders that no stage reads through :func:`verify`).

    ``commit(tmp)``: a stage with database tables commits them there, after the seal and before
    the rename, recording the sealed staging folder in the same transaction
    (:mod:`desivoids.publication`). Once it returned, the folder is published whatever follows:
    a failure (or a kill) of the rename leaves the committed staging folder for the next run or
    reader to roll forward."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        from .freshness import write_pending

        write_pending(tmp, target)  # the running stage's record of its inputs, sealed with them
        if manifest:
            write_manifest(tmp)
        if commit is None:
            publish(tmp, target)
        else:
            commit(tmp)  # the decision point
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if commit is not None:
        publish(tmp, target)


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
    """A report as strict JSON (see :func:`jsonable`), indented, ending in a newline; written
    through a temporary name and renamed, so a kill never leaves half a file (the runner's
    records are rewritten in place, outside any staged folder)."""
    import json

    return write_text_atomic(path, json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n")


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


#: stages whose folder carries no MANIFEST.sha256: acquire grows file by file, and the stages
#: reading it check its raw files against its own records
UNSEALED = frozenset({"acquire"})


def verify(folder: str | Path, producer: str, sealed: bool | None = None) -> None:
    """Check a producer stage's published folder against its manifest before reading it; an
    InputError lists every bad file at once and says to rerun ``producer``. A folder that does
    not exist is left to the reader; one without a manifest is refused when its producer seals
    its folder (``sealed``, by default every stage but those in :data:`UNSEALED`), since a
    deleted manifest would otherwise switch the check off."""
    from .errors import InputError

    folder = Path(folder)
    sealed = producer not in UNSEALED if sealed is None else sealed
    problems = manifest_problems(folder) if folder.is_dir() else None
    if problems is None and sealed and folder.is_dir():
        raise InputError(folder / MANIFEST, None, None,
                         f"missing: the {producer} stage seals its folder with it, so its output "
                         f"cannot be checked; rerun `desivoids {producer}`")
    if not problems:
        return
    errors = [InputError(folder / name, None, None, f"{what}: the {producer} stage's output is "
                         f"not what it published; rerun `desivoids {producer}`")
              for name, what in problems]
    raise InputError.all(errors)


# ------------------------------------------------------------------------------ stage lock
class StageLocked(StageError):
    """Another run of the same stage on the same data_dir holds the stage's lock."""


def _holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        doc = {}
    if not doc:
        return "holder unknown"
    return f"pid {doc.get('pid')} on {doc.get('host')}, started {doc.get('started')}"


def _staging_entries(data_dir: Path, stage: str) -> list[Path]:
    found = [p for p in data_dir.glob(f".{stage}.*") if STAGING.fullmatch(p.name)]
    folder = data_dir / stage
    if folder.is_dir() and not folder.is_symlink():
        found += [p for p in folder.iterdir() if STAGING.fullmatch(p.name)]
    return found


def restore_displaced(data_dir: str | Path, stage: str, before: float) -> list[Path]:
    """Put back what a kill between the two renames of :func:`publish` left: a published
    folder renamed to ``.<name>.old-*`` whose replacement never arrived (no ``<name>``
    beside it). Entries newer than ``before`` (a live run's) are left alone. Returns the
    folders restored."""
    restored = []
    entries = sorted(_staging_entries(Path(data_dir), stage),
                     key=lambda p: p.lstat().st_mtime, reverse=True)  # newest displaced first
    for p in entries:
        m = STAGING.fullmatch(p.name)
        home = p.parent / m["name"]
        if ".old-" not in p.name or not p.is_dir() or p.is_symlink() or home.exists() \
                or os.path.lexists(home) or p.lstat().st_mtime >= before:
            continue
        os.rename(p, home)
        restored.append(home)
    return restored


def remove_stale_staging(data_dir: str | Path, stage: str, before: float) -> list[Path]:
    """Remove what killed runs of ``stage`` left: ``.<stage>.tmp-*`` and ``.<stage>.old-*``
    beside its folder, and any ``.*.tmp-*`` / ``.*.old-*`` directly inside it (a release
    version's staging folder, a half-written report), older than ``before`` (the lock's start:
    no run of this stage can still be writing them). Returns what was removed."""
    data_dir = Path(data_dir)
    removed = []
    for p in _staging_entries(data_dir, stage):
        try:
            if p.lstat().st_mtime >= before:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except FileNotFoundError:
            continue
    return removed


#: (data_dir, stage) of the locks this process holds: a reader settling a producer's folder
#: under the producer's lock (:func:`holding`) must not take a lock it already holds
_HELD: set[tuple[str, str]] = set()


@contextmanager
def holding(data_dir: str | Path, stage: str, locked: bool = False,
            db_url: str = "") -> Iterator[None]:
    """``stage``'s lock for a short repair: taken unless this process (or ``locked``) holds it."""
    key = (os.path.realpath(data_dir), stage)
    if locked or key in _HELD:
        yield
        return
    with stage_lock(data_dir, stage, db_url):
        yield


def wait_while_running(data_dir: str | Path, stage: str) -> float:
    """Block while another process runs ``stage`` on ``data_dir`` (holds its :func:`stage_lock`);
    returns the seconds waited. A lock file left by a process that died holds nothing. Not for
    a lock this process holds (it would wait for itself): returns at once."""
    import fcntl

    if (os.path.realpath(data_dir), stage) in _HELD:
        return 0.0
    t = time.perf_counter()
    try:
        fd = os.open(Path(data_dir) / f".{stage}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return 0.0
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # granted once the holder's exclusive lock is released
    finally:
        os.close(fd)  # releases the shared lock at once: a new run of the stage is not refused
    return time.perf_counter() - t


@contextmanager
def stage_lock(data_dir: str | Path, stage: str, db_url: str = "") -> Iterator[Path]:
    """Hold ``<data_dir>/.<stage>.lock`` for a run of ``stage`` (an exclusive ``flock``, which
    the kernel releases when the process dies, however it dies). A second run is refused with
    :class:`StageLocked` naming the holder's pid, host and start time; a lock file left by a dead
    process is simply taken over. The new holder puts back a folder that a kill displaced
    (:func:`restore_displaced`), rolls a committed but unrenamed folder of a stage with tables
    forward (:func:`desivoids.publication.settle`, in the database of ``db_url``, default the
    run's SQLite file) and then removes its stage's stale staging folders; the lock file is
    removed when the run ends."""
    import fcntl

    from .paths import display

    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        from .errors import InputError

        raise InputError(data_dir, None, None, "data_dir is not a folder (a file is in its place)")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f".{stage}.lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StageLocked(f"{display(data_dir / stage)}: another run of the {stage} stage holds its lock "
                              f"{display(path)} ({holder}); wait for it to end (a lock of a process that "
                              "died is taken over by the next run)") from None
        try:  # the file may have been unlinked by a holder that ended in between: take a fresh one
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    started = time.time()
    try:
        doc = {"pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started))}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(doc) + "\n").encode(), 0)
        key = (os.path.realpath(data_dir), stage)
        _HELD.add(key)
        restore_displaced(data_dir, stage, started)
        from .stages import STAGES

        if stage in STAGES and STAGES[stage].tables:
            from .publication import settle

            settle(data_dir, stage, db_url, locked=True, strict=False)
        remove_stale_staging(data_dir, stage, started)
        yield path
    finally:
        _HELD.discard((os.path.realpath(data_dir), stage))
        try:
            os.unlink(path)  # while still holding it: a waiter then retries on a fresh file
        except FileNotFoundError:
            pass
        os.close(fd)
