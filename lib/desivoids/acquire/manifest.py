"""The acquire state file: one SQLite row per file, one per batch, and a log per batch.

SQLite in WAL mode, every state change one transaction, so a process killed at any instant
(``kill -9``) leaves the manifest at the last committed transition; the transfer loop orders its
steps (hash recorded -> rename -> ``verified``/``complete``) so that every such point is
resumable. A lock file (``flock``, released by the kernel when a process dies) keeps two runs
off one manifest.

States of a file: ``planned`` (known, not started), ``partial`` (a ``.part`` may exist),
``verified`` (renamed into place after its size matched and its bytes matched a sum that came
from elsewhere: DESI's published sha256, or a digest the source offered for the file),
``complete`` (renamed into place after its size matched, with the sha256 of its bytes computed
and recorded, but nothing to check it against: a corrupted transfer would not have been
noticed), ``failed`` (gave up this batch; ``last_error`` says why; retried by the next run) and
``empty`` (the source file has zero bytes). Later stages read ``verified``, ``complete`` and
``empty`` files alike: they are present; the two first differ in what is known of them.

``checksum`` says what a file is checked against: ``published`` (the sha256 in DESI's
``.sha256sum`` list), ``source`` (the source's digest, ``source_digest``, e.g. the MD5 that is an
S3 single-part object's ETag) or ``computed`` (nothing: the sha256 recorded is that of the bytes
received). The database enforces that a ``verified`` file is never ``computed`` and a
``complete`` one always is.

Schema versions (``meta.schema``): 1 had no ``complete`` state (a file without a published sum
was called ``verified``) and one conversion record per coadd; opening a version-1 manifest
read-write migrates it in one transaction (those files become ``complete``, which is what they
were); opening it read-only migrates a private in-memory copy and leaves the file as it is.
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

SCHEMA_VERSION = 2
STATES = ("planned", "partial", "verified", "complete", "failed", "empty")
#: states of a file that is in place locally (what later stages read)
PRESENT = ("verified", "complete", "empty")
CHECKSUM = {"published": "verified against the published .sha256sum",
            "source": "verified against the source's digest",
            "computed": "complete: sha256 computed, nothing to verify it against"}
SPECTRA_STATES = ("planned", "done", "empty", "failed", "superseded")

FILES_TABLE = f"""
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY,               -- DESI relative path, e.g. dr1/vac/dr1/desivast/v1.0/...
    fileset TEXT NOT NULL,               -- desivast, fastspecfit, tiles, healpix, dir
    kind TEXT NOT NULL CHECK (kind IN ('data', 'checksums')),
    size INTEGER,                        -- expected bytes from the source (NULL: not found there)
    sha256_expected TEXT,                -- data: the published sum; checksums: sha256 of the list as parsed
    checksum TEXT NOT NULL CHECK (checksum IN ('published', 'source', 'computed')),
    sha256 TEXT,                         -- of the bytes received; recorded before the rename
    state TEXT NOT NULL CHECK (state IN {STATES}),
    attempts INTEGER NOT NULL DEFAULT 0, -- transfer attempts, all batches
    fetches INTEGER NOT NULL DEFAULT 0,  -- transfers that started at byte 0
    resumes INTEGER NOT NULL DEFAULT 0,  -- transfers that resumed a .part by range
    last_error TEXT,
    source TEXT,                         -- source that delivered the bytes
    batch INTEGER,
    updated TEXT,
    source_digest TEXT,                  -- 'md5:HEX' or 'sha256:HEX' the source offered for the whole file
    digest_from TEXT,                    -- where: ETag, Content-MD5, Digest, Repr-Digest, Content-Digest
    CHECK (state <> 'verified' OR checksum <> 'computed'),
    CHECK (state <> 'complete' OR checksum = 'computed')
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
"""

SPECTRA_TABLE = f"""
CREATE TABLE IF NOT EXISTS spectra(
    coadd TEXT NOT NULL,                 -- the coadd file: relative to raw/ when from there, else absolute
    redrock TEXT NOT NULL,
    output TEXT NOT NULL,                -- the Parquet file relative to spectra/ (written when done)
    selection TEXT NOT NULL,             -- JSON of the selection parameters used
    state TEXT NOT NULL CHECK (state IN {SPECTRA_STATES}),
    n_targets INTEGER, n_spectype INTEGER, n_zwarn INTEGER, n_deltachi2 INTEGER, n_kept INTEGER,
    error TEXT, batch INTEGER, updated TEXT,
    PRIMARY KEY (coadd, output, selection)
);
"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
{FILES_TABLE}
CREATE TABLE IF NOT EXISTS batches(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                  -- transfer or spectra
    started TEXT NOT NULL, finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'incomplete', 'stopped', 'interrupted')),
    source TEXT, params TEXT,
    files INTEGER, bytes INTEGER, verified INTEGER, empty INTEGER, failed INTEGER, seconds REAL,
    note TEXT, complete INTEGER
);
CREATE TABLE IF NOT EXISTS batch_log(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch INTEGER NOT NULL, time TEXT NOT NULL, path TEXT, event TEXT NOT NULL, detail TEXT
);
CREATE INDEX IF NOT EXISTS batch_log_batch ON batch_log(batch);
{SPECTRA_TABLE}
CREATE TABLE IF NOT EXISTS unplanned(
    what TEXT PRIMARY KEY,               -- a request of the last plan that yielded no file
    reason TEXT NOT NULL,
    batch INTEGER
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
    source_digest: str | None = None
    digest_from: str | None = None


FILE_COLUMNS = ", ".join(f.name for f in fields(FileRow))


class ManifestLocked(StageError):
    """Another process holds this manifest."""


def _v1_output(coadd: str) -> str:
    """Where schema 1 wrote a coadd's Parquet file (beside nothing else: one per coadd)."""
    d, name = coadd.rsplit("/", 1) if "/" in coadd else ("", coadd)
    stem = name[len("coadd-"):] if name.startswith("coadd-") else name
    out = f"spectra-{stem[:-5] if stem.endswith('.fits') else stem}.parquet"
    return f"{d}/{out}" if d else out


def migrate(db: sqlite3.Connection) -> int:
    """Bring a manifest to :data:`SCHEMA_VERSION` in one transaction; returns the version found.

    1 -> 2: files gains ``complete`` (files verified against nothing, ``checksum = 'computed'``,
    were called ``verified``: they become ``complete``), ``source`` checksums and the source's
    digest; spectra is keyed on (coadd, output, selection), an empty conversion recording the
    output it would have written; batches count ``complete`` files; ``unplanned`` is new.
    """
    level = db.isolation_level
    db.isolation_level = None  # explicit transaction: DDL and data move together
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            found = None
            if has_meta:
                row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                found = int(row[0]) if row else None
            if found is None:  # a new file
                for stmt in _statements(SCHEMA):
                    db.execute(stmt)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif found == 1:
                _migrate_1_to_2(db)
            elif found > SCHEMA_VERSION:
                raise StageError(f"manifest schema {found} is newer than this desivoids ({SCHEMA_VERSION})")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.isolation_level = level
    return SCHEMA_VERSION if found is None else found


def _statements(script: str) -> list[str]:
    out, cur = [], []
    for line in script.splitlines():
        cur.append(line.split("--", 1)[0])
        if line.rstrip().endswith(";"):
            out.append("\n".join(cur))
            cur = []
    return [s for s in out if s.strip(" \n;")]


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE files RENAME TO files_v1")
    db.execute("DROP INDEX IF EXISTS files_state")
    for stmt in _statements(FILES_TABLE):
        db.execute(stmt)
    db.execute("""INSERT INTO files(path, fileset, kind, size, sha256_expected, checksum, sha256, state, attempts,
                  fetches, resumes, last_error, source, batch, updated)
                  SELECT path, fileset, kind, size, sha256_expected, checksum, sha256,
                         CASE WHEN state = 'verified' AND checksum = 'computed' THEN 'complete' ELSE state END,
                         attempts, fetches, resumes, last_error, source, batch, updated FROM files_v1""")
    db.execute("DROP TABLE files_v1")
    db.execute("ALTER TABLE spectra RENAME TO spectra_v1")
    for stmt in _statements(SPECTRA_TABLE):
        db.execute(stmt)
    old = db.execute("SELECT coadd, redrock, output, selection, state, n_targets, n_spectype, n_zwarn, "
                     "n_deltachi2, n_kept, error, batch, updated FROM spectra_v1").fetchall()
    db.executemany("INSERT INTO spectra VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   [(r[0], r[1], r[2] or _v1_output(r[0]), *r[3:]) for r in old])
    db.execute("DROP TABLE spectra_v1")
    db.execute("ALTER TABLE batches ADD COLUMN complete INTEGER")
    for stmt in _statements(SCHEMA):  # what is new (unplanned), the rest exists
        db.execute(stmt)
    db.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION),))


