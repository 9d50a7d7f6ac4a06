"""`desivoids mock`: write a DESI-format mock sky with a planted answer.

    desivoids mock --out DIR [--seed N] [--scale tiny|small|dr1] [--fastspec-version v3.0|v2.1]
                   [--tiles N] [--json]          (options: desivoids.mock.generate's parameters)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .scales import SCALES


def build_parser() -> argparse.ArgumentParser:
    """Options from desivoids.mock.generate's signature (the one declaration of the mock's
    parameters, which params files' ``mock`` sections also follow)."""
    from ..params import mock_parameters

    ap = argparse.ArgumentParser(prog="desivoids mock",
                                 description="Write a mock DESI DR1 sky (DESIVAST + FastSpecFit) "
                                             "in DESI's relative layout, plus its truth.")
    ap.add_argument("--out", required=True,
                    help="output folder (the mock 'remote' root; relative to the current folder)")
    choices = {"scale": sorted(SCALES), "fastspec_version": ("v3.0", "v2.1")}
    for name, p in mock_parameters().items():
        ap.add_argument("--" + name.replace("_", "-"), dest=name, type=type(p.default),
                        default=p.default, choices=choices.get(name),
                        help=f"generate(..., {name}=) (default {p.default!r})")
    ap.add_argument("--json", action="store_true", help="print the full summary as JSON")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def cli_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .generate import generate

    from ..params import mock_parameters

    kwargs = {name: getattr(args, name) for name in mock_parameters()}
    try:
        summary = generate(Path(args.out).expanduser().resolve(), **kwargs,
                           progress=False if args.no_progress else None)
    except (ValueError, OSError) as exc:
        print(f"desivoids mock: error: {exc}", file=sys.stderr)
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
