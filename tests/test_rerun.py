"""The ways a user reruns the pipeline's notebooks, as the README documents them ("Rerunning it:
papermill, JupyterLab, nbval"), each on the session's tiny run (conftest.tiny_pipeline):

1. papermill from a shell on one stage's paired .ipynb with a changed parameter;
2. JupyterLab (`make lab`): jupytext's contents manager opens notebooks/NN_stage.py as a notebook
   and saving writes its paired .ipynb (jupytext.toml), on a server started headless on 127.0.0.1;
3. nbval over the executed notebook of every stage: re-executed from the state in which the
   pipeline ran it, every output is the same after tests/nbval_sanitize.cfg.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jupytext
import nbformat
import pytest

from desivoids import paths
from desivoids.stages import ORDER, STAGES
from notebook_checks import output_text, run_nbval

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
DESIVAST = "dr1/vac/dr1/desivast/v1.0"


def shell(cmd: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """A command line as a user types it, with the venv's bin first on PATH."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("MPLBACKEND", None)
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# --------------------------------------------------------------------------------------------
# 1. papermill on one stage's paired notebook

@pytest.fixture(scope="module")
def recon_run(tiny_pipeline, tmp_path_factory):
    """A run folder holding the tiny run's acquired files (a copy: the session's run stays as it was)."""
    run = tmp_path_factory.mktemp("papermill") / "run"
    shutil.copytree(tiny_pipeline.data / "acquire", run / "acquire")
    return run


def test_papermill_reruns_recon_with_strict_true(recon_run, tmp_path):
    out = tmp_path / "02_recon.out.ipynb"
    cmd = f"papermill notebooks/02_recon.ipynb {shlex.quote(str(out))} " \
          f"-p data_dir {shlex.quote(str(recon_run))} -p strict True"
    proc = shell(cmd, cwd=paths.ROOT)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    nb = nbformat.read(out, as_version=4)
    # papermill's -p reads True/False/None and numbers, anything else as a string: `-p strict
    # true` would inject the string "true" (and "false" would be truthy), hence True.
    assert nb.metadata.papermill.parameters == {"data_dir": str(recon_run), "strict": True}
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "strict = True" in injected[0].source
    text = output_text(out)
    for alg in ("VoidFinder", "V2_REVOLVER", "V2_VIDE", "V2_ZOBOV"):
        assert f"DESIVAST_BGS_VOLLIM_{alg}_NGC.fits" in text
    assert (recon_run / "recon" / "inventory.json").exists()


