"""The runner executes stage notebooks with papermill, writes them to the executed tree (never
over notebooks/*.ipynb) and stops at a failing stage naming it and the failing cell's error."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import nbformat
import pytest

from desivoids import kernels, runner
from desivoids.params import RunParams
from desivoids.stages import STAGES, Stage, select
from desivoids.usage import PeakRSS


def test_select_keeps_pipeline_order():
    assert [s.name for s in select(["load", "recon"])] == ["recon", "load"]
    with pytest.raises(ValueError, match="unknown stage"):
        select(["nope"])


@pytest.mark.slow
def test_recon_stage_executes_into_the_given_tree(tmp_path, tiny_sky, capfd):
    root, _ = tiny_sky
    paired = STAGES["recon"].paired
    before = hashlib.sha256(paired.read_bytes()).hexdigest()
    out = runner.execute_stage(STAGES["recon"], {"data_dir": str(tmp_path / "run"), "input_dir": str(root)},
                               output=tmp_path / "exec" / "02_recon.ipynb", progress=False)
    nb = nbformat.read(out, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    assert (tmp_path / "run" / "recon" / "inventory.json").exists()
    assert hashlib.sha256(paired.read_bytes()).hexdigest() == before, "runner wrote over notebooks/*.ipynb"
    # the kernel listens on Unix sockets, not TCP ports: ipykernel's warning about those is gone
    assert "without encryption" not in capfd.readouterr().err
    assert not list(STAGES["recon"].directory.glob("*ipc*"))  # no socket left beside the notebook


def test_failing_stage_names_stage_cell_and_error(tmp_path):
    params = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path / "run", mock=None,
                       stages={"recon": {"input_dir": str(tmp_path / "does-not-exist")}})
    with pytest.raises(runner.StageFailed) as err:
        runner.run(params, ["recon"], progress=False, executed_dir=tmp_path / "exec")
    msg = str(err.value)
    assert "stage 'recon' failed" in msg
    assert "InputError" in msg and "does-not-exist" in msg and "does not exist" in msg
    assert err.value.cell is not None
    assert (tmp_path / "exec" / "02_recon.ipynb").exists()  # kept for inspection


@pytest.mark.slow
def test_cli_exits_nonzero_on_bad_params(tmp_path):
    f = tmp_path / "p.yml"
    f.write_text("data_dir: x\nstages: {recon: {strikt: true}}\n")
    proc = subprocess.run([sys.executable, "-m", "desivoids.cli", "run", "--params", str(f)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "stages.recon.strikt" in proc.stderr


@pytest.mark.slow
def test_cli_stops_at_failing_stage(tmp_path):
    f = tmp_path / "p.yml"
    f.write_text(f"data_dir: {tmp_path / 'run'}\nstages: {{recon: {{input_dir: {tmp_path / 'nope'}}}}}\n")
    proc = subprocess.run([sys.executable, "-m", "desivoids.cli", "run", "--params", str(f), "--quiet",
                           "--stages", "recon", "--executed-dir", str(tmp_path / "exec")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "stage 'recon' failed" in proc.stderr and "InputError" in proc.stderr


def test_mock_is_regenerated_only_when_its_parameters_change(tmp_path, monkeypatch):
    calls = []

    def fake_generate(out, **kw):
        calls.append(kw)
        out.mkdir(parents=True, exist_ok=True)
    import desivoids.mock
    monkeypatch.setattr(desivoids.mock, "generate", fake_generate)
    p = RunParams(file=tmp_path / "p.yml", profile="t", data_dir=tmp_path, mock={"seed": 1, "scale": "tiny"})
    runner.ensure_mock(p)
    runner.ensure_mock(p)
    assert len(calls) == 1
    p.mock = {"seed": 2, "scale": "tiny"}
    runner.ensure_mock(p)
    assert len(calls) == 2


def test_a_warning_in_a_notebook_fails_the_stage(tmp_path):
    (tmp_path / "01_demo.py").write_text(
        "# %% tags=[\"parameters\"]\ndata_dir: str = ''\n\n"
        "# %%\nimport warnings\nwarnings.warn('coordinates look odd')\n")
    stage = Stage("demo", 1, "a demonstration", outputs=("demo",), directory=tmp_path)
    with pytest.raises(runner.StageFailed) as err:
        runner.execute_stage(stage, {"data_dir": str(tmp_path)}, output=tmp_path / "out.ipynb", progress=False)
    assert "stage 'demo' failed" in str(err.value)
    assert "StderrOutput" in str(err.value) and "coordinates look odd" in str(err.value)


@pytest.mark.slow
def test_the_run_report_records_time_memory_and_failures_and_keeps_other_stages(tmp_path, tiny_sky):
    """<data_dir>/run/report.{json,md}: one row per stage with its wall time and the peak memory of
    its kernel; a failed stage is recorded as failed; a later run of one stage replaces only its
    row."""
    import json

    root, _ = tiny_sky
    data = tmp_path / "run"
    good = RunParams(file=tmp_path / "a.yml", profile="t", data_dir=data, mock=None,
                     stages={"recon": {"input_dir": str(root)}})
    runner.run(good, ["recon"], progress=False, executed_dir=tmp_path / "exec")
    rec = json.loads((data / "run" / "report.json").read_text())
    (row,) = rec["stages"]
    assert row["stage"] == "recon" and row["status"] == "done" and row["seconds"] > 0
    # a python kernel with numpy, astropy and pandas loaded holds well over 50 MB
    assert 0.05 < row["peak_rss_gib"] < 4
    # a kernel starting and importing numpy, astropy and pandas costs CPU seconds
    assert 0.2 < row["cpu_seconds"] < row["seconds"] * (os.cpu_count() or 1)
    # an earlier stage's row (as if acquire had run) survives a run of recon alone
    rec["stages"].insert(0, {**row, "stage": "acquire", "seconds": 1.5})
    (data / "run" / "report.json").write_text(json.dumps(rec))
    bad = RunParams(file=tmp_path / "b.yml", profile="t", data_dir=data, mock=None,
                    stages={"recon": {"input_dir": str(tmp_path / "nope")}})
    with pytest.raises(runner.StageFailed):
        runner.run(bad, ["recon"], progress=False, executed_dir=tmp_path / "exec")
    rec = json.loads((data / "run" / "report.json").read_text())
    assert [(r["stage"], r["status"]) for r in rec["stages"]] == [("acquire", "done"), ("recon", "failed")]
    assert rec["stages"][1]["cpu_seconds"] > 0  # the failed kernel's too
    md = (data / "run" / "report.md").read_text()
    assert "| recon | failed |" in md and "| acquire | done | 1.5 |" in md and "b.yml" in md


def test_the_cpu_seconds_of_child_processes_are_measured():
    """A child that spins for about a second of CPU (and sleeps a second, which costs none)."""
    code = ("import time; t = time.process_time()\n"
            "while time.process_time() - t < 1.0: pass\n"
            "time.sleep(1.0)")
    with PeakRSS(interval=0.05) as mem:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert 1.0 <= mem.cpu_seconds < 1.9


def test_peak_rss_sees_the_memory_of_child_processes():
    code = "import numpy as np, time; a = np.ones(300 * 2**20 // 8); time.sleep(1.0)"
    with PeakRSS(interval=0.05) as mem:
        subprocess.run([sys.executable, "-c", code], check=True)
    assert mem.peak > 300 * 2**20


@pytest.mark.slow
def test_the_users_matplotlib_cache_and_rc_do_not_reach_the_kernel(tmp_path, tiny_sky, monkeypatch):
    """A font cache another matplotlib wrote in the user's cache folder (system fonts only, no
    STIX: a log axis then logs "findfont ... STIXGeneral not found" to stderr, which fails the
    stage; CI failed on it) does not reach the stage's kernel."""
    import json as _json
    import os

    from matplotlib import font_manager

    from desivoids import paths

    cache = tmp_path / "cache" / "matplotlib"
    cache.mkdir(parents=True)
    doc = _json.loads(_json.dumps(font_manager.fontManager, cls=font_manager._JSONEncoder))
    doc["ttflist"] = [e for e in doc["ttflist"] if not e["name"].startswith("STIX")]
    assert len(doc["ttflist"]) < len(font_manager.fontManager.ttflist)
    (cache / f"fontlist-v{font_manager.FontManager.__version__}.json").write_text(_json.dumps(doc))
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root, _ = tiny_sky
    data = tmp_path / "run"
    runner.execute_stage(STAGES["recon"], {"data_dir": str(data), "input_dir": str(root)},
                         output=tmp_path / "exec" / "02_recon.ipynb", progress=False)
    assert (paths.RunLayout.of(data).run / "matplotlib").is_dir()
    assert "MPLCONFIGDIR" not in os.environ  # restored after the call


