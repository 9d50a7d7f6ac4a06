"""Params files are validated against the stage notebooks' parameters cells."""
from __future__ import annotations

import textwrap

import pytest

from desivoids import params, paths
from desivoids.stages import STAGES


def write(tmp_path, text):
    f = tmp_path / "p.yml"
    f.write_text(textwrap.dedent(text))
    return f


def test_default_params_file_is_valid():
    p = params.load(paths.PARAMS / "mock.yml")
    assert p.profile == "mock"
    assert p.data_dir == paths.ROOT / "data" / "mock"
    assert p.mock["scale"] == "small"
    # paths inside the repository are passed relative to it: no page shows the builder's folders
    assert p.for_stage(STAGES["recon"]) == {"data_dir": "data/mock", "strict": False}


def test_every_params_file_in_the_repo_is_valid():
    files = sorted(paths.PARAMS.glob("*.yml"))
    assert files, "no params files"
    for f in files:
        params.load(f)


def test_recon_declares_its_parameters_with_types():
    declared = params.declared_parameters(STAGES["recon"])
    assert {"data_dir", "input_dir", "strict", "checksum"} <= set(declared)
    assert declared["strict"].types == (bool,)
    assert declared["data_dir"].types == (str,)


@pytest.mark.parametrize("text, message", [
    ("data_dir: x\nstages: {recon: {strictt: true}}", "stages.recon.strictt: unknown parameter"),
    ("data_dir: x\nstages: {recon: {strict: 'yes'}}", "stages.recon.strict: must be bool, got str"),
    ("data_dir: x\nstages: {recon: {checksum: 1}}", "stages.recon.checksum: must be bool, got int"),
    ("data_dir: x\nstages: {reconn: {}}", "unknown stage 'reconn'"),
    ("data_dirr: x\n", "unknown top-level key 'data_dirr'"),
    ("data_dir: 3\n", "'data_dir' must be a str"),
    ("mock: {seed: 1.5}\n", "mock.seed must be int"),
    ("mock: {scales: tiny}\n", "unknown parameter mock.scales"),
    ("stages: {recon: {data_dir: elsewhere}}", "data_dir is set once"),
    ("stages: {load: {db_url: 'sqlite:///x'}}", "db_url is set once"),
    ("stages: [recon]", "'stages' must be a dict"),
])
def test_bad_params_name_the_key(tmp_path, text, message):
    f = write(tmp_path, text)
    with pytest.raises(params.ParamsError) as err:
        params.load(f)
    assert message in str(err.value)
    assert str(f) in str(err.value)


def test_bool_is_not_an_int():
    assert not params.check_type(True, (int,))
    assert params.check_type(3, (float,))
    assert params.check_type(None, (str, type(None)))


def test_relative_data_dir_resolves_against_the_repo(tmp_path):
    p = params.load(write(tmp_path, "data_dir: data/elsewhere\n"))
    assert p.data_dir == paths.ROOT / "data" / "elsewhere"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(params.ParamsError, match="no such params file"):
        params.load(tmp_path / "nope.yml")


def test_the_parameters_cell_is_jupytexts_for_every_stage_notebook():
    """params reads the cell from the percent markers (no jupytext import on the command line);
    what it reads must be exactly what jupytext reads."""
    import jupytext

    from desivoids.params import _percent_parameters_cell, parameters_cell
    from desivoids.stages import STAGES

    for stage in STAGES.values():
        cells = [c for c in jupytext.read(stage.source).cells
                 if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(cells) == 1
        assert _percent_parameters_cell(stage.source.read_text()) == cells[0].source, stage.name
        assert parameters_cell(stage.source) == cells[0].source


def test_a_notebook_the_markers_do_not_settle_goes_to_jupytext(tmp_path):
    """Two tagged cells (an error naming the file), or the tag on a markdown cell only:
    jupytext decides."""
    from desivoids.params import ParamsError, _percent_parameters_cell, parameters_cell

    head = "".join(paths.NOTEBOOKS.joinpath("03_convert.py").read_text().partition("# ---\n\n")[:2])
    two = tmp_path / "two.py"
    two.write_text(head + '# %% tags=["parameters"]\na = 1\n\n# %% tags=["parameters"]\nb = 2\n')
    assert _percent_parameters_cell(two.read_text()) is None
    with pytest.raises(ParamsError, match="two.py.*found 2"):
        parameters_cell(two)
    md = tmp_path / "md.py"
    md.write_text(head + '# %% [markdown] tags=["parameters"]\n# text\n\n# %%\nx = 1\n')
    assert _percent_parameters_cell(md.read_text()) is None
    import jupytext

    tagged = [c.source for c in jupytext.read(md).cells if "parameters" in c.metadata.get("tags", [])]
    assert [parameters_cell(md)] == tagged  # whatever jupytext makes of it
    one = tmp_path / "one.py"
    one.write_text(head + '# %% [markdown]\n# intro\n\n# %% tags=["parameters"]\n'
                   'x: int = 1  # help\n\n\n# %%\nprint(x)\n')
    assert parameters_cell(one) == "x: int = 1  # help"
