"""Extra verbs of the acquire stage (the stage itself is ``desivoids acquire``, whose options
come from the notebook's parameters cell):

    desivoids acquire spectra [--spectype GALAXY ...] ...   coadd+redrock -> Parquet
    desivoids acquire status                                the manifest in numbers

Paths on these command lines are relative to the current directory. Exit status: 0 success,
1 failure (message on stderr), 2 usage error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import paths
from ..errors import EXIT_FAILED, DesivoidsError


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default=str(paths.DATA / "mock"),
                    help="run folder (default data/mock); paths below it come from RunLayout")
    ap.add_argument("--manifest", help="state file (default DATA_DIR/acquire/manifest.sqlite)")


def spectra_main(argv: list[str]) -> int:
    from .steps import convert_spectra
    from .spectra import Selection

    ap = argparse.ArgumentParser(prog="desivoids acquire spectra",
                                 description="verified coadd + redrock pairs -> Parquet, one row per selected target")
    _common(ap)
    ap.add_argument("--raw", help="folder of the fetched files (default DATA_DIR/raw)")
    ap.add_argument("--out", help="output folder (default DATA_DIR/parquet/spectra)")
    ap.add_argument("--spectype", nargs="*", default=["GALAXY"], help="SPECTYPE values kept (none: any)")
    ap.add_argument("--any-zwarn", action="store_true", help="do not require ZWARN == 0")
    ap.add_argument("--min-deltachi2", type=float, default=40.0, help="keep DELTACHI2 > this (default 40)")
    ap.add_argument("--no-deltachi2-cut", action="store_true")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--redo", action="store_true", help="convert again even if done with the same selection")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    sel = Selection(tuple(args.spectype), not args.any_zwarn, None if args.no_deltachi2_cut else args.min_deltachi2)
    try:
        summary = convert_spectra(_abs(args.data_dir), sel, workers=args.workers, redo=args.redo,
                                  progress=False if args.no_progress else None,
                                  raw=_abs(args.raw), out=_abs(args.out),
                                  manifest_path=_abs(args.manifest))
    except DesivoidsError as exc:
        print(f"desivoids acquire spectra: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary)
    return EXIT_FAILED if summary.failed else 0


def status_main(argv: list[str]) -> int:
    from pathlib import Path

    from ..paths import RunLayout
    from .manifest import Manifest

    ap = argparse.ArgumentParser(prog="desivoids acquire status", description="the manifest in numbers")
    _common(ap)
    args = ap.parse_args(argv)
    path = Path(_abs(args.manifest)) if args.manifest else RunLayout.of(_abs(args.data_dir)).manifest
    try:
        m = Manifest(path, readonly=True)
    except FileNotFoundError as exc:
        print(f"desivoids acquire status: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    with m:
        counts = m.counts()
        rows = m.files()
        print(f"{path}: {len(rows)} files, {sum(r.size or 0 for r in rows):,} bytes")
        for state, n in counts.items():
            print(f"  {state:<9} {n}")
        for r in m.files(["failed"]):
            print(f"  FAILED {r.path}: {r.last_error}")
        for b in m.batches()[-5:]:
            print(f"  batch {b['id']} {b['kind']} {b['status']}: {b['files']} files, {b['bytes']} bytes, "
                  f"{b['seconds'] or 0:.1f} s {b['note'] or ''}".rstrip())
    return 0
