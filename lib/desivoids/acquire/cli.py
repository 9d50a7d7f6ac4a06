"""``desivoids acquire``: resumable, verified download of DESI DR1 files; tile spectra to Parquet.

    desivoids acquire [--source https|s3|URL|FOLDER] [--sets desivast fastspecfit tiles ...]
                      [--dry-run] [--resume] [--workers N] ...     plan and fetch
    desivoids acquire spectra [--spectype GALAXY ...] ...          coadd+redrock -> Parquet
    desivoids acquire status                                       the manifest in numbers

Exit status: 0 all verified, 1 some files failed (reasons printed), 2 bad arguments or a plan
that cannot be made, 3 stopped by the disk guard, 4 the manifest is held by another run,
130 interrupted.
"""
from __future__ import annotations

import argparse
import sys

from .. import paths

EXIT = {"done": 0, "incomplete": 1, "stopped": 3, "interrupted": 130}


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default=str(paths.DATA / "mock"),
                    help="run folder (default data/mock); paths below it come from RunLayout")
    ap.add_argument("--manifest", help="state file (default DATA_DIR/acquire/manifest.sqlite)")


def _fetch_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="desivoids acquire", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[1:]))
    _common(ap)
    ap.add_argument("--source", default="",
                    help="'https' (DESI portal), 's3' (anonymous desidata bucket), s3://bucket/prefix, an "
                         "http(s) URL, an fsspec URL or a folder; default: the run's mock mirror")
    ap.add_argument("--s3-endpoint", help="S3 endpoint URL (another S3 server, e.g. a local one)")
    ap.add_argument("--dest", help="where verified files go (default DATA_DIR/raw)")
    ap.add_argument("--sets", nargs="+", default=["desivast", "fastspecfit"],
                    choices=["desivast", "fastspecfit", "tiles", "healpix", "dir"], help="file sets to fetch")
    ap.add_argument("--desivast-version", default="v1.0")
    ap.add_argument("--fastspec-version", default="v3.0", choices=["v3.0", "v2.1"])
    ap.add_argument("--hp", nargs="*", type=int, default=[], help="v3.0 nside-1 pixels (default all 12)")
    ap.add_argument("--tiles", nargs="*", default=[],
                    help="TILEID[/YYYYMMDD[/PETALS]] (default: every tile at the source); '@FILE' reads them "
                         "from a file, one per line, or from a tiles-iron.csv (TILEID, LASTNIGHT)")
    ap.add_argument("--max-tiles", type=int, help="with no --tiles: only the first N tiles by TILEID")
    ap.add_argument("--petals", nargs="*", type=int, default=[], help="petals 0..9 (default all)")
    ap.add_argument("--healpix", nargs="*", default=[], help="SURVEY/PROGRAM/PIXEL for set healpix")
    ap.add_argument("--dir", dest="dirs", nargs="*", default=[], help="directories for set dir (recursive)")
    ap.add_argument("--workers", type=int, default=4, help="parallel transfers (default 4)")
    ap.add_argument("--retries", type=int, default=5, help="retries per file after the first attempt")
    ap.add_argument("--backoff", type=float, default=0.5, help="first retry delay in s, doubling (default 0.5)")
    ap.add_argument("--max-backoff", type=float, default=60.0)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--read-timeout", type=float, default=60.0)
    ap.add_argument("--min-free-gb", type=float, default=1.0, help="disk guard: keep this much free (GB)")
    ap.add_argument("--chunk-kb", type=int, default=1024, help="read size per chunk (KiB)")
    ap.add_argument("--dry-run", action="store_true", help="list files, sizes, totals, free disk, time; fetch nothing")
    ap.add_argument("--resume", action="store_true", help="finish the manifest's plan without re-planning")
    ap.add_argument("--rehash", action="store_true", help="re-hash verified files instead of checking sizes")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def _tiles_arg(items: list[str]) -> list[str]:
    out = []
    for it in items:
        if not it.startswith("@"):
            out.append(it)
            continue
        import csv
        from pathlib import Path

        text = Path(it[1:]).read_text()
        if text.lstrip().upper().startswith("TILEID"):
            out += [f"{r['TILEID']}/{r['LASTNIGHT']}" for r in csv.DictReader(text.splitlines())]
        else:
            out += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return out


def _fetch(argv: list[str]) -> int:
    from pathlib import Path

    from ..paths import RunLayout
    from .filesets import FileSetError
    from .manifest import ManifestLocked
    from .plan import PlanError
    from .run import acquire, dry_run, source_for
    from .sources import SourceError
    from .transfer import Options

    args = _fetch_parser().parse_args(argv)
    layout = RunLayout.of(args.data_dir)
    dest = Path(args.dest) if args.dest else layout.raw
    manifest = Path(args.manifest) if args.manifest else layout.manifest
    set_params = dict(desivast_version=args.desivast_version, fastspec_version=args.fastspec_version, hp=args.hp,
                      tiles=_tiles_arg(args.tiles), petals=args.petals, max_tiles=args.max_tiles,
                      healpix=args.healpix, dirs=args.dirs)
    opts = Options(workers=args.workers, retries=args.retries, backoff=args.backoff, max_backoff=args.max_backoff,
                   min_free=int(args.min_free_gb * 1e9), progress=not args.no_progress, rehash=args.rehash)
    try:
        source = source_for(args.source, args.data_dir, s3_endpoint=args.s3_endpoint,
                            timeout=(args.connect_timeout, args.read_timeout))
        source.chunk = args.chunk_kb * 1024
        if args.dry_run:
            print(dry_run(source, dest, manifest, args.sets, workers=args.workers, min_free=opts.min_free,
                          **set_params))
            return 0
        summary = acquire(source, dest, manifest, args.sets, resume=args.resume, options=opts, **set_params)
    except ManifestLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except (FileSetError, PlanError, SourceError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: rerun with --resume to finish", file=sys.stderr)
        return 130
    print(summary)
    return EXIT[summary.status]


def _spectra(argv: list[str]) -> int:
    from .manifest import ManifestLocked
    from .run import convert_spectra
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
        summary = convert_spectra(args.data_dir, sel, workers=args.workers, redo=args.redo,
                                  progress=not args.no_progress, raw=args.raw, out=args.out,
                                  manifest_path=args.manifest)
    except ManifestLocked as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    print(summary)
    return 1 if summary.failed else 0


def _status(argv: list[str]) -> int:
    from pathlib import Path

    from ..paths import RunLayout
    from .manifest import Manifest

    ap = argparse.ArgumentParser(prog="desivoids acquire status", description="the manifest in numbers")
    _common(ap)
    args = ap.parse_args(argv)
    path = Path(args.manifest) if args.manifest else RunLayout.of(args.data_dir).manifest
    try:
        m = Manifest(path, readonly=True)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


def cli_main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "spectra":
        return _spectra(argv[1:])
    if argv and argv[0] == "status":
        return _status(argv[1:])
    return _fetch(argv)
