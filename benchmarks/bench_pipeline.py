"""Benchmark of the whole run: `desivoids run` on a profile (notebooks included), each stage's
wall time and peak memory beside its floor, the total against 2.5 minutes, and what starting a
notebook kernel costs.

    .venv/bin/python benchmarks/bench_pipeline.py                       # params/dr1-mock.yml
    .venv/bin/python benchmarks/bench_pipeline.py --scale small --data-dir data/bench/pipeline-small

1. **The mock sky** is written once into ``<data-dir>/mirror`` by the runner's own
   ``ensure_mock`` (timed apart, skipped when it is there with the same settings; the DR1-scale
   mock of the stage benchmarks, data/bench/dr1/mirror, is hard-linked when it is the same sky):
   the run's total below excludes it, as a rerun of the pipeline on the same mock would.
2. **The run**: every stage's output folder and the run's database are removed, then
   ``desivoids run --params <profile> --quiet --jobs <jobs>`` runs every notebook with
   papermill (executed notebooks to ``<data-dir>/executed``, not the book's), stages side by
   side where the data flow allows (``--jobs``, default the command's own: the core count);
   wall time and peak RSS of the whole process tree, and per stage the runner's own record
   (``<data-dir>/run/report.json``: the notebook kernel's wall time and peak RSS, and the
   stages it overlapped).
3. **Floors**, measured right after the run: for each stage, one cold read (page cache evicted)
   of every file of the folders it reads (``FLOORS``; whole files, so an upper bound of the
   floor of a stage that reads a few columns); the total's floor is their sum.
4. **Kernel start-up**: papermill executing a one-cell notebook (``import desivoids``) with the
   same kernel, ``--kernel-repeats`` times in one process (papermill imported once, as the
   runner does); the median times the number of notebooks is what the notebooks themselves cost
   the run.

``--params`` picks the profile; ``--scale`` overrides its mock scale (``tiny``/``small`` prove
the benchmark quickly; the DR1-scale mock takes ~10 GB and several minutes to write). The
profile is copied with ``data_dir`` set to ``--data-dir``. Writes results/pipeline.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import measure

from desivoids import paths

TARGET_SECONDS = 150.0
DEFAULT_DIR = paths.DATA / "bench" / "pipeline"
#: per stage, where its floor reads: other stages' folders (or "mirror", "database")
FLOORS = {"acquire": ["mirror"], "recon": ["acquire"], "convert": ["acquire"],
          "load": ["convert"], "integrity": ["convert", "database"], "plausibility": ["convert"],
          "environment": ["convert", "plausibility"],
          "density": ["convert", "plausibility", "environment"],
          "systematics": ["plausibility", "environment"],
          "release": ["convert", "plausibility", "environment", "density", "systematics"]}


def _files(layout, name: str) -> list[Path]:
    if name == "database":
        return [layout.database] if layout.database.is_file() else []
    folder = layout.mirror if name == "mirror" else layout.stage(name)
    return [f for f in sorted(folder.rglob("*")) if f.is_file()]


def floors(layout) -> dict:
    """Seconds of one cold read of each stage's inputs (whole files), and their bytes."""
    out = {}
    for stage, sources in FLOORS.items():
        files = [f for s in sources for f in _files(layout, s)]
        measure.evict(files)
        seconds = measure.read_bytes(files) if files else 0.0
        out[stage] = {"seconds": round(seconds, 2), "bytes": sum(f.stat().st_size for f in files),
                      "reads": sources}
    return out


#: a notebook cell importing what the stage notebooks import (every stage module, pyplot)
HEAVY_IMPORTS = ("import matplotlib.pyplot\n"
                 "from desivoids import acquire, convert, environment, integrity, load, "
                 "plausibility, recon, release, systematics")


