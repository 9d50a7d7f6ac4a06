"""What every benchmark measures the same way: a command's wall time, CPU time and peak resident
memory (the process tree summed, polled with psutil), the machine's facts and load average, the
page cache evicted (the eviction verified with mincore) for cold reads, the DR1-scale run folder
the stage benchmarks share, a throwaway PostgreSQL server, and the results each benchmark
writes (results/<name>.md, .json).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
#: where every DR1-scale stage benchmark finds its run folder (git-ignored)
DR1_DIR = ROOT / "data" / "bench" / "dr1"
#: what the DR1-scale mock run needs on disk (mirror 9.4 GB, acquire's copy 9.4 GB, Parquet
#: 2.9 GB, SQLite database and stage outputs ~4 GB)
DR1_DISK_GB = 27
PG_SERVER = ROOT / "tests" / "pg_server.sh"

if str(ROOT / "lib") not in sys.path:  # run from a checkout without the package installed
    sys.path.insert(0, str(ROOT / "lib"))

from desivoids import hugepages  # noqa: E402
from desivoids.usage import PeakRSS  # noqa: E402

# every process measured (the stage's and its reference's, in this process or a child) with
# numpy's huge pages as the ``desivoids`` command sets them: imported before numpy
hugepages.set_default()


# -- the machine ---------------------------------------------------------------------------
def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict:
    """The machine's facts and its load average now."""
    disk = shutil.disk_usage(ROOT)
    return {"cores": os.cpu_count(), "cpu": _cpu_model(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "available_memory_gib": round(psutil.virtual_memory().available / 2**30, 1),
            "disk_free_gb": round(disk.free / 1e9, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": load_average()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- measuring -----------------------------------------------------------------------------
def evict(files) -> None:
    """Drop the files' pages from the page cache (clean pages only, no root): their dirty pages
    are written back first (fdatasync), since POSIX_FADV_DONTNEED skips dirty pages and pages
    under writeback, as those of a file a stage has just written are. Pages another process
    maps stay; :func:`evict_verified` checks what was left."""
    for f in files:
        try:
            fd = os.open(f, os.O_RDONLY)
        except OSError:
            continue
        try:
            try:
                os.fdatasync(fd)
            except OSError:  # a file system without it: the advice alone
                pass
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return libc


def resident_bytes(path) -> tuple[int, int]:
    """(bytes of the file in the page cache, its size): mincore(2) over a read-only shared
    mapping of it, which faults no page in (what util-linux's ``fincore`` does)."""
    import ctypes
    import mmap

    size = Path(path).stat().st_size
    if size == 0:
        return 0, 0
    libc = _libc()
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
        try:
            pages = (size + _PAGE - 1) // _PAGE
            vec = (ctypes.c_ubyte * pages)()
            if libc.mincore(addr, size, vec):
                raise OSError(ctypes.get_errno(), f"mincore of {path} failed")
            import numpy as np

            resident = int(np.count_nonzero(np.frombuffer(vec, np.uint8) & 1))
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)
    return min(resident * _PAGE, size), size


def resident_fraction(files) -> float:
    """Share of the files' bytes in the page cache (0 for no bytes)."""
    got = [resident_bytes(f) for f in files]
    total = sum(s for _, s in got)
    return sum(r for r, _ in got) / total if total else 0.0


class EvictionFailed(RuntimeError):
    """The page cache kept more of the files than a cold read allows."""


#: share of the files' bytes allowed in the page cache after eviction for a read to count as
#: cold (a few pages of a file another process holds mapped)
COLD_RESIDENT_MAX = 0.01


def evict_verified(files, attempts: int = 3, allowed: float = COLD_RESIDENT_MAX) -> float:
    """:func:`evict` the files, then check with mincore that at most ``allowed`` of their bytes
    are still cached (another reader of the same inodes, e.g. a hard-linked copy, can bring
    them back at any time): retried ``attempts`` times, then :class:`EvictionFailed`. Returns
    the share left, to be reported beside the cold read it precedes."""
    files = list(files)
    left = 1.0
    for _ in range(max(1, attempts)):
        evict(files)
        left = resident_fraction(files)
        if left <= allowed:
            return left
        time.sleep(0.2)
    raise EvictionFailed(f"{left:.1%} of {len(files)} file(s) still in the page cache after "
                         f"{attempts} evictions (allowed {allowed:.0%}); is another process "
                         "mapping or reading them?")


def read_bytes(files, streams: int = 1, direct: bool = False) -> float:
    """Seconds to read every byte of the files once (16 MB readinto, like ``cat > /dev/null``),
    ``streams`` files at a time (a virtual disk often reads faster with requests in flight).
    ``direct``: O_DIRECT reads into an aligned buffer, like ``dd iflag=direct``: the disk's
    speed without the page cache's kernel work (what convert's direct_io reads do)."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    def one(f):
        buf = mmap.mmap(-1, 16 << 20)  # page-aligned, as O_DIRECT needs
        flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
        fd = os.open(f, flags)
        try:
            while os.readv(fd, [buf]) == len(buf):
                pass
        finally:
            os.close(fd)

    files = sorted(files, key=lambda f: -Path(f).stat().st_size)  # the largest first
    t = time.perf_counter()
    with ThreadPoolExecutor(max(1, streams)) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - t


def write_bytes(path: Path, nbytes: int) -> float:
    """Seconds to write ``nbytes`` to a new file in 16 MB blocks (no fsync: the page cache
    absorbs what it can, as for any program writing files), the file deleted afterwards."""
    block = os.urandom(16 << 20)
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as fh:
        left = nbytes
        while left > 0:
            left -= fh.write(block[:min(left, len(block))])
    seconds = time.perf_counter() - t
    path.unlink()
    return seconds



def run_polled(cmd: list[str], interval: float = 0.05, env: dict | None = None,
               merge_stderr: bool = True, cwd: str | Path | None = None
               ) -> tuple[float, int, int, float, str]:
    """(wall seconds, peak RSS of the process tree summed, exit code, CPU seconds of the tree,
    output) of a command, measured as the runner measures a stage's kernel
    (:class:`desivoids.usage.PeakRSS`: this process's children, the command its only one). The
    output goes to a temporary file, never a pipe (a pipe that nobody reads while polling
    would stall a talkative command). ``merge_stderr=False``: the output is stdout alone unless
    the command fails, when stderr follows it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with PeakRSS(interval=interval) as used:
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=out if merge_stderr else err,
                                    text=True, env=env, cwd=cwd)
            proc.wait()
            seconds = time.perf_counter() - t
        out.seek(0)
        text = out.read()
        if proc.returncode and not merge_stderr:
            err.seek(0)
            text += err.read()
    return seconds, used.peak, proc.returncode, used.cpu_seconds, text


def peak_rss_self() -> int:
    """Peak resident memory of this process so far, in bytes (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stage_command(stage: str, data_dir: Path, *params: str) -> list[str]:
    cmd = [sys.executable, "-m", "desivoids.cli", stage, "-p", "data_dir", str(data_dir)]
    for i in range(0, len(params), 2):
        cmd += ["-p", params[i], params[i + 1]]
    return cmd


# -- the DR1-scale run folder --------------------------------------------------------------
def check_disk(where: Path, need_gb: float, what: str) -> None:
    """Stop with a clear message when ``where`` has less than ``need_gb`` free."""
    where = Path(where)
    probe = where if where.exists() else next(p for p in where.parents if p.exists())
    free = shutil.disk_usage(probe).free / 1e9
    if free < need_gb:
        raise SystemExit(f"{what} needs about {need_gb:.0f} GB free on {probe}; only {free:.1f} GB "
                         f"are (df -h {probe})")


#: the profile whose settings (mock sky, stage parameters) the DR1-scale run folder uses
DR1_PARAMS = ROOT / "params" / "dr1-mock.yml"


def profile_copy(params: Path, data_dir: Path, scale: str | None, out: Path) -> Path:
    """The profile with data_dir (absolute) and, when given, the mock's scale replaced."""
    import yaml

    doc = yaml.safe_load(Path(params).read_text())
    doc["data_dir"] = str(data_dir)
    if scale:
        if "mock" not in doc:
            raise SystemExit(f"{params} is not a mock profile: --scale does not apply")
        doc["mock"]["scale"] = scale
        if scale != "dr1":
            doc["profile"] = f"{doc.get('profile', 'mock')}-{scale}"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def prerequisites(stage: str) -> list[str]:
    """The stages whose outputs ``stage`` reads, directly or through another, in run order
    (the registry's ``reads``)."""
    from desivoids.stages import ORDER, STAGES

    need, todo = set(), list(STAGES[stage].reads)
    while todo:
        s = todo.pop()
        if s not in need:
            need.add(s)
            todo += STAGES[s].reads
    return [s for s in ORDER if s in need]


def dr1_run(data_dir: Path = DR1_DIR, upto: str = "systematics") -> Path:
    """The DR1-scale mock run folder with every stage that ``upto`` reads done, by
    ``desivoids run`` on params/dr1-mock.yml with ``data_dir`` replaced (written beside the
    folder as ``<data_dir>.yml``; executed notebooks to ``<data_dir>/executed``, not the
    book's). The runner writes the mock sky once (about 4 minutes, 9.4 GB) and reruns only the
    stages that are stale, so a benchmark that republished a stage's outputs makes the stages
    reading them rerun, and nothing else does."""
    from desivoids.paths import RunLayout, display

    layout = RunLayout.of(data_dir)
    stages = prerequisites(upto)
    if not stages:
        return layout.data_dir
    if not (layout.mirror / "truth").is_dir():
        check_disk(layout.data_dir, DR1_DISK_GB, "the DR1-scale mock run")
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    profile = profile_copy(DR1_PARAMS, layout.data_dir, None,
                           layout.data_dir.with_name(layout.data_dir.name + ".yml"))
    cmd = [sys.executable, "-m", "desivoids.cli", "run", "--params", str(profile), "--quiet",
           "--executed-dir", str(layout.data_dir / "executed"), "--stages", *stages]
    print(f"preparing the DR1-scale run: desivoids run --params {display(profile)} "
          f"--stages {' '.join(stages)}", flush=True)
    subprocess.run(cmd, check=True)
    return layout.data_dir


# -- PostgreSQL ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres(folder: Path, options: str = ""):
    """A throwaway PostgreSQL cluster in ``folder`` on 127.0.0.1, started and stopped by
    tests/pg_server.sh (as the tests do; installed with ``make postgres`` when missing): yields
    the server's URL. ``options``: server settings (``-c name=value ...``)."""
    folder = Path(folder)
    subprocess.run(["bash", str(PG_SERVER), "stop", str(folder)], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)
    env = dict(os.environ, PG_SERVER_OPTS=options)
    r = subprocess.run(["bash", str(PG_SERVER), "start", str(folder), str(free_port())],
                       capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"PostgreSQL did not start (make postgres installs it): {r.stderr}")
    try:
        yield r.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(PG_SERVER), "stop", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


# -- results -------------------------------------------------------------------------------
def write(name: str, result: dict, markdown: str) -> None:
    """results/<name>.json (the numbers, with the machine and its load average at the start
    and the end) and results/<name>.md (the report section). The report (report.py, which
    imports this module, never the other way) assembles them."""
    RESULTS.mkdir(exist_ok=True)
    result.setdefault("machine", machine())
    result.setdefault("finished_at", now())
    result.setdefault("load_average_end", load_average())
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(f"wrote {RESULTS / name}.md and .json (`python benchmarks/report.py` reassembles "
          "REPORT.md; benchmarks/run.py does after each benchmark)", flush=True)


def _parquet_files(parquet_dir: Path) -> list[Path]:
    p = Path(parquet_dir)
    return sorted(p.rglob("*.parquet")) if p.is_dir() else [p]


def _read_parquet(files: list[Path], columns, by_fragment: bool = False) -> None:
    """Read ``columns`` of the files: as one dataset (Arrow reads the parts in parallel), or
    ``by_fragment``, one part after the other as a stage that bounds its memory does."""
    import pyarrow.dataset as ds

    dataset = ds.dataset(files, format="parquet")
    if by_fragment:
        for fragment in dataset.get_fragments():
            fragment.to_table(columns=columns)
    else:
        dataset.to_table(columns=columns)


def _read_sqlite(path: Path, sql: str) -> None:
    """Fetch every row of ``sql`` from a SQLite file as Arrow batches through ADBC (how the
    integrity stage scans the database's galaxies table)."""
    import adbc_driver_sqlite.dbapi as adbc

    with adbc.connect(str(path)) as c, c.cursor() as cur:
        cur.execute(sql)
        for _ in cur.fetch_record_batch():
            pass


def read_columns(parquet_dir: Path, columns: list[str]) -> float:
    """Seconds to read ``columns`` of a Parquet dataset once from a cold page cache (eviction
    verified, :func:`evict_verified`): the least any stage reading them from disk can cost."""
    files = _parquet_files(parquet_dir)
    evict_verified(files)
    t = time.perf_counter()
    _read_parquet(files, columns)
    return time.perf_counter() - t


def read_columns_warm(parquet_dir: Path, columns: list[str], repeats: int = 5) -> float:
    """Seconds to read ``columns`` of a Parquet dataset from the page cache: the best of
    ``repeats`` reads after one that brings the files in."""
    files = _parquet_files(parquet_dir)
    _read_parquet(files, columns)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        _read_parquet(files, columns)
        best = min(best, time.perf_counter() - t)
    return best


def reference_reads(reads: list[tuple], warm_repeats: int = 5) -> dict:
    """The read of what a stage reads, cold and warm. ``reads``: [(Parquet file or folder,
    columns, by_fragment)] and [(SQLite file, SQL)], each read the way the stage reads it.
    Cold: every file evicted, the eviction verified by mincore (the share left is reported),
    then every read once; None, with the reason, when the files could not be evicted (another
    process mapping or reading the same files: hard-linked copies share their pages). Warm:
    after the cold read (or one untimed read) brought the files in, the best of
    ``warm_repeats`` of the reads one after the other."""
    jobs = []  # (files, callable)
    for r in reads:
        if len(r) == 2 and isinstance(r[1], str):
            path = Path(r[0])
            jobs.append(([path], lambda path=path, sql=r[1]: _read_sqlite(path, sql)))
        else:
            files = _parquet_files(r[0])
            cols, by_fragment = r[1], bool(r[2]) if len(r) > 2 else False
            jobs.append((files, lambda f=files, c=cols, b=by_fragment: _read_parquet(f, c, b)))
    files = [f for fs, _ in jobs for f in fs]
    cold, left, why = None, None, None
    try:
        left = evict_verified(files)
    except EvictionFailed as exc:
        why = str(exc)
    else:
        t = time.perf_counter()
        for _, read in jobs:
            read()
        cold = time.perf_counter() - t
    if cold is None:
        for _, read in jobs:
            read()
    warm = float("inf")
    for _ in range(max(1, warm_repeats)):
        t = time.perf_counter()
        for _, read in jobs:
            read()
        warm = min(warm, time.perf_counter() - t)
    return {"cold_seconds": None if cold is None else round(cold, 3),
            "cold_resident_before": None if left is None else round(left, 4), "cold_error": why,
            "warm_seconds": round(warm, 3), "warm_repeats": warm_repeats,
            "resident_after": round(resident_fraction(files), 4)}


def bench_stage(stage: str, data_dir: Path, columns: list[str], targets: dict | None,
                repeats: int = 2, reads: list[tuple[Path, list[str]]] | None = None,
                db_reads: list[tuple[Path, str]] | None = None, by_fragment: bool = False,
                warm: bool = False) -> dict:
    """Wall time and peak RSS of ``desivoids <stage>`` on a DR1-scale run, the best of
    ``repeats`` runs, beside the read of what it reads: ``columns`` of the galaxies, or
    ``reads`` [(Parquet file or folder, columns)] (``by_fragment``: one part after the other),
    and ``db_reads`` [(SQLite file, SQL)], cold (eviction verified) and warm.
    ``warm``: the stage runs on a warm page cache, as in the whole run, where it reads what
    the stages before it have just written, and its ratio is to the warm read; otherwise
    every Parquet file is evicted before each run and the ratio is to the cold read.
    ``targets``: {"seconds": s, "rss_gib": g[, "ratio": r]}, or None when the stage has none."""
    from desivoids.paths import RunLayout, display

    layout = RunLayout.of(data_dir)
    start = machine()
    if reads is None:
        reads = [(layout.convert / "galaxies", columns)]
    ref = reference_reads([(p, c, by_fragment) for p, c in reads] + list(db_reads or []))
    what = "; ".join([f"{'every column' if c is None else f'{len(c)} columns'} of {display(p)}"
                      + (" (one part after the other)" if by_fragment else "")
                      for p, c in reads]
                     + [f"`{sql}` from {display(Path(p))} (ADBC, Arrow batches)"
                        for p, sql in db_reads or []])
    inputs = ([f for p, _ in reads for f in _parquet_files(p)]
              + [Path(p) for p, _ in db_reads or []])
    runs = []
    for _ in range(repeats):
        if not warm:
            evict(sorted(layout.data_dir.rglob("*.parquet")))
        cached = resident_fraction(inputs)
        load = os.getloadavg()[0]
        seconds, peak, rc, cpu, out = run_polled(stage_command(stage, layout.data_dir))
        if rc not in (0, 1):  # integrity may fail on purpose; anything else is a crash
            raise SystemExit(f"{stage} crashed ({rc}):\n{out[-3000:]}")
        runs.append({"seconds": round(seconds, 2), "peak_rss_gib": round(peak / 2**30, 3),
                     "cpu_seconds": round(cpu, 1), "exit": rc, "load_average_before": round(load, 2),
                     "inputs_cached_before": round(cached, 3),
                     "summary": out.strip().splitlines()[:1]})
    best = min(runs, key=lambda r: r["seconds"])
    honest = ref["warm_seconds"] if warm or ref["cold_seconds"] is None else ref["cold_seconds"]
    meets = None if targets is None else {"seconds": best["seconds"] <= targets["seconds"],
                                          "rss": max(r["peak_rss_gib"] for r in runs)
                                          <= targets["rss_gib"]}
    if targets and "ratio" in targets:  # whole process / the read, best run
        meets["ratio"] = best["seconds"] / honest <= targets["ratio"]
    return {"stage": stage, "machine": start, "data_dir": display(layout.data_dir),
            "reference_read_seconds": round(honest, 2), "reference": ref,
            "page_cache": "warm" if warm or ref["cold_seconds"] is None else "cold",
            "columns_read": columns,
            "reference_reads": what, "runs": runs,
            "best": best, "ratio_to_read": round(best["seconds"] / honest, 2),
            "ratio_to_cold_read": (None if ref["cold_seconds"] is None
                                   else round(best["seconds"] / ref["cold_seconds"], 2)),
            "ratio_to_warm_read": round(best["seconds"] / ref["warm_seconds"], 2),
            "targets": targets, "meets": meets}


def stage_markdown(result: dict, what: str, command: str, heading: str | None = None) -> str:
    b, t = result["best"], result["targets"]
    rows = "\n".join(f"| {i + 1} | {r['seconds']} | {r['peak_rss_gib']} | {r['cpu_seconds']} | "
                     f"{r['load_average_before']} | {r.get('inputs_cached_before', '')} | "
                     f"{r['exit']} |" for i, r in enumerate(result["runs"]))
    m = result["machine"]
    ref = result["reference"]
    honest = result["page_cache"]
    if t is None:
        verdict = "No target is set for this figure."
    else:
        met = result["meets"]
        verdict = (f"Targets: under {t['seconds']} s ({'met' if met['seconds'] else 'NOT met'}) "
                   f"and {t['rss_gib']} GiB peak RSS in every run "
                   f"({'met' if met['rss'] else 'NOT met'}).")
        if "ratio" in t:
            verdict += (f" At most {t['ratio']:g}x the read, the whole process (start-up, "
                        f"imports, input manifests checked, outputs published) against the "
                        f"{honest} read alone: {result['ratio_to_read']}x "
                        f"(**{'met' if met['ratio'] else 'NOT met'}**).")
    why = ("The stage ran on a warm page cache, as in the whole run (`desivoids run`), where it "
           "reads files the stages before it have just written and read: the warm read is its "
           "floor there, and the ratio is to it. 'inputs cached before': the share of the bytes "
           "of the files it reads in the page cache (mincore) as each run starts (a read of some "
           "columns of a Parquet file brings in only their byte ranges)." if honest == "warm" else
           "Every Parquet file was evicted before each run of the stage: the ratio is to the "
           "cold read.")
    cold = (f"cold (page cache evicted, {ref['cold_resident_before']:.2%} of the files' bytes "
            f"left in it by mincore's count just before the read) {ref['cold_seconds']} s"
            if ref["cold_seconds"] is not None else
            f"cold: not measured, the eviction failed ({ref.get('cold_error')})")
    cold_ratio = ("" if result["ratio_to_cold_read"] is None
                  else f"{result['ratio_to_cold_read']}x the cold read, ")
    return f"""{heading or '## ' + result['stage']}

Command: `{command}` ({what}). Machine: {m['cores']} cores, {m['memory_gib']} GiB, load average
at the start {m['load_average'][0]}.

Reference: reading what the stage reads ({result.get('reference_reads') or
str(len(result['columns_read'])) + ' galaxy columns'}), the way it reads them:
{cold}; warm (the best of {ref['warm_repeats']}) {ref['warm_seconds']} s. {why}

| run | seconds | peak RSS (GiB) | CPU s | load avg before | inputs cached before | exit |
|---:|---:|---:|---:|---:|---:|---:|
{rows}

Best run: {b['seconds']} s = {result['ratio_to_read']}x the {honest} read
({cold_ratio}{result['ratio_to_warm_read']}x the warm read),
peak RSS {b['peak_rss_gib']} GiB.
{verdict}
"""


# -- what a stage cannot avoid -------------------------------------------------------------
def time_parts(parts: list[tuple[str, object]], repeats: int = 2) -> list[dict]:
    """Each named part (a callable; a list is a command run as a child process) timed
    ``repeats`` times: its best wall time and that run's CPU seconds (this process's and its
    children's), with the load average before it."""
    import resource

    def cpu() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    rows = []
    for name, part in parts:
        best = None
        for _ in range(max(1, repeats)):
            load = os.getloadavg()[0]
            c, t = cpu(), time.perf_counter()
            if isinstance(part, list):
                subprocess.run(part, check=True, capture_output=True)
            else:
                part()
            wall, used = time.perf_counter() - t, cpu() - c
            if best is None or wall < best["seconds"]:
                best = {"part": name, "seconds": round(wall, 2), "cpu_seconds": round(used, 2),
                        "load_average_before": round(load, 2)}
        rows.append(best)
    return rows


def parts_markdown(rows: list[dict], result: dict, read_parts: tuple[str, ...] = ()) -> str:
    """The parts beside the stage's best run and the read its target is judged against;
    ``read_parts``: the parts that are that read, whose CPU seconds give the target in CPU too
    (wall times on a loaded machine say little, CPU seconds more)."""
    ref, ratio = result["reference_read_seconds"], (result["targets"] or {}).get("ratio")
    body = "\n".join(f"| {r['part']} | {r['seconds']} | {r['cpu_seconds']} | "
                     f"{r['load_average_before']} |" for r in rows)
    cpu = sum(r["cpu_seconds"] for r in rows)
    cores = os.cpu_count() or 1
    budget = f"; {ratio:g}x the read: {ratio * ref:.2f} s" if ratio else ""
    read = [r["cpu_seconds"] for r in rows if r["part"] in read_parts]
    in_cpu = ""
    if read and ratio:
        in_cpu = (f" In CPU seconds, which the load inflates less: the parts {cpu:.2f}, the "
                  f"stage's best run {result['best']['cpu_seconds']}, {ratio:g}x the read's "
                  f"{sum(read):.2f} is {ratio * sum(read):.2f}.")
    return f"""
What the stage cannot avoid, each part measured alone right after the runs above (best of
{'two' if rows else 'none'}; wall seconds and the CPU seconds of that run, this machine):

| part | seconds | CPU s | load avg before |
|---|---:|---:|---:|
{body}

Together: {sum(r['seconds'] for r in rows):.2f} s one after the other, {cpu:.2f} CPU s (at
least {cpu / cores:.2f} s on {cores} cores even if every part overlapped every other), against
the {result['page_cache']} read of {ref} s{budget}.{in_cpu}
"""
