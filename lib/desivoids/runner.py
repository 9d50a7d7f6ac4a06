"""Execute the stage notebooks in order with papermill, as the book and a batch run need them.

The .py notebook is the source: it is read with jupytext in memory (papermill cannot read
py:percent) and the executed copy is written to the book's tree (``book/executed``), never over
``notebooks/*.ipynb``.
"""
from __future__ import annotations

import json
import multiprocessing
import multiprocessing.util
import os
import threading
import time
from concurrent.futures import (FIRST_COMPLETED, Executor, ProcessPoolExecutor,
                                ThreadPoolExecutor, wait)
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import jupytext
import nbformat
import papermill as pm

from . import freshness, hugepages, paths
from .kernels import KernelAhead, execute_in, kernel_config, shutdown
from .errors import StageError
from .outputs import stage_lock, staged, write_json, write_text_atomic
from .progress import bar
from .usage import PeakRSS
from .params import RunParams, declared_parameters, masked, split_password
from .stages import ORDER, Stage, select


class StageFailed(StageError):
    """A stage notebook raised: carries the stage, the failing cell and its error."""

    def __init__(self, stage: Stage, cell: int | None, ename: str, evalue: str, executed: Path):
        self.stage, self.cell, self.ename, self.evalue, self.executed = stage, cell, ename, evalue, executed
        self.peak_rss = 0  # bytes: the kernel's peak before it failed (set by the runner)
        self.cpu_seconds = 0.0  # the kernel's CPU seconds until it failed (set by the runner)
        where = f"cell [{cell}]" if cell is not None else "a cell"
        super().__init__(f"stage '{stage.name}' failed in {where} of {stage.source.name}: {ename}: {evalue}"
                         f" (executed notebook kept at {paths.display(executed)})")


@dataclass
class StageResult:
    stage: str
    notebook: str
    seconds: float
    #: why it ran (desivoids.freshness.stale); empty when it was fresh and skipped
    reasons: list[str] = field(default_factory=list)
    ran: bool = True


MOCK_STAMP = ".desivoids-mock.json"


def ensure_mock(params: RunParams, *, force: bool = False) -> Path | None:
    """For a mock profile, write the mock sky to <data_dir>/mirror unless it is already there
    with the same parameters. Returns the mirror folder (None for profiles without a mock)."""
    if params.mock is None:
        return None
    from . import mock  # imported lazily: real-data runs never need it

    mirror = paths.RunLayout(params.data_dir).mirror
    stamp = mirror / MOCK_STAMP
    if not force and stamp.exists() and json.loads(stamp.read_text()) == params.mock:
        return mirror
    # a mock cut short by an interrupt is never taken for whole; no manifest: acquire fetches
    # it as a remote source, checked against its own published checksums
    with staged(mirror, manifest=False) as tmp:
        mock.generate(tmp, **params.mock)
        (tmp / MOCK_STAMP).write_text(json.dumps(params.mock, sort_keys=True))
    return mirror


@contextmanager
def _kernel_environment(parameters: dict):
    """The environment the stage's kernel inherits, set for the call and restored after it.

    A database password never reaches a notebook: papermill writes every injected parameter
    into the executed notebook (and the book), so the URL is injected without it and the
    password travels in libpq's PGPASSWORD.

    matplotlib reads its configuration and font cache from ``<data_dir>/run/matplotlib``
    (MPLCONFIGDIR), not from the user's home: a matplotlibrc there would change every figure
    of the book, and a font cache another matplotlib wrote there (one without its bundled
    STIX fonts: any log axis then logs "findfont: Font family ['STIXGeneral'] not found" to
    stderr, which fails the stage) broke a whole run.

    numpy's huge pages are off unless the user set them (:mod:`desivoids.hugepages`)."""
    url, password = split_password(parameters.get("db_url", ""))
    env = {"MPLCONFIGDIR": str(_matplotlib_dir(parameters)), **hugepages.environment()}
    if password is not None:
        env["PGPASSWORD"] = password
        parameters = {**parameters, "db_url": url}
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield parameters
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _matplotlib_dir(parameters: dict) -> Path:
    folder = paths.RunLayout.of(parameters.get("data_dir") or "data/mock").run / "matplotlib"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _for_the_book(path: Path, source: Path) -> None:
    """Collapse every code cell's input in the book (tag hide-input): a reader sees results and
    opens the code where wanted. papermill records its input and output paths in the notebook's
    metadata (the book offers the .ipynb for download): they are shown relative to the
    repository, never as the folders of the machine that ran it."""
    nb = nbformat.read(path, as_version=4)
    pm_meta = nb.metadata.get("papermill")
    if pm_meta is not None:
        pm_meta["input_path"] = paths.display(source)
        pm_meta["output_path"] = paths.display(path)
    for cell in nb.cells:
        if cell.cell_type == "code":
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
    nbformat.write(nb, path)


