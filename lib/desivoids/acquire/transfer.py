"""Move planned files from a source into the raw folder, so that no corrupt file is ever accepted
and a process killed at any instant loses at most the bytes in flight.

For each file: bytes go to ``NAME.part`` (appended from the current .part size by a range
request when the source allows it, else from zero), hashed as they arrive; when the size is
reached the sha256 is compared with DESI's published sum (or, when none is published, recorded
as computed); the hash is committed to the manifest, the .part renamed into place, and only then
the file marked ``verified``. A kill between two of these steps is recognised on resume: a
renamed file whose hash matches is accepted without a new transfer; a .part is resumed by range.

Retries back off exponentially (with jitter) on transient errors: 5xx, timeouts, resets, short
bodies, and checksum or size mismatches (which also discard the .part). A disk guard reserves the
remaining bytes of every transfer before it starts and stops the batch cleanly, leaving files
planned, when that would leave less than ``min_free`` bytes free.
"""
from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from ..checksums import sha256_hash
from ..errors import DesivoidsError
from ..progress import bar
from .manifest import FileRow, Manifest
from .sources import Missing, Permanent, RangeNotSatisfiable, Source, SourceError, Transient

READ = 1 << 20


class Corrupt(DesivoidsError):
    """Bytes received do not match the expected size or checksum; the .part is discarded."""


class _Stop(DesivoidsError):
    """The batch is stopping (disk guard, interrupt): leave the .part for the next run."""


sha256_file = sha256_hash  # running hash of a file or of its first bytes (see checksums)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Options:
    workers: int = 4
    retries: int = 5  # extra attempts after the first
    backoff: float = 0.5  # seconds before the first retry; doubles each time
    max_backoff: float = 60.0
    min_free: int = 1 << 30  # bytes that must stay free on the destination disk
    progress: bool | None = None  # None: a progress bar only on a terminal
    rehash: bool = False  # re-hash verified files on resume instead of checking their size
    disk_usage: Callable[[str], "shutil._ntuple_diskusage"] = shutil.disk_usage
    check_every: int = 64 << 20  # bytes between disk checks during a transfer


@dataclass
class Summary:
    """What a batch did and where the manifest stands after it."""

    batch: int
    status: str  # done | incomplete | stopped | interrupted
    files: int
    bytes: int
    verified: int
    empty: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    remaining: int = 0  # planned or partial after the batch
    fetched_files: int = 0
    fetched_bytes: int = 0
    seconds: float = 0.0
    note: str | None = None

    @property
    def rate(self) -> float:
        return self.fetched_bytes / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[dict]:
        """The summary as (quantity, value) rows, without timings (for deterministic tables)."""
        return [
            {"quantity": "files in manifest", "value": self.files},
            {"quantity": "bytes in manifest", "value": self.bytes},
            {"quantity": "verified", "value": self.verified},
            {"quantity": "empty", "value": self.empty},
            {"quantity": "failed", "value": len(self.failed)},
            {"quantity": "still to fetch", "value": self.remaining},
            {"quantity": "fetched this batch (files)", "value": self.fetched_files},
            {"quantity": "fetched this batch (bytes)", "value": self.fetched_bytes},
            {"quantity": "status", "value": self.status},
        ]

    def __str__(self) -> str:
        lines = [f"acquire batch {self.batch}: {self.status}",
                 f"  files {self.files} ({_human(self.bytes)}): verified {self.verified}, empty {self.empty}, "
                 f"failed {len(self.failed)}, still to fetch {self.remaining}",
                 f"  this batch: {self.fetched_files} files, {_human(self.fetched_bytes)} in {self.seconds:.1f} s"
                 f" ({_human(self.rate)}/s)"]
        if self.note:
            lines.append(f"  note: {self.note}")
        for path, why in self.failed:
            lines.append(f"  FAILED {path}: {why}")
        return "\n".join(lines)


