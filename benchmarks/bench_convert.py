"""Benchmark of the convert stage at DR1 scale: rows/s and peak RSS against a raw read.

    .venv/bin/python benchmarks/bench_convert.py [--data-dir data/bench/dr1] [--schedulers threads processes]

Input: the DR1-scale mock sky (``desivoids mock --scale dr1``: 6,445,927 galaxies, 10,754 voids),
read from acquire's folder (<data-dir>/acquire/raw) if acquire put it there, as the whole run
reads it: convert then also hashes every raw file against the sha256 acquire recorded (its raw
check, issue 20), a second read of every byte; one more cold run reads the same files from
<data-dir>/mirror, which has no such record, to show the conversion alone. Without acquire's
folder, the mirror is the input (generated with ``--generate`` when missing, by
measure.dr1_run). For each Dask scheduler the convert command
runs as a subprocess whose resident memory (the process and its children, summed) is polled
with psutil; before every timed run the input files are evicted from the page cache
(posix_fadvise DONTNEED, no root needed) so the convert and the plain read both start
"cold-ish". The reference is the time to
read the same files' bytes once, the fastest of this run's reads: 16 MB readinto through the page
cache (like ``cat > /dev/null``, one and two files at a time) and 16 MB O_DIRECT reads (like
``dd iflag=direct``), which convert's direct_io reads are compared with; the figure of merit is
convert time / read time (target: <= 1.3, issue 25; issue 9's was 2). Convert runs with direct_io (its
default) for every scheduler, and once more through the page cache (direct_io false), cold and warm.

Writes benchmarks/results/convert.json (raw numbers) and benchmarks/results/convert.md (the
report section, with this command).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import measure

from desivoids import paths
from desivoids.convert.build import DEFAULT_CHUNK_ROWS, discover
from desivoids.convert.fastspecfit import DEFAULT_COMPRESSION

HERE = measure.HERE
TARGET_RATIO = 1.3  # issue 25
OLDER_TARGET_RATIO = 2.0  # issue 9's, before issue 25
RSS_LIMIT = 2 * 2**30
evict, read_bytes, run_polled = measure.evict, measure.read_bytes, measure.run_polled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(paths.DATA / "bench" / "dr1"))
    ap.add_argument("--schedulers", nargs="+", default=["threads", "processes"])
    ap.add_argument("--repeat", type=int, default=2,
                    help="cold direct runs per scheduler (the reference is the best of ~10 reads)")
    ap.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    ap.add_argument("--compression", default=DEFAULT_COMPRESSION)
    ap.add_argument("--generate", action="store_true", help="generate the dr1 mock if missing")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite convert.md from the existing convert.json, measuring nothing")
    args = ap.parse_args(argv)
    if args.render_only:
        result = json.loads((HERE / "results" / "convert.json").read_text())
        (HERE / "results" / "convert.md").write_text(render(result))
        return 0
    layout = paths.RunLayout.of(args.data_dir)
    checked = layout.raw.is_dir() and layout.manifest.is_file()
    source = layout.raw if checked else layout.mirror
    if not source.is_dir():
        if not args.generate:
            print(f"no input at {layout.raw} or {layout.mirror}; rerun with --generate",
                  file=sys.stderr)
            return 2
        measure.dr1_run(layout.data_dir, "convert")  # generates the mirror, disk checked first
        source = layout.mirror
    fast, vast = discover(source)
    files = _files(source)
    nbytes = sum(f.stat().st_size for f in files)
    print(f"input: {len(fast)} FastSpecFit + {len(vast)} DESIVAST files, {nbytes / 1e9:.2f} GB "
          f"in {source}")

    import resource

    start = measure.machine()
    load_start = start["load_average"][0]
    evict(files)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    read_cold = read_bytes(files)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    read_cold_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    evict(files)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    direct_cold = read_bytes(files, direct=True)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    direct_cold_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    read_bytes(files)
    read_warm = read_bytes(files)  # the files now sit in the page cache if memory allows
    print(f"raw read: cold-ish {read_cold:.1f} s ({nbytes / read_cold / 1e6:.0f} MB/s), "
          f"direct {direct_cold:.1f} s, warm {read_warm:.1f} s")

    # (scheduler, page cache, direct_io): every scheduler as a user runs it (twice: the read it
    # is compared with is the best of many), then the same
    # convert through the page cache, cold and warm, to show what the direct reads change
    plan = [(s, "cold", True, source) for _ in range(args.repeat) for s in args.schedulers]
    if checked and layout.mirror.is_dir():
        plan.append((args.schedulers[0], "cold", True, layout.mirror))  # no raw check
    plan += [(args.schedulers[0], cache, False, source) for cache in ("cold", "warm")]
    runs = []
    reads = {"buffered": [read_cold], "direct": [direct_cold]}
    for sched, cache, direct, src in plan:
        src_files = files if src == source else _files(src)
        if cache == "cold":
            # the plain reads again right before this run: the disk's speed drifts with the
            # machine's other work, and the reference is the fastest read of the run
            before = []
            for kind, streams in (("buffered", 1), ("buffered", 2), ("direct", 1)):
                evict(src_files)
                before.append(read_bytes(src_files, streams, direct=kind == "direct"))
                reads[kind].append(before[-1])
            evict(src_files)
        else:
            read_bytes(src_files)
        cmd = [sys.executable, "-m", "desivoids.cli", "convert", "-p", "data_dir",
               str(layout.data_dir), "-p", "input_dir", str(src), "-p", "scheduler", sched,
               "-p", "chunk_rows", str(args.chunk_rows), "-p", "compression", args.compression,
               "-p", "direct_io", str(direct).lower()]
        # untimed: the previous run's output deleted and the disk's write-back finished, so
        # that each convert starts as a first one does (replacing an output adds its unlink,
        # ~0.4 s at this scale, measured) and no earlier run's writes compete with its reads
        shutil.rmtree(layout.convert, ignore_errors=True)
        os.sync()
        load = os.getloadavg()[0]
        seconds, peak, rc, cpu, out = run_polled(cmd)
        phases = next((ln.split("phases:", 1)[1].strip() for ln in out.splitlines()
                       if "phases:" in ln), "")
        if rc:
            raise SystemExit(f"convert failed ({rc}): {' '.join(cmd)}\n{out[-3000:]}")
        rec = json.loads((layout.convert / "reconciliation.json").read_text())
        rows = rec["totals"]["galaxies"]["rows_in"]
        ref = read_warm
        r = {"scheduler": sched, "cache": cache, "direct_io": direct,
             "raw_check": checked and src == source, "seconds": round(seconds, 2),
             "galaxy_rows": rows, "rows_per_s": round(rows / seconds),
             "peak_rss_bytes": peak, "peak_rss_gib": round(peak / 2**30, 3),
             "read_seconds": round(ref, 2), "ratio_to_read": round(seconds / ref, 2),
             "cpu_seconds": round(cpu, 1), "cpu_utilisation": round(cpu / seconds, 2),
             "load_average_before": round(load, 2), "phases": phases}
        if cache == "cold":
            r["paired_read_seconds"] = round(min(before), 2)
            r["ratio_to_paired_read"] = round(seconds / min(before), 2)
        print(r)
        runs.append(r)

    totals = rec["totals"]
    voids = totals.get("voids", {}).get("rows_out", 0)
    holes = totals.get("holes", {}).get("rows_out", 0)
    read_cold = min(min(v) for v in reads.values())  # the ceiling: this run's fastest read
    cold = [r for r in runs if r["cache"] == "cold"]
    for r in cold:
        r["read_seconds"], r["ratio_to_read"] = round(read_cold, 2), round(r["seconds"] / read_cold, 2)
    # the run's configuration (acquire's files, checked) is the one judged
    best = min((r for r in cold if r["direct_io"] and r["raw_check"] == checked),
               key=lambda r: r["seconds"])
    unchecked = [r for r in cold if r["direct_io"] and not r["raw_check"]]
    result = {
        "command": "python benchmarks/bench_convert.py " + " ".join(argv or sys.argv[1:]),
        "machine": start,
        "input": {"source": str(source.relative_to(paths.ROOT)) if source.is_relative_to(paths.ROOT) else str(source),
                  "fastspec_files": len(fast), "desivast_files": len(vast), "bytes": nbytes,
                  "galaxies": totals["galaxies"]["rows_in"], "voids": voids, "holes": holes,
                  "galzone": totals.get("galzone", {}).get("rows_in", 0)},
        "chunk_rows": args.chunk_rows,
        "compression": args.compression,
        "load_average_start": round(load_start, 2),
        "read": {"cold_seconds": round(read_cold, 2), "warm_seconds": round(read_warm, 2),
                 "cold_cpu_seconds": round(read_cold_cpu, 1),
                 "direct_cold_cpu_seconds": round(direct_cold_cpu, 1),
                 "buffered_runs_seconds": [round(x, 2) for x in reads["buffered"]],
                 "direct_runs_seconds": [round(x, 2) for x in reads["direct"]],
                 "cold_mb_per_s": round(nbytes / read_cold / 1e6)},
        "runs": runs,
        "best_cold": best,
        "best_cold_unchecked": min(unchecked, key=lambda r: r["seconds"]) if unchecked else None,
        "target_ratio": TARGET_RATIO,
        "older_target_ratio": OLDER_TARGET_RATIO,
        "meets_ratio": best["ratio_to_read"] <= TARGET_RATIO,
        "meets_rss": max(r["peak_rss_bytes"] for r in runs) < RSS_LIMIT,
    }
    text = render(result)
    measure.write("convert", result, text)
    print(text)
    return 0


def _files(source) -> list:
    fast, vast = discover(source)
    return [p for p, _ in fast] + list(vast)


def render(result: dict) -> str:
    """The report section (markdown) from the measured numbers in convert.json."""
    inp, rd, best, runs = result["input"], result["read"], result["best_cold"], result["runs"]
    lines = [
        "## convert",
        "",
        f"Command: `{result['command'].strip()}` (input: {inp['source']}, "
        f"{inp['fastspec_files']} FastSpecFit + {inp['desivast_files']} DESIVAST files, "
        f"{inp['bytes'] / 1e9:.2f} GB; {inp['galaxies']:,d} galaxies, {inp['voids']:,d} voids, "
        f"{inp['holes']:,d} holes; chunk_rows {result['chunk_rows']:,d}, Parquet compression "
        f"{result['compression']}).",
        "",
        f"Reading the same files' bytes takes {rd['cold_seconds']:.1f} s cold-ish "
        f"({rd['cold_mb_per_s']} MB/s), the fastest of this run's reads: one of each kind at the "
        "start, then before each cold convert one file at a time and two at a time through the "
        "page cache (16 MB readinto, like `cat`) and one file at a time with O_DIRECT (16 MB, "
        "like `dd iflag=direct`). Through the page cache: "
        f"{', '.join(f'{x:.1f}' for x in rd['buffered_runs_seconds'])} s "
        f"({rd['cold_cpu_seconds']:.0f} CPU s the first); direct: "
        f"{', '.join(f'{x:.1f}' for x in rd['direct_runs_seconds'])} s "
        f"({rd['direct_cold_cpu_seconds']:.1f} CPU s the first). Warm (page cache): "
        f"{rd['warm_seconds']:.1f} s. Page cache evicted with posix_fadvise. Machine load "
        f"average at the start: {result['load_average_start']:.1f} (other work shares these "
        f"{result['machine']['cores']} cores).",
        "",
        "| input | scheduler | reads | page cache | seconds | galaxy rows/s | peak RSS (GiB) "
        "| convert / read | convert / the reads just before it | CPU s (cores used) "
        "| load avg before |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        paired = f"{r['ratio_to_paired_read']:.2f}" if "ratio_to_paired_read" in r else ""
        reads = "direct" if r.get("direct_io", False) else "page cache"
        what = {True: "acquire's, checked", False: "mirror, unchecked"}.get(r.get("raw_check"), "")
        lines.append(f"| {what} | {r['scheduler']} | {reads} | {r['cache']} | {r['seconds']:.1f} | "
                     f"{r['rows_per_s']:,d} | {r['peak_rss_gib']:.2f} | {r['ratio_to_read']:.2f} "
                     f"| {paired} | {r['cpu_seconds']:.0f} ({r['cpu_utilisation']:.2f}) "
                     f"| {r['load_average_before']:.1f} |")
    lines += ["", "Phases of the best cold run (wall seconds): " + best["phases"] + "."]
    cores = result["machine"]["cores"]
    older = result.get("older_target_ratio", 2.0)
    config = "acquire's files, checked" if best.get("raw_check") else "the mirror"
    meets_older = best["ratio_to_read"] <= older
    lines += [
        "",
        f"Target (issue 25): convert within {result['target_ratio']:g}x of the raw read time, "
        f"peak RSS under 2 GiB. Best cold run in the whole run's configuration "
        f"({best['scheduler']}, {config}): "
        f"{best['ratio_to_read']:.2f}x, "
        f"{'meets' if result['meets_ratio'] else 'MISSES'} the time target "
        f"({'meets' if meets_older else 'misses'} issue 9's older target, {older:g}x); peak RSS "
        f"{'meets' if result['meets_rss'] else 'MISSES'} the memory target in every run.",
    ]
    if best.get("raw_check"):
        two = 2 * rd["cold_seconds"]
        lines += [
            "",
            "Why, measured: the whole run's convert reads acquire's files, and checks each against "
            "the sha256 acquire recorded (issue 20: a file changed after acquire must fail "
            "convert). A sha256 is a hash of the file's bytes in order, while the chunks read "
            "each file's three HDUs in row ranges, in parallel: the check reads every byte a "
            "second time (O_DIRECT, two files at a time, beside the chunks). Twice the bytes at "
            f"this run's fastest read is {two:.1f} s, {two / rd['cold_seconds']:.1f}x the one read "
            f"the target counts: the best checked run took {best['seconds']:.1f} s, "
            f"{best['seconds'] / two:.2f}x of its own two reads. Its CPU work, "
            f"{best['cpu_seconds']:.0f} CPU s (decoding, derived columns, Parquet encoding, and "
            "hashing 10 GB at about 1.7 GB/s per core, about 6 CPU s, measured), is at least "
            f"{best['cpu_seconds'] / cores:.1f} s on {cores} cores even perfectly spread: "
            f"{best['cpu_seconds'] / cores / rd['cold_seconds']:.2f}x the read. Both floors are "
            f"above {result['target_ratio']:g}x on this machine: one read for both (the hash "
            "taken from the bytes the chunks read) would need the chunks to go through each "
            "file in byte order, holding the decoded columns of the first two HDUs (about "
            "140 of their 846 bytes a row) until the third's rows arrive.",
        ]
    un = result.get("best_cold_unchecked")
    if un:
        lines += [
            "",
            f"The conversion alone (the mirror: no acquire record, so no raw check), best cold "
            f"run: {un['seconds']:.1f} s, {un['ratio_to_read']:.2f}x the read, "
            f"{un['cpu_seconds']:.0f} CPU s ({un['cpu_seconds'] / cores:.1f} s on {cores} cores "
            f"perfectly spread, {un['cpu_seconds'] / cores / rd['cold_seconds']:.2f}x the read).",
        ]
    lines += [
        "",
        "The convert time includes DESIVAST, the duplicate-TARGETID pass, the reconciliation and "
        "its cross-check against the written Parquet files, and Python start-up; each run "
        "starts with no earlier output in place, as a first convert does (replacing one adds "
        "its deletion), after the disk's write-back of earlier runs. 'cores used' "
        "is CPU seconds / wall seconds: below the core count means the run waited for the disk "
        "or for other processes (the load average before each run shows how busy the machine "
        "was). 'direct' reads (convert's default, direct_io) go from the disk into the "
        "process's buffer: the page cache's kernel work, "
        f"{rd['cold_cpu_seconds'] / (inp['bytes'] / 1e9):.2f} CPU s per GB in this run's first "
        f"cold read against {rd['direct_cold_cpu_seconds'] / (inp['bytes'] / 1e9):.2f} for the "
        "direct one, is skipped, and the reference is the faster of the two reads. Through the "
        "page cache a warm convert reads memory and is bound by its CPU work; the target is "
        "defined against the cold-ish read.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
