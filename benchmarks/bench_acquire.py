"""Benchmark of the acquire stage: transfer throughput against curl and `cp`, and resume time of
a 10,000-file manifest.

1. Throughput. N random files (with a DESI-style .sha256sum list) are served by a loopback HTTP
   server (Python's threaded http.server on 127.0.0.1, in its own process) and fetched by
   `desivoids.acquire` (HTTP source, .part + sha256 verification + rename + manifest), with 1
   and 4 workers, also from the same server without index pages (404 on folders, as a static
   host), and from the local folder (the mock-mirror path, fsspec). References: `curl` fetching
   the same URLs from the same server in one process (one connection, files one after the
   other; and ``--parallel --parallel-max 4``), and `cp -r` of the same bytes on the same disk.
   Reported: the fastest of ``--repeat`` runs, MB/s and the ratios acquire / curl and acquire / cp.
2. Resume. A 10,000-file manifest (1 KiB files from a local folder): the first complete run,
   then `resume` with every file verified (the cost of checking a finished manifest), and
   `resume` after 1% of the files were deleted locally (finds and fetches only those).

    python benchmarks/bench_acquire.py [--mb 512] [--files 32] [--manifest-files 10000] [--repeat 3]
                                       [--workdir DIR]

Writes benchmarks/results/acquire.json and benchmarks/results/acquire.md (keeping the hand-kept
"### History" section of the latter).
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
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import measure  # first: it puts lib/ on sys.path for a checkout without the package installed

from desivoids.errors import DesivoidsError
from desivoids.formats import checksum_filename as sumfile_name
from desivoids.acquire.steps import acquire
from desivoids.acquire.sources import FsspecSource, HTTPSource
from desivoids.acquire.transfer import Options

HERE = measure.HERE

D = "dr1/vac/dr1/bench/v1.0"
THROUGHPUT_ROWS = ("http_1_worker", "http_4_workers", "http_4_workers_no_index_pages", "folder_4_workers")
HISTORY = "### History"


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
    index = True

    def log_message(self, *a):
        pass

    def list_directory(self, path):
        if self.index:
            return super().list_directory(path)
        self.send_error(404, "no index pages on this server")  # a plain static host, S3 website
        return None


def _serve_forever(root: str, index: bool) -> None:
    """The server process: prints its port, then serves ``root`` until killed."""
    handler = type("Handler", (Quiet,), {"index": index})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    httpd.daemon_threads = True
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever(poll_interval=0.05)


class serve:
    """A loopback HTTP server in its own process, so that neither acquire nor curl shares a GIL
    with it (``index``: Apache-like directory pages, else 404 on folders)."""

    def __init__(self, root: Path, index: bool = True):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(root)] +
                                     ([] if index else ["--no-index"]), stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


class Incomplete(Exception):
    """A run that did not bring every file (recorded in the table, not a crash of the benchmark)."""


def best(fn, repeat: int, cleanup) -> float:
    """The fastest of ``repeat`` runs (the machine's noise only ever adds time); ``cleanup``
    after each, outside the timing."""
    out = []
    for _ in range(repeat):
        subprocess.run(["sync"], check=False)
        out.append(timed(fn)[0])
        cleanup()
    return min(out)


def curl(url: str, names: list[str], out: Path, parallel: int = 0) -> list[str]:
    """One curl process fetching every URL (connections reused), ``parallel`` at a time if > 0."""
    cmd = ["curl", "--silent", "--no-progress-meter", "--show-error", "--fail", "--create-dirs"]
    if parallel:
        cmd += ["--parallel", "--parallel-max", str(parallel)]
    for n in names:
        cmd += ["-o", str(out / n), url + n]
    return cmd


def throughput(work: Path, mb: int, nfiles: int, repeat: int) -> dict:
    src = work / "src"
    size = mb * 2**20 // nfiles
    total = write_files(src, nfiles, size)
    res = {"files": nfiles, "bytes": total, "repeat": repeat}

    def rm(d):  # the cleanup between repeats
        return functools.partial(shutil.rmtree, d, ignore_errors=True)

    res["cp_seconds"] = best(lambda: subprocess.run(["cp", "-r", str(src), str(work / "cp")], check=True),
                             repeat, rm(work / "cp"))
    # acquire fsyncs every file before renaming it: the like-for-like reference flushes too
    res["cp_sync_seconds"] = best(lambda: subprocess.run(f"cp -r '{src}' '{work / 'cp'}' && sync", shell=True,
                                                         check=True), repeat, rm(work / "cp"))
    names = [f"{D}/file{i:05d}.fits" for i in range(nfiles)] + [f"{D}/{sumfile_name(D)}"]
    with serve(src) as server, serve(src, index=False) as bare:
        for label, par in (("curl", 0), ("curl_parallel_4", 4)):
            res[f"{label}_seconds"] = best(lambda: subprocess.run(curl(server.url, names, work / label, par),
                                                                  check=True), repeat, rm(work / label))
        for label, make in (("http_1_worker", lambda: (HTTPSource(server.url), 1)),
                            ("http_4_workers", lambda: (HTTPSource(server.url), 4)),
                            ("http_4_workers_no_index_pages", lambda: (HTTPSource(bare.url), 4)),
                            ("folder_4_workers", lambda: (FsspecSource(str(src)), 4))):
            source, workers = make()
            out = work / label

            def run():
                s = acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D],
                            options=Options(workers=workers, progress=False, min_free=0))
                got = s.verified + getattr(s, "complete", 0)
                if s.status != "done" or got != nfiles + 1:
                    raise Incomplete(f"status {s.status} with {got} of {nfiles + 1} files in place")

            try:
                secs = best(run, repeat, rm(out))
            except (DesivoidsError, Incomplete) as exc:  # a source this version cannot plan from
                res[label] = {"error": f"{type(exc).__name__}: {exc}"}
                shutil.rmtree(out, ignore_errors=True)
                continue
            res[label] = {"seconds": secs, "MB_per_s": total / secs / 1e6,
                          "ratio_to_cp": secs / res["cp_seconds"], "ratio_to_cp_sync": secs / res["cp_sync_seconds"],
                          "ratio_to_curl": secs / res["curl_seconds"],
                          "ratio_to_curl_parallel_4": secs / res["curl_parallel_4_seconds"]}
    for k in ("cp", "cp_sync", "curl", "curl_parallel_4"):
        res[f"{k}_MB_per_s"] = total / res[f"{k}_seconds"] / 1e6
    return res


def resume(work: Path, n: int) -> dict:
    src = work / "src_small"
    write_files(src, n, 1024)
    source = FsspecSource(str(src))
    out = work / "resume"
    opts = Options(workers=4, progress=False, min_free=0)
    first, s = timed(lambda: acquire(source, out / "raw", out / "m.sqlite", ["dir"], dirs=[D], options=opts))
    assert s.status == "done" and s.verified + getattr(s, "complete", 0) == n + 1
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
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per measurement; the fastest is kept")
    ap.add_argument("--workdir", help="scratch folder (default: a temporary folder, removed afterwards)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server process
    ap.add_argument("--no-index", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return _serve_forever(args.serve, not args.no_index)
    tmp = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_acquire_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        tp = throughput(tmp, args.mb, args.files, args.repeat)
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
    rows = []
    for k in THROUGHPUT_ROWS:
        r = tp[k]
        if "error" in r:
            rows.append(f"| {k.replace('_', ' ')} | failed: {r['error'][:160]} | | | | | |")
        else:
            rows.append(f"| {k.replace('_', ' ')} | {r['seconds']:.2f} | {r['MB_per_s']:.0f} | "
                        f"{r['ratio_to_curl']:.2f} | {r['ratio_to_curl_parallel_4']:.2f} | "
                        f"{r['ratio_to_cp']:.1f} | {r['ratio_to_cp_sync']:.1f} |")
    md = [
        "## acquire",
        "",
        f"`{result['command']}`",
        "",
        f"Throughput: {tp['files']} files, {mb:.0f} MiB of random bytes with a published .sha256sum list, "
        "fetched from a loopback HTTP server (Python's threaded http.server on 127.0.0.1, in its own "
        "process, sharing the machine's cores with the client) and from a local folder, through the "
        "whole acquire path (plan, .part, "
        "sha256, fsync, rename, SQLite manifest). References: `curl` fetching the same URLs from the same "
        "server in one process (connections reused; one file after the other, and `--parallel "
        "--parallel-max 4`; no checksum, no fsync), `cp -r` of the same bytes on the same disk (into the "
        "page cache), and `cp -r && sync` (flushed to disk, as acquire does file by file). 'no index pages': "
        "the same server answering 404 for folders, as a plain static host or an S3 website endpoint does. "
        f"Each figure is the fastest of {tp['repeat']} runs.",
        "",
        "| source | seconds | MB/s | time / curl | time / curl -Z 4 | time / cp | time / (cp + sync) |",
        "|---|---|---|---|---|---|---|",
        f"| curl | {tp['curl_seconds']:.2f} | {tp['curl_MB_per_s']:.0f} | 1.00 | | | |",
        f"| curl --parallel-max 4 | {tp['curl_parallel_4_seconds']:.2f} | {tp['curl_parallel_4_MB_per_s']:.0f} "
        "| | 1.00 | | |",
        f"| cp -r | {tp['cp_seconds']:.2f} | {tp['cp_MB_per_s']:.0f} | | | 1.0 | |",
        f"| cp -r && sync | {tp['cp_sync_seconds']:.2f} | {tp['cp_sync_MB_per_s']:.0f} | | | | 1.0 |",
        *rows,
        "",
        f"Resume of a {rs['files']:,}-file manifest (1 KiB files from a local folder): first complete run "
        f"{rs['first_run_seconds']:.1f} s ({rs['first_run_files_per_s']:.0f} files/s); `--resume` with every "
        f"file in place {rs['resume_all_verified_seconds']:.2f} s (no request made: each file's size is "
        f"checked on disk); `--resume` after deleting {rs['resume_after_deleting']} files locally "
        f"{rs['resume_partial_seconds']:.2f} s (only those are fetched).",
        "",
    ]
    md_path = out / "acquire.md"
    # a hand-kept history of earlier figures below HISTORY survives reruns
    old = md_path.read_text() if md_path.exists() else ""
    if HISTORY in old:
        md += [old[old.index(HISTORY):].rstrip(), ""]
    md_path.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
