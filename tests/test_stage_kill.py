"""Every stage killed with SIGKILL at random moments, then rerun; two runs of every stage at
once (issue 20).

On a copy of the session's finished tiny mock run (conftest.tiny_pipeline), each stage's verb
runs as a subprocess (its own process group), with the run's params file and the run's own
library, and is killed at a seeded random moment. After each kill the stage's published output is
exactly the previous one or the new one, never a mix: the files of its folder (sha256 of each)
equal one of the two, its MANIFEST.sha256 matches its files, its database tables hold the row
counts of the finished run and the database passes SQLite's integrity check, and the staging
folders a killed run left are hidden (``.<name>.tmp-*``/``.old-*``, which no reader lists). The
previous output carries a marker file (resealed into its manifest), so "previous" and "new" are
told apart even though a rerun writes the same bytes. The stage is then rerun and its outputs
must be byte-identical to the finished run's, with no staging folder left.

What is not byte-deterministic, and so compared otherwise: acquire's ``manifest.sqlite`` (it
records transfer times; the raw files themselves are compared byte for byte, and a file a kill
interrupted exists only as ``NAME.part``) and the ``run_id`` in load's ``report.json`` (a new
load run each time; the test compares the report without it, and checks that it is the last run
the database committed). load runs with ``force`` so that each run rebuilds its tables (its new
output, ``force`` among its recorded parameters, is that of one forced load on a copy of the
run). The copy's run record lists the stages before the killed one, as when the pipeline ran it
(release copies it into provenance.json). A stage
with tables is checked as a reader sees it: a kill between its commit and its folder's rename
leaves the committed folder under its staging name, which a reader renames into place first
(desivoids.publication.settle; tests/test_publish_unit.py kills exactly there).

Two runs of one stage on one data_dir: the second (``desivoids <stage>`` and ``desivoids run``)
is refused with exit 1 naming the holder's pid, and the first completes.

The module ends with the counts: ``.venv/bin/python -m pytest tests/test_stage_kill.py -q``
(the ``kill -9:`` and ``concurrent runs:`` lines).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from desivoids.outputs import MANIFEST, STAGING, manifest_problems
from desivoids.publication import settle
from desivoids.stages import ORDER, STAGES
from sealing import reseal

if TYPE_CHECKING:
    from conftest import TinyRun

KILLS = 2  # per stage: one at any moment, one while it writes
MARK = "PREVIOUS-OUTPUT.txt"
EXTRA = {"load": ["-p", "force", "true"]}
#: the folder each stage swaps in as a whole (where the marker of the previous output goes)
SWAPPED = {"release": "release/v1"}


#: what the cases saw, for the counts printed at the end of the module
KILLED: list[str] = []  # per kill: "previous", "new", "finished" (before the kill), "mix"
RERUNS: list[bool] = []  # per stage: rerun byte-identical to the finished run
REFUSED: list[tuple[int, bool, bool, bool]] = []  # (exit, culprit named, traceback, escaped)


@pytest.fixture(scope="module", autouse=True)
def tally(request):
    """``.venv/bin/python -m pytest tests/test_stage_kill.py -q`` ends with these two lines."""
    yield
    kills = (f"kill -9: {sum(k != 'finished' for k in KILLED)} kills ("
             f"{KILLED.count('previous')} left the previous output, {KILLED.count('new')} the new "
             f"one, {KILLED.count('mix')} a mix; {KILLED.count('finished')} runs ended before "
             f"their kill), {sum(RERUNS)}/{len(RERUNS)} reruns byte-identical")
    two = (f"concurrent runs: {len(REFUSED)} cases, "
           f"{sum(c == 1 and n and not t and not e for c, n, t, e in REFUSED)} clear errors, "
           f"{sum(c == 0 for c, *_ in REFUSED)} silent acceptances, "
           f"{sum(e for *_, e in REFUSED)} escapes, {sum(t for _, _, t, _ in REFUSED)} tracebacks")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n{kills}\n{two}")


def _verb(stage: str, data: Path, params: Path) -> list[str]:
    """The stage's verb with the parameters of the finished run (its params file) on ``data``."""
    return [sys.executable, "-m", "desivoids.cli", stage, "--params", str(params),
            "-p", "data_dir", str(data), *EXTRA.get(stage, [])]


