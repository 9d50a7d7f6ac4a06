"""Shared fixtures: a tiny mock sky, the tiny pipeline run on it (every stage through `desivoids
run`, executed notebooks included) and its built book, each made once per test session, and the
real DESI tile fixtures when ../shared is present (tests that need them skip cleanly otherwise).

The tiny run and the book are read-only for every test: a test that changes a run copies it
first (``shutil.copytree(tiny_pipeline.data, dest, symlinks=True)``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import pytest

from desivoids import paths

#: the shared fixtures of these modules reach every test by name, without an import
pytest_plugins = ["pg_fixtures", "validation_fixtures"]

SHARED_TILE = paths.ROOT.parent / "shared" / "fixtures" / "desi-iron-tile"
TINY = {"seed": 12345, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 1}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")


@pytest.fixture(scope="session")
def tiny_sky(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny mock sky in DESI's relative layout (a read-only input: do not modify it)."""
    from desivoids import mock

    out = tmp_path_factory.mktemp("tiny_sky")
    summary = mock.generate(out, **TINY)
    return out, summary


def once_per_session(tmp_path_factory, name: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
    """``build(folder) -> info`` once per test session, under pytest-xdist too: each worker has its
    own session, so the first worker to get here builds in the workers' shared base temp under a
    file lock (pytest-xdist's documented pattern) and the others wait and reuse the folder and the
    info (JSON). A failed build is recorded, so the other workers fail with its message at once
    instead of building again."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        return folder, json.loads(json.dumps(build(folder)))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    folder, done, failed = shared / name, shared / f"{name}.json", shared / f"{name}.failed"
    with FileLock(str(shared / f"{name}.lock")):
        if failed.exists():
            pytest.fail(failed.read_text(), pytrace=False)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                info = build(folder)
            except BaseException as exc:  # pytest.fail is a BaseException: record it too
                failed.write_text(f"{name} (built by another worker): {exc}")
                raise
            done.write_text(json.dumps(info))
    return folder, json.loads(done.read_text())


# ------------------------------------------------------------------------- the tiny pipeline run
@dataclass(frozen=True)
class TinyRun:
    """The tiny pipeline run, in a clone of the repository's sources (see :func:`tiny_pipeline`)."""
    root: Path          # the clone: paths.ROOT of the run (lib/, notebooks/, params/, book sources)
    data: Path          # the run's data_dir (root/data/tiny); its mock sky in data/mirror
    params: Path        # the params file of the run (root/params/tiny.yml)
    executed: Path      # the executed stage notebooks (root/book/executed)
    env: dict = field(repr=False)  # os.environ with PYTHONPATH=<root>/lib: the clone's desivoids
    user_executed_before: tuple = ()  # the repository's book/executed listing before the run
    seconds: dict = field(default_factory=dict)  # wall time of `run` (and `book`)
    html: Path | None = None  # the built book (root/_build/html): tiny_book only

    @property
    def mirror(self) -> Path:
        return paths.RunLayout(self.data).mirror

    def desivoids(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """``desivoids ARGS`` with the clone's library."""
        return desivoids(*args, cwd=cwd or self.root, env=self.env, check=check)


def desivoids(*args: str, cwd: Path, env: dict | None = None, check: bool = True,
              timeout: float = 1200) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "desivoids.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"desivoids {' '.join(args)} failed (exit {proc.returncode}):\n"
                    f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}", pytrace=False)
    return proc


def user_executed_listing() -> tuple:
    return tuple(sorted(p.name for p in paths.EXECUTED.glob("*"))) if paths.EXECUTED.exists() else ()


def make_clone(dest: Path) -> Path:
    """The repository's sources that a run and a book need, copied to ``dest``."""
    from desivoids import book

    dest.mkdir(parents=True, exist_ok=True)
    for name in ("lib", "notebooks", "params"):
        shutil.copytree(paths.ROOT / name, dest / name, ignore=_IGNORE)
    book.copy_sources(dest)
    return dest


def _clone_env(root: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "lib"), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("MPLBACKEND", None)  # a non-interactive backend would strip the figures
    return env


def _run_tiny_pipeline(base: Path, sky: Path) -> dict:
    from desivoids.runner import MOCK_STAMP

    before = user_executed_listing()
    root = make_clone(base / "repo")
    params = root / "params" / "tiny.yml"
    params.write_text(f"profile: tiny\ndata_dir: data/tiny\nmock: {json.dumps(TINY)}\n"
                      "stages: {acquire: {sets: [desivast, fastspecfit, tiles]}}\n")
    # the session's mock sky is the run's: hard links with the stamp `desivoids run` writes
    # beside the mock it generates, so the run takes it for its own instead of generating one
    mirror = paths.RunLayout(root / "data" / "tiny").mirror
    shutil.copytree(sky, mirror, copy_function=os.link)
    (mirror / MOCK_STAMP).write_text(json.dumps(TINY, sort_keys=True))
    t0 = time.perf_counter()
    desivoids("run", "--params", str(params), "--quiet", "--executed-dir",
              str(root / "book" / "executed"), cwd=root, env=_clone_env(root))
    return {"root": str(root), "before": list(before),
            "seconds": {"run": round(time.perf_counter() - t0, 1)}}


@pytest.fixture(scope="session")
def tiny_pipeline(request, tmp_path_factory) -> TinyRun:
    """The session's tiny mock sky run through every stage by ``desivoids run`` (papermill, as
    ``make book`` does), in a *clone* of the repository's sources in a temporary folder: the
    library, notebooks and params are copied, the book's sources through
    ``desivoids.book.copy_sources``, and ``desivoids`` runs with ``PYTHONPATH=<clone>/lib``, so
    the clone is the repository root of that run (``desivoids.paths.ROOT``), exactly as for a
    user's fresh clone. Its data folder is ``data/tiny`` inside the clone, so the pages show the
    paths a reader of a real build sees, and any absolute path of the build machine on a page is a
    bug the browser test can catch. The user's book (``book/executed``) and data are never touched.

    Made once per test session (:func:`once_per_session`). Read-only: copy before changing
    anything (``shutil.copytree(run.data, dest, symlinks=True)``), and rerun a stage of a copy
    with ``run.env`` (the clone's library, whose ``paths.ROOT`` the outputs record)."""
    folder, info = once_per_session(tmp_path_factory, "tiny_pipeline",
                                    lambda d: _run_tiny_pipeline(d, request.getfixturevalue("tiny_sky")[0]))
    root = Path(info["root"])
    return TinyRun(root=root, data=root / "data" / "tiny", params=root / "params" / "tiny.yml",
                   executed=root / "book" / "executed", env=_clone_env(root),
                   user_executed_before=tuple(info["before"]), seconds=info["seconds"])


@pytest.fixture(scope="session")
def tiny_book(tiny_pipeline, tmp_path_factory) -> TinyRun:
    """The tiny run with its book built by ``desivoids book`` (warnings as errors), once per session
    (read-only, as the run). The book is built in a hard-linked copy of the run's clone (the build
    only adds files: book/_generated, book/_mathjax, _build), so the run's clone, which other
    tests copy while the book builds, never changes."""
    def build(folder: Path) -> dict:
        root = folder / "repo"
        shutil.copytree(tiny_pipeline.root, root, symlinks=True, copy_function=os.link)
        t0 = time.perf_counter()
        desivoids("book", "--root", str(root), cwd=root, env=_clone_env(root))
        return {"root": str(root), "book": round(time.perf_counter() - t0, 1)}

    _, info = once_per_session(tmp_path_factory, "tiny_book", build)
    root = Path(info["root"])
    return replace(tiny_pipeline, root=root, data=root / "data" / "tiny",
                   params=root / "params" / "tiny.yml", executed=root / "book" / "executed",
                   env=_clone_env(root), html=root / "_build" / "html",
                   seconds={**tiny_pipeline.seconds, "book": info["book"]})


@pytest.fixture
def real_tile_dir() -> Path:
    if not SHARED_TILE.is_dir():
        pytest.skip(f"real DESI tile fixtures not present at {SHARED_TILE}")
    return SHARED_TILE


def pytest_configure(config):
    # Notebooks run by tests must never pick a non-interactive backend that strips figures.
    os.environ.pop("MPLBACKEND", None)
    # Nor read the user's matplotlib font cache or matplotlibrc (nbval re-executes notebooks
    # outside the runner, which gives stage kernels their own): a cache another matplotlib
    # wrote in ~/.cache, without the bundled STIX fonts, puts a findfont line on stderr.
    config._desivoids_mpl = tempfile.mkdtemp(prefix="desivoids-mplconfig-")
    os.environ["MPLCONFIGDIR"] = config._desivoids_mpl


def pytest_unconfigure(config):
    folder = getattr(config, "_desivoids_mpl", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------- order of files for xdist
#: The files that take longest in `make test` (per-file totals of --durations, measured), longest
#: first. `--dist loadfile` hands a worker the next file whenever it is nearly done, in collection
#: order (`--no-loadscope-reorder`; xdist's default order is by test count, which put the
#: single-test files of several minutes last, one worker finishing them alone). Longest first is
#: the classic balancing order; the first two also keep one worker busy without the tiny run
#: while the other builds it. Files not listed follow by test count, as xdist would order them.
LONGEST_FIRST = ("test_planted_bugs", "test_stage_kill", "test_rerun", "test_browser",
                 "test_systematics_stage", "test_credentials", "test_hostile", "test_book",
                 "test_release_hats", "test_stage_contract", "test_e2e_vast", "test_runner",
                 "test_vast_files", "test_density_truth", "test_mock")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, order the files by :data:`LONGEST_FIRST` (each file's tests keep their
    order: several share a module fixture that they change in turn)."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return
    files: dict[str, list] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(path: str) -> tuple:
        stem = Path(path).stem
        return (rank.get(stem, len(rank)), -len(files[path]) if stem not in rank else 0)

    items[:] = [item for path in sorted(files, key=key) for item in files[path]]
