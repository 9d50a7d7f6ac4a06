"""Extra verbs of the acquire stage (the stage itself is ``desivoids acquire``, whose options
come from the notebook's parameters cell):

    desivoids acquire spectra [INPUT ...] [-p NAME VALUE]...   coadd+redrock -> Parquet
    desivoids acquire status                                   the manifest in numbers

``spectra`` converts the pairs the transfer put in place, or those of the folders and files
given as INPUT, into ``DATA_DIR/acquire/spectra``; its selection is set as for the stage, with
``-p spectype '[GALAXY, QSO]'``, ``-p zwarn_zero false``, ``-p min_deltachi2 25`` (or read from
``--params FILE``), whose defaults are the notebook's. Paths on these command lines are
relative to the current directory. Exit status: 0 success, 1 failure (message on stderr), 2
usage error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import paths
from ..errors import EXIT_FAILED, EXIT_USAGE, DesivoidsError, UsageError

#: the stage parameters that make up a spectra selection (declared in the notebook)
SELECTION = ("spectype", "zwarn_zero", "min_deltachi2")


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", help="run folder (default: the notebook's data_dir, or that of --params); "
                                       "paths below it come from RunLayout")
    ap.add_argument("--manifest", help="state file (default DATA_DIR/acquire/manifest.sqlite)")


def _declared():
    from ..params import declared_parameters
    from ..stages import STAGES

    return STAGES["acquire"], declared_parameters(STAGES["acquire"])


def spectra_main(argv: list[str]) -> int:
    from ..stagecli import parse
    from .spectra import Selection
    from .steps import convert_spectra

    stage, declared = _declared()
    ap = argparse.ArgumentParser(
        prog="desivoids acquire spectra", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="coadd + redrock pairs -> Parquet in DATA_DIR/acquire/spectra, one row per selected target",
        epilog="selection (-p NAME VALUE, as for `desivoids acquire`):\n" + "\n".join(
            f"  {n} (default {declared[n].default!r})\n      {declared[n].help}" for n in SELECTION))
    ap.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="a folder (every coadd-*.fits below it with its redrock-*.fits) or coadd and redrock "
                         "files; none: every pair the acquire manifest holds")
    _common(ap)
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help=f"set a selection parameter ({', '.join(SELECTION)}); VALUE read as YAML")
    ap.add_argument("--params", metavar="FILE", help="params file: its data_dir and stages.acquire selection")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler-address", default="",
                    help="a dask.distributed scheduler to convert on (default: local threads)")
    ap.add_argument("--redo", action="store_true", help="convert again even if done with the same selection")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        other = sorted({n for n, _ in args.parameter} - set(SELECTION))
        if other:
            raise UsageError(f"-p {other[0]}: not a selection parameter; acquire spectra takes {list(SELECTION)}")
        given = parse(stage, [a for n, v in args.parameter for a in ("-p", n, v)] +
                      (["--params", args.params] if args.params else []))
    except UsageError as exc:
        print(f"desivoids acquire spectra: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    value = {n: given.get(n, declared[n].default) for n in SELECTION}
    data_dir = _abs(args.data_dir) or str(paths.resolve(given.get("data_dir") or declared["data_dir"].default))
    sel = Selection(tuple(value["spectype"]), bool(value["zwarn_zero"]), float(value["min_deltachi2"]))
    try:
        summary = convert_spectra(data_dir, sel, inputs=[_abs(i) for i in args.inputs], workers=args.workers,
                                  scheduler_address=args.scheduler_address or given.get("scheduler_address", ""),
                                  redo=args.redo, progress=False if args.no_progress else None,
                                  manifest_path=_abs(args.manifest))
    except DesivoidsError as exc:
        print(f"desivoids acquire spectra: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(summary)
    return EXIT_FAILED if summary.failed else 0


def status_main(argv: list[str]) -> int:
    from ..paths import RunLayout
    from .manifest import Manifest

    _, declared = _declared()
    ap = argparse.ArgumentParser(prog="desivoids acquire status", description="the manifest in numbers")
    _common(ap)
    args = ap.parse_args(argv)
    data_dir = _abs(args.data_dir) or str(paths.resolve(declared["data_dir"].default))
    path = Path(_abs(args.manifest)) if args.manifest else RunLayout.of(data_dir).manifest
    try:
        m = Manifest(path, readonly=True)
    except FileNotFoundError as exc:
        print(f"desivoids acquire status: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    with m:
        counts = m.counts()
        by = m.verified_by()
        rows = m.files()
        print(f"{path}: {len(rows)} files, {sum(r.size or 0 for r in rows):,} bytes")
        for state, n in counts.items():
            note = {"verified": f" ({by['published']} against published sums, {by['source']} against the "
                                "source's digest)",
                    "complete": " (size matched, sha256 recorded; nothing to verify it against)"}
            print(f"  {state:<9} {n}{note.get(state, '') if n else ''}")
        for what, why in m.unplanned():
            print(f"  NOT PLANNED {what}: {why}")
        for r in m.files(["failed"]):
            print(f"  FAILED {r.path}: {r.last_error}")
        for b in m.batches()[-5:]:
            print(f"  batch {b['id']} {b['kind']} {b['status']}: {b['files']} files, {b['bytes']} bytes, "
                  f"{b['seconds'] or 0:.1f} s {b['note'] or ''}".rstrip())
    return 0
