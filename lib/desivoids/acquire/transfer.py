"""Move planned files from a source into the raw folder, so that no corrupt file is ever accepted
as verified and a process killed at any instant loses at most the bytes in flight.

For each file: bytes go to ``NAME.part`` (appended from the current .part size by a range
request when the source allows it, else from zero), hashed as they arrive; when the size is
reached the sha256 is compared with DESI's published sum, and a digest the source offered for
the whole file (an md5 computed alongside when that is all there is to check) is compared too;
the hash is committed to the manifest, the .part renamed into place, and only then the file
marked ``verified`` (it matched a published sum or the source's digest) or ``complete`` (its
size matched; its sha256 is recorded, but nothing could say whether the bytes are right). A
kill between two of these steps is recognised on resume: a renamed file whose hash matches is
accepted without a new transfer; a .part is resumed by range.

Retries back off exponentially (with jitter) on per-file faults: 5xx, timeouts, resets, short
bodies, and checksum or size mismatches (which also discard the .part). A source that cannot be
reached at all (connection refused, name not resolved) is probed once and stops the whole batch
within seconds, instead of every file waiting out its own back-off. A disk guard reserves the
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
from ..directio import Appender
from ..errors import DesivoidsError, UnsafePathError
from ..paths import contained
from ..progress import bar
from .manifest import PRESENT, FileRow, Manifest
from .sources import (Digest, Missing, Permanent, RangeNotSatisfiable, Source, SourceError, Transient,
                      Unreachable)

READ = 1 << 20


class Corrupt(DesivoidsError):
    """Bytes received do not match the expected size or checksum; the .part is discarded."""


class _Stop(DesivoidsError):
    """The batch is stopping (disk guard, interrupt): leave the .part for the next run."""


sha256_file = sha256_hash  # running hash of a file or of its first bytes (see checksums)


def _prefix_hashes(path: Path, size: int, md5: bool):
    """sha256 (and md5) of a file's first ``size`` bytes, read once."""
    h, m = hashlib.sha256(), (hashlib.md5() if md5 else None)
    left = size
    with open(path, "rb") as f:
        while left > 0:
            block = f.read(min(READ * 8, left))
            if not block:
                break
            h.update(block)
            if m is not None:
                m.update(block)
            left -= len(block)
    return h, m


