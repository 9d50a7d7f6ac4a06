"""acquire transfers against a loopback HTTP server with fault injection: every file ends
sha256-identical to its source or failed with a reason, a corrupt file is never verified, partial
files resume by range, dry runs fetch nothing, the disk guard stops cleanly and reruns fetch
nothing that is already verified."""
from __future__ import annotations

import os
import sqlite3
import sys
from collections import namedtuple

import numpy as np
import pytest

from acquire_fixtures import FaultyHTTPServer, closed_port, random_files, sha256_of, write_tree

from desivoids.acquire.manifest import Manifest, ManifestLocked
from desivoids.acquire.steps import acquire, manifest_rows, plan_run
from desivoids.acquire.sources import HTTPSource
from desivoids.acquire.transfer import Options

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
        assert s.verified == len(files)
        assert s.complete == 1  # the checksum list itself: nothing published to verify it against
        agents = {e.user_agent for e in server.log if e.path in files}
    assert_identical(tmp_path, src, files)
    assert len(agents) == 1 and agents.pop().startswith("desivoids/")
    rows = {r["path"]: r for r in manifest_rows(tmp_path / "m.sqlite")}
    for rel in files:
        assert rows[rel]["state"] == "verified"
        assert rows[rel]["sha256"] == sums[rel]
        assert rows[rel]["checksum"] == "verified against the published .sha256sum"
    sumrow = rows[f"{D}/dr1_vac_dr1_test_v1.0.sha256sum"]
    assert sumrow["kind"] == "checksums" and sumrow["state"] == "complete"
    assert not list((tmp_path / "raw").rglob("*.part"))


def test_without_published_sums_the_checksum_is_marked_computed(tmp_path):
    rng = np.random.default_rng(3)
    files = random_files(rng, 3, 1000, 5000, D)
    write_tree(tmp_path / "src", files, sums=False)
    with FaultyHTTPServer(tmp_path / "src") as server:
        s = fetch(server, tmp_path)
    assert s.status == "done" and (s.verified, s.complete) == (0, 3)
    rows = manifest_rows(tmp_path / "m.sqlite")
    assert {r["checksum"] for r in rows} == {"complete: sha256 computed, nothing to verify it against"}
    assert {r["state"] for r in rows} == {"complete"}
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
    assert (s.verified, s.complete) == (len(files) - 1, 1)  # the others and the checksum list are fine


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
    sums = (src / D / "dr1_vac_dr1_test_v1.0.sha256sum").stat().st_size
    assert dr.fetch_bytes == sum(len(b) for b in files.values()) + sums
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
        assert b["status"] == "done" and (b["verified"], b["complete"]) == (len(files), 1)
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


# ------------------------------------------------------------------ issue 8.2: verified vs complete
def test_without_a_published_sum_a_flipped_byte_is_complete_never_verified(tmp_path):
    """Nothing to check a file against: it is accepted as *complete* (size matched, sha256
    recorded) and the summary says so; it is not called verified."""
    rng = np.random.default_rng(82)
    files = random_files(rng, 4, 3000, 9000, D)
    write_tree(tmp_path / "src", files, sums=False)
    victim = sorted(files)[1]
    with FaultyHTTPServer(tmp_path / "src") as server:
        server.always[victim] = "flip"
        s = fetch(server, tmp_path)
    row = Manifest(tmp_path / "m.sqlite", readonly=True).get(victim)
    assert row.state == "complete" and row.checksum == "computed"
    assert "verified 0" in str(s) and f"complete {len(files)}" in str(s) and "not verified" in str(s)
    assert s.status == "done" and (s.verified, s.complete) == (0, len(files))
    assert row.sha256 == sha256_of(tmp_path / "raw" / victim) != sha256_of(tmp_path / "src" / victim)