def test_papermill_strict_true_fails_on_a_faulty_file(recon_run, tmp_path):
    """The parameter takes effect: the same folder with one truncated file passes by default
    (the fault is listed) and fails with -p strict True, naming the file."""
    bad = tmp_path / "input"
    bad.mkdir()
    src = recon_run / "acquire" / "raw" / DESIVAST
    shutil.copy(src / "DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits", bad)
    data = (src / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits").read_bytes()
    (bad / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits").write_bytes(data[: len(data) // 2])
    base = f"papermill notebooks/02_recon.ipynb {{out}} -p data_dir {shlex.quote(str(tmp_path / 'run'))} " \
           f"-p input_dir {shlex.quote(str(bad))}"
    lenient = shell(base.format(out=tmp_path / "lenient.ipynb"), cwd=paths.ROOT)
    assert lenient.returncode == 0, lenient.stderr[-4000:]
    assert "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits" in output_text(tmp_path / "lenient.ipynb")
    strict = shell(base.format(out=tmp_path / "strict.ipynb") + " -p strict True", cwd=paths.ROOT)
    assert strict.returncode != 0, "strict=True did not fail the stage on a truncated file"
    assert "PapermillExecutionError" in strict.stderr
    assert "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits" in strict.stderr
    assert "DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits" not in strict.stderr.split("PapermillExecutionError")[-1]


# --------------------------------------------------------------------------------------------
# 2. JupyterLab with jupytext's contents manager

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`jupyter lab` on 127.0.0.1 with a token, serving ``root``; config and runtime files in a
    temporary folder (the user's ~/.jupyter is neither read nor written)."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_RUNTIME_DIR=str(home / "runtime"), JUPYTER_DATA_DIR=str(home / "data"),
                   JUPYTER_PLATFORM_DIRS="1")
        self.log = open(home / "lab.log", "w")
        self.proc = subprocess.Popen(
            [str(BIN / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", "--port-retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={root}"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = home / "lab.log"

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method: str, path: str, body: dict | None = None) -> dict:
        status, data = self.request(method, path, body)
        assert status in (200, 201), f"{method} {path}: HTTP {status}: {data[:500]!r}"
        return json.loads(data)

    def wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.request("GET", "/api/status")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        pytest.fail(f"jupyter lab did not start on {self.base}:\n{self.log_path.read_text()[-3000:]}",
                    pytrace=False)

    def shutdown(self) -> int:
        if self.proc.poll() is None:
            try:
                self.request("POST", "/api/shutdown")
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab over a copy of the repository's jupytext.toml and stage notebooks."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "repo"
    (root / "book" / "executed").mkdir(parents=True)
    shutil.copy(paths.ROOT / "jupytext.toml", root)
    shutil.copytree(paths.NOTEBOOKS, root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    server = Lab(root, base)
    try:
        server.wait()
        yield server
    finally:
        server.shutdown()


def test_lab_serves_jupyterlab(lab):
    status, page = lab.request("GET", "/lab")
    assert status == 200 and b"JupyterLab" in page


def test_lab_opens_a_stage_py_as_a_notebook(lab):
    model = lab.json("GET", "/api/contents/notebooks/02_recon.py")
    assert model["type"] == "notebook", "jupytext's contents manager is not active"
    cells = model["content"]["cells"]
    params = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "strict: bool = False" in params[0]["source"]
    assert len(cells) == len(jupytext.read(paths.NOTEBOOKS / "02_recon.py").cells)


def test_lab_saving_a_py_writes_its_paired_ipynb(lab):
    model = lab.json("GET", "/api/contents/notebooks/02_recon.py")
    nb = model["content"]
    nb["cells"][0]["source"] += "\n\nEdited in JupyterLab."
    lab.json("PUT", "/api/contents/notebooks/02_recon.py", {"type": "notebook", "format": "json", "content": nb})
    py, ipynb = lab.root / "notebooks" / "02_recon.py", lab.root / "notebooks" / "02_recon.ipynb"
    assert "# Edited in JupyterLab." in py.read_text()
    paired = jupytext.read(ipynb)
    assert paired.cells[0].source.endswith("Edited in JupyterLab.")
    assert [c.source for c in paired.cells] == [c.source for c in jupytext.read(py).cells]
    assert "py:percent" in py.read_text().split("# ---")[1]  # still a py:percent notebook


def test_jupytext_toml_pairs_new_notebooks_in_notebooks_only(lab):
    """A notebook without pairing metadata saved as notebooks/NN.py gets its .ipynb from
    jupytext.toml; one saved in book/executed stays a single file."""
    nb = lab.json("GET", "/api/contents/notebooks/02_recon.py")["content"]
    nb["metadata"].pop("jupytext", None)
    body = {"type": "notebook", "format": "json", "content": nb}
    lab.json("PUT", "/api/contents/notebooks/99_copy.py", body)
    assert (lab.root / "notebooks" / "99_copy.ipynb").exists()
    assert len(jupytext.read(lab.root / "notebooks" / "99_copy.ipynb").cells) == len(nb["cells"])
    lab.json("PUT", "/api/contents/book/executed/99_copy.ipynb", body)
    assert (lab.root / "book" / "executed" / "99_copy.ipynb").exists()
    assert not (lab.root / "book" / "executed" / "99_copy.py").exists()


def test_lab_shuts_down(lab):
    assert lab.shutdown() == 0


# --------------------------------------------------------------------------------------------
# 3. nbval over the executed stage notebooks

@pytest.fixture(scope="module")
def nbval_run(tiny_pipeline, tmp_path_factory):
    """A copy of the tiny run's clone (sources, data, executed notebooks), re-executed in place
    (each stage's test first restores the run's data)."""
    root = tmp_path_factory.mktemp("nbval") / "repo"
    shutil.copytree(tiny_pipeline.root, root, ignore=shutil.ignore_patterns("_build", "__pycache__"),
                    symlinks=True)
    return root


@pytest.mark.parametrize("name", ORDER)
def test_nbval_reproduces_every_stage(tiny_pipeline, nbval_run, name, monkeypatch):
    """Re-executed under nbval from the state the pipeline ran it in (its own outputs absent,
    every earlier stage's present, the runner's record listing the earlier stages), a stage's
    notebook gives the same outputs. Without that, acquire resumes ("verified", nothing fetched)
    instead of fetching, and release's provenance.json lists its own earlier run."""
    stage = STAGES[name]
    data = nbval_run / "data" / "tiny"
    # from the run's own data, not the state the reruns before this one left: a load rerun is
    # load run 2, which integrity's report then records and release lists with its checksum
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(tiny_pipeline.data, data, symlinks=True)
    for out in stage.outputs:
        shutil.rmtree(data / out, ignore_errors=True)
    # the runner's record as it stood when the stage ran: the stages before it (release copies it
    # into provenance.json)
    original = paths.RunLayout(tiny_pipeline.data).run / "report.json"
    if original.exists():
        record = json.loads(original.read_text())
        before = set(ORDER[:ORDER.index(name)])
        record["stages"] = [r for r in record["stages"] if r["stage"] in before]
        (paths.RunLayout(data).run / "report.json").write_text(json.dumps(record, indent=2))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(nbval_run / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    proc = run_nbval(nbval_run / "book" / "executed" / f"{stage.stem}.ipynb")
    first = max(0, proc.stdout.find("Cell execution caused an exception"))
    assert proc.returncode == 0, (proc.stdout[first:first + 8000]  # the first failing cell's error
                                  + "\n...\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    assert " passed" in proc.stdout and " failed" not in proc.stdout
