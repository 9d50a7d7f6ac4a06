"""`desivoids run` reruns only stale stages (desivoids.freshness): a stage's record of its
parameters and inputs is sealed with its outputs, and the runner compares it with the run it is
asked for."""
from __future__ import annotations

import json

import nbformat
import pytest

from desivoids import freshness, runner
from desivoids import params as P
from desivoids.outputs import MANIFEST
from desivoids.stages import STAGES

TINY_MOCK = {"seed": 97, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 1}
STAGES_RUN = ["acquire", "recon", "convert", "load"]


@pytest.fixture
def library_runner(monkeypatch):
    """The runner with each stage executed through its library entry point (what the notebook
    calls) instead of a kernel: the decisions are the runner's, the stages real, in seconds."""
    ran = []

    def execute(stage, parameters, *, output=None, progress=True, **kernels):
        ran.append(stage.name)
        stage.entry()(**parameters)
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(), output)
        return output

    monkeypatch.setattr(runner, "execute_stage", execute)
    return ran


def _params(tmp_path, convert: dict | None = None) -> P.RunParams:
    f = tmp_path / "tiny.yml"
    f.write_text(f"profile: tiny\ndata_dir: {tmp_path / 'data'}\nmock: {TINY_MOCK}\nstages:\n"
                 "  acquire: {sets: [desivast, fastspecfit]}\n"
                 f"  convert: {json.dumps(convert or {})}\n")
    return P.load(f)


def test_only_stale_stages_rerun_and_force_reruns_all(tmp_path, library_runner, capsys):
    ran, executed = library_runner, tmp_path / "executed"
    runner.run(_params(tmp_path), STAGES_RUN, progress=False, executed_dir=executed)
    assert ran == STAGES_RUN
    for name in STAGES_RUN:  # each stage's record, sealed with its outputs where it seals them
        rec = json.loads((tmp_path / "data" / name / freshness.INPUTS).read_text())
        assert set(rec["inputs"]) >= set(STAGES[name].reads), name
    assert freshness.INPUTS in (tmp_path / "data" / "convert" / MANIFEST).read_text()

    ran.clear()
    capsys.readouterr()
    results = runner.run(_params(tmp_path), STAGES_RUN, progress=False, executed_dir=executed)
    assert ran == [] and [r.ran for r in results] == [False] * 4
    out = capsys.readouterr().out
    assert all(f"{name}: fresh, skipped" in out for name in STAGES_RUN), out

    # one parameter of convert: convert and what reads it rerun, acquire and recon do not
    runner.run(_params(tmp_path, {"compression": "zstd"}), STAGES_RUN, progress=False,
               executed_dir=executed)
    assert ran == ["convert", "load"]
    out = capsys.readouterr().out
    assert "convert: runs: parameter compression changed: 'lz4' -> 'zstd'" in out, out
    assert "load: runs: convert's outputs changed since its last run" in out, out
    assert "recon: fresh, skipped" in out

    ran.clear()
    runner.run(_params(tmp_path, {"compression": "zstd"}), STAGES_RUN, progress=False,
               executed_dir=executed, force=True)
    assert ran == STAGES_RUN


def test_changed_outputs_a_missing_notebook_or_record_make_a_stage_stale(tmp_path, library_runner):
    executed = tmp_path / "executed"
    rp = _params(tmp_path)
    runner.run(rp, STAGES_RUN[:3], progress=False, executed_dir=executed)
    stage = STAGES["convert"]
    out = executed / f"{stage.stem}.ipynb"
    assert runner.stale_reasons(rp, stage, out) == []
    (tmp_path / "data" / "convert" / "voids.parquet").write_bytes(b"changed")
    assert runner.stale_reasons(rp, stage, out) == [
        "its output voids.parquet: sha256 differs from the manifest (changed after publication)"]
    (executed / f"{STAGES['recon'].stem}.ipynb").unlink()
    assert any("no executed notebook" in r for r in runner.stale_reasons(rp, STAGES["recon"],
               executed / f"{STAGES['recon'].stem}.ipynb"))
    (tmp_path / "data" / "acquire" / freshness.INPUTS).unlink()
    assert runner.stale_reasons(rp, STAGES["acquire"], executed / "01_acquire.ipynb")[0] \
        .startswith("no record of an earlier run")


def test_the_record_masks_passwords_and_leaves_data_dir_out():
    got = freshness.normal_parameters({"data_dir": "/x", "db_url": "postgresql://u:secret@h/db",
                                       "caps": ("N", "S"), "input_dir": ""})
    assert got == {"db_url": "postgresql://u:***@h/db", "caps": ["N", "S"], "input_dir": ""}
