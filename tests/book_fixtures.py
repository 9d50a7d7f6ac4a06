"""One tiny pipeline run and one built book per test session, shared by the end-to-end, browser and
rerun tests (a fixture every test takes by name: conftest's ``pytest_plugins``).

The run happens in a *clone* of the repository's sources in a temporary folder: the library,
notebooks and params are copied, the book's sources through ``desivoids.book.copy_sources``, and
``desivoids`` runs with ``PYTHONPATH=<clone>/lib``, so the clone is the repository root of that
run (``desivoids.paths.ROOT``), exactly as for a user's fresh clone. Its data folder is
``data/tiny`` inside the clone, so the pages show the paths a reader of a real build sees
(relative to the repository), and any absolute path of the build machine on a page is a bug the
browser test can catch. The user's book (``book/executed``) and data are never touched.

``desivoids run`` executes every stage notebook with papermill (as ``make book`` does), then
``desivoids book`` builds the Jupyter Book with warnings as errors.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desivoids import book, paths

TINY_MOCK = "{seed: 7, scale: tiny, fastspec_version: v3.0, tiles: 1}"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")
_BUILT: dict = {}  # shared by every importer of this module: one run and one book per process


@dataclass(frozen=True)
class TinyBook:
    root: Path          # the clone: paths.ROOT of the run (lib/, notebooks/, params/, book sources)
    data: Path          # the run's data_dir (root/data/tiny)
    params: Path        # the params file of the run (root/params/tiny.yml)
    executed: Path      # the executed stage notebooks (root/book/executed)
    html: Path          # the built book (root/_build/html)
    env: dict = field(repr=False)  # os.environ with PYTHONPATH=<root>/lib: the clone's desivoids
    user_executed_before: tuple = ()  # the repository's book/executed listing before the run
    seconds: dict = field(default_factory=dict)  # wall time of `run` and `book`

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
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("lib", "notebooks", "params"):
        shutil.copytree(paths.ROOT / name, dest / name, ignore=_IGNORE)
    book.copy_sources(dest)
    return dest


def build_tiny_book(base: Path) -> TinyBook:
    before = user_executed_listing()
    root = make_clone(base / "repo")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "lib"), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("MPLBACKEND", None)  # a non-interactive backend would strip the figures
    params = root / "params" / "tiny.yml"
    params.write_text("profile: tiny\ndata_dir: data/tiny\n"
                      f"mock: {TINY_MOCK}\n"
                      "stages: {acquire: {sets: [desivast, fastspecfit, tiles]}}\n")
    executed = root / "book" / "executed"
    seconds = {}
    t0 = time.perf_counter()
    desivoids("run", "--params", str(params), "--quiet", "--executed-dir", str(executed), cwd=root, env=env)
    seconds["run"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    desivoids("book", "--root", str(root), cwd=root, env=env)
    seconds["book"] = round(time.perf_counter() - t0, 1)
    return TinyBook(root=root, data=root / "data" / "tiny", params=params, executed=executed,
                    html=root / "_build" / "html", env=env, user_executed_before=before,
                    seconds=seconds)


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> TinyBook:
    """The tiny run and its built book (read-only for the tests: copy before changing anything)."""
    if "error" in _BUILT:
        pytest.fail(_BUILT["error"], pytrace=False)
    if "book" not in _BUILT:
        try:
            _BUILT["book"] = build_tiny_book(tmp_path_factory.mktemp("tiny_book"))
        except pytest.fail.Exception as exc:
            _BUILT["error"] = str(exc)
            raise
    return _BUILT["book"]
