"""`desivoids run --jobs N`: stages run at once only where their reads and the database allow.

The scheduler is tested with stand-in stages that record when they start and end (threads, no
kernels); the whole run through worker processes and real notebooks is the session's tiny run
(tests/conftest.py's ``tiny_pipeline`` runs `desivoids run` with its default jobs)."""
from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import psutil
import pytest

from desivoids import cli, runner
from desivoids.params import RunParams
from desivoids.stages import ORDER, STAGES, select


class Clock:
    """Stand-in stages: each sleeps ``seconds[name]`` and records its (start, end)."""

    def __init__(self, seconds: dict[str, float] | None = None, fail: str | None = None):
        self.seconds, self.fail = seconds or {}, fail
        self.spans: dict[str, tuple[float, float]] = {}
        self.background: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, stage, background=False):
        if background:
            self.background.add(stage.name)
        t0 = time.monotonic()
        time.sleep(self.seconds.get(stage.name, 0.05))
        with self._lock:
            self.spans[stage.name] = (t0, time.monotonic())
        if stage.name == self.fail:
            raise RuntimeError(f"{stage.name} broke")
        return runner.StageResult(stage.name, f"{stage.stem}.ipynb", 0.0, ["test"])

    def overlap(self, a: str, b: str) -> bool:
        (a0, a1), (b0, b1) = self.spans[a], self.spans[b]
        return a0 < b1 and b0 < a1


def _check_order(clock: Clock, stages) -> None:
    for s in stages:
        if s.name not in clock.spans:
            continue
        for dep in runner.waits_for(s, stages):
            assert clock.spans[dep][1] <= clock.spans[s.name][0], f"{s.name} started before {dep} ended"
    writers = [s.name for s in stages if runner.writes_database(s) and s.name in clock.spans]
    for i, a in enumerate(writers):
        for b in writers[i + 1:]:
            assert not clock.overlap(a, b), f"{a} and {b} both wrote the database at once"


def test_database_writers_and_waits_follow_the_registry():
    assert {s.name for s in select(None) if runner.writes_database(s)} == {
        "load", "plausibility", "environment", "density"}
    every = select(None)
    assert runner.waits_for(STAGES["plausibility"], every) == {"convert", "load"}
    assert runner.waits_for(STAGES["plausibility"], select(["convert", "plausibility"])) == {"convert"}
    assert runner.waits_for(STAGES["systematics"], every) == {"plausibility", "environment"}


def test_two_jobs_overlap_independent_stages_and_keep_every_constraint():
    stages = select(None)
    clock = Clock({"recon": 0.3, "convert": 0.3, "integrity": 0.3, "plausibility": 0.3,
                   "density": 0.3, "systematics": 0.3})
    results = runner._schedule(stages, clock, jobs=2, progress=False)
    assert [r.stage for r in results] == list(ORDER)
    _check_order(clock, stages)
    assert clock.overlap("recon", "convert") and clock.overlap("density", "systematics")
    assert clock.overlap("integrity", "plausibility")  # a reader beside a writer


def test_a_stage_beside_one_with_a_longer_chain_after_it_runs_in_the_background():
    """recon (release after it) beside convert (seven stages after it), integrity beside
    plausibility: the cores go first to the chain that sets the run's length; density and
    systematics (release after each) are equals."""
    stages = select(None)
    assert runner.after(STAGES["convert"], stages) == {
        "load", "integrity", "plausibility", "environment", "density", "systematics", "release"}
    assert runner.after(STAGES["recon"], stages) == {"release"}
    assert runner.after(STAGES["release"], stages) == set()
    clock = Clock({"recon": 0.3, "convert": 0.3, "integrity": 0.3, "plausibility": 0.3,
                   "density": 0.3, "systematics": 0.3})
    runner._schedule(stages, clock, jobs=2, progress=False)
    assert clock.background == {"recon", "integrity"}
    clock = Clock()
    runner._schedule(stages, clock, jobs=1, progress=False)
    assert clock.background == set()  # alone, a stage has nobody to yield to