def kernel_startup(repeats: int, workdir: Path, cell: str = "import desivoids") -> list[float]:
    """Seconds for papermill to execute a one-cell notebook (``cell``), each of ``repeats``
    times in one process that imported papermill once, as `desivoids run` does: what each
    notebook costs beyond its own work (a kernel started, the cell run, the notebook written)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    src = workdir / "startup.ipynb"
    nbformat.write(nb, src)
    code = ("import json, sys, time, papermill as pm\n"
            "runs = []\n"
            "for k in range(int(sys.argv[3])):\n"
            "    t = time.perf_counter()\n"
            "    pm.execute_notebook(sys.argv[1], f'{sys.argv[2]}/out{k}.ipynb', "
            "kernel_name='python3', progress_bar=False, log_output=False)\n"
            "    runs.append(round(time.perf_counter() - t, 2))\n"
            "print(json.dumps(runs))\n")
    r = subprocess.run([sys.executable, "-c", code, str(src), str(workdir), str(repeats)],
                       check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def reuse_mirror(layout, mock: dict | None) -> bool:
    """Hard-link the DR1-scale mock of the stage benchmarks (measure.DR1_DIR, written by the
    runner for params/dr1-mock.yml, see measure.dr1_run) as this run's mirror, with the runner's
    stamp, instead of writing 10 GB again. False when it does not apply (its stamp names another
    mock, no such mirror, or a mirror already here)."""
    from desivoids.runner import MOCK_STAMP

    source = measure.DR1_DIR / "mirror"
    stamp = source / MOCK_STAMP
    same = mock is not None and stamp.is_file() and json.loads(stamp.read_text()) == mock
    if not same or layout.mirror.exists() or not (source / "truth").is_dir():
        return False
    if source.resolve() == layout.mirror.resolve():
        return False
    layout.mirror.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(source), str(layout.mirror)], check=True)  # the stamp too
    return True


def fresh(layout) -> None:
    """Remove every stage's output folder and the run's records (the mirror stays)."""
    from desivoids.stages import STAGES

    for stage in STAGES.values():
        for o in stage.outputs:
            shutil.rmtree(layout.data_dir / o, ignore_errors=True)
    for extra in (layout.database.parent, layout.run, layout.data_dir / "executed"):
        shutil.rmtree(extra, ignore_errors=True)


def beside(records: list[dict]) -> dict[str, list[str]]:
    """stage -> the stages whose run overlapped its own (``desivoids run --jobs``), from the
    runner's start and end times (whole seconds: stages that merely follow do not overlap)."""
    spans = {r["stage"]: (r["started"], r["finished"]) for r in records if r.get("started")}
    return {a: [b for b, (b0, b1) in spans.items() if b != a and a0 < b1 and b0 < a1]
            for a, (a0, a1) in spans.items()}


def critical_path(records: list[dict]) -> list[str]:
    """The chain of stages that set the run's length: from the stage that ended last, back
    through the stage it waited for that ended last (its reads, or the load for a stage with
    tables: :func:`desivoids.runner.waits_for`), to a stage that waited for none."""
    from desivoids.runner import waits_for
    from desivoids.stages import STAGES

    ran = {r["stage"]: r for r in records if r.get("finished")}
    selected = [STAGES[n] for n in ran]
    chain = [max(ran, key=lambda n: ran[n]["finished"])] if ran else []
    while chain and (deps := waits_for(STAGES[chain[-1]], selected)):
        chain.append(max(deps, key=lambda n: ran[n]["finished"]))
    return chain[::-1]


