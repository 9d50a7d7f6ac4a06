"""benchmarks/: one direction between its modules, the benchmark list from the registry, and the
DR1-scale run folder prepared by `desivoids run` (not by a second pipeline runner)."""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from desivoids import paths
from desivoids.params import load as load_params
from desivoids.stages import ORDER


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(paths.BENCHMARKS))
    for name in ("measure", "report", "run"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import measure
    import report
    import run

    return measure, report, run


def _imports(path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_measure_never_imports_the_report():
    assert "measure" in _imports(paths.BENCHMARKS / "report.py")
    assert not {"report", "run"} & _imports(paths.BENCHMARKS / "measure.py")


def test_the_benchmark_list_is_every_script_in_registry_order(bench):
    _, report, run = bench
    scripts = {p.stem[len("bench_"):] for p in paths.BENCHMARKS.glob("bench_*.py")}
    assert set(run.BENCHMARKS) == scripts
    assert run.BENCHMARKS == [n for n in ["mock", *ORDER, "pipeline"] if n in scripts]
    assert set(run.ARGS) <= scripts and run.DR1 <= scripts
    assert {"density", "environment", "load"} <= run.DR1 and not {"mock", "acquire"} & run.DR1


def test_the_dr1_run_goes_through_desivoids_run(bench, tmp_path, monkeypatch):
    measure, _, _ = bench
    data = tmp_path / "dr1"
    (data / "mirror" / "truth").mkdir(parents=True)  # the mock sky is there: no disk check
    calls = []
    monkeypatch.setattr(measure.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))
    assert measure.dr1_run(data, "environment") == data
    [cmd] = calls
    assert cmd[1:4] == ["-m", "desivoids.cli", "run"]
    assert cmd[cmd.index("--stages") + 1:] == ["acquire", "convert", "plausibility"]
    assert cmd[cmd.index("--executed-dir") + 1] == str(data / "executed")  # not the book's
    profile = load_params(cmd[cmd.index("--params") + 1])
    assert profile.data_dir == data and profile.mock["scale"] == "dr1"
    assert measure.prerequisites("integrity") == ["acquire", "convert", "load"]
    assert measure.dr1_run(data, "acquire") == data and len(calls) == 1  # nothing to prepare


def test_the_whole_runs_critical_path_follows_the_stage_each_waited_for(monkeypatch):
    """From the stage that ended last back through the one it waited for (its reads, or the load
    for a stage with tables) that ended last: here plausibility, not integrity, held the
    environment back, and recon, beside convert, is on no path."""
    monkeypatch.syspath_prepend(str(paths.BENCHMARKS))
    monkeypatch.delitem(sys.modules, "bench_pipeline", raising=False)
    import bench_pipeline

    ends = {"acquire": 10, "recon": 18, "convert": 20, "load": 40, "integrity": 45,
            "plausibility": 50, "environment": 70}
    records = [{"stage": n, "started": "", "finished": f"2026-12-07T10:00:{s:02d}+0000"}
               for n, s in ends.items()]
    assert bench_pipeline.critical_path(records) == ["acquire", "convert", "load",
                                                     "plausibility", "environment"]
    records[-1]["finished"] = "2026-12-07T10:00:00+0000"  # as if environment had ended first
    assert bench_pipeline.critical_path(records)[-1] == "plausibility"
