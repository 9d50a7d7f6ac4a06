"""`desivoids convert`: FITS in RunLayout.raw -> Parquet in RunLayout.parquet, without Jupyter."""
from __future__ import annotations

import argparse
import sys

from .. import paths
from .errors import FormatError
from .run import DEFAULT_CHUNK_ROWS, convert


def cli_main(argv: list[str] | None = None) -> int:
    """Exit status 0 on success; 1 on bad input (FormatError, message on stderr); 2 on usage."""
    ap = argparse.ArgumentParser(prog="desivoids convert", description=__doc__)
    ap.add_argument("--data-dir", default=str(paths.DATA / "mock"),
                    help="run folder (reads <data-dir>/raw, writes <data-dir>/parquet)")
    ap.add_argument("--input-dir", default="",
                    help="folder in DESI's relative layout to read (default <data-dir>/raw)")
    ap.add_argument("--extra-columns", nargs="*", default=[], metavar="COL",
                    help="more FastSpecFit columns to keep (FITS names, any HDU)")
    ap.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                    help=f"rows per Dask task and Parquet row group (default {DEFAULT_CHUNK_ROWS})")
    ap.add_argument("--scheduler", default="threads",
                    choices=["threads", "processes", "synchronous"],
                    help="Dask local scheduler (default threads)")
    ap.add_argument("--scheduler-address", default="",
                    help="dask.distributed scheduler address, e.g. tcp://127.0.0.1:8786")
    ap.add_argument("--workers", type=int, default=0, help="local workers (0: all cores)")
    ap.add_argument("--fastspec-version", default="auto", choices=["auto", "v3.0", "v2.1"])
    ap.add_argument("--omega-m", type=float, default=None,
                    help="Omega_m for comoving distances (default: OMEGAM of the DESIVAST headers)")
    ap.add_argument("--compression", default="none",
                    help="Parquet codec: none (default, fastest), snappy, zstd, lz4")
    ap.add_argument("--strict", action="store_true",
                    help="fail on any row that would be rejected instead of listing it in rejects")
    args = ap.parse_args(argv)
    try:
        res = convert(args.data_dir, extra_columns=args.extra_columns, chunk_rows=args.chunk_rows,
                      scheduler=args.scheduler, scheduler_address=args.scheduler_address,
                      num_workers=args.workers or None, fastspec_version=args.fastspec_version,
                      omega_m=args.omega_m, strict=args.strict,
                      input_dir=args.input_dir or None, compression=args.compression)
    except (FormatError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for table, rows in sorted(res.rows.items()):
        rejected = sum(res.reconciliation["totals"][table]["rejected"].values())
        print(f"  {table:<10} {rows:>10,d} rows  ({rejected:,d} rejected)")
    print(f"convert: {res.out_dir} in {res.seconds:.1f} s (Omega_m {res.omega_m}, "
          f"{res.omega_m_source})")
    print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in res.timings.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_main())