def execute_stage(stage: Stage, parameters: dict, *, output: Path | None = None,
                  progress: bool = True, kernels: KernelAhead | None = None,
                  ahead: tuple[str, ...] = ()) -> Path:
    """Run one stage notebook with papermill; raise StageFailed naming the failing cell.

    ``kernels``: run it in the kernel started ahead there if that one suits it, and start one
    there for any of the stages ``ahead`` (:mod:`desivoids.kernels`)."""
    output = output or stage.executed
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(stage.source)
    with _kernel_environment(parameters) as injected:
        km = kernels.take(stage.directory) if kernels is not None else None
        if kernels is not None and ahead:
            kernels.start(stage.directory, ahead)
        # the kernel is killed once the last cell has run ("immediate"), not asked to exit:
        # a stage has published its outputs, atomically, inside its cells, and an exiting
        # kernel spent 0.6 s and more freeing its memory on the chain of stages (measured)
        how = dict(parameters=injected, kernel_name="python3", language="python",
                   cwd=str(stage.directory), progress_bar=progress, log_output=False,
                   shutdown_kernel="immediate")
        try:
            if km is None:
                pm.execute_notebook(nb, str(output), config=kernel_config(), **how)
            else:
                execute_in(km, nb, str(output), **how)
        except pm.PapermillExecutionError as exc:
            raise StageFailed(stage, exc.exec_count, exc.ename, exc.evalue, output) from None
        finally:
            if km is not None:  # papermill shut it down unless it failed before the kernel ran
                shutdown(km, now=True)
    # Warnings are errors (as in QuantEcon's books): a page of the book must not carry a warning
    # or stray stderr text that nobody looked at.
    for cell in nbformat.read(output, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                raise StageFailed(stage, cell.get("execution_count"), "StderrOutput",
                                  out["text"].strip()[:600], output)
    _for_the_book(output, stage.source)
    return output


def _report_md(record: dict) -> str:
    several = len({r.get("params_file") for r in record["stages"]}) > 1
    lines = ["# Run report", "",
             f"Profile `{record['profile']}` (`{record['params_file']}`), data folder "
             f"`{record['data_dir']}`. Wall time, peak resident memory and CPU seconds (user + "
             "system) of each stage's notebook kernel (with every process it started), as "
             "`desivoids run` measured them.",
             "", "| stage | status | seconds | peak RSS (GiB) | CPU s |"
             + (" params file |" if several else ""),
             "|---|---|---:|---:|---:|" + ("---|" if several else "")]
    for r in record["stages"]:
        cpu = r.get("cpu_seconds")  # absent from the records of runs before it was measured
        lines.append(f"| {r['stage']} | {r['status']} | {r['seconds']:.1f} | "
                     f"{r['peak_rss_gib']:.2f} | {'' if cpu is None else f'{cpu:.1f}'} |"
                     + (f" `{r.get('params_file')}` |" if several else ""))
    done = [r for r in record["stages"] if r["status"] == "done"]
    lines += ["", f"Total: {sum(r['seconds'] for r in done):.1f} s over {len(done)} stages; "
              f"largest peak {max((r['peak_rss_gib'] for r in done), default=0):.2f} GiB."]
    last = record.get("last_run")
    if last and last.get("jobs", 1) > 1:
        lines += ["", f"The last `desivoids run` ({len(last['stages'])} stages, up to "
                  f"{last['jobs']} at once: a stage's seconds include the cores it shared) took "
                  f"{last['seconds']:.1f} s."]
    return "\n".join(lines) + "\n"


def _earlier_stages(layout: paths.RunLayout, rerun: set[str]) -> list[dict]:
    """The run record's entries of stages not run this time: a run of some stages updates
    their rows and keeps the others (each row says which params file and when)."""
    report = layout.run_file("report")
    if not report.exists():
        return []
    return [r for r in json.loads(report.read_text()).get("stages", [])
            if r.get("stage") in ORDER and r["stage"] not in rerun]


def _record_params(layout: paths.RunLayout, params: RunParams, stage: Stage) -> None:
    """``<data_dir>/run/params.json``: the stage's parameters as run (masked), beside the
    other stages' of earlier runs."""
    earlier = layout.run_file("params")
    write_json(earlier, {
        "source": "desivoids run", "params_file": paths.display(params.file),
        "profile": params.profile, "mock": params.mock,
        "stages": {**(json.loads(earlier.read_text()).get("stages", {}) if earlier.exists() else {}),
                   stage.name: masked(params.for_stage(stage))}})


def stale_reasons(params: RunParams, stage: Stage, executed: Path) -> list[str]:
    """Why ``stage`` must run with ``params`` ([]: fresh), every declared parameter counted at
    its value as run (the params file's, else the notebook's default)."""
    values = {k: d.default for k, d in declared_parameters(stage).items()}
    values.update(params.for_stage(stage))
    return freshness.stale(stage.name, params.data_dir, values, executed)


def _say(progress: bool, text: str) -> None:
    """A line on stdout that does not garble the progress bar."""
    from tqdm import tqdm

    tqdm.write(text)


def writes_database(stage: Stage) -> bool:
    """Whether ``stage`` writes tables into the run's database: two such stages never run at
    once (a SQLite file has one writer)."""
    return bool(stage.tables)


def waits_for(stage: Stage, selected: Iterable[Stage]) -> set[str]:
    """The selected stages that must end before ``stage`` starts: those whose outputs it reads,
    and the load when it publishes tables beside the load's (:mod:`desivoids.load.tables`).

    Measured at DR1 scale, plausibility's work beside the load (publishing once the load had
    ended, :func:`desivoids.load.tables.table_transaction` waits for a running load) slowed the
    load by more than it saved: 114 s for the two against 110 s one after the other."""
    names = {s.name for s in selected}
    deps = set(stage.reads) & names
    if stage.tables and stage.name != "load" and "load" in names:
        deps.add("load")
    return deps


def after(stage: Stage, selected: Iterable[Stage]) -> set[str]:
    """The selected stages that wait for ``stage``, directly or through others."""
    selected = list(selected)
    found, frontier = set(), {stage.name}
    while frontier:
        frontier = {s.name for s in selected if waits_for(s, selected) & frontier} - found
        found |= frontier
    return found


def _schedule(stages: list[Stage], one: Callable[[Stage, bool], StageResult], jobs: int,
              progress: bool) -> list[StageResult]:
    """Run ``one(stage, background)`` for every stage, up to ``jobs`` at once: a stage starts
    when every stage it :func:`waits_for` has ended and, if it :func:`writes_database`, no other
    such one runs (a stage reading the database beside a writer waits for the writer's commit:
    see :data:`desivoids.load.queries.SQLITE_BUSY_SECONDS`); among the stages that may start,
    pipeline order decides. ``background``: a stage beside which one with more stages
    :func:`after` it runs or starts (recon beside convert, integrity beside plausibility), so
    that the cores go first to the chain that sets the run's length. After a failure no stage
    starts; those running end, then the first failure is raised."""
    done: dict[str, StageResult] = {}
    failures: list[BaseException] = []
    pending, running = list(stages), {}
    chain = {s.name: len(after(s, stages)) for s in stages}
    with bar(total=len(stages), desc="desivoids run", unit="stage", progress=progress) as shown, \
            ThreadPoolExecutor(jobs, thread_name_prefix="stage") as threads:
        while running or (pending and not failures):
            starting: list[Stage] = []
            for stage in [] if failures else list(pending):
                if len(running) + len(starting) >= jobs:
                    break
                if waits_for(stage, stages) - done.keys():
                    continue
                if writes_database(stage) and any(map(writes_database,
                                                      [*running.values(), *starting])):
                    continue
                pending.remove(stage)
                starting.append(stage)
            beside = [*running.values(), *starting]
            for stage in starting:
                background = any(chain[o.name] > chain[stage.name] for o in beside)
                running[threads.submit(one, stage, background)] = stage
            shown.set_postfix_str(", ".join(s.name for s in running.values()))
            if not running:  # cannot happen with a consistent registry; never spin
                raise StageError(f"stages {[s.name for s in pending]} wait for stages not run")
            ended, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in ended:
                stage = running.pop(future)
                try:
                    done[stage.name] = future.result()
                except BaseException as exc:  # re-raised below, once every running stage ended
                    failures.append(exc)
                shown.update(1)
    if failures:
        raise failures[0]
    return [done[s.name] for s in stages if s.name in done]


def _in_process(stage: Stage, parameters: dict, output: Path, progress: bool,
                kernels: KernelAhead | None = None, ahead: tuple[str, ...] = ()
                ) -> tuple[int, float]:
    """Execute the stage's notebook from this process; its kernel's peak RSS in bytes and CPU
    seconds (those of a kernel started ahead for it included, those of the one it starts ahead
    for the next stage not: see :class:`PeakRSS`)."""
    mem = PeakRSS(skip=(lambda: kernels.pid) if kernels is not None else None)
    try:
        with mem:
            execute_stage(stage, parameters, output=output, progress=progress, kernels=kernels,
                          ahead=ahead)
    except StageFailed as exc:
        exc.peak_rss, exc.cpu_seconds = mem.peak, mem.cpu_seconds
        raise
    return mem.peak, mem.cpu_seconds


def _in_worker(name: str, parameters: dict, output: str, progress: bool, nice: int = 0,
               ahead: tuple[str, ...] = ()):
    """:func:`_in_process` in a worker process (``desivoids run --jobs``): papermill changes
    the process's working folder and the kernel inherits its environment, so two notebooks run
    at once from two processes. Returns ((peak RSS, CPU seconds), None) or ((peak RSS, CPU
    seconds), (the failure's cell, ename and evalue)). ``nice``: added to the worker's
    niceness, which the kernel inherits. ``ahead``: stages this worker may run next, whose
    kernel it starts while this one runs (a worker that runs one stage only gets none)."""
    from .stages import STAGES

    if nice:
        os.nice(nice)
    try:
        return _in_process(STAGES[name], parameters, Path(output), progress,
                           _worker_kernels() if ahead or _WORKER_KERNELS else None,
                           ahead), None
    except StageFailed as exc:
        return (exc.peak_rss, exc.cpu_seconds), (exc.cell, exc.ename, exc.evalue)


#: a worker process's kernel started ahead (:func:`_worker_kernels`)
_WORKER_KERNELS: KernelAhead | None = None


def _worker_kernels() -> KernelAhead:
    """This worker's :class:`KernelAhead`, whose kernel is shut down when the worker ends."""
    global _WORKER_KERNELS
    if _WORKER_KERNELS is None:
        _WORKER_KERNELS = KernelAhead()
        multiprocessing.util.Finalize(None, _WORKER_KERNELS.close, exitpriority=10)
    return _WORKER_KERNELS


#: how much lower (``nice``) a background stage's CPU priority is (see :func:`_schedule`)
BACKGROUND_NICE = 10


def _first_kernel(parameters: dict, directory: str) -> None:
    """A worker's first step: start a kernel there with what every stage notebook imports first,
    in the stages' environment, for the first stage that comes to it. A worker starts the next
    stage's kernel while a stage runs; the one that had run none yet started its first stage
    from nothing (DR1 scale: density, on the chain of stages, 0.65 s for its kernel's start, then
    those imports in its first cell)."""
    try:
        with _kernel_environment(parameters):
            _worker_kernels().start(Path(directory), ())
    except Exception:  # an initializer's error would break the pool: the stage starts its own
        pass           # kernel, and papermill reports what fails there


def _worker_pool(jobs: int, one_stage_each: bool = False,
                 first: tuple[dict, str] | None = None) -> Executor:
    """Worker processes for stages. spawn: the runner has threads (progress, memory polls); a
    forked child would copy their locks. A worker runs stage after stage, so that its imports
    (papermill, nbformat, and the jsonschema grammar nbformat pulls in: about 3 CPU s a
    process, measured) are paid once per worker, not once per stage; ``one_stage_each``: a
    worker ends with its stage (a background stage's, whose lowered priority ends with it).
    ``first``: (a stage's parameters, the notebooks' folder) for :func:`_first_kernel`."""
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               max_tasks_per_child=1 if one_stage_each else None,
                               initializer=None if first is None else _first_kernel,
                               initargs=() if first is None else first)


