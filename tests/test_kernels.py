"""A stage's kernel started ahead, while the stage before it runs (issue 25: kernel start-up and
imports, 2 to 3 s a stage, were on the chain of stages that sets the run's length). The stage
that takes it must see what a fresh kernel shows, and a kernel that is not right for it is never
taken."""
from __future__ import annotations

import os
import time

import nbformat
import psutil
import pytest

from desivoids import kernels, runner
from desivoids.kernels import KernelAhead
from desivoids.stages import Stage
from desivoids.usage import PeakRSS

# what the notebook shows of its kernel: pid, whether desivoids.recon was imported, its names
SHOW = ("import os, sys\n"
        "print(os.getpid(), 'desivoids.recon' in sys.modules,\n"
        "      sorted(k for k in dir() if not k.startswith('_')))\n")


def _stage(folder, name: str, number: int, code: str = SHOW) -> Stage:
    (folder / f"{number:02d}_{name}.py").write_text(
        "# %% tags=[\"parameters\"]\ndata_dir: str = ''\n\n# %%\n" + code)
    return Stage(name, number, "a demonstration", outputs=(name,), directory=folder)


def _shown(path) -> tuple[list, list]:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    return [c.execution_count for c in code], [o.get("text") for c in code for o in c.outputs]


def _started(ahead: KernelAhead) -> int:
    for _ in range(300):
        if ahead.pid is not None:
            return ahead.pid
        time.sleep(0.1)
    raise AssertionError("no kernel started ahead")


@pytest.fixture
def ahead():
    k = KernelAhead()
    yield k
    k.close()


def test_the_next_stage_runs_in_the_kernel_started_ahead_as_in_a_fresh_one(tmp_path, ahead):
    one, two = _stage(tmp_path, "one", 1), _stage(tmp_path, "two", 2)
    params = {"data_dir": str(tmp_path)}
    runner.execute_stage(one, params, output=tmp_path / "cold.ipynb", progress=False)
    runner.execute_stage(one, params, output=tmp_path / "1.ipynb", progress=False,
                         kernels=ahead, ahead=("recon",))
    pid = _started(ahead)
    runner.execute_stage(two, params, output=tmp_path / "2.ipynb", progress=False,
                         kernels=ahead)
    counts, shown = _shown(tmp_path / "2.ipynb")
    cold_counts, cold = _shown(tmp_path / "cold.ipynb")
    got_pid, recon_imported, names = shown[-1].split(" ", 2)
    _, cold_recon, cold_names = cold[-1].split(" ", 2)
    assert int(got_pid) == pid  # the kernel started ahead ran it
    assert recon_imported == "True" and cold_recon == "False"  # with the imports done
    assert names == cold_names and counts == cold_counts  # no name bound, no count spent
    assert ahead.pid is None and not psutil.pid_exists(pid)  # none left; that one shut down


def test_no_stage_ahead_starts_no_kernel(tmp_path, ahead):
    runner.execute_stage(_stage(tmp_path, "one", 1), {"data_dir": str(tmp_path)},
                         output=tmp_path / "1.ipynb", progress=False, kernels=ahead, ahead=())
    assert ahead.pid is None and ahead.take(tmp_path) is None


def test_a_kernel_whose_imports_warned_is_shut_down_not_taken(tmp_path, ahead, monkeypatch):
    """A warning shown in the kernel started ahead would be lost to the notebook, which fails
    on any (warnings are errors): the stage gets a fresh kernel, where it shows."""
    (tmp_path / "noisy.py").write_text("import warnings\nwarnings.warn('odd units')\n")
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setattr(kernels, "COMMON_MODULES", (*kernels.COMMON_MODULES, "noisy"))
    ahead.start(tmp_path, ["recon"])
    pid = _started(ahead)
    assert ahead.take(tmp_path) is None and not psutil.pid_exists(pid)


def test_a_kernel_started_in_another_environment_or_folder_is_not_taken(tmp_path, ahead,
                                                                          monkeypatch):
    ahead.start(tmp_path, [])
    monkeypatch.setenv("DESIVOIDS_SOMETHING_NEW", "1")  # as another params file's stage would
    assert ahead.take(tmp_path) is None
    monkeypatch.delenv("DESIVOIDS_SOMETHING_NEW")
    ahead.start(tmp_path, [])
    assert ahead.take(tmp_path / "elsewhere") is None
    ahead.start(tmp_path, [])
    km = ahead.take(tmp_path)
    assert km is not None
    kernels.shutdown(km)