def test_a_background_worker_runs_one_stage_so_a_lowered_priority_ends_with_it():
    with runner._worker_pool(1, one_stage_each=True) as pool:
        base = pool.submit(os.nice, 0).result()
        assert pool.submit(os.nice, 5).result() == min(base + 5, 19)
        assert pool.submit(os.nice, 0).result() == base  # a new worker, at the runner's own


def test_a_worker_runs_stage_after_stage_so_its_imports_are_paid_once():
    with runner._worker_pool(1) as pool:
        first = pool.submit(os.getpid).result()
        assert pool.submit(os.getpid).result() == first


def test_background_stages_go_to_workers_that_end_with_them(tmp_path, monkeypatch):
    """The runner sends a stage run at a lowered priority to the pool whose workers end with
    their stage, and every other stage to the pool whose workers are reused."""
    pools = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, jobs, one_stage_each=False, first=None):
            super().__init__(jobs)
            self.one_stage_each, self.first, self.ran = one_stage_each, first, []
            pools.append(self)

        def submit(self, fn, *args):
            if fn is not runner._in_worker:  # the runner starting its workers
                self.started = getattr(self, "started", 0) + 1
                return super().submit(fn, *args)
            self.ran.append(args[0])
            return super().submit(lambda: ((0, 0.0), None))

    monkeypatch.setattr(runner, "_worker_pool", Pool)
    params = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path / "run", mock=None)
    runner.run(params, ["recon", "convert", "load"], progress=False,
               executed_dir=tmp_path / "exec", force=True, jobs=2)
    reused, ending = sorted(pools, key=lambda p: p.one_stage_each)
    assert not reused.one_stage_each and ending.one_stage_each
    # the workers that run stage after stage start a kernel for their first; a niced one none
    assert reused.first is not None and ending.first is None
    assert reused.started == 2  # both workers, when the first stage ran
    assert ending.ran == ["recon"] and sorted(reused.ran) == ["convert", "load"]


def test_the_worker_lowers_its_priority_for_a_background_stage(monkeypatch):
    calls = []
    monkeypatch.setattr(runner.os, "nice", calls.append)
    monkeypatch.setattr(runner, "_in_process", lambda *a, **k: (1, 2.0))
    assert runner._in_worker("recon", {}, "x.ipynb", False, runner.BACKGROUND_NICE) == ((1, 2.0), None)
    assert runner._in_worker("convert", {}, "x.ipynb", False) == ((1, 2.0), None)
    assert calls == [runner.BACKGROUND_NICE]


def test_one_job_never_overlaps():
    stages = select(None)
    clock = Clock({"recon": 0.1, "convert": 0.1})
    runner._schedule(stages, clock, jobs=1, progress=False)
    spans = sorted(clock.spans.values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


def test_a_failure_starts_nothing_more_and_lets_the_running_stage_end():
    stages = select(None)
    clock = Clock({"convert": 0.05, "recon": 0.4}, fail="convert")
    with pytest.raises(RuntimeError, match="convert broke"):
        runner._schedule(stages, clock, jobs=2, progress=False)
    assert set(clock.spans) == {"acquire", "recon", "convert"}  # recon ran to its end
    assert clock.spans["recon"][1] > clock.spans["convert"][1]


def test_run_with_jobs_records_each_stage_and_the_whole_run(tmp_path, monkeypatch):
    """run(jobs=2) end to end, notebooks replaced by a stand-in that writes an empty executed
    notebook: the record holds every stage with its start and end, and the command's own
    time, which is less than the stages' sum when two ran at once."""
    def execute(stage, parameters, *, output=None, progress=True, **kernels):
        time.sleep(1.0 if stage.name in ("density", "systematics") else 0.01)
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), output)
        return output

    monkeypatch.setattr(runner, "execute_stage", execute)
    monkeypatch.setattr(runner, "_worker_pool", lambda jobs, one_stage_each=False, first=None: ThreadPoolExecutor(jobs))
    params = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path / "run", mock=None)
    names = ["environment", "density", "systematics"]
    results = runner.run(params, names, progress=False, executed_dir=tmp_path / "exec",
                         force=True, jobs=2)
    assert [r.stage for r in results] == names and all(r.ran for r in results)
    record = json.loads((tmp_path / "run" / "run" / "report.json").read_text())
    assert [r["stage"] for r in record["stages"]] == names
    assert all(r["status"] == "done" and r["started"] <= r["finished"] for r in record["stages"])
    last = record["last_run"]
    assert last["jobs"] == 2 and last["stages"] == names
    by = {r["stage"]: r["seconds"] for r in record["stages"]}
    assert last["seconds"] < by["density"] + by["systematics"]  # they ran at once
    assert "up to 2 at once" in (tmp_path / "run" / "run" / "report.md").read_text()


