"""Benchmark the mock sky: wall time, peak memory (RSS) and bytes written per scale, beside the
time to write the same number of bytes.

    .venv/bin/python benchmarks/bench_mock.py [--scales tiny small [dr1]] [--workdir DIR]

Each scale runs `desivoids.mock.cli` in a fresh subprocess (so peak RSS is that run's alone: the
process tree, polled by measure.run_polled), into a temporary folder that is deleted afterwards.
The reference, measured right after each run in the same folder, is writing the same number of
bytes to one file in 16 MB blocks (the disk and page cache alone: a mock that only wrote its
bytes would take that long). Results go to benchmarks/results/mock.json and results/mock.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import measure

RESULTS = measure.RESULTS / "mock.json"


def run_one(scale: str, workdir: Path, seed: int = 20251125, version: str = "v3.0") -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"bench_mock_{scale}_", dir=workdir))
    cmd = [sys.executable, "-m", "desivoids.mock.cli", "--out", str(out), "--scale", scale,
           "--seed", str(seed), "--fastspec-version", version, "--tiles", "2", "--json",
           "--no-progress"]
    load = measure.load_average()
    try:
        wall, peak, rc, cpu, stdout = measure.run_polled(cmd, interval=0.1, merge_stderr=False)
        if rc != 0:
            raise RuntimeError(f"mock {scale} failed: {stdout[-2000:]}")
        summary = json.loads(stdout)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        shutil.rmtree(out)
        out.mkdir()
        write = measure.write_bytes(out / "reference.bin", size)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"scale": scale, "fastspec_version": version, "seed": seed,
            "wall_seconds": round(wall, 1), "generate_seconds": summary["seconds"],
            "cpu_seconds": round(cpu, 1), "peak_rss_mb": round(peak / 2 ** 20),
            "bytes_written": size, "write_seconds": round(write, 2),
            "ratio_to_write": round(wall / write, 1), "load_average_before": load,
            "measured_at": measure.now(), "rows": summary["rows"],
            "tracers": summary["tracers"],
            "voids": {c: d["voids"] for c, d in summary["desivast"].items()},
            "holes": {c: d["holes"] for c, d in summary["desivast"].items()}}


def render(results: list[dict], command: str) -> str:
    """This benchmark's section (results/mock.md)."""
    lines = ["## Mock sky (`desivoids mock`)", "",
             f"Command: `{command}`. Each run in a fresh subprocess; peak RSS of its process "
             "tree sampled every 0.1 s. Reference: writing the same number of bytes to one "
             "file in 16 MB blocks, in the same folder, right after the run (no fsync, as the "
             "mock does not sync either).", "",
             "| scale | FastSpecFit | rows | tracers NGC/SGC | voids NGC/SGC | holes NGC/SGC | "
             "wall [s] | peak RSS [MB] | written [MB] | write alone [s] | mock / write "
             "| load avg before |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        ref = (f"{r['write_seconds']:.1f} | {r['ratio_to_write']:.1f}" if "write_seconds" in r
               else "not measured | ")
        lines.append(
            f"| {r['scale']} | {r['fastspec_version']} | {r['rows']:,} | "
            f"{r['tracers']['NGC']:,}/{r['tracers']['SGC']:,} | "
            f"{r['voids']['NGC']:,}/{r['voids']['SGC']:,} | {r['holes']['NGC']:,}/{r['holes']['SGC']:,} | "
            f"{r['wall_seconds']:.1f} | {r['peak_rss_mb']:,} | {r['bytes_written'] / 2 ** 20:,.0f} "
            f"| {ref} | {r.get('load_average_before', [''])[0]} |")
    lines += ["", "No target is set for the mock sky: it is test input, generated once per "
              "machine (the DR1-scale one under data/bench/dr1 for every other benchmark). The "
              "mock is CPU-bound (random draws, FITS encoding): the ratio says how far from "
              f"disk-bound it is. Raw numbers: `benchmarks/results/{RESULTS.name}`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["tiny", "small"],
                    choices=["tiny", "small", "dr1"])
    ap.add_argument("--versions", nargs="+", default=["v3.0"], choices=["v3.0", "v2.1"])
    ap.add_argument("--workdir", default=tempfile.gettempdir(),
                    help="where the temporary mock skies go (dr1 needs ~15 GB free)")
    args = ap.parse_args(argv)
    if "dr1" in args.scales:
        measure.check_disk(Path(args.workdir), 11, "the DR1-scale mock benchmark")
    start = measure.machine()
    runs = []
    for scale in sorted(set(args.scales), key=["tiny", "small", "dr1"].index):
        for version in args.versions:
            runs.append(run_one(scale, Path(args.workdir), version=version))
            print(json.dumps(runs[-1]), flush=True)
    command = "python benchmarks/bench_mock.py " + " ".join(argv if argv is not None
                                                           else sys.argv[1:])
    measure.write("mock", {"command": command.strip(), "machine": start, "runs": runs}, render(runs, command.strip()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
