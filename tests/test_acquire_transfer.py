"""acquire transfers against a loopback HTTP server with fault injection: every file ends
sha256-identical to its source or failed with a reason, a corrupt file is never verified, partial
files resume by range, dry runs fetch nothing, the disk guard stops cleanly and reruns fetch
nothing that is already verified."""
from __future__ import annotations

import sqlite3
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from acquire_fixtures import FaultyHTTPServer, random_files, sha256_of, write_tree  # noqa: E402

from desivoids.acquire.manifest import Manifest, ManifestLocked  # noqa: E402
from desivoids.acquire.steps import acquire, manifest_rows, plan_run  # noqa: E402
from desivoids.acquire.sources import HTTPSource  # noqa: E402
from desivoids.acquire.transfer import Options  # noqa: E402

D = "dr1/vac/dr1/test/v1.0"


@pytest.fixture
def tree(tmp_path):
    rng = np.random.default_rng(7)
    src = tmp_path / "src"
    files = random_files(rng, 6, 20_000, 300_000, D)
    sums = write_tree(src, files)
    return src, files, sums


def opts(**kw):
    base = dict(workers=3, retries=4, backoff=0.01, max_backoff=0.05, progress=False, min_free=0)
    base.update(kw)
    return Options(**base)


def fetch(server, tmp_path, *, resume=False, timeout=(2.0, 2.0), sets=("dir",), dirs=(D,), **kw):
    src = HTTPSource(server.url, timeout=timeout, chunk=16 * 1024)
    return acquire(src, tmp_path / "raw", tmp_path / "m.sqlite", sets, dirs=dirs, resume=resume, options=opts(**kw))


def assert_identical(tmp_path, src, files):
    for rel in files:
        assert sha256_of(tmp_path / "raw" / rel) == sha256_of(src / rel), rel


def data_gets(server, files):
    return [g for g in server.gets() if g.path in files]


def test_clean_fetch_verifies_every_file_against_the_published_sums(tree, tmp_path):
    src, files, sums = tree
    with FaultyHTTPServer(src) as server:
        s = fetch(server, tmp_path)
        assert s.status == "done" and not s.failed
        assert s.verified == len(files) + 1  # plus the checksum list itself
        agents = {e.user_agent for e in server.log if e.path in files}
    assert_identical(tmp_path, src, files)
    assert len(agents) == 1 and agents.pop().startswith("desivoids/")
    rows = {r["path"]: r for r in manifest_rows(tmp_path / "m.sqlite")}
    for rel in files:
        assert rows[rel]["state"] == "verified"
        assert rows[rel]["sha256"] == sums[rel]
        assert rows[rel]["checksum"] == "published .sha256sum"
    sumrow = rows[f"{D}/dr1_vac_dr1_test_v1.0.sha256sum"]
    assert sumrow["kind"] == "checksums" and sumrow["state"] == "verified"
    assert not list((tmp_path / "raw").rglob("*.part"))


def test_without_published_sums_the_checksum_is_marked_computed(tmp_path):
    rng = np.random.default_rng(3)
    files = random_files(rng, 3, 1000, 5000, D)
    write_tree(tmp_path / "src", files, sums=False)
    with FaultyHTTPServer(tmp_path / "src") as server:
        s = fetch(server, tmp_path)
    assert s.status == "done"
    rows = manifest_rows(tmp_path / "m.sqlite")
    assert {r["checksum"] for r in rows} == {"computed, not verified against a published sum"}
    for r in rows:
        assert r["sha256"] == sha256_of(tmp_path / "src" / r["path"])


@pytest.mark.parametrize("fault", ["500", "503", "drop", "badlen", "shortlen", "stall", "reset", "flip"])
def test_each_fault_is_retried_until_the_file_verifies(tree, tmp_path, fault):
    src, files, _ = tree
    victim = sorted(files)[2]
    with FaultyHTTPServer(src, stall_seconds=2.5) as server:
        server.add_fault(victim, fault, fault)
        s = fetch(server, tmp_path, timeout=(2.0, 1.0))
        gets = server.gets(victim)
    assert s.status == "done", s
    assert_identical(tmp_path, src, files)
    assert len(gets) == 3  # two faulty answers, then a good one
    row = Manifest(tmp_path / "m.sqlite", readonly=True).get(victim)
    assert row.attempts == 3 and row.state == "verified"
    if fault in ("drop", "badlen", "shortlen", "stall"):
        # the bytes that arrived were kept: the retries asked for the rest by range
        assert 0 < gets[1].start <= gets[2].start < len(files[victim])
        assert row.resumes == 2 and row.fetches == 1
    if fault == "flip":  # a corrupt body is discarded whole: every retry starts at byte 0
        assert [g.start for g in gets] == [0, 0, 0]