class Manifest:
    """Thread-safe access to one state file (one connection behind a lock)."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no acquire manifest")
            # A reader leaves acquire's folder as it is: with no write-ahead log beside the file
            # (acquire ended and checkpointed) it is opened immutable, so SQLite creates no
            # -wal/-shm files in a folder another stage owns; with one, it must be read.
            wal = self.path.with_name(self.path.name + "-wal").exists()
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro{'' if wal else '&immutable=1'}", uri=True,
                                      check_same_thread=False)
            # A run killed before its first commit leaves a file with no tables: read as empty.
            has_meta = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='meta'").fetchone()
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() if has_meta else None
            if row is None or int(row[0]) < SCHEMA_VERSION:  # read an up-to-date copy, touch nothing
                mem = sqlite3.connect(":memory:", check_same_thread=False)
                self.db.backup(mem)
                self.db.close()
                self.db = mem
                migrate(self.db)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (the OS holds the
            # WAL); only a power cut can lose the last commits, which a rerun re-verifies anyway.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.migrated_from = migrate(self.db)
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
    def schema(self) -> int:
        with self._mu:
            return int(self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()[0])

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

    def verified_by(self) -> dict[str, int]:
        """Verified files by what they were verified against: {'published': n, 'source': m}."""
        with self._mu:
            got = dict(self.db.execute("SELECT checksum, count(*) FROM files WHERE state='verified' "
                                       "GROUP BY checksum").fetchall())
        return {k: int(got.get(k, 0)) for k in ("published", "source")}

    def throughput(self) -> float | None:
        """Bytes/s measured over earlier transfer batches (None before any)."""
        with self._mu:
            b, s = self.db.execute("SELECT sum(bytes), sum(seconds) FROM batches WHERE kind='transfer' "
                                   "AND bytes > 0 AND seconds > 0").fetchone()
        return (b / s) if b and s else None

    # ------------------------------------------------------------------ plan
    def plan(self, rows: Iterable[FileRow], batch: int | None = None) -> dict:
        """Insert new files; a known file keeps its state unless its size, published checksum or
        source digest changed at the source (then it is planned again, and the change is logged).
        A file not found at the source is recorded as ``failed`` with the reason (a copy in place
        is kept). Returns counts and ``changed_paths`` (whose local copies and .part files are
        now stale)."""
        added = changed = kept = 0
        changed_paths = []
        with self._mu, self.db:
            for r in rows:
                old = self.db.execute("SELECT size, sha256_expected, source_digest, state FROM files "
                                      "WHERE path=?", (r.path,)).fetchone()
                if old is None:
                    self.db.execute(
                        "INSERT INTO files(path, fileset, kind, size, sha256_expected, checksum, state, "
                        "last_error, batch, updated, source_digest, digest_from) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (r.path, r.fileset, r.kind, r.size, r.sha256_expected, r.checksum,
                         r.state, r.last_error, batch, now(), r.source_digest, r.digest_from))
                    added += 1
                elif r.size is None:
                    if old["state"] not in PRESENT:
                        self.db.execute("UPDATE files SET state='failed', last_error=?, batch=?, updated=? "
                                        "WHERE path=?", (r.last_error, batch, now(), r.path))
                    kept += 1
                elif (old["size"], old["sha256_expected"]) != (r.size, r.sha256_expected) or (
                        r.source_digest and old["source_digest"] and r.source_digest != old["source_digest"]):
                    self.db.execute(
                        "UPDATE files SET fileset=?, kind=?, size=?, sha256_expected=?, checksum=?, "
                        "sha256=NULL, state='planned', last_error=?, batch=?, updated=?, source_digest=?, "
                        "digest_from=? WHERE path=?",
                        (r.fileset, r.kind, r.size, r.sha256_expected, r.checksum,
                         f"changed at source (was {old['size']} B, sha256 {old['sha256_expected']}, "
                         f"digest {old['source_digest']})", batch, now(), r.source_digest, r.digest_from, r.path))
                    if batch is not None:
                        self._log(batch, r.path, "changed", f"size/checksum changed at source; was {old['state']}")
                    changed += 1
                    changed_paths.append(r.path)
                else:
                    if r.source_digest and not old["source_digest"]:
                        self.db.execute("UPDATE files SET source_digest=?, digest_from=? WHERE path=?",
                                        (r.source_digest, r.digest_from, r.path))
                    kept += 1
        return {"added": added, "changed": changed, "kept": kept, "changed_paths": changed_paths}

    def set_unplanned(self, problems: Iterable[tuple[str, str]], batch: int | None) -> None:
        """The requests of the latest plan that yielded no file, with why (replaces the last)."""
        with self._mu, self.db:
            self.db.execute("DELETE FROM unplanned")
            self.db.executemany("INSERT OR REPLACE INTO unplanned VALUES (?,?,?)",
                                [(w, r, batch) for w, r in problems])

    def unplanned(self) -> list[tuple[str, str]]:
        with self._mu:
            return [(r[0], r[1]) for r in self.db.execute("SELECT what, reason FROM unplanned ORDER BY what")]

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

    def digest(self, path: str, digest: str | None, origin: str | None) -> None:
        """The source's digest of the whole file, as the response that is delivering it said."""
        self._set(path, source_digest=digest, digest_from=origin)

    def received(self, path: str, sha256: str, checksum: str) -> None:
        """The complete .part matched its size (and every sum there was to check): recorded
        before the rename, with what it was checked against, so that a kill between rename and
        ``verified``/``complete`` is recognised on resume."""
        self._set(path, sha256=sha256, checksum=checksum)

    def present(self, path: str, sha256: str, checksum: str, source: str, batch: int) -> str:
        """The file is in place: ``verified`` when ``checksum`` names something it was checked
        against, else ``complete``. Returns the state."""
        state = "complete" if checksum == "computed" else "verified"
        self._set(path, sha256=sha256, checksum=checksum, state=state, last_error=None, source=source,
                  batch=batch)
        return state

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
                  complete: int = 0, empty: int = 0, failed: int = 0, seconds: float = 0.0,
                  note: str | None = None) -> None:
        with self._mu, self.db:
            self.db.execute("UPDATE batches SET finished=?, status=?, files=?, bytes=?, verified=?, complete=?, "
                            "empty=?, failed=?, seconds=?, note=? WHERE id=?",
                            (now(), status, files, bytes, verified, complete, empty, failed, seconds, note, batch))

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
    def spectra_rows(self, selection: str | None = None) -> list[dict]:
        """Conversion records (of one selection, a :meth:`Selection.key`, if given)."""
        where, args = ("WHERE selection=?", (selection,)) if selection is not None else ("", ())
        with self._mu:
            return [dict(r) for r in self.db.execute(
                f"SELECT * FROM spectra {where} ORDER BY coadd, output, selection", args)]

    def spectra_get(self, coadd: str, output: str, selection: str) -> dict | None:
        with self._mu:
            r = self.db.execute("SELECT * FROM spectra WHERE coadd=? AND output=? AND selection=?",
                                (coadd, output, selection)).fetchone()
        return dict(r) if r else None

    def spectra_set(self, coadd: str, output: str, selection: str, **cols) -> None:
        """Insert or update the record of (coadd, output, selection). A finished conversion
        marks any other coadd's record of the same output and selection ``superseded``: that
        file now holds this coadd's rows."""
        cols["updated"] = now()
        names = ["coadd", "output", "selection", *cols]
        q = ",".join("?" * len(names))
        upd = ", ".join(f"{k}=excluded.{k}" for k in cols)
        with self._mu, self.db:
            self.db.execute(f"INSERT INTO spectra({', '.join(names)}) VALUES ({q}) "
                            f"ON CONFLICT(coadd, output, selection) DO UPDATE SET {upd}",
                            (coadd, output, selection, *cols.values()))
            if cols.get("state") in ("done", "empty"):
                self.db.execute("UPDATE spectra SET state='superseded', updated=? WHERE output=? AND selection=? "
                                "AND coadd<>? AND state IN ('done', 'empty')", (now(), output, selection, coadd))