def test_the_kernel_gets_the_database_password_in_pgpassword_and_the_notebook_never_does(
        tmp_path, monkeypatch):
    """papermill writes every injected parameter into the executed notebook (and the book): the
    URL reaches the kernel without its password, which travels in libpq's PGPASSWORD for the
    call only (tests/test_credentials.py proves the whole run against a server that needs it)."""
    import os

    monkeypatch.setenv("PGPASSWORD", "the-users-own")
    secret = "Pw-s3cret:@/x"
    from urllib.parse import quote

    given = {"data_dir": str(tmp_path), "db_url": f"postgresql+psycopg://ann:{quote(secret, safe='')}@127.0.0.1:5/db"}
    with runner._kernel_environment(given) as injected:
        assert secret not in str(injected) and quote(secret, safe="") not in str(injected)
        assert injected["db_url"].startswith("postgresql+psycopg://ann@127.0.0.1:5/db")
        assert os.environ["PGPASSWORD"] == secret
    assert os.environ["PGPASSWORD"] == "the-users-own"
    assert given["db_url"].endswith("@127.0.0.1:5/db")  # the caller's parameters are not changed


def test_the_kernel_falls_back_to_tcp_where_the_runtime_folder_is_too_deep_for_a_socket(
        monkeypatch):
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/r")
    one, two = kernels.kernel_config().KernelManager, kernels.kernel_config().KernelManager
    assert one.transport == two.transport == "ipc"
    assert one.ip != two.ip and one.ip.startswith("/tmp/r/")  # never another kernel's sockets
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", "/tmp/" + "d" * 60)
    assert "transport" not in kernels.kernel_config().KernelManager


def test_two_kernels_started_at_once_from_one_folder_each_run_their_own_notebook(tmp_path):
    """`desivoids run --jobs 2` starts two stage kernels from notebooks/ at once: with
    jupyter_client's default socket names (kernel-ipc-<n> in the working folder) they took each
    other's sockets ("Invalid Signature")."""
    code = ("import sys, nbformat, papermill as pm; from desivoids import kernels\n"
            "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f'x = {sys.argv[1]}')])\n"
            "pm.execute_notebook(nb, sys.argv[2], kernel_name='python3', progress_bar=False,\n"
            "                    cwd=sys.argv[3], config=kernels.kernel_config())\n")
    for attempt in range(2):
        runs = [subprocess.Popen([sys.executable, "-c", code, str(i), str(tmp_path / f"{attempt}-{i}.ipynb"),
                                  str(tmp_path)], stderr=subprocess.PIPE, text=True) for i in range(3)]
        errors = [p.communicate()[1] for p in runs]
        assert [p.returncode for p in runs] == [0, 0, 0], errors
        assert not list(tmp_path.glob("*ipc*"))  # no socket in the working folder