def _sha(p: Path) -> str:
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _state(data: Path, stage: str) -> tuple[dict[str, str], list[str]]:
    """(relative path -> sha256 of every published file of the stage, staging entries found)."""
    files, staging = {}, []
    root = data / stage
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for n in list(dirnames):
            if STAGING.fullmatch(n):
                staging.append((here / n).relative_to(data).as_posix())
                dirnames.remove(n)
        for n in filenames:
            rel = (here / n).relative_to(root).as_posix()
            if STAGING.fullmatch(n):
                staging.append(f"{stage}/{rel}")
            elif stage == "acquire" and n.startswith("manifest.sqlite"):
                continue  # transfer times: not deterministic (see the module's docstring)
            elif stage == "load" and n == MANIFEST:
                continue  # lists report.json's hash, which holds the run_id
            elif stage == "load" and n == "report.json":
                doc = json.loads((here / n).read_text())
                doc.pop("run_id")
                files[rel] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            else:
                files[rel] = _sha(here / n)
    staging += [p.name for p in data.glob(f".{stage}.*") if STAGING.fullmatch(p.name)]
    return files, sorted(staging)


def _writing(data: Path, stage: str) -> set[str]:
    """What shows a run of ``stage`` writing: its staging folders, ``.part`` files (acquire),
    the database's journal (a stage with tables). A run has begun writing once a name appears
    that was not there before it started (a killed run leaves its own behind)."""
    folder = data / stage
    names = {q.name for q in data.glob(f".{stage}.*") if STAGING.fullmatch(q.name)}
    if folder.is_dir():
        names |= {q.name for q in folder.iterdir() if STAGING.fullmatch(q.name)}
    if stage == "acquire":
        names |= {q.name for q in (data / "acquire").rglob("*.part")}
    if STAGES[stage].tables:
        names |= {q.name for q in (data / "database").glob("desivoids.sqlite-*")}
    return names


def _counts(data: Path, stage: str) -> dict[str, int]:
    db = data / "database" / "desivoids.sqlite"
    if not STAGES[stage].tables or not db.is_file():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in STAGES[stage].tables if t in have and t != "load_runs"}
    finally:
        con.close()


