"""The acquire manifest's schema: version 2 keeps 'verified' and 'complete' apart and keys
conversion records on (coadd, output, selection); a version-1 manifest (as written before) is
migrated in one transaction when opened read-write, and read through a migrated copy when opened
read-only."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from acquire_fixtures import FaultyHTTPServer, write_tree

from desivoids.acquire.manifest import SCHEMA_VERSION, Manifest
from desivoids.acquire.sources import HTTPSource
from desivoids.acquire.steps import acquire
from desivoids.acquire.transfer import Options

D = "dr1/vac/dr1/migrate/v1"

#: the manifest schema of version 1, as desivoids wrote it before (copied, not imported)
V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE files(
    path TEXT PRIMARY KEY, fileset TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('data', 'checksums')),
    size INTEGER, sha256_expected TEXT,
    checksum TEXT NOT NULL CHECK (checksum IN ('published', 'computed')),
    sha256 TEXT,
    state TEXT NOT NULL CHECK (state IN ('planned', 'partial', 'verified', 'failed', 'empty')),
    attempts INTEGER NOT NULL DEFAULT 0, fetches INTEGER NOT NULL DEFAULT 0, resumes INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, source TEXT, batch INTEGER, updated TEXT
);
CREATE INDEX files_state ON files(state);
CREATE TABLE batches(
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'incomplete', 'stopped', 'interrupted')),
    source TEXT, params TEXT,
    files INTEGER, bytes INTEGER, verified INTEGER, empty INTEGER, failed INTEGER, seconds REAL, note TEXT
);
CREATE TABLE batch_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, batch INTEGER NOT NULL, time TEXT NOT NULL,
    path TEXT, event TEXT NOT NULL, detail TEXT);
CREATE TABLE spectra(
    coadd TEXT PRIMARY KEY, redrock TEXT NOT NULL, output TEXT, selection TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('planned', 'done', 'empty', 'failed')),
    n_targets INTEGER, n_spectype INTEGER, n_zwarn INTEGER, n_deltachi2 INTEGER, n_kept INTEGER,
    error TEXT, batch INTEGER, updated TEXT
);
INSERT INTO meta VALUES ('schema', '1');
"""


def v1_manifest(path: Path, files: dict[str, str]) -> None:
    """A version-1 manifest: a.fits verified against a published sum, b.fits 'verified' with
    nothing to check it against, the list itself likewise, and one empty conversion."""
    db = sqlite3.connect(path)
    db.executescript(V1)
    lst = f"{D}/dr1_vac_dr1_migrate_v1.sha256sum"
    rows = [(f"{D}/a.fits", "data", 5, files[f"{D}/a.fits"], "published"),
            (f"{D}/b.fits", "data", 7, None, "computed"),
            (lst, "checksums", 81, "0" * 64, "computed")]
    for p, kind, size, expected, checksum in rows:
        db.execute("INSERT INTO files(path, fileset, kind, size, sha256_expected, checksum, sha256, state) "
                   "VALUES (?, 'dir', ?, ?, ?, ?, ?, 'verified')", (p, kind, size, expected, checksum, files.get(p)))
    db.execute("INSERT INTO spectra(coadd, redrock, output, selection, state, n_targets, n_kept) VALUES "
               "('t/coadd-1-2-thru20220101.fits', 't/redrock-1-2-thru20220101.fits', NULL, '{}', 'empty', 3, 0)")
    db.commit()
    db.close()


@pytest.fixture
def old(tmp_path):
    files = write_tree(tmp_path / "src", {f"{D}/a.fits": b"aaaaa", f"{D}/b.fits": b"bbbbbbb"}, sums=False)
    v1_manifest(tmp_path / "m.sqlite", files)
    return tmp_path / "m.sqlite"


def test_a_read_only_open_migrates_a_copy_and_leaves_the_file_alone(old):
    with Manifest(old, readonly=True) as m:
        assert m.schema() == SCHEMA_VERSION
        assert {r.path.rsplit("/", 1)[1]: r.state for r in m.files()} == {
            "a.fits": "verified", "b.fits": "complete", "dr1_vac_dr1_migrate_v1.sha256sum": "complete"}
    db = sqlite3.connect(old)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("1",)
    assert db.execute("SELECT count(*) FROM files WHERE state='verified'").fetchone() == (3,)


@pytest.mark.parametrize("left", ["nothing", "wal header"])
def test_a_manifest_a_kill_left_before_its_first_commit_reads_as_empty(tmp_path, left):
    """acquire killed between creating its manifest and committing the schema: a rerun's plan
    (a read-only open) sees no files, and the file is left as it was."""
    path = tmp_path / "m.sqlite"
    db = sqlite3.connect(path)
    if left == "wal header":
        db.execute("PRAGMA journal_mode=WAL")
    db.close()
    path.touch()
    before = path.read_bytes()
    with Manifest(path, readonly=True) as m:
        assert m.schema() == SCHEMA_VERSION and m.files() == [] and m.batches() == []
    assert path.read_bytes() == before
    with Manifest(path) as m:  # and the rerun's writer creates the schema in it
        assert m.migrated_from == SCHEMA_VERSION and m.files() == []


def test_a_read_write_open_migrates_the_file_in_place(old):
    with Manifest(old) as m:
        assert m.migrated_from == 1 and m.schema() == SCHEMA_VERSION
        assert m.counts()["verified"] == 1 and m.counts()["complete"] == 2
        (conv,) = m.spectra_rows()
        assert conv["output"] == "t/spectra-1-2-thru20220101.parquet" and conv["state"] == "empty"
        assert m.batches() == [] and m.unplanned() == []
    db = sqlite3.connect(old)
    assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (str(SCHEMA_VERSION),)
    with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses 'verified' with nothing checked
        db.execute("UPDATE files SET state='verified' WHERE checksum='computed'")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("UPDATE files SET state='complete' WHERE checksum='published'")
    db.rollback()
    db.close()
    with Manifest(old) as m:  # opening again is a no-op
        assert m.migrated_from == SCHEMA_VERSION


def test_a_migrated_manifest_resumes_without_fetching_what_is_in_place(old, tmp_path):
    raw = tmp_path / "raw"
    for name, data in (("a.fits", b"aaaaa"), ("b.fits", b"bbbbbbb")):
        (raw / D).mkdir(parents=True, exist_ok=True)
        (raw / D / name).write_bytes(data)
    with sqlite3.connect(old) as db:  # the list was never fetched in this old run
        db.execute("DELETE FROM files WHERE kind='checksums'")
    with FaultyHTTPServer(tmp_path / "src") as server:
        s = acquire(HTTPSource(server.url), raw, old, ["dir"], dirs=[D], resume=True,
                    options=Options(progress=False, min_free=0))
        assert not server.gets()
    assert s.status == "done" and (s.verified, s.complete) == (1, 1)