@pytest.mark.parametrize("digest", ["content-md5", "digest-md5", "digest-sha256", "repr-digest", "s3-etag"])
def test_a_source_digest_catches_a_flipped_byte_and_verifies_without_a_published_sum(tmp_path, digest):
    rng = np.random.default_rng(83)
    files = random_files(rng, 3, 3000, 9000, D)
    write_tree(tmp_path / "src", files, sums=False)
    victim = sorted(files)[0]
    with FaultyHTTPServer(tmp_path / "src", digests=(digest,)) as server:
        server.add_fault(victim, "flip")
        s = fetch(server, tmp_path)
        assert len(server.gets(victim)) == 2  # the flipped body was caught and fetched again
    assert s.status == "done" and (s.verified, s.verified_source, s.complete) == (len(files), len(files), 0)
    assert_identical(tmp_path, tmp_path / "src", files)
    row = Manifest(tmp_path / "m.sqlite", readonly=True).get(victim)
    assert row.state == "verified" and row.checksum == "source" and row.digest_from
    log = [e["detail"] for e in Manifest(tmp_path / "m.sqlite", readonly=True).batch_log(1)
           if e["path"] == victim and e["event"] == "retry"]
    assert log and "mismatch" in log[0] and "the source's" in log[0]


def test_a_persistently_corrupt_body_fails_against_the_source_digest(tmp_path):
    files = {f"{D}/a.fits": b"a" * 5000}
    write_tree(tmp_path / "src", files, sums=False)
    with FaultyHTTPServer(tmp_path / "src", digests=("content-md5",)) as server:
        server.always[f"{D}/a.fits"] = "flip"
        s = fetch(server, tmp_path, retries=2)
    assert s.status == "incomplete" and "md5 mismatch" in dict(s.failed)[f"{D}/a.fits"]
    assert not (tmp_path / "raw" / D / "a.fits").exists()


def test_a_resumed_transfer_is_checked_against_the_digest_of_its_first_response(tmp_path):
    """Content-MD5 comes only with a full (200) response: the 206 that finishes a dropped
    transfer carries none, and the md5 of the whole file (.part prefix + rest) is still checked."""
    files = {f"{D}/a.fits": bytes(range(256)) * 200}
    write_tree(tmp_path / "src", files, sums=False)
    with FaultyHTTPServer(tmp_path / "src", digests=("content-md5",)) as server:
        server.add_fault(f"{D}/a.fits", "drop")
        s = fetch(server, tmp_path)
        starts = [g.start for g in server.gets(f"{D}/a.fits")]
    assert starts[0] == 0 and starts[1] > 0
    row = Manifest(tmp_path / "m.sqlite", readonly=True).get(f"{D}/a.fits")
    assert s.status == "done" and row.checksum == "source" and row.state == "verified"
    assert row.digest_from == "Content-MD5"


def test_a_found_complete_file_stays_complete_on_resume(tmp_path):
    """A kill between the rename and the state change: the file is recognised by the sha256
    recorded before the rename, and keeps what it was checked against."""
    files = {f"{D}/a.fits": b"x" * 4000}
    write_tree(tmp_path / "src", files, sums=False)
    with FaultyHTTPServer(tmp_path / "src") as server:
        fetch(server, tmp_path)
        with sqlite3.connect(tmp_path / "m.sqlite") as db:
            db.execute("UPDATE files SET state='partial'")
        s = fetch(server, tmp_path, resume=True)
        assert len(server.gets(f"{D}/a.fits")) == 1
    assert Manifest(tmp_path / "m.sqlite", readonly=True).get(f"{D}/a.fits").state == "complete"
    assert (s.verified, s.complete) == (0, 1)


# ------------------------------------------------------------------ issue 8.4: an unreachable source
def _planned_not_fetched(tmp_path, n=37):
    """A run folder whose manifest plans ``n`` files and has fetched none (the disk guard stopped
    it at once), as after a first run that was cut short."""
    from desivoids.acquire import run as stage_run
    from desivoids.errors import StageError

    rng = np.random.default_rng(84)
    files = random_files(rng, n, 1000, 3000, D)
    write_tree(tmp_path / "src", files)
    with FaultyHTTPServer(tmp_path / "src") as server, pytest.raises(StageError, match="disk guard"):
        stage_run(data_dir=str(tmp_path / "run"), source=server.url, sets=["dir"], dirs=[D], min_free_gb=1e9,
                  spectra=False)
    return files