def _start_workers(pool: Executor, jobs: int) -> None:
    """Start ``jobs`` workers of ``pool`` now. The executor starts a spawned worker only when a
    task finds none idle: the second one started when two stages first ran side by side, and
    the stage that waited for it began 3 s after the stage it read had ended (DR1 scale:
    density, on the chain of stages; measured from the executed notebooks' times)."""
    for _ in range(jobs):  # each finds no worker idle yet, so each starts one
        pool.submit(os.getpid)


def run(params: RunParams, stage_names: Iterable[str] | None = None, *, progress: bool = True,
        make_mock: bool = True, executed_dir: Path = paths.EXECUTED,
        force: bool = False, jobs: int = 1) -> list[StageResult]:
    """Run the selected stages (default: all) in pipeline order, stopping at the first failure.

    A stage runs only when it is stale (:func:`desivoids.freshness.stale`: no record of an
    earlier run, a parameter or a producer's output changed since, its outputs missing or
    changed, or no executed notebook in ``executed_dir``), decided under its lock once the
    stages before it have run; each stage's line says whether it runs and why. ``force``: run
    every selected stage. A fresh stage keeps its executed notebook and its row of the report.

    ``jobs`` > 1: up to that many stages at once, each notebook from a worker process, as the
    stages' reads and the database allow (:func:`_schedule`): a stage starts only once the stages
    it reads have ended, as in pipeline order; after a failure no stage starts, and the running
    ones end before the failure is raised.

    Executed notebooks go to ``executed_dir`` (the book's tree by default). The parameters as
    run (database URLs masked) and each stage's wall time and peak memory are recorded, after
    every stage, in ``<data_dir>/run/`` (params.json, report.json, report.md)."""
    executed_dir = Path(executed_dir)
    stages = select(list(stage_names) if stage_names else None)
    if Path(params.data_dir).exists() and not Path(params.data_dir).is_dir():
        from .errors import InputError

        raise InputError(params.data_dir, None, None, "data_dir is not a folder (a file is in its place)")
    if jobs < 1:
        from .errors import UsageError

        raise UsageError(f"jobs must be at least 1, not {jobs}")
    if make_mock:
        ensure_mock(params)
    layout = paths.RunLayout(params.data_dir)
    layout.run.mkdir(parents=True, exist_ok=True)
    record = {"params_file": paths.display(params.file), "profile": params.profile,
              "data_dir": paths.display(params.data_dir),
              "stages": _earlier_stages(layout, set())}
    recording = threading.Lock()  # stages ending at once write the run's record one at a time
    concurrent = jobs > 1 and len(stages) > 1
    workers = min(jobs, len(stages))
    pool = _worker_pool(workers, first=(params.for_stage(stages[0]), str(stages[0].directory))) \
        if concurrent else None
    # at most jobs - 1 stages run in the background at once (one yields to another)
    niced = _worker_pool(max(1, workers - 1), one_stage_each=True) if concurrent else None
    kernels = None if concurrent else KernelAhead()  # the workers have their own

    workers_started = threading.Lock()  # held once the workers started: with the first stage

    def execute(stage: Stage, out: Path, nice: int) -> tuple[int, float]:
        # the kernel started ahead serves any later stage (which one comes next to a worker
        # depends on the schedule); a niced worker runs one stage and starts none
        ahead = () if nice else tuple(s.name for s in stages[stages.index(stage) + 1:])
        if pool is None:
            return _in_process(stage, params.for_stage(stage), out, progress, kernels, ahead)
        if workers_started.acquire(blocking=False):  # not at the pool's creation: a run
            _start_workers(pool, workers)  # of fresh stages starts none
        used, failure = (niced if nice else pool).submit(
            _in_worker, stage.name, params.for_stage(stage), str(out), False, nice,
            ahead).result()
        if failure is not None:
            exc = StageFailed(stage, *failure, out)
            exc.peak_rss, exc.cpu_seconds = used
            raise exc
        return used

    def one(stage: Stage, background: bool = False) -> StageResult:
        t0 = time.perf_counter()
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        out = executed_dir / f"{stage.stem}.ipynb"
        status, peak, cpu, locked = "failed", 0, 0.0, False
        nice = BACKGROUND_NICE if background and pool is not None else 0
        reasons = ["--force"] if force else []
        try:
            # the run's records change only under the stage's lock: a run refused because
            # another holds it leaves them (which the holder's release may be packaging) alone
            with stage_lock(params.data_dir, stage.name, params.db_url):
                reasons = reasons or stale_reasons(params, stage, out)
                if not reasons:
                    _say(progress, f"{stage.name}: fresh, skipped (its parameters and inputs are "
                         "those of its last run)")
                    return StageResult(stage.name, str(out), 0.0, [], ran=False)
                _say(progress, f"{stage.name}: runs: {'; '.join(reasons)}")
                locked = True
                with recording:
                    _record_params(layout, params, stage)
                try:
                    peak, cpu = execute(stage, out, nice)
                except StageFailed as exc:
                    peak, cpu = exc.peak_rss, exc.cpu_seconds
                    raise
            status = "done"
        finally:
            seconds = round(time.perf_counter() - t0, 2)
            if locked:  # refused by the lock or fresh: nothing ran, nothing to record
                with recording:
                    record["stages"] = [r for r in record["stages"] if r["stage"] != stage.name]
                    record["stages"].append({
                        "stage": stage.name, "status": status, "seconds": seconds,
                        "peak_rss_gib": round(peak / 2**30, 3), "cpu_seconds": round(cpu, 1),
                        "nice": nice,
                        "notebook": paths.display(out), "params_file": paths.display(params.file),
                        "started": started, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                    record["stages"].sort(key=lambda r: ORDER.index(r["stage"]))
                    write_json(layout.run_file("report"), record)
                    write_text_atomic(layout.run_file("report_md"), _report_md(record))
        return StageResult(stage.name, str(out), seconds, reasons)

    t_run = time.perf_counter()
    try:
        if concurrent:
            results = _schedule(stages, one, jobs, progress)
        else:
            results = []
            stage_bar = bar(stages, desc="desivoids run", unit="stage", progress=progress)
            for stage in stage_bar:
                stage_bar.set_postfix_str(stage.name)
                results.append(one(stage))
    finally:
        if kernels is not None:
            kernels.close()
        for executor in (pool, niced):
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        with recording:  # what the whole command took: with jobs > 1, less than its stages' sum
            record["last_run"] = {"stages": [s.name for s in stages], "jobs": jobs,
                                  "seconds": round(time.perf_counter() - t_run, 2)}
            write_json(layout.run_file("report"), record)
            write_text_atomic(layout.run_file("report_md"), _report_md(record))
    executed_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(executed_dir / "run.json", json.dumps(record, indent=2))
    return results