def _load_consistent(data: Path) -> None:
    """load's report names the last load run its database committed (tables and folder agree)."""
    con = sqlite3.connect(f"file:{data / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:
        last = con.execute("SELECT max(run_id) FROM load_runs").fetchone()[0]
    finally:
        con.close()
    assert json.loads((data / "load" / "report.json").read_text())["run_id"] == last


def _own_seconds(notebook: Path) -> float:
    """How long a stage's own work took in the run: papermill's durations of its executed
    notebook's cells up to the one that calls ``run`` (the imports and the run, what its verb
    does; not the kernel's start nor the figures after it)."""
    total = 0.0
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            total += cell["metadata"]["papermill"]["duration"]
            if ".run(" in "".join(cell["source"]):
                return total
    raise AssertionError(f"{notebook}: no cell calls run")


@dataclass(frozen=True)
class Finished:
    run: "TinyRun"            # the session's tiny run (read-only: each case copies run.data)
    seconds: dict[str, float]  # per stage: its own work in the run (_own_seconds)
    new: dict[str, dict]       # per stage: its published state after a run (_state)
    counts: dict[str, dict]    # per stage: the row counts of its tables (_counts)

    def call(self, stage: str, data: Path, **kw):
        """Start the stage's verb on ``data`` with the run's library (subprocess.Popen's keywords)."""
        return subprocess.Popen(_verb(stage, data, self.run.params), cwd=self.run.root,
                                env=self.run.env, **kw)

    def rerun(self, stage: str, data: Path, timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(_verb(stage, data, self.run.params), cwd=self.run.root,
                              env=self.run.env, capture_output=True, text=True, timeout=timeout)

    def copy(self, stage: str, data: Path) -> None:
        """The run's data at ``data``, its run record as it stood when ``stage`` ran."""
        shutil.copytree(self.run.data, data, symlinks=True)
        report = data / "run" / "report.json"
        record = json.loads(report.read_text())
        record["stages"] = [r for r in record["stages"] if ORDER.index(r["stage"]) < ORDER.index(stage)]
        report.write_text(json.dumps(record, indent=2))


@pytest.fixture(scope="module")
def finished(tiny_pipeline, tmp_path_factory) -> Finished:
    """The session's tiny mock run through every stage, how long each stage's work took and
    what each stage publishes (load's: after one forced load, as every load of this module)."""
    seconds = {s: _own_seconds(tiny_pipeline.executed / f"{STAGES[s].stem}.ipynb") for s in ORDER}
    new = {s: _state(tiny_pipeline.data, s)[0] for s in ORDER}
    counts = {s: _counts(tiny_pipeline.data, s) for s in ORDER}
    done = Finished(tiny_pipeline, seconds, new, counts)
    forced = tmp_path_factory.mktemp("forced-load") / "data"
    done.copy("load", forced)
    r = done.rerun("load", forced, timeout=600)
    assert r.returncode == 0, r.stderr
    new["load"], staging = _state(forced, "load")
    assert not staging and _counts(forced, "load") == counts["load"], staging
    return done


def _previous(data: Path, stage: str, first: bool) -> dict[str, str]:
    """Mark the copy's current output of ``stage`` as the previous one; its state."""
    if stage == "acquire":  # nothing fetched yet, then what the killed runs left
        if first:
            shutil.rmtree(data / "acquire")
        return _state(data, stage)[0]
    folder = data / SWAPPED.get(stage, stage)
    (folder / MARK).write_text("the output before the killed run\n")
    if (folder / MANIFEST).is_file():
        reseal(folder / MARK)  # and the database's record of the folder (desivoids.publication)
    return _state(data, stage)[0]


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("stage", ORDER)
def test_a_stage_killed_at_random_moments_publishes_old_or_new_then_reruns_identically(
        finished, tmp_path, stage):
    seconds, new, counts = finished.seconds, finished.new[stage], finished.counts[stage]
    pick = random.Random(f"kill-{stage}")
    outcomes = []
    data = tmp_path / "data"
    finished.copy(stage, data)
    for i in range(KILLS):
        previous = _previous(data, stage, i == 0)
        before = _writing(data, stage)
        p = finished.call(stage, data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
        t0 = time.monotonic()
        if i % 2 == 0:  # any moment: start-up, reading, computing, writing
            at = pick.uniform(0.2, max(0.5, 0.95 * seconds[stage]))
        else:  # while it writes: once its staging (or database journal) appears
            while p.poll() is None and _writing(data, stage) <= before and time.monotonic() - t0 < 300:
                time.sleep(0.005)
            at = time.monotonic() - t0 + pick.uniform(0.0, 0.3)
        try:
            p.wait(timeout=max(0.0, at - (time.monotonic() - t0)))
            outcomes.append(f"finished before {at:.2f} s")
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            outcomes.append(f"killed at {at:.2f} s")
        got, staging = _state(data, stage)
        finished_first = outcomes[-1].startswith("finished")
        if stage == "acquire":  # grows file by file: every file present is complete and right
            wrong = sorted(f for f in got if not f.endswith(".part") and got[f] != new.get(f))
            KILLED.append("finished" if finished_first else "mix" if wrong else
                          "new" if got == new else "previous")
            assert not wrong, (outcomes, wrong)
        else:
            state = "previous" if got == previous else "new" if got == new else "mix"
            KILLED.append("finished" if finished_first else state)
            assert got in (previous, new), (outcomes, sorted(set(got.items()) ^ set(previous.items())))
            outcomes[-1] += f": {state} output"
        if (data / stage / MANIFEST).is_file():
            assert manifest_problems(data / stage) == [], outcomes
        if STAGES[stage].tables:  # as a reader first settles it: a kill between the commit and
            how = settle(data, stage)  # the rename left the committed folder to roll forward
            outcomes[-1] += f" ({how})"
            got, _ = _state(data, stage)
            assert got in (previous, new), (outcomes, got)
            assert manifest_problems(data / stage) == [], outcomes
        if stage == "load":
            _load_consistent(data)
        assert _counts(data, stage) == counts, outcomes
        assert all(Path(s).name.startswith(".") for s in staging), staging  # hidden from readers
    time.sleep(0.05)  # the rerun's lock starts after whatever the killed runs left
    r = finished.rerun(stage, data, timeout=600)
    assert r.returncode == 0, (outcomes, r.stderr)
    got, staging = _state(data, stage)
    RERUNS.append(got == new)
    assert got == new, (outcomes, sorted(set(got.items()) ^ set(new.items())))
    assert not staging, staging
    assert _counts(data, stage) == counts
    if stage == "load":
        _load_consistent(data)
    print(f"{stage}: {'; '.join(outcomes)}")


# ------------------------------------------------------------------------------ two runs at once
def _holding(data: Path, stage: str, p: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``p`` holds the stage's lock (its pid written in the lock file)."""
    lock = data / f".{stage}.lock"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and p.poll() is None:
        try:
            if json.loads(lock.read_text() or "{}").get("pid") == p.pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    pytest.fail(f"{stage}: the first run never held the lock (exit {p.poll()})")


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("stage", ORDER)
def test_two_runs_of_a_stage_at_once_one_is_refused_with_the_holders_pid(finished, tmp_path, stage):
    """The first run is stopped (SIGSTOP) as soon as it holds the lock, so the second, a
    `desivoids <stage>` and a `desivoids run --stages <stage>`, certainly runs beside it; both
    are refused with exit 1 naming the holder's pid, and the first then completes, publishing
    the finished run's outputs."""
    new = finished.new[stage]
    data = tmp_path / "data"
    finished.copy(stage, data)
    params = tmp_path / "p.yml"
    params.write_text(f"data_dir: {data}\nstages: {{}}\n")
    outside = sorted(p for p in tmp_path.rglob("*") if data not in p.parents and p != data)
    first = finished.call(stage, data, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          start_new_session=True)
    try:
        _holding(data, stage, first)
        os.killpg(first.pid, signal.SIGSTOP)
        second = finished.rerun(stage, data, timeout=300)
        by_run = subprocess.run([sys.executable, "-m", "desivoids.cli", "run", "--params",
                                 str(params), "--stages", stage, "--quiet", "--executed-dir",
                                 str(data / "run" / "executed")], capture_output=True, text=True,
                                timeout=300, cwd=finished.run.root, env=finished.run.env)
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    escaped = sorted(p for p in tmp_path.rglob("*") if data not in p.parents and p != data) != outside
    for r in (second, by_run):
        REFUSED.append((r.returncode, f"pid {first.pid}" in r.stderr, "Traceback" in r.stderr,
                        escaped))
    assert not escaped
    for r in (second, by_run):
        assert r.returncode == 1, r.stderr
        assert f"pid {first.pid}" in r.stderr and f".{stage}.lock" in r.stderr, r.stderr
        assert f"another run of the {stage} stage" in r.stderr and "Traceback" not in r.stderr
    got, staging = _state(data, stage)
    assert got == new, sorted(set(got.items()) ^ set(new.items()))
    assert not staging and not (data / f".{stage}.lock").exists()