def _published(row: FileRow) -> bool:
    """The expected sha256 is DESI's published sum (for a checksum list it is the sha256 of the
    list as parsed when planning: a check of the transfer, not of the list)."""
    return bool(row.sha256_expected) and row.kind == "data"


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
    verified: int  # checked against a published sha256 or the source's digest
    empty: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    remaining: int = 0  # planned or partial after the batch
    fetched_files: int = 0
    fetched_bytes: int = 0
    seconds: float = 0.0
    note: str | None = None
    complete: int = 0  # size matched, sha256 recorded, nothing to check it against
    verified_published: int = 0
    verified_source: int = 0
    unplanned: list[tuple[str, str]] = field(default_factory=list)  # (request, why) of the plan
    unreachable: bool = False  # stopped because the source could not be reached

    @property
    def rate(self) -> float:
        return self.fetched_bytes / self.seconds if self.seconds > 0 else 0.0

    def rows(self) -> list[dict]:
        """The summary as (quantity, value) rows, without timings (for deterministic tables)."""
        return [
            {"quantity": "files in manifest", "value": self.files},
            {"quantity": "bytes in manifest", "value": self.bytes},
            {"quantity": "verified: published sha256", "value": self.verified_published},
            {"quantity": "verified: source's digest", "value": self.verified_source},
            {"quantity": "complete: nothing to verify against", "value": self.complete},
            {"quantity": "empty", "value": self.empty},
            {"quantity": "failed", "value": len(self.failed)},
            {"quantity": "could not be planned", "value": len(self.unplanned)},
            {"quantity": "still to fetch", "value": self.remaining},
            {"quantity": "fetched this batch (files)", "value": self.fetched_files},
            {"quantity": "fetched this batch (bytes)", "value": self.fetched_bytes},
            {"quantity": "status", "value": self.status},
        ]

    def __str__(self) -> str:
        how = f" ({self.verified_published} against published sums, {self.verified_source} against the " \
              "source's digest)" if self.verified_source else ""
        lines = [f"acquire batch {self.batch}: {self.status}",
                 f"  files {self.files} ({_human(self.bytes)}): verified {self.verified}{how}, complete "
                 f"{self.complete}, empty {self.empty}, failed {len(self.failed)}, still to fetch {self.remaining}",
                 f"  this batch: {self.fetched_files} files, {_human(self.fetched_bytes)} in {self.seconds:.1f} s"
                 f" ({_human(self.rate)}/s)"]
        if self.complete:
            lines.append(f"  complete: {self.complete} file(s) with no published sum and no source digest: size "
                         "matched and sha256 recorded, but not verified")
        if self.note:
            lines.append(f"  note: {self.note}")
        for what, why in self.unplanned:
            lines.append(f"  NOT PLANNED {what}: {why}")
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
        self._probe_mu = threading.Lock()
        self.unreachable = False

    # ------------------------------------------------------------------ helpers
    def local(self, path: str) -> Path:
        """Where ``path`` (as the plan names it) is written: below ``dest``, or refused."""
        return contained(self.dest, path, source=self.source.where(path), key=path)

    def check_paths(self, paths) -> None:
        """Every path this batch may write must stay below ``dest`` (:func:`contained`): all
        refused at once, before anything is written."""
        errors = []
        for path in paths:
            try:
                self.local(path)
            except UnsafePathError as exc:
                errors.append(exc)
        if errors:
            raise UnsafePathError.all(errors)

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

    def _accepted(self, row: FileRow, digest: str) -> str | None:
        """What a complete local copy with sha256 ``digest`` is checked against (the value of
        ``checksum`` it keeps), or None when it is not the expected file."""
        if row.sha256_expected:
            if digest != row.sha256_expected:
                return None
            return "published" if _published(row) else (row.checksum if row.sha256 == digest else "computed")
        if row.sha256 is not None and digest == row.sha256:  # recorded by received() before a kill
            return row.checksum
        return None

    def _source_down(self, exc: Exception) -> bool:
        """One probe of the source after an ``Unreachable`` error (one at a time: concurrent
        workers wait for it); when that fails too the batch stops, naming the source."""
        with self._probe_mu:
            if self.stop.is_set():
                return True
            try:
                self.source.probe()
            except Unreachable as again:
                self.unreachable = True
                self._halt(f"source unreachable: {again} (probed once after the first refusal; nothing more "
                           "was tried)")
                self._log(None, "unreachable", f"{exc}; probe: {again}")
                return True
            except SourceError:
                pass  # it answered: the source is up
            return False

    # ------------------------------------------------------------------ resume checks
    def check_verified(self) -> int:
        """Verified files must still be in place (size, or sha256 with ``rehash``); a missing or
        altered one is planned again. Returns how many were re-planned."""
        n = 0
        root = str(self.dest)
        for row in self.manifest.files(PRESENT):
            try:
                st = os.stat(os.path.join(root, row.path))
            except FileNotFoundError:
                st = None
            why = None
            if st is None or not stat.S_ISREG(st.st_mode):
                why = "verified file missing locally"
            elif st.st_size != (row.size or 0):
                why = f"local size {st.st_size} != {row.size}"
            elif self.opt.rehash and row.state != "empty" and \
                    sha256_file(self.local(row.path)).hexdigest() != row.sha256:
                why = f"local sha256 differs from the {row.state} one"
            if why:
                self.manifest.replan(row.path, why)
                self._log(row.path, "replanned", why)
                n += 1
        return n

    # ------------------------------------------------------------------ one file
    def fetch(self, row: FileRow) -> str:
        """Bring one file to ``verified``/``complete`` (or ``empty``/``failed``); returns what
        happened: verified or complete (transferred), found-verified or found-complete (already
        in place, accepted without a transfer), empty, failed or stopped."""
        final = self.local(row.path)
        final.parent.mkdir(parents=True, exist_ok=True)
        if row.size == 0:
            final.touch()
            self.manifest.empty(row.path, self.source.label, self.batch)
            self._log(row.path, "empty", "zero bytes at the source")
            return "empty"
        if final.exists():  # renamed before an interruption, or put there by hand
            digest = sha256_file(final).hexdigest()
            basis = self._accepted(row, digest) if final.stat().st_size == row.size else None
            if basis is not None:
                state = self.manifest.present(row.path, digest, basis, self.source.label, self.batch)
                self._log(row.path, state, "found in place with the expected size and sha256")
                return f"found-{state}"
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
            except Unreachable as exc:
                if self._source_down(exc):
                    self.manifest.error(row.path, f"source unreachable: {exc}")
                    return "stopped"
                last = exc  # the probe got an answer: a fault of this file's request after all
                self.manifest.error(row.path, f"{type(exc).__name__}: {exc}")
                self._log(row.path, "retry", f"attempt {attempt + 1}: {type(exc).__name__}: {exc}")
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

    def _hashers(self, row: FileRow, part: Path, offset: int, expected: Digest | None):
        """Running hashes of the .part's first ``offset`` bytes: sha256 always; md5 too when the
        source's md5 is the only check there is (with a published sha256 it would add nothing)."""
        md5 = expected is not None and expected.algorithm == "md5" and not _published(row)
        if offset == 0:
            return hashlib.sha256(), (hashlib.md5() if md5 else None)
        return _prefix_hashes(part, offset, md5)

    def _receive(self, row: FileRow, part: Path, offset: int, expected: Digest | None, written: list[int]):
        """Append the source's bytes from ``offset`` to the .part (from 0 if the source ignores
        the range); returns the .part's size, its hashes and the source's digest of the file."""
        with self.source.open(row.path, offset) as body:
            if body.start != offset:  # the source ignored the range: start over
                offset = 0
            got = body.digest
            if got is not None and (expected is None or str(got) != str(expected)):
                if offset and expected is not None and got.algorithm == expected.algorithm:
                    part.unlink(missing_ok=True)
                    self.manifest.digest(row.path, str(got), got.origin)
                    raise Transient(f"the source's {got.origin} changed since this .part began ({expected} -> "
                                    f"{got}): the file changed at the source; starting over")
                self.manifest.digest(row.path, str(got), got.origin)
                expected = got
            h, m = self._hashers(row, part, offset, expected)
            self._log(row.path, "start", f"from byte {offset}" + (" (range)" if offset else "") +
                      (f"; source digest {expected.algorithm} ({expected.origin})" if expected else ""))
            n = offset
            since_check = 0
            # written around the page cache (directio): buffered, a local-folder acquire of the
            # DR1-scale mock's 9.3 GB waited ~40 s on this machine's write-back; at most one
            # chunk waits in memory
            with Appender(part, offset, self.source.chunk) as f:
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
                    if m is not None:
                        m.update(chunk)
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
                f.sync()
        return n, h, m, expected

    def _stream(self, row: FileRow, final: Path, part: Path, offset: int, written: list[int]) -> str:
        self.manifest.start(row.path, self.batch, offset)
        expected = Digest.parse(row.source_digest, row.digest_from)
        if offset == row.size:  # complete .part left by an interruption: nothing to ask for
            self._log(row.path, "start", f"complete .part of {offset} bytes found: checking it")
            n = offset
            h, m = self._hashers(row, part, offset, expected)
        else:
            n, h, m, expected = self._receive(row, part, offset, expected, written)
        if n < row.size:
            raise Transient(f"short body: {n} of {row.size} bytes (resuming from byte {n})")
        digest = h.hexdigest()
        if row.sha256_expected and digest != row.sha256_expected:
            part.unlink()
            what = "published" if _published(row) else "expected (the list as parsed when planning)"
            raise Corrupt(f"sha256 mismatch: received {digest}, {what} {row.sha256_expected}")
        basis = "published" if _published(row) else "computed"
        if expected is not None:
            mine = digest if expected.algorithm == "sha256" else (m.hexdigest() if m is not None else None)
            if mine is not None:
                if mine != expected.hex:
                    part.unlink()
                    raise Corrupt(f"{expected.algorithm} mismatch: received {mine}, the source's {expected.origin} "
                                  f"says {expected.hex}")
                if basis == "computed":
                    basis = "source"
        self.manifest.received(row.path, digest, basis)
        os.replace(part, final)
        _fsync_dir(final.parent)
        state = self.manifest.present(row.path, digest, basis, self.source.label, self.batch)
        detail = {"published": "matched the published sha256",
                  "source": f"matched the source's {expected.origin if expected else ''} "
                            f"{expected.algorithm if expected else ''}",
                  "computed": "sha256 computed, nothing to verify it against"}[basis]
        self._log(row.path, state, f"{row.size} bytes, {detail}")
        return state

    # ------------------------------------------------------------------ the batch
    def run(self, params: dict | None = None, planned=None) -> Summary:
        """Record ``planned`` (a fresh :class:`~desivoids.acquire.plan.Plan` or list of Planned,
        if any) in the manifest, then fetch every file that is not in place; files in place are
        checked (size) and never fetched again."""
        files = None if planned is None else list(getattr(planned, "files", planned))
        self.check_paths([p.path for p in files or ()] + [r.path for r in self.manifest.files()])
        self.dest.mkdir(parents=True, exist_ok=True)
        self.batch = self.manifest.begin_batch("transfer", self.source.label, params or {})
        t0 = time.perf_counter()
        if files is not None:
            got = self.manifest.plan([
                FileRow(p.path, p.fileset, p.kind, p.size, p.sha256_expected, p.checksum,
                        state="planned" if p.error is None else "failed", last_error=p.error,
                        source_digest=str(p.digest) if p.digest else None,
                        digest_from=p.digest.origin if p.digest else None)
                for p in files], self.batch)
            unplanned = [(u.what, u.reason) for u in getattr(planned, "unplanned", [])]
            self.manifest.set_unplanned(unplanned, self.batch)
            self._log(None, "plan", f"{len(files)} files planned: {got['added']} new, {got['changed']} "
                                    f"changed at source, {got['kept']} known; {len(unplanned)} request(s) "
                                    "could not be planned")
            for what, why in unplanned:
                self._log(None, "unplanned", f"{what}: {why}")
            for path in got["changed_paths"]:  # bytes of the old version must not be resumed
                final = self.local(path)
                final.with_name(final.name + ".part").unlink(missing_ok=True)
                final.unlink(missing_ok=True)
        replanned = self.check_verified()
        todo = [r for r in self.manifest.files(["partial", "planned", "failed"]) if r.size is not None]
        # finish resumable files first, then the largest first: the workers then end together
        # instead of one of them fetching a 2 GB file alone at the end
        todo.sort(key=lambda r: (r.state != "partial", -r.size, r.path))
        remaining = sum(r.size - self._part_size(r) for r in todo)
        self._log(None, "batch", f"{len(todo)} files to fetch, {remaining} bytes; {replanned} re-planned")
        states: dict[str, int] = {}
        interrupted = False
        self._bar = bar(total=remaining, progress=self.opt.progress, unit="B", unit_scale=True,
                        unit_divisor=1024, desc="acquire",
                         smoothing=0.1, dynamic_ncols=True)
        pool = ThreadPoolExecutor(max(1, self.opt.workers), thread_name_prefix="acquire")
        try:
            futures = [pool.submit(self._task, r) for r in todo]
            for fut in as_completed(futures):
                st = fut.result()
                states[st] = states.get(st, 0) + 1
                done = states.get("verified", 0) + states.get("complete", 0)
                self._bar.set_postfix_str(f"{done}/{len(todo)} in place", refresh=False)
        except KeyboardInterrupt:
            interrupted = True
            self._halt("interrupted")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self._bar.close()
            self._bar = None
        seconds = time.perf_counter() - t0
        counts = self.manifest.counts()
        by = self.manifest.verified_by()
        failed = [(r.path, r.last_error or "") for r in self.manifest.files(["failed"])]
        unplanned = self.manifest.unplanned()
        if interrupted:
            status = "interrupted"
        elif self.stop_reason:
            status = "stopped"
        elif failed or unplanned or counts["planned"] or counts["partial"]:
            status = "incomplete"
        else:
            status = "done"
        n_files, n_bytes = self.manifest.totals()
        summary = Summary(
            batch=self.batch, status=status, files=n_files, bytes=n_bytes,
            verified=counts["verified"], complete=counts["complete"], empty=counts["empty"], failed=failed,
            remaining=counts["planned"] + counts["partial"],
            fetched_files=states.get("verified", 0) + states.get("complete", 0), fetched_bytes=self._fetched,
            seconds=seconds, note=self.stop_reason, verified_published=by["published"],
            verified_source=by["source"], unplanned=unplanned, unreachable=self.unreachable)
        self.manifest.end_batch(self.batch, status, files=len(todo), bytes=self._fetched,
                                verified=states.get("verified", 0) + states.get("found-verified", 0),
                                complete=states.get("complete", 0) + states.get("found-complete", 0),
                                empty=states.get("empty", 0), failed=states.get("failed", 0), seconds=seconds,
                                note=self.stop_reason)
        return summary

    def _part_size(self, row: FileRow) -> int:
        p = self.local(row.path)
        part = p.with_name(p.name + ".part")
        return min(part.stat().st_size, row.size) if part.exists() else 0

    def _task(self, row: FileRow) -> str:
        if self.stop.is_set():
            return "stopped"
        return self.fetch(row)
