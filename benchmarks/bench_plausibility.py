"""Benchmark of the plausibility stage at DR1 scale: wall time and peak RSS beside the read of
the galaxy columns it reads, one part after the other as the stage does.

    .venv/bin/python benchmarks/bench_plausibility.py [--data-dir data/bench/dr1]

Input: the DR1-scale mock run (generated, converted and loaded first when missing). Writes
benchmarks/results/plausibility.{md,json}. Targets: under 60 s and 2 GB (issue 9); the whole
process at most 3x the read (issue 25), on a warm page cache as in the whole run, where the
stage reads the Parquet the convert stage wrote and the load stage has just read.
"""
from __future__ import annotations

import argparse
import sys

import measure

sys.path.insert(0, str(measure.ROOT / "lib"))

from desivoids import paths
from desivoids.plausibility.stage import READ_COLUMNS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(paths.DATA / "bench" / "dr1"))
    args = ap.parse_args(argv)
    d = measure.dr1_run(paths.resolve(args.data_dir), "plausibility")
    cols = list(READ_COLUMNS)
    result = measure.bench_stage("plausibility", d, cols, {"seconds": 60, "rss_gib": 2.0,
                                                            "ratio": 3.0}, by_fragment=True,
                                 warm=True)
    measure.write("plausibility", result, measure.stage_markdown(
        result, "the tracer selection, waterfall, findings and the selection table on the "
        "DR1-scale mock", "python benchmarks/bench_plausibility.py"))
    print(result["best"], result["ratio_to_read"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
