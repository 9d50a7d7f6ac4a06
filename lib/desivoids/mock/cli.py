"""`desivoids mock`: write a DESI-format mock sky with a planted answer.

    desivoids mock --out DIR [--seed N] [--scale tiny|small|dr1] [--fastspec-version v3.0|v2.1]
                   [--tiles N] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys

from .. import paths
from .scales import SCALES


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="desivoids mock",
                                 description="Write a mock DESI DR1 sky (DESIVAST + FastSpecFit) "
                                             "in DESI's relative layout, plus its truth.")
    ap.add_argument("--out", required=True, help="output folder (the mock 'remote' root)")
    ap.add_argument("--seed", type=int, default=20251125, help="random seed (default 20251125)")
    ap.add_argument("--scale", choices=sorted(SCALES), default="small",
                    help="tiny (~5k rows), small (~150k rows, default) or dr1 (6,445,927 rows)")
    ap.add_argument("--fastspec-version", choices=("v3.0", "v2.1"), default="v3.0",
                    help="FastSpecFit layout: v3.0 (12 nside-1 files) or v2.1 (one file)")
    ap.add_argument("--tiles", type=int, default=2, help="mock tile spectra to write (default 2)")
    ap.add_argument("--json", action="store_true", help="print the full summary as JSON")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def cli_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .generate import generate

    try:
        summary = generate(paths.resolve(args.out), seed=args.seed, scale=args.scale,
                           fastspec_version=args.fastspec_version, tiles=args.tiles,
                           progress=False if args.no_progress else None)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=1, sort_keys=True))
        return 0
    print(f"mock sky: scale={summary['scale']} seed={summary['seed']} "
          f"fastspec={summary['fastspec_version']} -> {summary['out_dir']}")
    print(f"  FastSpecFit rows: {summary['rows']:,}")
    for cap, d in summary["desivast"].items():
        print(f"  {cap}: {d['tracers']:,} tracers, {d['voids']:,} VoidFinder voids, "
              f"{d['holes']:,} holes, {d['zones']:,} V2 zones")
    print(f"  files: {len(summary['files'])} catalogues + {len(summary['checksum_files'])} "
          f"checksum files; truth in {summary['out_dir']}/truth")
    if summary["tiles"]:
        print(f"  tiles: {len(summary['tiles'])}")
    print(f"  time: {summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main())
