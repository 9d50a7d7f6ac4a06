"""Benchmark the mock sky: wall time, peak memory (RSS) and bytes written per scale.

    .venv/bin/python benchmarks/bench_mock.py [--scales tiny small [dr1]] [--workdir DIR]

Each scale runs `desivoids.mock.cli` in a fresh subprocess (so peak RSS is that run's alone,
sampled every 0.1 s with psutil), into a temporary folder that is deleted afterwards. Results go
to benchmarks/results/mock.json and results/mock.md, then reassembles benchmarks/REPORT.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import report  # noqa: E402  (benchmarks/report.py: assembles REPORT.md)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "mock.json"
SECTION = HERE / "results" / "mock.md"


def run_one(scale: str, workdir: Path, seed: int = 20251125, version: str = "v3.0") -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench_mock_{scale}_", dir=workdir))
    cmd = [sys.executable, "-m", "desivoids.mock.cli", "--out", str(out), "--scale", scale,
           "--seed", str(seed), "--fastspec-version", version, "--tiles", "2", "--json",
           "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"mock {scale} failed: {stderr[-2000:]}")
    summary = json.loads(stdout)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shutil.rmtree(out, ignore_errors=True)
    return {"scale": scale, "fastspec_version": version, "seed": seed,
            "wall_seconds": round(wall, 1), "generate_seconds": summary["seconds"],
            "peak_rss_mb": round(peak / 2 ** 20), "bytes_written": size, "rows": summary["rows"],
            "tracers": summary["tracers"],
            "voids": {c: d["voids"] for c, d in summary["desivast"].items()},
            "holes": {c: d["holes"] for c, d in summary["desivast"].items()}}


def write_report(results: list[dict]) -> None:
    """Write this benchmark's section (results/mock.md) and reassemble REPORT.md."""
    lines = ["## Mock sky (`desivoids mock`)", "",
             f"Command: `python benchmarks/bench_mock.py --scales {' '.join(r['scale'] for r in results)}`. "
             "Each run in a fresh subprocess; peak RSS sampled every 0.1 s.", "",
             "| scale | FastSpecFit | rows | tracers NGC/SGC | voids NGC/SGC | holes NGC/SGC | "
             "wall [s] | peak RSS [MB] | written [MB] |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r['scale']} | {r['fastspec_version']} | {r['rows']:,} | "
            f"{r['tracers']['NGC']:,}/{r['tracers']['SGC']:,} | "
            f"{r['voids']['NGC']:,}/{r['voids']['SGC']:,} | {r['holes']['NGC']:,}/{r['holes']['SGC']:,} | "
            f"{r['wall_seconds']:.1f} | {r['peak_rss_mb']:,} | {r['bytes_written'] / 2 ** 20:,.0f} |")
    lines += ["", f"Raw numbers: `benchmarks/results/{RESULTS.name}`."]
    SECTION.write_text("\n".join(lines) + "\n")
    report.main()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["tiny", "small"],
                    choices=["tiny", "small", "dr1"])
    ap.add_argument("--versions", nargs="+", default=["v3.0"], choices=["v3.0", "v2.1"])
    ap.add_argument("--workdir", default=tempfile.gettempdir(),
                    help="where the temporary mock skies go (dr1 needs ~15 GB free)")
    args = ap.parse_args(argv)
    previous = {}
    if RESULTS.exists():
        for r in json.loads(RESULTS.read_text()).get("runs", []):
            previous[(r["scale"], r["fastspec_version"])] = r
    for scale in args.scales:
        for version in args.versions:
            r = run_one(scale, Path(args.workdir), version=version)
            previous[(scale, version)] = r
            print(json.dumps(r))
    order = {"tiny": 0, "small": 1, "dr1": 2}
    runs = sorted(previous.values(), key=lambda r: (order[r["scale"]], r["fastspec_version"]))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    write_report(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
