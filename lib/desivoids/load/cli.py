"""``desivoids load``: the load stage without Jupyter.

    desivoids load --data-dir DIR [--db-url URL] [--force] [--sky-index auto|q3c|blocks]

Exit status 0 only when the transaction committed; 1 with the error (file, table, column) on
stderr otherwise, the database left as it was.
"""
from __future__ import annotations

import argparse
import sys

from .. import paths

__all__ = ["cli_main"]


def cli_main(argv: list[str] | None = None) -> int:
    from .errors import LoadError
    from .loader import load
    from .report import reconcile

    ap = argparse.ArgumentParser(prog="desivoids load",
                                 description="Load the convert stage's Parquet into SQL.")
    ap.add_argument("--data-dir", default=str(paths.DATA / "mock"),
                    help="run directory (reads DIR/parquet; default data/mock)")
    ap.add_argument("--db-url", default="",
                    help="database URL (default: sqlite file DIR/desivoids.sqlite); "
                         "postgresql://user@127.0.0.1:PORT/db for PostgreSQL")
    ap.add_argument("--force", action="store_true", help="reload tables whose input is unchanged")
    ap.add_argument("--sky-index", default="auto", choices=["auto", "q3c", "blocks"],
                    help="PostgreSQL cone index (default: q3c when available)")
    ap.add_argument("--quiet", action="store_true", help="no progress messages")
    args = ap.parse_args(argv)
    try:
        res = load(args.data_dir, args.db_url or None, force=args.force,
                   sky_index=args.sky_index, progress=not args.quiet)
    except (LoadError, ValueError, RuntimeError) as exc:
        print(f"error: load failed, database unchanged: {exc}", file=sys.stderr)
        return 1
    for t in res.tables:
        print(f"  {t.table:<10} {t.rows:>10} rows  {t.action}")
    rec = reconcile(paths.RunLayout.of(args.data_dir).parquet,
                    args.db_url or paths.RunLayout.of(args.data_dir).sqlite_url)
    bad = rec[~rec["match"]]
    if not bad.empty:
        print(f"error: row counts differ after load:\n{bad.to_string(index=False)}",
              file=sys.stderr)
        return 1
    print(f"load: committed run {res.run_id} into {res.dialect} "
          f"(sky index: {res.sky_index}); {res.rows_loaded} rows loaded")
    return 0