def test_the_record_says_which_stage_ran_in_the_background(tmp_path, monkeypatch):
    niced = []

    def in_worker(name, parameters, output, progress, nice=0, ahead=()):
        niced.append((name, nice))
        return (0, 0.0), None

    monkeypatch.setattr(runner, "_in_worker", in_worker)
    monkeypatch.setattr(runner, "_worker_pool", lambda jobs, one_stage_each=False, first=None: ThreadPoolExecutor(jobs))
    params = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path / "run", mock=None)
    runner.run(params, ["recon", "convert", "load"], progress=False,
               executed_dir=tmp_path / "exec", force=True, jobs=2)
    assert sorted(niced) == [("convert", 0), ("load", 0), ("recon", runner.BACKGROUND_NICE)]
    record = json.loads((tmp_path / "run" / "run" / "report.json").read_text())
    assert {r["stage"]: r["nice"] for r in record["stages"]} == {
        "recon": runner.BACKGROUND_NICE, "convert": 0, "load": 0}


def test_a_failing_stage_in_a_worker_is_named_with_its_cell(tmp_path, monkeypatch):
    """The worker returns a notebook's failure as data; the runner raises it as StageFailed."""
    def in_worker(name, parameters, output, progress, nice=0, ahead=()):
        if name == "density":
            return (123, 4.5), (4, "ValueError", "bad value")
        time.sleep(0.2)
        return (0, 0.25), None

    monkeypatch.setattr(runner, "_in_worker", in_worker)
    monkeypatch.setattr(runner, "_worker_pool", lambda jobs, one_stage_each=False, first=None: ThreadPoolExecutor(jobs))
    params = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path / "run", mock=None)
    with pytest.raises(runner.StageFailed) as err:
        runner.run(params, ["density", "systematics"], progress=False,
                   executed_dir=tmp_path / "exec", force=True, jobs=2)
    assert err.value.stage.name == "density" and err.value.cell == 4
    assert "ValueError: bad value" in str(err.value)
    record = json.loads((tmp_path / "run" / "run" / "report.json").read_text())
    assert {r["stage"]: r["status"] for r in record["stages"]} == {"density": "failed",
                                                                   "systematics": "done"}
    assert record["stages"][0]["peak_rss_gib"] == round(123 / 2**30, 3)
    assert [r["cpu_seconds"] for r in record["stages"]] == [4.5, 0.2]  # round(0.25, 1)


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_jobs_below_one_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--jobs", value])
    assert exit_.value.code == 2
    assert "at least 1" in capsys.readouterr().err


def test_the_workers_start_together_with_the_first_stage(tmp_path):
    """The executor would start the second worker only when two stages first run side by side:
    the stage waiting for it then waits for its imports."""
    def workers() -> list[psutil.Process]:
        return [p for p in psutil.Process().children()
                if "spawn_main" in " ".join(p.cmdline())]

    before = {p.pid for p in workers()}
    with runner._worker_pool(2, first=({"data_dir": str(tmp_path)}, str(tmp_path))) as pool:
        runner._start_workers(pool, 2)
        pool.submit(os.getpid).result()  # one task only: one worker would do
        for _ in range(100):
            started = [p for p in workers() if p.pid not in before]
            if len(started) == 2:
                break
            time.sleep(0.1)
        assert len(started) == 2