def _human(n: float) -> str:
    """Bytes as tqdm writes them (binary prefixes)."""
    return tqdm.format_sizeof(n, "B", 1024)


class Transfer:
    """One batch: every file of the manifest that is not verified, ``workers`` at a time."""

    def __init__(self, source: Source, manifest: Manifest, dest: str | Path, options: Options | None = None):
        self.source, self.manifest, self.dest = source, manifest, Path(dest)
        self.opt = options or Options()
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._mu = threading.Lock()
        self._reserved = 0  # bytes reserved by transfers in flight ...
        self._inflight = 0  # ... of which already written
        self._fetched = 0
        self._bar = None
        self.batch: int | None = None

    # ------------------------------------------------------------------ helpers
    def local(self, path: str) -> Path:
        return self.dest / path

    def _log(self, path: str | None, event: str, detail: str | None = None) -> None:
        self.manifest.log(self.batch, path, event, detail)

    def _halt(self, reason: str) -> None:
        with self._mu:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.stop.set()

    def _free(self) -> int:
        return int(self.opt.disk_usage(str(self.dest)).free)

    def _reserve(self, need: int, path: str) -> None:
        with self._mu:
            free = self._free()
            pending = max(0, self._reserved - self._inflight)
            if free - pending - need < self.opt.min_free:
                msg = (f"disk guard: {path} needs {_human(need)}, {_human(free)} free, "
                       f"{_human(pending)} reserved, keeping {_human(self.opt.min_free)} free")
                if self.stop_reason is None:
                    self.stop_reason = msg
                self.stop.set()
                raise _Stop(msg)
            self._reserved += need

    def _accept(self, row: FileRow, digest: str) -> bool:
        if row.sha256_expected:
            return digest == row.sha256_expected
        return row.sha256 is not None and digest == row.sha256

    # ------------------------------------------------------------------ resume checks
    def check_verified(self) -> int:
        """Verified files must still be in place (size, or sha256 with ``rehash``); a missing or
        altered one is planned again. Returns how many were re-planned."""
        n = 0
        root = str(self.dest)
        for row in self.manifest.files(["verified", "empty"]):
            try:
                st = os.stat(os.path.join(root, row.path))
            except FileNotFoundError:
                st = None
            why = None
            if st is None or not stat.S_ISREG(st.st_mode):
                why = "verified file missing locally"
            elif st.st_size != (row.size or 0):
                why = f"local size {st.st_size} != {row.size}"
            elif self.opt.rehash and row.state == "verified" and \
                    sha256_file(self.local(row.path)).hexdigest() != row.sha256:
                why = "local sha256 differs from the verified one"
            if why:
                self.manifest.replan(row.path, why)
                self._log(row.path, "replanned", why)
                n += 1
        return n

    # ------------------------------------------------------------------ one file
    def fetch(self, row: FileRow) -> str:
        """Bring one file to ``verified`` (or ``empty``/``failed``); returns what happened:
        verified (transferred), found (already in place, accepted without a transfer), empty,
        failed or stopped."""
        final = self.local(row.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        if row.size == 0:
            final.touch()
            self.manifest.empty(row.path, self.source.label, self.batch)
            self._log(row.path, "empty", "zero bytes at the source")
            return "empty"
        if final.exists():  # renamed before an interruption, or put there by hand
            digest = sha256_file(final).hexdigest()
            if final.stat().st_size == row.size and self._accept(row, digest):
                self.manifest.verified(row.path, digest, self.source.label, self.batch)
                self._log(row.path, "verified", "found in place with the expected size and sha256")
                return "found"
            final.unlink()
            self._log(row.path, "discarded", f"local file did not match (sha256 {digest})")
        last: Exception | None = None
        for attempt in range(self.opt.retries + 1):
            if self.stop.is_set():
                return "stopped"
            try:
                return self._attempt(row, final)
            except _Stop:
                return "stopped"
            except Missing as exc:
                msg = f"not found at source: {exc}"
                self.manifest.failed(row.path, msg, self.batch)
                self._log(row.path, "failed", msg)
                return "failed"
            except Permanent as exc:
                self.manifest.failed(row.path, str(exc), self.batch)
                self._log(row.path, "failed", str(exc))
                return "failed"
            except (Transient, Corrupt, SourceError) as exc:
                last = exc
                if isinstance(exc, RangeNotSatisfiable):
                    final.with_name(final.name + ".part").unlink(missing_ok=True)
                self.manifest.error(row.path, f"{type(exc).__name__}: {exc}")
                self._log(row.path, "retry" if attempt < self.opt.retries else "error",
                          f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    self._halt(f"disk full writing {row.path}")
                    return "stopped"
                raise
            if attempt < self.opt.retries:
                delay = min(self.opt.max_backoff, self.opt.backoff * 2 ** attempt) * (1 + 0.25 * random.random())
                if self.stop.wait(delay):
                    return "stopped"
        msg = f"gave up after {self.opt.retries + 1} attempts: {type(last).__name__}: {last}"
        self.manifest.failed(row.path, msg, self.batch)
        self._log(row.path, "failed", msg)
        return "failed"

    def _attempt(self, row: FileRow, final: Path) -> str:
        part = final.with_name(final.name + ".part")
        offset = part.stat().st_size if part.exists() else 0
        if offset > row.size:
            part.unlink()
            offset = 0
        need = row.size - offset
        self._reserve(need, row.path)
        written = [0]
        try:
            return self._stream(row, final, part, offset, written)
        finally:
            with self._mu:
                self._reserved -= need
                self._inflight -= written[0]

    def _receive(self, row: FileRow, part: Path, offset: int, h, written: list[int]):
        """Append the source's bytes from ``offset`` to the .part (from 0 if the source ignores
        the range); returns the .part's size and the sha256 of all its bytes."""
        with self.source.open(row.path, offset) as body:
            if body.start != offset:  # the source ignored the range: start over
                offset = 0
                h = hashlib.sha256()
            self._log(row.path, "start", f"from byte {offset}" + (" (range)" if offset else ""))
            n = offset
            since_check = 0
            with open(part, "r+b" if offset else "wb") as f:
                f.seek(offset)
                f.truncate()
                for chunk in body:
                    if self.stop.is_set():
                        raise _Stop(self.stop_reason or "stopping")
                    n += len(chunk)
                    if n > row.size:
                        f.close()
                        part.unlink()
                        raise Corrupt(f"source sent more than the expected {row.size} bytes")
                    f.write(chunk)
                    h.update(chunk)
                    written[0] += len(chunk)
                    with self._mu:
                        self._inflight += len(chunk)
                        self._fetched += len(chunk)
                    if self._bar is not None:
                        self._bar.update(len(chunk))
                    since_check += len(chunk)
                    if since_check >= self.opt.check_every:
                        since_check = 0
                        if self._free() < self.opt.min_free:
                            self._halt(f"disk guard: less than {_human(self.opt.min_free)} free during {row.path}")
                            raise _Stop(self.stop_reason)
                f.flush()
                os.fsync(f.fileno())
        return n, h

    def _stream(self, row: FileRow, final: Path, part: Path, offset: int, written: list[int]) -> str:
        h = sha256_file(part, offset) if offset else hashlib.sha256()
        self.manifest.start(row.path, self.batch, offset)
        n = offset
        if offset == row.size:  # complete .part left by an interruption: nothing to ask for
            self._log(row.path, "start", f"complete .part of {offset} bytes found: verifying it")
        else:
            n, h = self._receive(row, part, offset, h, written)
        if n < row.size:
            raise Transient(f"short body: {n} of {row.size} bytes (resuming from byte {n})")
        digest = h.hexdigest()
        if row.sha256_expected and digest != row.sha256_expected:
            part.unlink()
            raise Corrupt(f"sha256 mismatch: received {digest}, published {row.sha256_expected}")
        self.manifest.received(row.path, digest)
        os.replace(part, final)
        _fsync_dir(final.parent)
        self.manifest.verified(row.path, digest, self.source.label, self.batch)
        self._log(row.path, "verified", f"{row.size} bytes, sha256 {row.checksum}")
        return "verified"

    # ------------------------------------------------------------------ the batch
    def run(self, params: dict | None = None, planned: list | None = None) -> Summary:
        """Record ``planned`` (a fresh plan, if any) in the manifest, then fetch every file that
        is not verified; verified files are checked in place and never fetched again."""
        self.dest.mkdir(parents=True, exist_ok=True)
        self.batch = self.manifest.begin_batch("transfer", self.source.label, params or {})
        t0 = time.perf_counter()
        if planned is not None:
            got = self.manifest.plan([
                FileRow(p.path, p.fileset, p.kind, p.size, p.sha256_expected, p.checksum,
                        state="planned" if p.error is None else "failed", last_error=p.error)
                for p in planned], self.batch)
            self._log(None, "plan", f"{len(planned)} files planned: {got['added']} new, {got['changed']} "
                                    f"changed at source, {got['kept']} known")
            for path in got["changed_paths"]:  # bytes of the old version must not be resumed
                final = self.local(path)
                final.with_name(final.name + ".part").unlink(missing_ok=True)
                final.unlink(missing_ok=True)
        replanned = self.check_verified()
        todo = [r for r in self.manifest.files(["partial", "planned", "failed"]) if r.size is not None]
        todo.sort(key=lambda r: (r.state != "partial", r.path))  # finish resumable files first
        remaining = sum(r.size - self._part_size(r) for r in todo)
        self._log(None, "batch", f"{len(todo)} files to fetch, {remaining} bytes; {replanned} re-planned")
        states: dict[str, int] = {}
        interrupted = False
        self._bar = bar(total=remaining, progress=self.opt.progress, unit="B", unit_scale=True, unit_divisor=1024, desc="acquire",
                         smoothing=0.1, dynamic_ncols=True)
        pool = ThreadPoolExecutor(max(1, self.opt.workers), thread_name_prefix="acquire")
        try:
            futures = [pool.submit(self._task, r) for r in todo]
            for fut in as_completed(futures):
                st = fut.result()
                states[st] = states.get(st, 0) + 1
                self._bar.set_postfix_str(f"{states.get('verified', 0)}/{len(todo)} verified", refresh=False)
        except KeyboardInterrupt:
            interrupted = True
            self._halt("interrupted")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._bar.close()
            self._bar = None
        seconds = time.perf_counter() - t0
        counts = self.manifest.counts()
        failed = [(r.path, r.last_error or "") for r in self.manifest.files(["failed"])]
        if interrupted:
            status = "interrupted"
        elif self.stop_reason:
            status = "stopped"
        elif failed or counts["planned"] or counts["partial"]:
            status = "incomplete"
        else:
            status = "done"
        n_files, n_bytes = self.manifest.totals()
        summary = Summary(
            batch=self.batch, status=status, files=n_files, bytes=n_bytes,
            verified=counts["verified"], empty=counts["empty"], failed=failed,
            remaining=counts["planned"] + counts["partial"],
            fetched_files=states.get("verified", 0), fetched_bytes=self._fetched, seconds=seconds,
            note=self.stop_reason)
        self.manifest.end_batch(self.batch, status, files=len(todo), bytes=self._fetched,
                                verified=states.get("verified", 0) + states.get("found", 0), empty=states.get("empty", 0),
                                failed=states.get("failed", 0), seconds=seconds, note=self.stop_reason)
        return summary

    def _part_size(self, row: FileRow) -> int:
        p = self.local(row.path)
        part = p.with_name(p.name + ".part")
        return min(part.stat().st_size, row.size) if part.exists() else 0

    def _task(self, row: FileRow) -> str:
        if self.stop.is_set():
            return "stopped"
        return self.fetch(row)
