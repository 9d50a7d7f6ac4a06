"""Every stage notebook's .py source and its paired .ipynb hold the same cells, and every stage
in the pipeline has its notebook (the .py is the source; `make sync` regenerates the .ipynb)."""
from __future__ import annotations

import jupytext
import pytest
from jupytext.compare import compare_notebooks

from desivoids import paths
from desivoids.stages import STAGES

SOURCES = sorted(paths.NOTEBOOKS.glob("*.py"))


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_paired_ipynb_matches_py(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{py.name} has no paired {ipynb.name}: run `make sync`"
    # Raises with a diff when inputs differ; outputs are ignored (committed notebooks have none).
    compare_notebooks(jupytext.read(ipynb), jupytext.read(py), fmt="py:percent", allow_expected_differences=False)


@pytest.mark.parametrize("py", SOURCES, ids=[p.stem for p in SOURCES])
def test_committed_ipynb_has_no_outputs(py):
    nb = jupytext.read(py.with_suffix(".ipynb"))
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_every_stage_has_a_notebook_with_one_parameters_cell():
    for stage in STAGES.values():
        assert stage.source.exists(), f"stage {stage.name}: missing {stage.source}"
        nb = jupytext.read(stage.source)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{stage.source.name}: {len(tagged)} cells tagged parameters"
        assert "data_dir" in tagged[0].source
        assert nb.metadata["kernelspec"]["name"] == "python3"
