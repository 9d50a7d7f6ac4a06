"""The acquire state file: one SQLite row per file, one per batch, and a log per batch.

SQLite in WAL mode, every state change one transaction, so a process killed at any instant
(``kill -9``) leaves the manifest at the last committed transition; the transfer loop orders its
steps (hash recorded -> rename -> ``verified``) so that every such point is resumable. A lock
file (``flock``, released by the kernel when a process dies) keeps two runs off one manifest.

States of a file: ``planned`` (known, not started), ``partial`` (a ``.part`` may exist),
``verified`` (renamed into place after its size and checksum matched), ``failed`` (gave up this
batch; ``last_error`` says why; retried by the next run) and ``empty`` (the source file has zero
bytes: nothing to verify, recorded rather than treated as an error).

``checksum`` is ``published`` when the expected sha256 comes from DESI's ``.sha256sum`` file,
and ``computed`` when none exists: then the sha256 recorded is that of the bytes received,
*computed, not verified against a published sum* (only the size was checked).
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from ..errors import StageError

STATES = ("planned", "partial", "verified", "failed", "empty")
CHECKSUM = {"published": "published .sha256sum",
            "computed": "computed, not verified against a published sum"}
SPECTRA_STATES = ("planned", "done", "empty", "failed")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,               -- DESI relative path, e.g. dr1/vac/dr1/desivast/v1.0/...
    fileset TEXT NOT NULL,               -- desivast, fastspecfit, tiles, healpix, dir
    kind TEXT NOT NULL CHECK (kind IN ('data', 'checksums')),
    size INTEGER,                        -- expected bytes from the source (NULL: not found there)
    sha256_expected TEXT,                -- from the published .sha256sum (NULL: none published)
    checksum TEXT NOT NULL CHECK (checksum IN ('published', 'computed')),
    sha256 TEXT,                         -- of the bytes received; recorded before the rename
    state TEXT NOT NULL CHECK (state IN {STATES}),
    attempts INTEGER NOT NULL DEFAULT 0, -- transfer attempts, all batches
    fetches INTEGER NOT NULL DEFAULT 0,  -- transfers that started at byte 0
    resumes INTEGER NOT NULL DEFAULT 0,  -- transfers that resumed a .part by range
    last_error TEXT,
    source TEXT,                         -- source that delivered the verified bytes
    batch INTEGER,
    updated TEXT
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE TABLE IF NOT EXISTS batches(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                  -- transfer or spectra
    started TEXT NOT NULL, finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'incomplete', 'stopped', 'interrupted')),
    source TEXT, params TEXT,
    files INTEGER, bytes INTEGER, verified INTEGER, empty INTEGER, failed INTEGER, seconds REAL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS batch_log(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL, time TEXT NOT NULL, path TEXT, event TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS batch_log_batch ON batch_log(batch);
CREATE TABLE IF NOT EXISTS spectra(
    coadd TEXT PRIMARY KEY,              -- relative path of the coadd file
    redrock TEXT NOT NULL,
    output TEXT,                         -- relative path of the Parquet file (NULL when empty)
    selection TEXT NOT NULL,             -- JSON of the selection parameters used
    state TEXT NOT NULL CHECK (state IN {SPECTRA_STATES}),
    n_targets INTEGER, n_spectype INTEGER, n_zwarn INTEGER, n_deltachi2 INTEGER, n_kept INTEGER,
    error TEXT, batch INTEGER, updated TEXT
);
"""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class FileRow:
    path: str
    fileset: str
    kind: str
    size: int | None
    sha256_expected: str | None
    checksum: str
    sha256: str | None = None
    state: str = "planned"
    attempts: int = 0
    fetches: int = 0
    resumes: int = 0
    last_error: str | None = None
    source: str | None = None
    batch: int | None = None
    updated: str | None = None


FILE_COLUMNS = ", ".join(f.name for f in fields(FileRow))


class ManifestLocked(StageError):
    """Another process holds this manifest."""


