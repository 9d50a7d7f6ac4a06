"""Benchmark of the acquire stage: transfer throughput against `cp`, and resume time of a
10,000-file manifest.

1. Throughput. N random files (with a DESI-style .sha256sum list) are served by a loopback HTTP
   server (Python's threaded http.server, 127.0.0.1) and fetched by `desivoids.acquire` (HTTP
   source, .part + sha256 verification + rename + manifest), with 1 and 4 workers; the same
   files are also fetched from the local folder (the mock-mirror path, fsspec). The reference is
   `cp -r` of the same bytes on the same disk. Reported: MB/s and the ratio acquire / cp.
2. Resume. A 10,000-file manifest (1 KiB files from a local folder): the first complete run,
   then `resume` with every file verified (the cost of checking a finished manifest), and
   `resume` after 1% of the files were deleted locally (finds and fetches only those).

    python benchmarks/bench_acquire.py [--mb 512] [--files 32] [--manifest-files 10000] [--workdir DIR]

Writes benchmarks/results/acquire.json and benchmarks/results/acquire.md.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from desivoids.formats import checksum_filename as sumfile_name  # noqa: E402
from desivoids.acquire.steps import acquire  # noqa: E402
from desivoids.acquire.sources import FsspecSource, HTTPSource  # noqa: E402
from desivoids.acquire.transfer import Options  # noqa: E402

D = "dr1/vac/dr1/bench/v1.0"


def write_files(root: Path, n: int, size: int) -> int:
    d = root / D
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        data = os.urandom(size)
        (d / f"file{i:05d}.fits").write_bytes(data)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  file{i:05d}.fits\n")
    (d / sumfile_name(D)).write_text("".join(lines))
    return n * size


class Quiet(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass


def serve(root: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def throughput(work: Path, mb: int, nfiles: int) -> dict:
    src = work / "src"
    size = mb * 2**20 // nfiles
    total = write_files(src, nfiles, size)
    subprocess.run(["sync"], check=False)
    res = {"files": nfiles, "bytes": total}
    cp_s, _ = timed(lambda: subprocess.run(["cp", "-r", str(src), str(work / "cp")], check=True))
    shutil.rmtree(work / "cp")
    subprocess.run(["sync"], check=False)
    # acquire fsyncs every file before renaming it: the like-for-like reference flushes too
    cps_s, _ = timed(lambda: subprocess.run(f"cp -r '{src}' '{work / 'cp'}' && sync", shell=True, check=True))
    shutil.rmtree(work / "cp")
    res["cp_seconds"] = cp_s
    res["cp_sync_seconds"] = cps_s
    httpd = serve(src)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        for label, make in (("http_1_worker", lambda: (HTTPSource(url), 1)),
                            ("http_4_workers", lambda: (HTTPSource(url), 4)),
                            ("folder_4_workers", lambda: (FsspecSource(str(src)), 4))):
            source, workers = make()
            out = work / label
            secs, s = timed(lambda: acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D],
                                            options=Options(workers=workers, progress=False, min_free=0)))
            assert s.status == "done" and s.verified == nfiles + 1, s
            res[label] = {"seconds": secs, "MB_per_s": total / secs / 1e6, "ratio_to_cp": secs / cp_s,
                          "ratio_to_cp_sync": secs / cps_s}
            shutil.rmtree(out)
    finally:
        httpd.shutdown()
    res["cp_MB_per_s"] = total / cp_s / 1e6
    res["cp_sync_MB_per_s"] = total / cps_s / 1e6
    return res


def resume(work: Path, n: int) -> dict:
    src = work / "src_small"
    write_files(src, n, 1024)
    source = FsspecSource(str(src))
    out = work / "resume"
    opts = Options(workers=4, progress=False, min_free=0)
    first, s = timed(lambda: acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D], options=opts))
    assert s.status == "done" and s.verified == n + 1
    again, s = timed(lambda: acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D], resume=True,
                                     options=opts))
    assert s.fetched_files == 0 and s.status == "done"
    gone = sorted((out / "raw" / D).glob("file*.fits"))[:: 100]
    for p in gone:
        p.unlink()
    partial, s = timed(lambda: acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D], resume=True,
                                       options=opts))
    assert s.fetched_files == len(gone) and s.status == "done"
    return {"files": n + 1, "first_run_seconds": first, "first_run_files_per_s": (n + 1) / first,
            "resume_all_verified_seconds": again, "resume_after_deleting": len(gone),
            "resume_partial_seconds": partial}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=512, help="total MiB for the throughput test")
    ap.add_argument("--files", type=int, default=32, help="number of files for the throughput test")
    ap.add_argument("--manifest-files", type=int, default=10_000)
    ap.add_argument("--workdir", help="scratch folder (default: a temporary folder, removed afterwards)")
    args = ap.parse_args()
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_acquire_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        tp = throughput(tmp, args.mb, args.files)
        rs = resume(tmp, args.manifest_files)
    finally:
        if not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)
    cmd = "python benchmarks/bench_acquire.py " + " ".join(sys.argv[1:])
    result = {"command": cmd.strip(), "cpus": os.cpu_count(), "throughput": tp, "resume": rs}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "acquire.json").write_text(json.dumps(result, indent=1))
    mb = tp["bytes"] / 2**20
    rows = [f"| {k.replace('_', ' ')} | {tp[k]['seconds']:.2f} | {tp[k]['MB_per_s']:.0f} | "
            f"{tp[k]['ratio_to_cp']:.1f} | {tp[k]['ratio_to_cp_sync']:.1f} |"
            for k in ("http_1_worker", "http_4_workers", "folder_4_workers")]
    md = [
        "## acquire",
        "",
        f"`{result['command']}`",
        "",
        f"Throughput: {tp['files']} files, {mb:.0f} MiB of random bytes with a published .sha256sum list, "
        "fetched from a loopback HTTP server (Python's threaded http.server on 127.0.0.1, which shares "
        "the cores with the client) and from a local folder, through the whole acquire path (plan, .part, "
        "sha256, fsync, rename, SQLite manifest). References: `cp -r` of the same bytes on the same disk "
        "(into the page cache), and `cp -r && sync` (flushed to disk, as acquire does file by file).",
        "",
        "| source | seconds | MB/s | time / cp | time / (cp + sync) |",
        "|---|---|---|---|---|",
        f"| cp -r | {tp['cp_seconds']:.2f} | {tp['cp_MB_per_s']:.0f} | 1.0 | |",
        f"| cp -r && sync | {tp['cp_sync_seconds']:.2f} | {tp['cp_sync_MB_per_s']:.0f} | | 1.0 |",
        *rows,
        "",
        f"Resume of a {rs['files']:,}-file manifest (1 KiB files from a local folder): first complete run "
        f"{rs['first_run_seconds']:.1f} s ({rs['first_run_files_per_s']:.0f} files/s); `--resume` with every "
        f"file verified {rs['resume_all_verified_seconds']:.2f} s (no request made: each file's size is "
        f"checked on disk); `--resume` after deleting {rs['resume_after_deleting']} files locally "
        f"{rs['resume_partial_seconds']:.2f} s (only those are fetched).",
        "",
    ]
    (out / "acquire.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
