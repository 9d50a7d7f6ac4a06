"""Assemble benchmarks/REPORT.md from the sections each benchmark writes to benchmarks/results/.

Each benchmark script (bench_<stage>.py) measures at DR1 scale and writes results/<stage>.md
(figures with the command that produced them) and results/<stage>.json (the raw numbers).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import psutil

from desivoids.stages import ORDER as STAGE_ORDER

HERE = Path(__file__).resolve().parent
#: sections in pipeline order: the mock sky first, then the stages as the registry orders them
ORDER = ["mock", *STAGE_ORDER]


def main() -> Path:
    sections = sorted((HERE / "results").glob("*.md"),
                      key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    mem = psutil.virtual_memory().total / 2**30
    head = [
        "# Benchmark report",
        "",
        "Throughput and peak memory of the pipeline at DR1 scale (the `--scale dr1` mock sky:",
        "6,445,927 galaxies, 10,754 voids). Every figure was produced by the command shown with it;",
        "rerun `python benchmarks/report.py` after a benchmark to reassemble this page.",
        "",
        f"Machine: {os.cpu_count()} cores, {mem:.0f} GiB memory, {platform.platform()}, "
        f"Python {platform.python_version()}.",
        "",
    ]
    body = [p.read_text().strip() + "\n" for p in sections]
    out = HERE / "REPORT.md"
    out.write_text("\n".join(head) + "\n" + "\n".join(body))
    return out


if __name__ == "__main__":
    print(main())
