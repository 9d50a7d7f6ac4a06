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


# ------------------------------------------------------------------------------ domains
def test_a_domain_is_read_from_the_start_of_the_help_comment():
    d = params.Domain.parse("[1, inf) rows per chunk")
    assert d.contains(1) and d.contains(10 ** 9) and not d.contains(0) and not d.contains(-5)
    assert str(d) == "[1, inf)"
    d = params.Domain.parse("(0, 0.5) 1 - confidence")
    assert not d.contains(0) and not d.contains(0.5) and d.contains(0.05)
    assert not d.contains(float("nan")) and not d.contains(True) and d.contains(None)
    d = params.Domain.parse("{threads, processes} scheduler")
    assert d.contains("threads") and not d.contains("thread") and str(d) == "one of {threads, processes}"
    assert params.Domain.parse("rows per chunk [1, 2]") is None  # only at the start


def test_every_number_and_every_word_list_of_every_stage_has_a_domain_holding_its_default():
    missing, outside = [], []
    for stage in STAGES.values():
        for d in params.declared_parameters(stage).values():
            numeric = set(d.types) - {type(None)} <= {int, float} and d.types
            if numeric and d.domain is None:
                missing.append(f"{stage.name}.{d.name}")
            if d.domain is not None and not d.domain.contains(d.default):
                outside.append(f"{stage.name}.{d.name}={d.default!r} not in {d.domain}")
    assert not missing, f"numeric parameters without a declared domain: {missing}"
    assert not outside, outside


def test_the_bgs_bit_domain_is_desitargets_bit_names():
    from desivoids import formats

    d = params.declared_parameters(STAGES["plausibility"])["bgs_bit"].domain
    assert set(d.choices) == set(formats.BGS_TARGET_BITS)


@pytest.mark.parametrize("stage, name, value", [
    ("convert", "chunk_rows", -5), ("convert", "compression", "gzipp"),
    ("convert", "scheduler", "thread"), ("convert", "omega_m", 3.0),
    ("plausibility", "survey", "mian"), ("plausibility", "zmin", -1.0),
    ("systematics", "alpha", 0.0), ("acquire", "workers", 0), ("environment", "randoms", 0),
])
def test_a_value_outside_its_domain_is_refused_by_file_command_line_and_library(
        tmp_path, capsys, stage, name, value):
    from desivoids import stagecli

    f = write(tmp_path, f"data_dir: {tmp_path / 'd'}\nstages: {{{stage}: {{{name}: {value!r}}}}}\n")
    with pytest.raises(params.ParamsError, match=rf"stages\.{stage}\.{name}: .* outside its domain"):
        params.load(f)
    rc = stagecli.main(STAGES[stage], ["-p", "data_dir", str(tmp_path / "d"), "-p", name, str(value)])
    err = capsys.readouterr().err
    assert rc == 2 and name in err and str(value) in err and "domain" in err, err
    with pytest.raises(params.ParamsError, match=rf"desivoids\.{stage}\.run\.{name}: "):
        STAGES[stage].entry()(data_dir=str(tmp_path / "lib"), **{name: value})
    assert not (tmp_path / "d").exists() and not (tmp_path / "lib").exists(), \
        "refused before anything ran"


def test_numpy_numbers_are_numbers_to_a_domain():
    """A notebook may pass np.int64 or np.float32: in the domain is in the domain."""
    import numpy as np

    d = params.Domain.parse("[1, 100000000] rows")
    assert d.contains(np.int64(5)) and d.contains(np.float32(5.0))
    assert not d.contains(np.int64(0)) and not d.contains(np.True_) and not d.contains(True)