def in_run(executed: Path) -> dict[str, dict]:
    """Per stage notebook of the run, from papermill's record in it: seconds from papermill's
    start to its first cell's (the kernel started, or one started ahead taken, and its client
    connected) and from its last cell's end to papermill's (the kernel killed, the notebook
    saved)."""
    def at(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    out = {}
    for path in sorted(executed.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        pm = nb["metadata"].get("papermill", {})
        cells = [c["metadata"].get("papermill", {}) for c in nb["cells"]
                 if c["cell_type"] == "code"]
        if not cells or not pm.get("end_time") or not cells[0].get("start_time"):
            continue
        out[path.stem.split("_", 1)[1]] = {
            "kernel_start_s": round((at(cells[0]["start_time"]) - at(pm["start_time"]))
                                    .total_seconds(), 2),
            "after_last_cell_s": round((at(pm["end_time"]) - at(cells[-1]["end_time"]))
                                       .total_seconds(), 2)}
    return out


def bench(params: Path, data_dir: Path, scale: str | None, repeats: int, jobs: int) -> dict:
    from desivoids.params import load as load_params
    from desivoids.paths import RunLayout, display
    from desivoids.stages import ORDER

    start = measure.machine()
    data_dir.mkdir(parents=True, exist_ok=True)
    layout = RunLayout.of(data_dir)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        tmp = Path(tmp)
        profile = measure.profile_copy(params, layout.data_dir, scale, tmp / "profile.yml")
        rp = load_params(profile)
        reused = reuse_mirror(layout, rp.mock)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sys; from desivoids.params import load;"
                        " from desivoids.runner import ensure_mock;"
                        " ensure_mock(load(sys.argv[1]))", str(profile)], check=True)
        mock_seconds = round(time.perf_counter() - t, 1)
        fresh(layout)
        load = measure.load_average()
        cmd = [sys.executable, "-m", "desivoids.cli", "run", "--params", str(profile), "--quiet",
               "--executed-dir", str(layout.data_dir / "executed"), "--jobs", str(jobs)]
        seconds, peak, rc, cpu, out = measure.run_polled(cmd)
        if rc:
            raise SystemExit(f"desivoids run failed ({rc}):\n{out[-3000:]}")
        record = json.loads((layout.run / "report.json").read_text())
        notebooks = in_run(layout.data_dir / "executed")
        floor = floors(layout)
        kernel = kernel_startup(repeats, tmp)
        heavy = kernel_startup(repeats, tmp, HEAVY_IMPORTS)
    stages = {r["stage"]: r for r in record["stages"]}
    overlaps = beside(record["stages"])
    rows = []
    for name in ORDER:
        r = stages.get(name)
        if r is None:
            continue
        f = floor.get(name, {"seconds": 0.0, "bytes": 0})  # a stage FLOORS does not know: none
        rows.append({"stage": name, "seconds": r["seconds"], "peak_rss_gib": r["peak_rss_gib"],
                     "cpu_seconds": r.get("cpu_seconds"), "nice": r.get("nice", 0),
                     "status": r["status"], "beside": overlaps.get(name, []),
                     "floor_seconds": f["seconds"],
                     "floor_bytes": f["bytes"], "floor_reads": f.get("reads", []),
                     "ratio_to_floor": (round(r["seconds"] / f["seconds"], 1)
                                        if f["seconds"] > 0 else None),
                     **notebooks.get(name, {})})
    k = statistics.median(kernel)
    return {"command": "python benchmarks/bench_pipeline.py" + (
                f" --params {display(params)}" if params != paths.PARAMS / "dr1-mock.yml" else "")
            + (f" --scale {scale}" if scale else "") + f" --data-dir {display(data_dir)}"
            + f" --jobs {jobs}", "jobs": jobs,
            "machine": start, "profile": rp.profile, "mock": rp.mock,
            "data_dir": display(layout.data_dir), "mock_seconds": mock_seconds,
            "mock_reused": (display(measure.DR1_DIR / "mirror") if reused else None),
            "load_average_before_run": load, "run_seconds": round(seconds, 1),
            "run_cpu_seconds": round(cpu, 1), "run_peak_rss_gib": round(peak / 2**30, 3),
            "stages_seconds": round(sum(r["seconds"] for r in rows), 1),
            "stages_cpu_seconds": round(sum(r["cpu_seconds"] or 0 for r in rows), 1),
            "critical_path": critical_path(record["stages"]),
            "floor_seconds": round(sum(r["floor_seconds"] for r in rows), 2),
            "kernel_startup_runs": kernel, "kernel_startup_seconds": k,
            "kernel_with_imports_runs": heavy,
            "kernel_with_imports_seconds": statistics.median(heavy),
            "notebooks": len(rows), "notebook_overhead_seconds": round(k * len(rows), 1),
            "target_seconds": TARGET_SECONDS, "meets": seconds <= TARGET_SECONDS, "stages": rows}


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["## The whole run (`desivoids run`)", "",
             f"Command: `{res['command']}` (profile `{res['profile']}`, mock "
             f"{json.dumps(res['mock'])}; every stage's notebook with papermill, from no "
             f"earlier output, on the mock written beforehand"
             + (f", hard-linked from {res['mock_reused']}" if res.get("mock_reused") else
                f" in {res['mock_seconds']} s") + "). "
             f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, load average at the start "
             f"{m['load_average'][0]}, before the run {res['load_average_before_run'][0]}.", "",
             "Each stage: the notebook kernel's wall time and peak RSS as `desivoids run` "
             "recorded them, beside its floor: one cold read (page cache evicted) of every file "
             "of the folders it reads, measured right after the run (whole files: an upper bound "
             "of the floor of a stage that reads a few columns). "
             f"`desivoids run --jobs {res.get('jobs', 1)}`: a stage starts once the stages it "
             "reads have ended and, if it writes database tables, no other such stage runs; "
             "'ran beside' names the "
             "stages it shared the cores with, whose time its seconds include.", "",
             "CPU s: user + system seconds of the kernel and every process it started; "
             "cores: CPU s / seconds; 'nice +N': the stage ran at a lower CPU priority, beside "
             "one with a longer chain of stages after it.", "",
             "| stage | seconds | peak RSS (GiB) | CPU s | cores | ran beside | floor: reads | "
             "floor s | MB read | seconds / floor |", "|---|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in res["stages"]:
        ratio = "" if r["ratio_to_floor"] is None else f"{r['ratio_to_floor']}x"
        cpu = r.get("cpu_seconds")
        cores = "" if not cpu or not r["seconds"] else f"{cpu / r['seconds']:.2f}"
        name = r["stage"] + (f" (nice +{r['nice']})" if r.get("nice") else "")
        lines.append(f"| {name} | {r['seconds']} | {r['peak_rss_gib']} | "
                     f"{'' if cpu is None else cpu} | {cores} | "
                     f"{', '.join(r.get('beside', []))} | {', '.join(r['floor_reads'])} | {r['floor_seconds']} | "
                     f"{r['floor_bytes'] / 1e6:,.0f} | {ratio} |")
    verdict = "met" if res["meets"] else "NOT met"
    lines += ["", f"Total: **{res['run_seconds']} s** (the `desivoids run` process; "
              f"{res['stages_seconds']} s summed over the stages' kernels), {res['run_cpu_seconds']} CPU s, "
              f"peak RSS {res['run_peak_rss_gib']} GiB; the floors sum to "
              f"{res['floor_seconds']} s. Target: under {res['target_seconds']:.0f} s: "
              f"{verdict}.", ""]
    path = res.get("critical_path") or []
    if path:
        by = {r["stage"]: r for r in res["stages"]}
        cores = res["machine"]["cores"]
        lines += [f"Critical path (each stage after the one it waited for that ended last): "
                  f"{' -> '.join(path)}, {sum(by[n]['seconds'] for n in path):.1f} s of stage "
                  f"time. The stages' kernels used {res['stages_cpu_seconds']} CPU s: on "
                  f"{cores} cores no schedule of the same work ends in less than "
                  f"{res['stages_cpu_seconds'] / cores:.1f} s.", ""]
    lines += [f"Kernel start-up: papermill executing a one-cell notebook (`import desivoids`) "
              f"took {', '.join(f'{s} s' for s in res['kernel_startup_runs'])} (median "
              f"{res['kernel_startup_seconds']} s); over the run's {res['notebooks']} notebooks, "
              f"about {res['notebook_overhead_seconds']} s if each started its own. With the stage "
              f"notebooks' imports (every stage module and pyplot) in the cell: "
              f"{', '.join(f'{s} s' for s in res['kernel_with_imports_runs'])} (median "
              f"{res['kernel_with_imports_seconds']} s), at most "
              f"{res['kernel_with_imports_seconds'] * res['notebooks']:.0f} s over the run. "
              "A stage whose kernel was started ahead (while the stage before it ran in the same "
              "worker, or when the worker started) pays neither the start nor those imports in "
              "its own time (below)."]
    timed = [r for r in res["stages"] if "kernel_start_s" in r]
    if timed:
        lines += ["", "In the run, from papermill's record in each executed notebook: seconds from "
                  "papermill's start to the first cell's (the kernel started, or one started ahead "
                  "taken: `desivoids.kernels`) and from the "
                  "last cell's end to papermill's end (the kernel killed, the notebook saved): "
                  + "; ".join(f"{r['stage']} {r['kernel_start_s']} / {r['after_last_cell_s']}"
                              for r in timed) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(paths.PARAMS / "dr1-mock.yml"))
    ap.add_argument("--data-dir", default=str(DEFAULT_DIR))
    ap.add_argument("--scale", choices=["tiny", "small", "dr1"], default=None,
                    help="override the profile's mock scale")
    ap.add_argument("--kernel-repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="`desivoids run --jobs` (default: its own, the number of cores)")
    args = ap.parse_args(argv)
    data_dir = paths.resolve(args.data_dir)
    if args.scale in (None, "dr1"):
        measure.check_disk(data_dir, 30, "the DR1-scale run")
    res = bench(paths.resolve(args.params), data_dir, args.scale, args.kernel_repeats, args.jobs)
    measure.write("pipeline", res, markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