def test_the_memory_of_the_kernel_started_ahead_is_not_the_running_stages(tmp_path, ahead):
    ahead.start(tmp_path, ["recon", "convert"])
    _started(ahead)
    with PeakRSS(interval=0.05, skip=lambda: ahead.pid) as mine, \
            PeakRSS(interval=0.05) as everything:
        time.sleep(1.5)
    # the kernel (pyplot, pandas, pyarrow, two stages' packages) is far above 50 MB; other
    # children of this process (a multiprocessing resource tracker, say) are in both peaks
    assert everything.peak - mine.peak > 50 * 2**20


def test_a_kernel_taken_by_a_stage_that_fails_before_it_runs_is_shut_down(tmp_path, ahead,
                                                                          monkeypatch):
    """papermill shuts the kernel down once it ran the notebook; a failure before that (here
    the notebook cannot be parameterized) must not leave the kernel running."""
    stage, params = _stage(tmp_path, "one", 1), {"data_dir": str(tmp_path)}
    runner.execute_stage(stage, params, output=tmp_path / "0.ipynb", progress=False,
                         kernels=ahead, ahead=("recon",))
    pid = _started(ahead)

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot parameterize")
    monkeypatch.setattr(runner, "execute_in", refuse)
    with pytest.raises(RuntimeError):
        runner.execute_stage(stage, params, output=tmp_path / "1.ipynb", progress=False,
                             kernels=ahead)
    assert not psutil.pid_exists(pid)


def test_a_stage_kernel_is_killed_after_its_last_cell_not_asked_to_exit(tmp_path, ahead):
    """A stage has published its outputs inside its cells: its kernel is killed once the last
    cell ran (an exiting kernel spent 0.6 s and more freeing its memory, on the chain of stages),
    whether papermill started it or it was started ahead. The kernel's exit handlers do not run;
    the notebook is whole."""
    code = ("import atexit, pathlib\n"
            f"atexit.register(pathlib.Path({str(tmp_path / 'exited')!r}).touch)\n"
            "print('last cell')\n")
    stage, params = _stage(tmp_path, "one", 1, code), {"data_dir": str(tmp_path)}
    runner.execute_stage(stage, params, output=tmp_path / "cold.ipynb", progress=False,
                         kernels=ahead, ahead=("recon",))
    _started(ahead)
    runner.execute_stage(stage, params, output=tmp_path / "ahead.ipynb", progress=False,
                         kernels=ahead)
    for name in ("cold.ipynb", "ahead.ipynb"):
        assert _shown(tmp_path / name)[1][-1] == "last cell\n"
    assert not (tmp_path / "exited").exists()


def test_a_worker_starts_the_kernel_of_its_first_stage_when_it_starts(tmp_path, monkeypatch):
    """`desivoids run --jobs`: a worker that has run no stage yet has a kernel started for the
    first stage it gets, in the environment the stage gives its kernel, so it is taken."""
    monkeypatch.setattr(runner, "_WORKER_KERNELS", None)
    stage, params = _stage(tmp_path, "one", 1), {"data_dir": str(tmp_path)}
    runner._first_kernel(params, str(tmp_path))
    started = runner._worker_kernels()
    try:
        pid = _started(started)
        runner.execute_stage(stage, params, output=tmp_path / "1.ipynb", progress=False,
                             kernels=started)
        assert int(_shown(tmp_path / "1.ipynb")[1][-1].split(" ")[0]) == pid
    finally:
        started.close()


def test_a_worker_whose_kernel_cannot_start_ahead_still_runs_stages(tmp_path, monkeypatch):
    """An error of the worker's first step would break the whole pool (every stage then fails
    with BrokenProcessPool): the stage starts its own kernel instead, as without it."""
    def refuse(self, *args):
        raise OSError("no runtime folder")
    monkeypatch.setattr(runner, "_WORKER_KERNELS", None)
    monkeypatch.setattr(KernelAhead, "start", refuse)
    runner._first_kernel({"data_dir": str(tmp_path)}, str(tmp_path))
    assert runner._worker_kernels().take(tmp_path) is None
