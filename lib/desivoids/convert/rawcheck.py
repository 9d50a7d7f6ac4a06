"""The raw FITS files convert reads, checked against the sha256 acquire recorded for them.

A file changed after acquire fetched it (a flipped bit, an edit, another file copied over it)
once passed convert: recon noticed it, convert did not. Hashing is done while the stage reads:
two background threads hash the files (``hashlib`` releases the GIL over each block) while the
chunks are converted, and the stage fails before it publishes when a digest differs, naming
the file and both digests. Only files under acquire's folder are checked (an ``input_dir``
elsewhere has no record to check against).
"""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ..directio import sha256_direct
from ..errors import InputError

__all__ = ["acquired_digests", "RawCheck"]

BLOCK = 8 << 20
HASHERS = 2


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reported unreadable by require()


def acquired_digests(raw: Path, manifest: Path) -> dict[Path, str] | None:
    """path -> sha256 of every file acquire holds as present (its ``manifest.sqlite``), None
    when there is no manifest (nothing to check against)."""
    from ..acquire.manifest import PRESENT, Manifest

    if not manifest.is_file():
        return None
    with Manifest(manifest, readonly=True) as m:
        rows = m.files(PRESENT)
    return {(raw / r.path).resolve(): r.sha256 or hashlib.sha256(b"").hexdigest() for r in rows}


def _sha256(path: Path, stop: threading.Event) -> str | None:
    # read around the page cache, as the chunks read the rows: acquire writes the files the
    # same way, so they are not cached, and a cold buffered read costs kernel CPU the chunks need
    h = sha256_direct(path, BLOCK, stop)
    return None if h is None else h.hexdigest()


class RawCheck:
    """``with RawCheck(files, expected) as check: ...; check.require()``: hashes ``files`` in a
    background thread from the start of the block; :meth:`require` waits for it and raises one
    InputError naming every file whose sha256 is not acquire's. Leaving the block early (an
    error) stops the hashing at its next block. ``expected`` None: nothing is checked."""

    def __init__(self, files: list[Path], expected: dict[Path, str] | None):
        self.files = ([Path(f).resolve() for f in dict.fromkeys(files)]
                      if expected is not None else [])
        self.expected = expected or {}
        self._stop = threading.Event()
        # two files at a time, the largest first: with one thread, hashing 10 GB (6 CPU s)
        # got a fifth of the cores beside the chunks' four threads and ran on alone after them
        self._pool = ThreadPoolExecutor(HASHERS, thread_name_prefix="rawcheck")
        self._jobs: dict[Path, Future] = {}

    def __enter__(self) -> "RawCheck":
        for f in sorted(self.files, key=_size, reverse=True):
            self._jobs[f] = self._pool.submit(_sha256, f, self._stop)
        self._jobs = {f: self._jobs[f] for f in self.files}  # reported in the files' order
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def require(self) -> None:
        errors = []
        for f, job in self._jobs.items():
            want = self.expected.get(f)
            if want is None:
                errors.append(InputError(f, None, None, "not among the files acquire recorded "
                                         "(its manifest.sqlite): added after acquire ran; "
                                         "remove it or rerun `desivoids acquire`"))
                continue
            try:
                got = job.result()
            except OSError as exc:
                errors.append(InputError(f, None, None, f"unreadable ({exc.strerror or exc})"))
                continue
            if got != want:
                errors.append(InputError(f, None, None, f"sha256 {got} differs from the {want} "
                                         "that acquire recorded: the file changed after acquire "
                                         "fetched it; remove it and rerun `desivoids acquire`"))
        if errors:
            raise InputError.all(errors)
