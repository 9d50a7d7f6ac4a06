"""benchmarks/: one direction between its modules, the benchmark list from the registry, the
DR1-scale run folder prepared by `desivoids run` (not by a second pipeline runner), and the load
benchmark's report keeping each backend's figures with the run that measured them."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# -- bench_load: a run that skips one backend keeps the other's figures ----------------------
def _fake_load_measurements(monkeypatch, bench_load, measure, tmp_path):
    """bench_load's measurements replaced by fixed figures (no database, no DR1 data), its
    report written to tmp_path; the bookkeeping around them is the script's own."""
    from contextlib import contextmanager

    monkeypatch.setattr(measure, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(measure, "check_disk", lambda *a, **k: None)
    monkeypatch.setattr(bench_load.subprocess, "run",
                        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 0, "", ""))

    @contextmanager
    def server(folder, options=""):
        yield "postgresql://127.0.0.1:1/postgres"

    monkeypatch.setattr(measure, "postgres", server)

    class Memory:
        build_s = 1.5

        def __init__(self, pdir):
            self.sphere = self.cone = lambda *a: []

    def timed_load(pdir, url, work):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).write_bytes(b"db")
        seconds = 90.0 if url.startswith("sqlite") else 60.0
        return {"seconds": seconds, "peak_rss_gib": 1.0, "client_cpu_s": 50.0,
                "load_average_before": 1.0, "galaxies": 3, "rows_loaded": 3,
                "galaxy_rows_per_s": round(3 / seconds), "sky_index": "q3c",
                "phases_s": {"galaxies:copy": 10.0}}

    def reference(how, seconds):
        return lambda *a: {"how": how, "seconds": seconds, "galaxy_rows_per_s": 1,
                           "file_gb": 1.0, "load_average_before": 1.0,
                           "phases_s": {"galaxies:copy": 5.0}}

    def sqlite_reference(src, dst, rows, where=bench_load.XFER):
        if where == bench_load.XFER:
            return dict(reference("SQLite INSERT ... SELECT", 45.0)(), cpu_s=40.0,
                        sqlite_version="3.40.1")
        return dict(reference(f"SQLite INSERT ... SELECT{where}", 60.0)(), cpu_s=55.0,
                    phases_s={"galaxies:copy": 20.0})

    def time_queries(variants, spheres, cones):
        q = {"p50_ms": 1.0, "p95_ms": 4.0, "max_ms": 9.0, "mean_rows": 2.0, "queries": 3,
             "rows": [2, 2, 2]}
        return {label: {"sphere": dict(q), "cone": dict(q)} for label in variants}

    monkeypatch.setattr(bench_load, "Memory", Memory)
    monkeypatch.setattr(bench_load, "query_cases", lambda pdir, n: ([], []))
    monkeypatch.setattr(bench_load, "timed_load", timed_load)
    monkeypatch.setattr(bench_load, "sqlite_reference", sqlite_reference)
    monkeypatch.setattr(bench_load, "sqlite_encoding", lambda pdir, work, rows: {
        "how": "binding", "seconds": 15.0, "cpu_s": 14.0, "galaxy_rows_per_s": 1,
        "file_gb": 1.0, "peak_rss_gib": 2.0, "load_average_before": 1.0})
    monkeypatch.setattr(bench_load, "pg_reference", lambda url, folder, how, rows: reference(
        how, 54.0 if how.startswith("server") else 70.0)())
    monkeypatch.setattr(bench_load, "time_queries", time_queries)
    monkeypatch.setattr(bench_load, "new_db", lambda server, name: f"{server[:-9]}/{name}")
    monkeypatch.setattr(bench_load, "psql", lambda *a: "")
    monkeypatch.setattr(bench_load, "settle", lambda url: None)