@pytest.mark.timeout(60)
def test_resume_against_an_unreachable_source_stops_within_seconds(tmp_path):
    import subprocess
    import time

    from desivoids import paths

    files = _planned_not_fetched(tmp_path)
    url = f"http://127.0.0.1:{closed_port()}/"
    cmd = [sys.executable, "-m", "desivoids.acquire", "-p", "data_dir", str(tmp_path / "run"), "-p", "source", url,
           "-p", "resume", "true", "-p", "retries", "5", "-p", "backoff", "2", "-p", "min_free_gb", "0",
           "-p", "spectra", "false"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(paths.ROOT / "lib")})
    took = time.monotonic() - t0
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "source unreachable" in r.stderr and url in r.stderr and "connection refused" in r.stderr
    assert took < 8, f"{took:.1f} s to notice that the source is down"  # per-file back-off: minutes
    rows = manifest_rows(tmp_path / "run" / "acquire" / "manifest.sqlite")
    assert not [r for r in rows if r["state"] in ("failed", "verified", "complete")]  # nothing given up on
    with Manifest(tmp_path / "run" / "acquire" / "manifest.sqlite", readonly=True) as m:
        b = m.batches()[-1]
        assert b["status"] == "stopped" and "unreachable" in b["note"]
        assert sum(e["event"] == "unreachable" for e in m.batch_log(b["id"])) == 1  # probed once
    with FaultyHTTPServer(tmp_path / "src") as server:  # back up: the resume finishes the plan
        r = subprocess.run(cmd[:8] + [server.url] + cmd[9:], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(paths.ROOT / "lib")})
    assert r.returncode == 0, r.stderr
    assert_identical(tmp_path / "run" / "acquire", tmp_path / "src", files)


def test_planning_against_an_unreachable_source_fails_at_once(tmp_path):
    import time

    from desivoids.acquire import run as stage_run
    from desivoids.errors import StageError

    url = f"http://127.0.0.1:{closed_port()}/"
    t0 = time.monotonic()
    with pytest.raises(StageError, match="source unreachable.*connection refused"):
        stage_run(data_dir=str(tmp_path / "run"), source=url, sets=["desivast"], min_free_gb=0)
    assert time.monotonic() - t0 < 3  # metadata retries back off 0.5 + 1 + 2 s on a transient fault


def test_one_refused_request_of_a_source_that_answers_the_probe_is_retried_per_file(tree, tmp_path):
    """An Unreachable error while the source answers its probe is a fault of that request: the
    file is retried with its back-off and the batch goes on."""
    from desivoids.acquire.sources import Unreachable

    src, files, _ = tree
    victim = sorted(files)[0]

    class Flaky(HTTPSource):
        refused = 0

        def open(self, path, start=0):
            if path == victim and not Flaky.refused:
                Flaky.refused += 1
                raise Unreachable(f"{self.url(path)}: connection refused")
            return super().open(path, start)

    with FaultyHTTPServer(src) as server:
        s = acquire(Flaky(server.url), tmp_path / "raw", tmp_path / "m.sqlite", ["dir"], dirs=[D], options=opts())
    assert s.status == "done" and not s.unreachable and Flaky.refused == 1
    assert Manifest(tmp_path / "m.sqlite", readonly=True).get(victim).attempts == 2
    assert_identical(tmp_path, src, files)


def test_the_largest_files_are_fetched_first(tmp_path):
    """With a few workers, the transfer ends when its last file does: a large file taken last
    would be fetched by one worker while the others idle."""
    from desivoids.acquire.sources import make_source

    rng = np.random.default_rng(8)
    sizes = [3000, 90000, 500, 40000, 7000]
    files = {f"dr1/vac/dr1/test/v1.0/f{i}.fits": rng.integers(0, 256, n, dtype="u1").tobytes()
             for i, n in enumerate(sizes)}
    write_tree(tmp_path / "src", files)
    source = make_source(str(tmp_path / "src"))
    opened = []
    real = source.open
    source.open = lambda path, start=0: opened.append(path) or real(path, start)
    s = acquire(source, tmp_path / "raw", tmp_path / "m.sqlite", ["dir"], dirs=["dr1/vac/dr1/test/v1.0"],
                options=Options(workers=1, progress=False, min_free=0))
    assert s.status == "done"
    data = [p for p in opened if p.endswith(".fits")]
    assert data == sorted(files, key=lambda p: -len(files[p]))