class Manifest:
    """Thread-safe access to one state file (one connection behind a lock)."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no acquire manifest")
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (the OS holds the
            # WAL); only a power cut can lose the last commits, which a rerun re-verifies anyway.
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self.db:
                self.db.executescript(SCHEMA)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', '1')")
        self.db.row_factory = sqlite3.Row
        self._mu = threading.RLock()
        self._lockfd: int | None = None

    # ------------------------------------------------------------------ process lock
    def lock(self) -> "Manifest":
        """Take the exclusive run lock; stale ``running`` batches become ``interrupted``."""
        import fcntl

        fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ManifestLocked(f"{self.path}: another acquire run holds this manifest") from None
        self._lockfd = fd
        with self._mu, self.db:
            self.db.execute("UPDATE batches SET status='interrupted', note=coalesce(note, 'process ended "
                            "without closing the batch') WHERE status='running'")
        return self

    def close(self) -> None:
        with self._mu:
            self.db.close()
        if self._lockfd is not None:
            os.close(self._lockfd)
            self._lockfd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ queries
    def _rows(self, where: str = "", args: Iterable = ()) -> list[FileRow]:
        sql = f"SELECT {FILE_COLUMNS} FROM files {where} ORDER BY path"
        with self._mu:
            cur = self.db.cursor()
            cur.row_factory = None  # plain tuples in dataclass order: fast for 1e5 files
            return [FileRow(*r) for r in cur.execute(sql, tuple(args))]

    def get(self, path: str) -> FileRow | None:
        rows = self._rows("WHERE path=?", (path,))
        return rows[0] if rows else None

    def files(self, states: Iterable[str] | None = None) -> list[FileRow]:
        if states is None:
            return self._rows()
        states = tuple(states)
        return self._rows(f"WHERE state IN ({','.join('?' * len(states))})", states)

    def totals(self) -> tuple[int, int]:
        """(number of files, expected bytes) of the whole manifest."""
        with self._mu:
            n, b = self.db.execute("SELECT count(*), coalesce(sum(size), 0) FROM files").fetchone()
        return int(n), int(b)

    def counts(self) -> dict[str, int]:
        with self._mu:
            got = dict(self.db.execute("SELECT state, count(*) FROM files GROUP BY state").fetchall())
        return {s: int(got.get(s, 0)) for s in STATES}

    def throughput(self) -> float | None:
        """Bytes/s measured over earlier transfer batches (None before any)."""
        with self._mu:
            b, s = self.db.execute("SELECT sum(bytes), sum(seconds) FROM batches WHERE kind='transfer' "
                                   "AND bytes > 0 AND seconds > 0").fetchone()
        return (b / s) if b and s else None

    # ------------------------------------------------------------------ plan
    def plan(self, rows: Iterable[FileRow], batch: int | None = None) -> dict:
        """Insert new files; a known file keeps its state unless its size or published checksum
        changed at the source (then it is planned again, and the change is logged). A file not
        found at the source is recorded as ``failed`` with the reason (a verified copy is kept).
        Returns counts and ``changed_paths`` (whose local copies and .part files are now stale)."""
        added = changed = kept = 0
        changed_paths = []
        with self._mu, self.db:
            for r in rows:
                old = self.db.execute("SELECT size, sha256_expected, state FROM files WHERE path=?",
                                      (r.path,)).fetchone()
                if old is None:
                    self.db.execute(
                        "INSERT INTO files(path, fileset, kind, size, sha256_expected, checksum, state, "
                        "last_error, batch, updated) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (r.path, r.fileset, r.kind, r.size, r.sha256_expected, r.checksum,
                         r.state, r.last_error, batch, now()))
                    added += 1
                elif r.size is None:
                    if old["state"] not in ("verified", "empty"):
                        self.db.execute("UPDATE files SET state='failed', last_error=?, batch=?, updated=? "
                                        "WHERE path=?", (r.last_error, batch, now(), r.path))
                    kept += 1
                elif (old["size"], old["sha256_expected"]) != (r.size, r.sha256_expected):
                    self.db.execute(
                        "UPDATE files SET fileset=?, kind=?, size=?, sha256_expected=?, checksum=?, "
                        "sha256=NULL, state='planned', last_error=?, batch=?, updated=? WHERE path=?",
                        (r.fileset, r.kind, r.size, r.sha256_expected, r.checksum,
                         f"changed at source (was {old['size']} B, sha256 {old['sha256_expected']})",
                         batch, now(), r.path))
                    if batch is not None:
                        self._log(batch, r.path, "changed", f"size/checksum changed at source; was {old['state']}")
                    changed += 1
                    changed_paths.append(r.path)
                else:
                    kept += 1
        return {"added": added, "changed": changed, "kept": kept, "changed_paths": changed_paths}

    # ------------------------------------------------------------------ transitions
    def _set(self, path: str, **cols) -> None:
        cols["updated"] = now()
        sets = ", ".join(f"{k}=?" for k in cols)
        with self._mu, self.db:
            cur = self.db.execute(f"UPDATE files SET {sets} WHERE path=?", (*cols.values(), path))
            if cur.rowcount != 1:
                raise KeyError(f"{self.path}: no file {path!r} in the manifest")

    def start(self, path: str, batch: int, offset: int) -> None:
        """A transfer begins (``offset`` > 0: resuming a .part by range)."""
        with self._mu, self.db:
            self.db.execute(
                "UPDATE files SET state='partial', attempts=attempts+1, fetches=fetches+?, "
                "resumes=resumes+?, batch=?, updated=? WHERE path=?",
                (int(offset == 0), int(offset > 0), batch, now(), path))

    def received(self, path: str, sha256: str) -> None:
        """The complete .part matched size (and published checksum); recorded before the rename
        so that a kill between rename and ``verified`` is recognised on resume."""
        self._set(path, sha256=sha256)

    def verified(self, path: str, sha256: str, source: str, batch: int) -> None:
        self._set(path, sha256=sha256, state="verified", last_error=None, source=source, batch=batch)

    def error(self, path: str, message: str) -> None:
        self._set(path, last_error=message[:2000])

    def failed(self, path: str, message: str, batch: int) -> None:
        self._set(path, state="failed", last_error=message[:2000], batch=batch)

    def empty(self, path: str, source: str, batch: int) -> None:
        self._set(path, state="empty", sha256=None, last_error=None, source=source, batch=batch)

    def replan(self, path: str, why: str) -> None:
        self._set(path, state="planned", sha256=None, last_error=why)

    # ------------------------------------------------------------------ batches and their logs
    def begin_batch(self, kind: str, source: str | None, params: dict) -> int:
        with self._mu, self.db:
            cur = self.db.execute("INSERT INTO batches(kind, started, status, source, params) "
                                  "VALUES (?,?,?,?,?)",
                                  (kind, now(), "running", source, json.dumps(params, sort_keys=True)))
            return int(cur.lastrowid)

    def end_batch(self, batch: int, status: str, *, files: int = 0, bytes: int = 0, verified: int = 0,
                  empty: int = 0, failed: int = 0, seconds: float = 0.0, note: str | None = None) -> None:
        with self._mu, self.db:
            self.db.execute("UPDATE batches SET finished=?, status=?, files=?, bytes=?, verified=?, empty=?, "
                            "failed=?, seconds=?, note=? WHERE id=?",
                            (now(), status, files, bytes, verified, empty, failed, seconds, note, batch))

    def _log(self, batch: int, path: str | None, event: str, detail: str | None = None) -> None:
        self.db.execute("INSERT INTO batch_log(batch, time, path, event, detail) VALUES (?,?,?,?,?)",
                        (batch, now(), path, event, detail))

    def log(self, batch: int, path: str | None, event: str, detail: str | None = None) -> None:
        with self._mu, self.db:
            self._log(batch, path, event, detail)

    def batch_log(self, batch: int) -> list[dict]:
        with self._mu:
            return [dict(r) for r in self.db.execute(
                "SELECT seq, time, path, event, detail FROM batch_log WHERE batch=? ORDER BY seq", (batch,))]

    def batches(self) -> list[dict]:
        with self._mu:
            return [dict(r) for r in self.db.execute("SELECT * FROM batches ORDER BY id")]

    # ------------------------------------------------------------------ spectra conversions
    def spectra_rows(self) -> list[dict]:
        with self._mu:
            return [dict(r) for r in self.db.execute("SELECT * FROM spectra ORDER BY coadd")]

    def spectra_get(self, coadd: str) -> dict | None:
        with self._mu:
            r = self.db.execute("SELECT * FROM spectra WHERE coadd=?", (coadd,)).fetchone()
        return dict(r) if r else None

    def spectra_set(self, coadd: str, **cols) -> None:
        cols["updated"] = now()
        names = ["coadd", *cols]
        q = ",".join("?" * len(names))
        upd = ", ".join(f"{k}=excluded.{k}" for k in cols)
        with self._mu, self.db:
            self.db.execute(f"INSERT INTO spectra({', '.join(names)}) VALUES ({q}) "
                            f"ON CONFLICT(coadd) DO UPDATE SET {upd}", (coadd, *cols.values()))
