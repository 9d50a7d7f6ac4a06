"""The downloader killed with SIGKILL at random moments, again and again, and resumed each time:
at the end every file is sha256-identical to its source, and no file that the manifest held as
in place (verified or complete) at a kill was ever requested again."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from acquire_fixtures import FaultyHTTPServer, random_files, sha256_of, write_tree

from desivoids import paths
from desivoids.acquire.steps import manifest_rows

D = "dr1/vac/dr1/killtest/v1.0"
KILLS = 12


def _cmd(url: str, tmp: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, "-m", "desivoids.acquire", "-p", "data_dir", str(tmp), "-p", "source", url,
           "-p", "sets", "[dir]", "-p", "dirs", f"[{D}]", "-p", "workers", "3", "-p", "backoff", "0.05",
           "-p", "min_free_gb", "0", "-p", "spectra", "false", "-p", "chunk_kb", "64"]
    return cmd + (["-p", "resume", "true"] if resume else [])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_moments_then_resume(tmp_path):
    rng = np.random.default_rng(2024)
    pick = random.Random(2024)
    files = random_files(rng, 30, 200_000, 2_000_000, D)
    write_tree(tmp_path / "src", files)
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT / "lib")}
    snapshots = []  # (verified paths at the kill, server log length at the kill)
    kills = 0
    with FaultyHTTPServer(tmp_path / "src", throttle=1_000_000, chunk=32 * 1024) as server:
        for i in range(KILLS):
            n_before = len(server.log)
            proc = subprocess.Popen(_cmd(server.url, tmp_path, resume=i > 0), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if pick.random() < 0.25:  # any moment: start-up, planning, or transfer
                time.sleep(pick.uniform(0.05, 0.8))
            else:  # mid-transfer: after this run's first data request
                t0 = time.monotonic()
                while time.monotonic() - t0 < 5 and not any(
                        e.method == "GET" and e.path in files for e in server.log[n_before:]) and proc.poll() is None:
                    time.sleep(0.01)
                time.sleep(pick.uniform(0.0, 0.4))
            if proc.poll() is not None:
                pytest.fail(f"run {i} finished before it could be killed (rc {proc.returncode}); "
                            "the test data are too small for the throttle")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
            verified = set()
            if (tmp_path / "acquire" / "manifest.sqlite").exists():
                verified = {r["path"] for r in manifest_rows(tmp_path / "acquire" / "manifest.sqlite",
                                                             ["verified", "complete"])}
            snapshots.append((verified, len(server.log)))
        done = subprocess.run(_cmd(server.url, tmp_path, resume=True), env=env, capture_output=True,
                              text=True, timeout=120)
        log = list(server.log)

    assert kills >= 10
    assert done.returncode == 0, done.stdout + done.stderr
    for rel in files:
        assert sha256_of(tmp_path / "acquire" / "raw" / rel) == sha256_of(tmp_path / "src" / rel), rel
    assert not list((tmp_path / "acquire" / "raw").rglob("*.part"))
    for verified, at in snapshots:
        again = sorted({e.path for e in log[at:] if e.method == "GET" and e.path in verified})
        assert not again, f"verified before a kill, fetched again after it: {again}"
    # the kills did land mid-transfer: some transfers resumed a .part by range
    assert any(e.method == "GET" and e.path in files and e.start > 0 for e in log)
    # something was verified before the last kill, and the final run still had work to do
    assert snapshots[-1][0] and len(snapshots[-1][0]) < len(files) + 1
    rows = manifest_rows(tmp_path / "acquire" / "manifest.sqlite")
    assert len(rows) == len(files) + 1
    assert {r["state"] for r in rows if r["kind"] == "data"} == {"verified"}
    assert {r["state"] for r in rows if r["kind"] == "checksums"} == {"complete"}