def _parquet_dir(path: Path, galaxies: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (path / "galaxies").mkdir(parents=True)
    pq.write_table(pa.table({"targetid": list(range(galaxies))}), path / "galaxies" / "p0.parquet")
    pq.write_table(pa.table({"void": [1]}), path / "voids.parquet")
    return path


def test_bench_load_keeps_the_backend_a_run_skips(bench, tmp_path, monkeypatch):
    measure = bench[0]
    monkeypatch.delitem(sys.modules, "bench_load", raising=False)
    import bench_load

    _fake_load_measurements(monkeypatch, bench_load, measure, tmp_path)
    pdir = str(_parquet_dir(tmp_path / "convert", 3))
    common = ["--parquet-dir", pdir, "--work", str(tmp_path / "work")]
    md = tmp_path / "results" / "load.md"

    assert bench_load.main(["--skip-postgres", *common]) == 0
    first = md.read_text()
    assert "| SQLite | **the load**" in first and "| PostgreSQL | **the load**" not in first
    assert bench_load.main(["--skip-sqlite", *common]) == 0
    both = md.read_text()
    # both backends' figures, each labelled with the run that measured it
    assert "| SQLite | **the load** (`desivoids load`, from Parquet) | 90.0 |" in both
    assert "| PostgreSQL | **the load** (`desivoids load`, from Parquet) | 60.0 |" in both
    assert "- PostgreSQL: not measured" in first
    [sq] = [ln for ln in both.splitlines() if ln.startswith("- SQLite through ADBC: measured")]
    [pg] = [ln for ln in both.splitlines() if ln.startswith("- PostgreSQL 15 on 127.0.0.1")]
    assert "`python benchmarks/bench_load.py --skip-postgres " in sq and "kept from that run" in sq
    assert "`python benchmarks/bench_load.py --skip-sqlite " in pg and "kept" not in pg
    for line in (sq, pg):
        assert "load average (1, 5, 15 min) at its start [" in line and " to 20" in line
    assert "SQLite load at >= 70% of the rows/s of SQLite's `INSERT ... SELECT` into the same " \
           "final state: 50.0% (90.0 s against 45.0 s), **NOT met** against the issue's " \
           "reference." in both
    # beside it, the measured reason: the same statement without the transfer optimization,
    # and the encoding of the galaxies rows alone (and what that leaves of the reference)
    assert "with `WHERE 1` (no transfer optimization" in both
    assert "takes 60.0 s (55.0 CPU s, against 40.0); its galaxies copy 20.0 s against 5.0 s. " \
           "The load is at 66.7% of it: **NOT met** against the same statement without the " \
           "transfer optimization." in both
    assert "take 15.0 s (14.0 CPU s), 3.0x the reference's copy of the same rows (5.0 s) and " \
           "33% of the reference's whole 45.0 s; the load's galaxies:copy phase" in both
    assert "would take 55.0 s, and the load is at 61% of it." in both
    assert "the load 50.0, the reference 40.0 (the load at 80% of its rate), without the " \
           "transfer optimization 55.0 (110%), the binding of the galaxies rows alone 14.0." in both
    assert "PostgreSQL load at >= 85% of the rows/s of the server's own binary COPY into the " \
           "same tables: 90.0% (60.0 s against 54.0 s), **met**." in both
    assert "sphere query p95 < 10 ms on both backends: SQLite (R*Tree) 4.0 ms" in both
    assert bench_load._pct(0.695) == "69.5%"  # a ratio just short of 70% never shows as 70%
    assert "on the backend measured" not in both
    # and back: a SQLite-only run keeps the PostgreSQL figures
    assert bench_load.main(["--skip-postgres", *common]) == 0
    again = md.read_text()
    assert "| PostgreSQL | **the load** (`desivoids load`, from Parquet) | 60.0 |" in again
    [pg_again] = [ln for ln in again.splitlines() if ln.startswith("- PostgreSQL 15")]
    assert pg_again.startswith(pg.removesuffix(".")) and "kept from that run" in pg_again
    assert "did not measure PostgreSQL" in again
    # figures measured on another input are not shown beside this input's
    other = str(_parquet_dir(tmp_path / "convert2", 4))
    assert bench_load.main(["--skip-sqlite", "--parquet-dir", other, "--work",
                            str(tmp_path / "work")]) == 0
    assert "- SQLite: not measured on this input" in md.read_text()
    assert "| SQLite | **the load**" not in md.read_text()


def test_bench_load_references_transfer_optimization_is_what_it_says(bench, tmp_path,
                                                                     monkeypatch):
    """The issue's SQLite reference runs by SQLite's transfer optimization (stored records
    copied) and its WHERE 1 twin does not (every column read), as EXPLAIN shows; both copy
    the same rows."""
    import sqlite3

    monkeypatch.delitem(sys.modules, "bench_load", raising=False)
    import bench_load

    src = sqlite3.connect(tmp_path / "src.sqlite")
    src.execute("CREATE TABLE g (targetid INTEGER PRIMARY KEY, ra REAL, name TEXT)")
    src.executemany("INSERT INTO g VALUES (?, ?, ?)", [(7, 1.5, "a"), (3, None, "b")])
    src.commit()
    src.close()
    con = sqlite3.connect(tmp_path / "dst.sqlite", isolation_level=None)
    con.execute(f"ATTACH DATABASE '{tmp_path / 'src.sqlite'}' AS src")
    con.execute("CREATE TABLE main.g (targetid INTEGER PRIMARY KEY, ra REAL, name TEXT)")
    xfer = "INSERT INTO main.g SELECT * FROM src.g"
    assert bench_load.uses_transfer(con, xfer + bench_load.XFER)
    assert not bench_load.uses_transfer(con, xfer + bench_load.NO_XFER)
    con.execute(xfer + bench_load.NO_XFER)
    assert con.execute("SELECT * FROM main.g EXCEPT SELECT * FROM src.g").fetchall() == []
    assert con.execute("SELECT count(*) FROM main.g").fetchone() == (2,)


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


def test_each_notebooks_kernel_start_and_end_come_from_papermills_record(monkeypatch, tmp_path):
    """The run's per-notebook overhead: papermill's start to the first cell's start, the last
    cell's end to papermill's end, as papermill wrote them into the executed notebook."""
    import json

    monkeypatch.syspath_prepend(str(paths.BENCHMARKS))
    monkeypatch.delitem(sys.modules, "bench_pipeline", raising=False)
    import bench_pipeline

    def cell(start, end):
        return {"cell_type": "code", "metadata": {"papermill": {
            "start_time": f"2026-12-07T10:00:{start}Z", "end_time": f"2026-12-07T10:00:{end}Z"}}}
    nb = {"metadata": {"papermill": {"start_time": "2026-12-07T10:00:00.000000Z",
                                     "end_time": "2026-12-07T10:00:09.500000Z"}},
          "cells": [cell("00.250000", "01.000000"), {"cell_type": "markdown", "metadata": {}},
                    cell("01.000000", "08.000000")]}
    (tmp_path / "04_load.ipynb").write_text(json.dumps(nb))
    nb["metadata"]["papermill"]["end_time"] = None  # a notebook papermill never finished
    (tmp_path / "05_integrity.ipynb").write_text(json.dumps(nb))
    assert bench_pipeline.in_run(tmp_path) == {
        "load": {"kernel_start_s": 0.25, "after_last_cell_s": 1.5}}
