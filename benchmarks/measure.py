"""What every benchmark measures the same way: a command's wall time, CPU time and peak resident
memory (the process tree summed, polled with psutil), the machine's facts and load average, the
page cache evicted for "cold-ish" reads, and the DR1-scale run folder the stage benchmarks share.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def machine() -> dict:
    return {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def evict(files) -> None:
    """Drop the files' pages from the page cache (best effort; clean pages only, no root)."""
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def run_polled(cmd: list[str], interval: float = 0.05, env: dict | None = None
               ) -> tuple[float, int, int, float, str]:
    """(wall seconds, peak RSS of the process tree summed, exit code, CPU seconds of the tree,
    output) of a command."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = 0
            for p in [ps] + ps.children(recursive=True):
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(interval)
    out = proc.stdout.read()
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, peak, proc.returncode, cpu, out


def stage_command(stage: str, data_dir: Path, *params: str) -> list[str]:
    cmd = [sys.executable, "-m", "desivoids.cli", stage, "-p", "data_dir", str(data_dir)]
    for i in range(0, len(params), 2):
        cmd += ["-p", params[i], params[i + 1]]
    return cmd


def dr1_run(data_dir: Path, upto: str) -> Path:
    """The DR1-scale mock run folder with every stage before ``upto`` done (generated, converted,
    loaded ... as needed; each step is skipped when its output is already there)."""
    from desivoids.paths import RunLayout
    from desivoids.stages import ORDER

    layout = RunLayout.of(data_dir)
    if not (layout.mirror / "truth").is_dir():
        subprocess.run([sys.executable, "-m", "desivoids.cli", "mock", "--out", str(layout.mirror),
                        "--scale", "dr1", "--tiles", "0", "--no-progress"], check=True)
    steps = {"convert": (layout.convert / "reconciliation.json",
                         ["-p", "input_dir", str(layout.mirror)]),
             "load": (layout.load / "report.json", []),
             "plausibility": (layout.stage("plausibility") / "report.json", []),
             "environment": (layout.stage("environment") / "report.json", [])}
    for stage in ORDER[ORDER.index("convert"):ORDER.index(upto)]:
        if stage in steps and not steps[stage][0].exists():
            subprocess.run(stage_command(stage, layout.data_dir, *steps[stage][1]), check=True)
    return layout.data_dir


def write(stage: str, result: dict, markdown: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stage}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{stage}.md").write_text(markdown.rstrip() + "\n")


def read_columns(parquet_dir: Path, columns: list[str]) -> float:
    """Seconds to read ``columns`` of a Parquet dataset once, from a cold-ish page cache: the
    least any stage reading them can cost."""
    import pyarrow.dataset as ds

    files = sorted(Path(parquet_dir).rglob("*.parquet"))
    evict(files)
    t = time.perf_counter()
    ds.dataset(files, format="parquet").to_table(columns=columns)
    return time.perf_counter() - t


def bench_stage(stage: str, data_dir: Path, columns: list[str], targets: dict,
                repeats: int = 2) -> dict:
    """Wall time and peak RSS of ``desivoids <stage>`` on a DR1-scale run, the best of
    ``repeats`` runs, beside the cold read of the galaxy columns it reads."""
    from desivoids.paths import RunLayout

    layout = RunLayout.of(data_dir)
    ref = read_columns(layout.convert / "galaxies", columns)
    runs = []
    for _ in range(repeats):
        evict(sorted(layout.convert.rglob("*.parquet")))
        load = os.getloadavg()[0]
        seconds, peak, rc, cpu, out = run_polled(stage_command(stage, layout.data_dir))
        if rc not in (0, 1):  # integrity may fail on purpose; anything else is a crash
            raise SystemExit(f"{stage} crashed ({rc}):\n{out[-3000:]}")
        runs.append({"seconds": round(seconds, 2), "peak_rss_gib": round(peak / 2**30, 3),
                     "cpu_seconds": round(cpu, 1), "exit": rc, "load_average_before": round(load, 2),
                     "summary": out.strip().splitlines()[:1]})
    best = min(runs, key=lambda r: r["seconds"])
    return {"stage": stage, "machine": machine(), "data_dir": str(layout.data_dir),
            "reference_read_seconds": round(ref, 2), "columns_read": columns, "runs": runs,
            "best": best, "ratio_to_read": round(best["seconds"] / ref, 2), "targets": targets,
            "meets": {"seconds": best["seconds"] <= targets["seconds"],
                      "rss": best["peak_rss_gib"] <= targets["rss_gib"]}}


def stage_markdown(result: dict, what: str, command: str) -> str:
    b, t = result["best"], result["targets"]
    rows = "\n".join(f"| {i + 1} | {r['seconds']} | {r['peak_rss_gib']} | {r['cpu_seconds']} | "
                     f"{r['load_average_before']} |" for i, r in enumerate(result["runs"]))
    m = result["machine"]
    return f"""## {result['stage']}

Command: `{command}` ({what}). Machine: {m['cores']} cores, {m['memory_gib']} GiB, load average
at the start {m['load_average'][0]}.

Reference: reading the galaxy columns the stage reads ({len(result['columns_read'])} columns of
6,445,927 rows) once from a cold-ish page cache: {result['reference_read_seconds']} s.

| run | seconds | peak RSS (GiB) | CPU s | load avg before |
|---:|---:|---:|---:|---:|
{rows}

Best run: {b['seconds']} s = {result['ratio_to_read']}x the read, peak RSS {b['peak_rss_gib']} GiB.
Targets: under {t['seconds']} s ({'met' if result['meets']['seconds'] else 'NOT met'}) and
{t['rss_gib']} GiB ({'met' if result['meets']['rss'] else 'NOT met'}).
"""
