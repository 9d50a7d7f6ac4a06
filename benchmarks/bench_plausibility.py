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
import sqlite3
import sys
from pathlib import Path

import measure

sys.path.insert(0, str(measure.ROOT / "lib"))

from desivoids import paths
from desivoids.plausibility.stage import READ_COLUMNS


READ_PART = f"read of its {len(READ_COLUMNS)} columns, part by part (warm)"


def parts(d) -> list[dict]:
    """The parts of the stage that no implementation avoids, each timed alone: start-up and
    imports, the check of its inputs' manifest, the read of its columns, the sort into key
    order, the selection table's insert (the stage's own code: a new SQLite file holding only a
    stand-in galaxies table, 16 KiB pages as the load creates them) and its two Parquet files."""
    import shutil
    import tempfile

    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from desivoids.load.tables import table_transaction
    from desivoids.params import verify_reads

    layout = paths.RunLayout.of(d)
    selection = pq.read_table(layout.file("plausibility", "selection"))
    sample = pq.read_table(layout.file("plausibility", "sample"))
    in_order = selection.sort_by("targetid")
    fragments = list(ds.dataset(layout.file("convert", "galaxies"), format="parquet")
                     .get_fragments())
    scratch = Path(tempfile.mkdtemp(prefix="bench-plausibility-"))

    def insert():
        db = scratch / "db.sqlite"
        db.unlink(missing_ok=True)
        with sqlite3.connect(db) as c:
            c.execute("PRAGMA page_size = 16384")
            c.execute("CREATE TABLE galaxies (targetid INTEGER PRIMARY KEY)")
        with table_transaction(f"sqlite:///{db}") as tx:
            tx.publish("selection", in_order, key=("targetid",))

    def write():
        pq.write_table(selection, scratch / "selection.parquet", compression="zstd")
        pq.write_table(sample, scratch / "sample.parquet", compression="zstd")

    try:
        return measure.time_parts([
            ("interpreter start-up and the stage's imports (a new process)",
             [sys.executable, "-c", "import desivoids.cli, desivoids.plausibility"]),
            ("convert's manifest checked (every file hashed)",
             lambda: verify_reads("plausibility", layout.data_dir)),
            (READ_PART,
             lambda: [f.to_table(columns=list(READ_COLUMNS)) for f in fragments]),
            ("TARGETIDs sorted into the table's key order",
             lambda: np.argsort(selection.column("targetid").to_numpy(), kind="stable")),
            (f"selection table inserted into SQLite ({selection.num_rows:,} rows, the stage's "
             "publish)", insert),
            ("selection.parquet and sample.parquet written (zstd)", write),
        ])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def why_not(result: dict) -> str:
    """Why the 3x target is out of reach, from the parts measured (empty when it is met)."""
    if result["meets"]["ratio"]:
        return ""
    parts = {p["part"]: p for p in result["parts"]}
    read = parts[READ_PART]["cpu_seconds"]
    insert = next(p for name, p in parts.items() if name.startswith("selection table inserted"))
    rest = sum(p["cpu_seconds"] for name, p in parts.items()
               if name not in (READ_PART, insert["part"]))
    total = read + insert["cpu_seconds"] + rest
    return f"""
Why 3x the warm read is out of reach: the parts above that no implementation avoids take
{total:.2f} CPU s, {total / (3 * read):.1f}x the {3 * read:.2f} CPU s that 3x the read's
{read} allows. The largest is the selection table's insert into the run's database,
{insert['cpu_seconds']} CPU s ({insert['cpu_seconds'] / read:.1f}x the read), in SQLite's one
writer thread, so that its wall time is at least that: 6.4 million rows appended in key order
to a WITHOUT ROWID table (a new database file with 16 KiB pages, as the load creates it).
The others: the check of convert's manifest (it hashes every file the stage reads), the sort
into key order, the two Parquet files, start-up and imports, {rest:.2f} CPU s.
(The manifest check also reads every byte of the galaxies files, not only the columns' ranges,
which is why they are all in the page cache after a run.) The stage computes its report in a
thread beside the table's sort and insert, inserts in a thread beside the Parquet files, and
reads the next part while it cuts this one; reaching 3x would need the selection stored
otherwise (no database copy of it, or fewer rows in it), a change of what the pipeline
publishes.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(paths.DATA / "bench" / "dr1"))
    args = ap.parse_args(argv)
    d = measure.dr1_run(paths.resolve(args.data_dir), "plausibility")
    cols = list(READ_COLUMNS)
    result = measure.bench_stage("plausibility", d, cols, {"seconds": 60, "rss_gib": 2.0,
                                                            "ratio": 3.0}, by_fragment=True,
                                 warm=True)
    result["parts"] = parts(d)
    measure.write("plausibility", result, measure.stage_markdown(
        result, "the tracer selection, waterfall, findings and the selection table on the "
        "DR1-scale mock", "python benchmarks/bench_plausibility.py")
        + measure.parts_markdown(result["parts"], result, (READ_PART,)) + why_not(result))
    print(result["best"], result["ratio_to_read"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
