"""Run the benchmarks and assemble benchmarks/REPORT.md and REPORT.json: what `make bench` does.

    .venv/bin/python benchmarks/run.py                  # every benchmark, in pipeline order
    .venv/bin/python benchmarks/run.py environment load # some of them (make bench BENCH="...")

The benchmarks are the bench_<name>.py scripts of report.ORDER (the mock sky, every stage of the
registry, the whole run), in that order. Each runs as its own process (with the arguments of
ARGS, if any) and writes results/<name>.md and .json; a failed benchmark is recorded and the
others still run (the exit status is then 1). The DR1-scale mock run folder (data/bench/dr1)
is prepared by `desivoids run` (measure.dr1_run: the mock sky written once, after checking the
free disk space; a stage rerun only when stale), so rerunning is safe and resumes where it
stopped. results/run.json keeps,
per benchmark, the status, wall time and load average of its latest run, and the machine and
load average at the start of this run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import measure
import report

from desivoids.stages import STAGES

#: every benchmark, in report order: those of report.ORDER with a script
BENCHMARKS = [n for n in report.ORDER if (measure.HERE / f"bench_{n}.py").is_file()]
#: the arguments `make bench` gives a benchmark beyond its script's defaults
ARGS = {"mock": ["--scales", "tiny", "small", "dr1"], "systematics": ["--coverage", "20"]}
#: benchmarks that need the DR1-scale mock run folder: convert (its mock sky) and every stage
#: that reads convert's outputs, directly or not; pipeline hard-links its mock sky
DR1 = {n for n in BENCHMARKS if n == "convert" or n == "pipeline"
       or (n in STAGES and "convert" in measure.prerequisites(n))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {BENCHMARKS})")
    args = ap.parse_args(argv)
    names = args.names or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {BENCHMARKS}")
    names = [n for n in BENCHMARKS if n in names]  # pipeline order
    previous = json.loads(report.RUN.read_text()) if report.RUN.exists() else {}
    entries = {b["name"]: b for b in previous.get("benchmarks", [])}
    run = {"command": "make bench" + (f" BENCH=\"{' '.join(args.names)}\"" if args.names else ""),
           "started_at": measure.now(), "machine": measure.machine(), "names": names}

    def record():
        run["benchmarks"] = [entries[n] for n in BENCHMARKS if n in entries]
        measure.RESULTS.mkdir(exist_ok=True)
        report.RUN.write_text(json.dumps(run, indent=1) + "\n")
        report.main()

    if DR1 & set(names):
        try:
            measure.dr1_run(measure.DR1_DIR, "convert")  # generated once; disk checked first
        except (SystemExit, subprocess.CalledProcessError) as exc:
            print(f"the DR1-scale mock is not available: {exc}", file=sys.stderr)
            for n in names:
                if n in DR1:
                    entries[n] = {"name": n, "status": "not run (no DR1-scale mock)",
                                  "finished_at": measure.now()}
            names = [n for n in names if n not in DR1]
    failed = []
    for name in names:
        cmd = [sys.executable, str(measure.HERE / f"bench_{name}.py"), *ARGS.get(name, [])]
        print(f"== {' '.join(cmd[1:])}", flush=True)
        load = measure.load_average()
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=measure.ROOT).returncode
        entries[name] = {"name": name, "status": "ok" if rc == 0 else f"failed (exit {rc})",
                         "seconds": round(time.perf_counter() - t0), "load_average_before": load,
                         "finished_at": measure.now()}
        if rc:
            failed.append(name)
        record()
    run["load_average_end"] = measure.load_average()
    record()
    print(report.HERE / "REPORT.md")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