def test_a_corrupted_file_never_reaches_verified(tree, tmp_path):
    src, files, sums = tree
    victim = sorted(files)[0]
    with FaultyHTTPServer(src) as server:
        server.always[victim] = "flip"
        s = fetch(server, tmp_path, retries=3)
        assert len(server.gets(victim)) == 4
    assert s.status == "incomplete"
    assert [p for p, _ in s.failed] == [victim]
    reason = dict(s.failed)[victim]
    assert "sha256 mismatch" in reason and sums[victim] in reason
    assert not (tmp_path / "raw" / victim).exists()
    assert not (tmp_path / "raw" / (victim + ".part")).exists()
    row = Manifest(tmp_path / "m.sqlite", readonly=True).get(victim)
    assert row.state == "failed" and row.sha256 is None
    assert_identical(tmp_path, src, [f for f in files if f != victim])


def test_persistent_server_errors_fail_with_the_reason_after_the_retries(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[1]
    with FaultyHTTPServer(src) as server:
        server.always[victim] = "500"
        s = fetch(server, tmp_path, retries=2)
        assert len(server.gets(victim)) == 3
    assert dict(s.failed)[victim].startswith("gave up after 3 attempts: Transient")
    assert "HTTP 500" in dict(s.failed)[victim]
    assert s.verified == len(files)  # the others (and the checksum list) are fine


def test_range_ignored_by_the_server_restarts_from_zero(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[3]
    with FaultyHTTPServer(src, ranges=False) as server:
        server.add_fault(victim, "drop")
        s = fetch(server, tmp_path)
        gets = server.gets(victim)
    assert s.status == "done"
    assert_identical(tmp_path, src, files)
    assert [g.start for g in gets] == [0, 0]


def test_missing_file_is_recorded_failed_not_dropped(tree, tmp_path):
    src, files, _ = tree
    with FaultyHTTPServer(src) as server:
        s = fetch(server, tmp_path, sets=("desivast",), dirs=())
    assert s.status == "incomplete"
    assert len(s.failed) == 8
    assert all("not found at source" in why for _, why in s.failed)


def test_dry_run_lists_and_fetches_nothing(tree, tmp_path):
    src, files, _ = tree
    with FaultyHTTPServer(src) as server:
        dr = plan_run(HTTPSource(server.url), tmp_path / "raw", tmp_path / "m.sqlite", ["dir"], dirs=[D])
        assert not data_gets(server, files)  # sizes came from HEAD requests
    assert not (tmp_path / "raw").exists() and not (tmp_path / "m.sqlite").exists()
    assert {r["path"] for r in dr.rows()} >= set(files)
    assert dr.fetch_bytes == sum(len(b) for b in files.values()) + (src / D / "dr1_vac_dr1_test_v1.0.sha256sum").stat().st_size
    assert dr.fits and not dr.rate_measured
    text = str(dr)
    assert "dry run: nothing downloaded" in text and "free disk" in text and "estimated time" in text


def test_rerun_and_resume_fetch_nothing_verified(tree, tmp_path):
    src, files, _ = tree
    with FaultyHTTPServer(src) as server:
        fetch(server, tmp_path)
        n = len(server.log)
        s2 = fetch(server, tmp_path)  # re-plans (HEAD, listings) but fetches no data
        assert not data_gets(server, files)[len(files):]
        assert s2.fetched_files == 0 and s2.status == "done"
        n2 = len(server.log)
        s3 = fetch(server, tmp_path, resume=True)  # trusts the manifest: no request at all
        assert len(server.log) == n2 and s3.status == "done"
    assert n2 > n


def test_verified_file_deleted_locally_is_fetched_again(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[4]
    with FaultyHTTPServer(src) as server:
        fetch(server, tmp_path)
        (tmp_path / "raw" / victim).unlink()
        s = fetch(server, tmp_path, resume=True)
        assert len(server.gets(victim)) == 2
    assert s.fetched_files == 1 and s.status == "done"
    assert_identical(tmp_path, src, files)


def test_kill_between_rename_and_verified_is_accepted_without_refetch(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[5]
    with FaultyHTTPServer(src) as server:
        fetch(server, tmp_path)
        with sqlite3.connect(tmp_path / "m.sqlite") as db:  # as if killed right after the rename
            db.execute("UPDATE files SET state='partial' WHERE path=?", (victim,))
        s = fetch(server, tmp_path, resume=True)
        assert len(server.gets(victim)) == 1
    assert s.status == "done" and s.fetched_files == 0
    assert Manifest(tmp_path / "m.sqlite", readonly=True).get(victim).state == "verified"


def test_a_file_in_place_with_the_right_size_but_wrong_bytes_is_fetched_again(tree, tmp_path):
    """A complete file at its final path is accepted without a transfer only when its sha256
    matches: here its size is right, one byte is not."""
    src, files, _ = tree
    victim = sorted(files)[2]
    with FaultyHTTPServer(src) as server:
        fetch(server, tmp_path)
        local = tmp_path / "raw" / victim
        damaged = bytearray(local.read_bytes())
        damaged[100] ^= 0xFF
        local.write_bytes(bytes(damaged))
        with sqlite3.connect(tmp_path / "m.sqlite") as db:  # as if killed right after the rename
            db.execute("UPDATE files SET state='partial' WHERE path=?", (victim,))
        s = fetch(server, tmp_path, resume=True)
        assert len(server.gets(victim)) == 2
    assert s.status == "done"
    assert_identical(tmp_path, src, files)


def test_stale_part_with_wrong_bytes_is_detected_and_refetched(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[0]
    part = tmp_path / "raw" / (victim + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * 5000)  # garbage left by some earlier crash
    with FaultyHTTPServer(src) as server:
        s = fetch(server, tmp_path)
        starts = [g.start for g in server.gets(victim)]
    assert s.status == "done"
    assert starts == [5000, 0]  # resumed, failed the checksum, started over
    assert_identical(tmp_path, src, files)


def test_changed_source_file_is_planned_again(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[1]
    with FaultyHTTPServer(src) as server:
        fetch(server, tmp_path)
        files = dict(files)
        files[victim] = b"new content" * 1000
        write_tree(src, files)
        s = fetch(server, tmp_path)
    assert s.status == "done" and s.fetched_files == 2  # the file and its new checksum list
    assert_identical(tmp_path, src, files)


def test_empty_source_file_is_recorded_empty(tmp_path):
    files = {f"{D}/a.fits": b"x" * 3000, f"{D}/empty.fits": b""}
    write_tree(tmp_path / "src", files)
    with FaultyHTTPServer(tmp_path / "src") as server:
        s = fetch(server, tmp_path)
    assert s.status == "done" and s.empty == 1
    assert (tmp_path / "raw" / D / "empty.fits").stat().st_size == 0


Usage = namedtuple("Usage", "total used free")


def test_disk_guard_stops_cleanly_and_resume_finishes(tree, tmp_path):
    src, files, _ = tree
    total = sum(len(b) for b in files.values())
    room = {"free": 10**9}

    def fake_usage(path):
        written = sum(p.stat().st_size for p in (tmp_path / "raw").rglob("*") if p.is_file())
        return Usage(10**10, written, room["free"] - written)

    with FaultyHTTPServer(src) as server:
        room["free"] = total // 2 + 1_000_000  # fits roughly half of the files above the reserve
        s = fetch(server, tmp_path, workers=1, min_free=1_000_000, disk_usage=fake_usage)
        assert s.status == "stopped" and s.note.startswith("disk guard")
        assert 0 < s.verified < len(files) and s.remaining > 0 and not s.failed
        assert not list((tmp_path / "raw").rglob("*.part"))
        room["free"] = 10**9
        s2 = fetch(server, tmp_path, resume=True, disk_usage=fake_usage)
    assert s2.status == "done"
    assert_identical(tmp_path, src, files)


def test_one_run_at_a_time_per_manifest(tmp_path):
    with Manifest(tmp_path / "m.sqlite") as a:
        a.lock()
        with Manifest(tmp_path / "m.sqlite") as b, pytest.raises(ManifestLocked):
            b.lock()
    with Manifest(tmp_path / "m.sqlite") as c:  # released with its holder
        c.lock()


def test_batches_and_their_logs_are_recorded(tree, tmp_path):
    src, files, _ = tree
    victim = sorted(files)[0]
    with FaultyHTTPServer(src) as server:
        server.add_fault(victim, "500")
        fetch(server, tmp_path)
    with Manifest(tmp_path / "m.sqlite", readonly=True) as m:
        (b,) = m.batches()
        assert b["status"] == "done" and b["verified"] == len(files) + 1
        log = m.batch_log(b["id"])
    events = [(e["path"], e["event"]) for e in log]
    assert (victim, "retry") in events and (victim, "verified") in events
    assert events[0][1] == "plan"


@pytest.mark.parametrize("good", [True, False])
def test_complete_part_left_by_a_kill_is_verified_without_a_request(tree, tmp_path, good):
    src, files, _ = tree
    victim = sorted(files)[2]
    data = files[victim] if good else bytes(len(files[victim]))
    part = tmp_path / "raw" / (victim + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data)
    with FaultyHTTPServer(src) as server:
        s = fetch(server, tmp_path)
        starts = [g.start for g in server.gets(victim)]
    assert s.status == "done"
    assert starts == ([] if good else [0])
    assert_identical(tmp_path, src, files)


def test_stale_part_of_a_changed_file_is_not_resumed_even_without_published_sums(tmp_path):
    old = {f"{D}/a.fits": bytes(range(256)) * 40, f"{D}/b.fits": b"b" * 5000}
    write_tree(tmp_path / "src", old, sums=False)
    with FaultyHTTPServer(tmp_path / "src") as server:
        fetch(server, tmp_path)
        victim = f"{D}/a.fits"
        part = tmp_path / "raw" / (victim + ".part")
        part.write_bytes(old[victim][:4000])  # as if a later transfer of the old version was cut
        new = {victim: b"\x07" * 12000}
        write_tree(tmp_path / "src", new, sums=False)
        s = fetch(server, tmp_path)
        starts = [g.start for g in server.gets(victim)]
    assert s.status == "done"
    assert (tmp_path / "raw" / victim).read_bytes() == new[victim]
    assert starts == [0, 0]
