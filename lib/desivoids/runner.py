"""Execute the stage notebooks in order with papermill, as the book and a batch run need them.

The .py notebook is the source: it is read with jupytext in memory (papermill cannot read
py:percent) and the executed copy is written to the book's tree (``book/executed``), never over
``notebooks/*.ipynb``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import jupytext
import nbformat
import papermill as pm

from . import paths
from .errors import StageError
from .outputs import staged
from .progress import bar
from .params import RunParams
from .stages import Stage, select


class StageFailed(StageError):
    """A stage notebook raised: carries the stage, the failing cell and its error."""

    def __init__(self, stage: Stage, cell: int | None, ename: str, evalue: str, executed: Path):
        self.stage, self.cell, self.ename, self.evalue, self.executed = stage, cell, ename, evalue, executed
        where = f"cell [{cell}]" if cell is not None else "a cell"
        super().__init__(f"stage '{stage.name}' failed in {where} of {stage.source.name}: {ename}: {evalue}"
                         f" (executed notebook kept at {paths.display(executed)})")


@dataclass
class StageResult:
    stage: str
    notebook: str
    seconds: float


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
    with staged(mirror) as tmp:  # a mock cut short by an interrupt is never taken for whole
        mock.generate(tmp, **params.mock)
        (tmp / MOCK_STAMP).write_text(json.dumps(params.mock, sort_keys=True))
    return mirror


def execute_stage(stage: Stage, parameters: dict, *, output: Path | None = None,
                  progress: bool = True) -> Path:
    """Run one stage notebook with papermill; raise StageFailed naming the failing cell."""
    output = output or stage.executed
    output.parent.mkdir(parents=True, exist_ok=True)
    nb = jupytext.read(stage.source)
    try:
        pm.execute_notebook(
            nb, str(output), parameters=parameters, kernel_name="python3", language="python",
            cwd=str(stage.directory), progress_bar=progress, log_output=False,
        )
    except pm.PapermillExecutionError as exc:
        raise StageFailed(stage, exc.exec_count, exc.ename, exc.evalue, output) from None
    # Warnings are errors (as in QuantEcon's books): a page of the book must not carry a warning
    # or stray stderr text that nobody looked at.
    for cell in nbformat.read(output, as_version=4).cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                raise StageFailed(stage, cell.get("execution_count"), "StderrOutput",
                                  out["text"].strip()[:600], output)
    return output


def run(params: RunParams, stage_names: Iterable[str] | None = None, *, progress: bool = True,
        make_mock: bool = True, executed_dir: Path = paths.EXECUTED) -> list[StageResult]:
    """Run the selected stages (default: all) in pipeline order, stopping at the first failure.

    Executed notebooks go to ``executed_dir`` (the book's tree by default)."""
    executed_dir = Path(executed_dir)
    stages = select(list(stage_names) if stage_names else None)
    if make_mock:
        ensure_mock(params)
    results = []
    stage_bar = bar(stages, desc="desivoids run", unit="stage", progress=progress)
    for stage in stage_bar:
        stage_bar.set_postfix_str(stage.name)
        t0 = time.perf_counter()
        out = executed_dir / f"{stage.stem}.ipynb"
        execute_stage(stage, params.for_stage(stage), output=out, progress=progress)
        results.append(StageResult(stage.name, str(out), round(time.perf_counter() - t0, 2)))
    record = {"params_file": paths.display(params.file), "profile": params.profile,
              "data_dir": paths.display(params.data_dir),
              "stages": [r.__dict__ for r in results]}
    (executed_dir / "run.json").write_text(json.dumps(record, indent=2))
    return results
