"""The stage contract (desivoids.stages): each stage owns its outputs, declares its parameters
once, and fails one way; one registry drives the verbs, the book, the params files, the README and
the benchmarks.

The tiny pipeline is run stage by stage through the library entry points (what `desivoids
<stage>` calls), with a snapshot of the whole run folder and of the database before and after
each stage."""
from __future__ import annotations

import ast
import hashlib
import inspect
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from desivoids import params as P
from desivoids import paths, runner, stagecli
from desivoids.publication import TABLE as PUBLICATIONS
from desivoids.stages import DATABASE_OUTPUT, MOCK_OUTPUT, ORDER, RUN_OUTPUT, STAGES

TINY_MOCK = {"seed": 97, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 1}


# -------------------------------------------------------------------------- snapshots
def file_snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file below ``root`` except the shared database folder,
    whose content is compared table by table."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(DATABASE_OUTPUT + "/"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def owner_of_table(name: str) -> str:
    """SQLite's R*Tree keeps its nodes in shadow tables named after it. The bookkeeping table of
    desivoids.publication has one row per stage, the stage's own (``stage_publications:NAME``
    in :func:`table_snapshot`): it stands for the stage's first table."""
    if name.startswith(PUBLICATIONS + ":"):
        return STAGES[name.split(":", 1)[1]].tables[0]
    for suffix in ("_node", "_parent", "_rowid"):
        if name.endswith(suffix) and name[: -len(suffix)] == "galaxy_blocks":
            return "galaxy_blocks"
    return name


def table_snapshot(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'sqlite_%'")]
        out = {}
        for stage, *row in (con.execute(f"SELECT * FROM {PUBLICATIONS}")
                            if PUBLICATIONS in names else ()):
            out[f"{PUBLICATIONS}:{stage}"] = hashlib.sha256(repr(row).encode()).hexdigest()
        for name in sorted(set(names) - {PUBLICATIONS}):
            h = hashlib.sha256()
            for row in con.execute(f'SELECT * FROM "{name}"'):
                h.update(repr(row).encode())
            out[name] = h.hexdigest()
        return out
    finally:
        con.close()


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}


def outside(paths_changed: set[str], owned: tuple[str, ...]) -> set[str]:
    return {p for p in paths_changed if not any(p == o or p.startswith(o + "/") for o in owned)}


# -------------------------------------------------------------------------- the tiny run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The tiny pipeline run stage by stage; yields the run folder, the params and, per stage,
    the files and tables it changed."""
    d = tmp_path_factory.mktemp("contract")
    pfile = d / "tiny.yml"
    pfile.write_text(f"profile: tiny\ndata_dir: {d / 'data'}\nmock: {TINY_MOCK}\n"
                     "stages:\n  acquire: {sets: [desivast, fastspecfit, tiles], workers: 2}\n")
    rp = P.load(pfile)
    runner.ensure_mock(rp)
    data = rp.data_dir
    db = paths.RunLayout(data).database
    changes = {}
    for name in ORDER:
        stage = STAGES[name]
        files0, tables0 = file_snapshot(data), table_snapshot(db)
        stage.entry()(**rp.for_stage(stage))
        changes[name] = (changed(files0, file_snapshot(data)),
                         changed(tables0, table_snapshot(db)))
    return data, rp, changes


def test_declared_outputs_are_disjoint_and_below_data_dir():
    owned = [(o, s.name) for s in STAGES.values() for o in s.outputs]
    owned += [(MOCK_OUTPUT, "mock sky"), (DATABASE_OUTPUT, "database"), (RUN_OUTPUT, "runner")]
    for i, (a, who_a) in enumerate(owned):
        assert not Path(a).is_absolute() and ".." not in Path(a).parts, a
        for b, who_b in owned[i + 1:]:
            assert not (a == b or a.startswith(b + "/") or b.startswith(a + "/")), \
                f"{who_a} ({a}) and {who_b} ({b}) overlap"
    tables = [t for s in STAGES.values() for t in s.tables]
    assert len(tables) == len(set(tables)), "a database table has two owners"
    for s in STAGES.values():
        assert s.outputs == (s.name,), f"stage {s.name} owns {s.outputs}: one folder, its name"


@pytest.mark.slow
def test_every_stage_changes_only_its_declared_outputs(tiny_run):
    _, _, changes = tiny_run
    for name, (files, tables) in changes.items():
        stage = STAGES[name]
        assert files, f"stage {name} wrote nothing"
        assert not outside(files, stage.outputs), f"{name} wrote outside {stage.outputs}"
        foreign = {owner_of_table(t) for t in tables} - set(stage.tables)
        assert not foreign, f"{name} changed database tables it does not own: {foreign}"


def test_after_a_full_run_every_declared_output_exists(tiny_run):
    data, _, _ = tiny_run
    layout = paths.RunLayout(data)
    for stage in STAGES.values():
        for o in stage.outputs:
            assert (data / o).is_dir() and any((data / o).iterdir()), f"{stage.name}: {o} missing"
    assert list(layout.spectra.rglob("spectra-*.parquet")), "tile spectra Parquet missing"
    assert list((layout.spectra / "wavelength").glob("*.parquet"))
    tables = {owner_of_table(t) for t in table_snapshot(layout.database)}
    for stage in STAGES.values():
        assert set(stage.tables) <= tables, f"{stage.name}: tables {set(stage.tables) - tables} missing"


def test_every_stage_seals_exactly_the_files_it_publishes(tiny_run):
    """MANIFEST.sha256 (desivoids.outputs) lists every file of the stage's folder with its
    sha256; acquire grows file by file (recon checks its files against DESI's checksums) and a
    release carries its own SHA256SUMS."""
    from desivoids.outputs import MANIFEST, manifest_problems

    data, _, _ = tiny_run
    for name in ORDER:
        folder = data / name
        if name in ("acquire", "release"):
            assert not list(folder.rglob(MANIFEST)), name
            continue
        listed = {ln.split("  ", 1)[1] for ln in (folder / MANIFEST).read_text().splitlines()}
        files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert listed == files - {MANIFEST}, name
        assert manifest_problems(folder) == [], name


@pytest.mark.slow
@pytest.mark.parametrize("name", ORDER)
def test_rerunning_one_stage_leaves_the_others_outputs_intact(tiny_run, name):
    data, rp, _ = tiny_run
    stage = STAGES[name]
    db = paths.RunLayout(data).database
    files0, tables0 = file_snapshot(data), table_snapshot(db)
    kwargs = rp.for_stage(stage)
    if name == "load":
        kwargs["force"] = True  # really rewrite its tables
    stage.entry()(**kwargs)
    assert not outside(changed(files0, file_snapshot(data)), stage.outputs)
    assert {owner_of_table(t) for t in changed(tables0, table_snapshot(db))} <= set(stage.tables)
    assert list(paths.RunLayout(data).spectra.rglob("spectra-*.parquet"))


# -------------------------------------------------------------------------- one declaration
def _norm(v):
    return list(v) if isinstance(v, (tuple, list)) else v


@pytest.mark.parametrize("name", ORDER)
def test_notebook_cli_and_library_declare_the_same_parameters(name):
    stage = STAGES[name]
    declared = P.declared_parameters(stage)
    assert declared and "data_dir" in declared
    for d in declared.values():
        assert d.help, f"{stage.source.name}: parameter {d.name} has no comment (its help text)"
        assert d.types, f"{stage.source.name}: parameter {d.name} has no type"
    sig = inspect.signature(stage.entry())
    assert list(sig.parameters) == list(declared), "library entry point and notebook differ"
    for pname, p in sig.parameters.items():
        assert _norm(p.default) == _norm(declared[pname].default), \
            f"{stage.module}.run default of {pname} differs from the notebook's"
    helptext = stagecli.parser(stage).format_help()
    sample = {str: "x", bool: "true", int: "3", float: "2.5", list: "[a, b]", dict: "{a: 1}"}
    for d in declared.values():
        assert d.name in helptext and d.help in helptext
        value = sample[d.types[0]]
        if d.domain is not None:  # a value its declared domain allows
            value = (d.domain.choices[-1] if d.domain.choices
                     else "null" if d.default is None else str(d.default))
        got = stagecli.parse(stage, ["-p", d.name, value])
        assert list(got) == [d.name]
    with pytest.raises(P.ParamsError, match="unknown parameter"):
        stagecli.parse(stage, ["-p", "no_such_parameter", "1"])


@pytest.mark.parametrize("name", ORDER)
def test_the_notebook_passes_every_parameter_to_the_library(name):
    """The notebook's call of desivoids.<stage>.run passes each declared name as name=name, so a
    parameter cannot be declared in the cell and then silently left at the library default."""
    stage = STAGES[name]
    declared = list(P.declared_parameters(stage))
    calls = []
    for cell in jupytext.read(stage.source).cells:
        if cell.cell_type != "code" or "parameters" in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr == "run" and isinstance(node.func.value, ast.Name) and \
                    node.func.value.id == name:
                calls.append(node)
    assert len(calls) == 1, f"{stage.source.name}: expected one call of {name}.run"
    kw = {k.arg: k.value for k in calls[0].keywords}
    assert list(kw) == declared
    assert all(isinstance(v, ast.Name) and v.id == k for k, v in kw.items())


def test_command_line_paths_are_relative_to_the_current_folder(tmp_path):
    got = stagecli.parse(STAGES["recon"], ["-p", "data_dir", "relrun", "-p", "input_dir", "../in"],
                         cwd=tmp_path)
    assert got == {"data_dir": str(tmp_path / "relrun"), "input_dir": str(tmp_path.parent / "in")}


def test_params_file_paths_stay_relative_to_the_repository(tmp_path):
    f = tmp_path / "p.yml"
    f.write_text("data_dir: relrun\nstages: {recon: {input_dir: data/in}}\n")
    got = stagecli.parse(STAGES["recon"], ["--params", str(f)], cwd=tmp_path)
    assert paths.resolve(got["data_dir"]) == paths.ROOT / "relrun"
    assert paths.resolve(got["input_dir"]) == paths.ROOT / "data" / "in"


def test_help_documents_the_path_rule():
    text = stagecli.parser(STAGES["convert"]).format_help()
    assert "relative to the current directory" in text and "relative to the repository root" in text
    readme = (paths.ROOT / "README.md").read_text()
    assert "relative to the current directory" in readme and "relative to the repository root" in readme


# -------------------------------------------------------------------------- one way to fail
def _verb(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "desivoids.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.slow
def test_every_verb_exits_1_2_or_0(tiny_run, tmp_path):
    data, _, _ = tiny_run
    empty = tmp_path / "empty"
    (empty / "mirror").mkdir(parents=True)
    bad_fits = tmp_path / "bad"
    bad_fits.mkdir()
    (bad_fits / "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits").write_bytes(b"SIMPLE  = T" + b" " * 69)
    failing = {
        "acquire": ["-p", "data_dir", str(empty), "-p", "retries", "0"],
        "recon": ["-p", "data_dir", str(tmp_path / "r"), "-p", "input_dir", str(bad_fits),
                  "-p", "strict", "true"],
        "convert": ["-p", "data_dir", str(tmp_path / "c"), "-p", "input_dir", str(empty)],
        "load": ["-p", "data_dir", str(tmp_path / "l")],
        "integrity": ["-p", "data_dir", str(tmp_path / "i")],
        "plausibility": ["-p", "data_dir", str(tmp_path / "p")],
        "environment": ["-p", "data_dir", str(tmp_path / "e")],
        "density": ["-p", "data_dir", str(tmp_path / "d")],
        "systematics": ["-p", "data_dir", str(tmp_path / "s")],
        "release": ["-p", "data_dir", str(tmp_path / "r2")],
    }
    assert set(failing) == set(ORDER), "add the new stage's failing case here"
    for name in ORDER:
        usage = _verb(name, "-p", "no_such_parameter", "1")
        assert usage.returncode == 2 and "no_such_parameter" in usage.stderr, name
        bad = _verb(name, *failing[name])
        assert bad.returncode == 1, (name, bad.stdout, bad.stderr)
        assert "error" in bad.stderr and not bad.stdout.strip().startswith("Traceback"), name
        assert "Traceback" not in bad.stderr, (name, bad.stderr)
    ok = _verb("recon", "-p", "data_dir", str(data))
    assert ok.returncode == 0 and "recon:" in ok.stdout, ok.stderr


def test_a_dry_run_with_files_missing_at_the_source_fails(tmp_path):
    (tmp_path / "mirror").mkdir()
    r = _verb("acquire", "-p", "data_dir", str(tmp_path), "-p", "dry_run", "true")
    assert r.returncode == 1 and "not found" in r.stderr


def test_the_error_family_has_one_base():
    import desivoids
    from desivoids.errors import DesivoidsError

    pkg = Path(desivoids.__file__).parent
    for py in sorted(pkg.rglob("*.py")):
        tree = ast.parse(py.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id in ("Exception", "ValueError", "RuntimeError",
                                                         "TypeError", "OSError")
                    for b in node.bases):
                assert node.name == "DesivoidsError" or len(node.bases) > 1, \
                    f"{py.relative_to(pkg)}: {node.name} does not derive from DesivoidsError"
    from desivoids.errors import FormatError, LoadError, InputError
    assert issubclass(FormatError, InputError) and issubclass(LoadError, InputError)
    assert issubclass(InputError, DesivoidsError)


# -------------------------------------------------------------------------- one registry
def test_every_stage_has_its_notebook_module_verb_and_chapter():
    from desivoids.book import stage_chapter_problems

    for stage in STAGES.values():
        assert stage.source.exists() and stage.paired.exists()
        assert callable(stage.entry())
    assert stage_chapter_problems() == []
    out = _verb("--help").stdout
    for name in ORDER:
        assert name in out


def test_every_params_file_has_a_section_per_stage():
    for f in sorted(paths.PARAMS.glob("*.yml")):
        rp = P.load(f)
        import yaml
        raw = yaml.safe_load(f.read_text())
        assert list(raw.get("stages", {})) == list(ORDER), f"{f.name}: stages sections"
        assert rp.profile


def test_the_readme_stage_table_is_the_registry():
    readme = (paths.ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\w+) \| `(\d\d_\w+)` \| `desivoids\.(\w+)` \| `desivoids (\w+)` \|",
                      readme, flags=re.M)
    assert rows == [(s.name, s.stem, s.name, s.name) for s in STAGES.values()]


def test_the_benchmark_report_follows_the_registry():
    sys.path.insert(0, str(paths.BENCHMARKS))
    import report

    assert report.ORDER == ["mock", *ORDER, "pipeline"]  # pipeline: the whole run
    for script in paths.BENCHMARKS.glob("bench_*.py"):
        assert script.stem[len("bench_"):] in report.ORDER, f"{script.name}: not a stage"


def test_contributing_says_how_to_add_a_stage():
    text = (paths.ROOT / "CONTRIBUTING.md").read_text()
    for word in ("notebook", "registry", "outputs", "tests", "_toc.yml", "params"):
        assert word in text
    assert "CONTRIBUTING.md" in (paths.ROOT / "README.md").read_text()


# -------------------------------------------------------------------------- declared files
#: RunLayout's properties and the stage whose outputs each one is
_LAYOUT_PROPERTIES = {"acquire": "acquire", "raw": "acquire", "manifest": "acquire",
                      "spectra": "acquire", "recon": "recon", "convert": "convert",
                      "load": "load"}


def _declared_names() -> set[str]:
    from desivoids.stages import RUN_FILES

    return {v for s in STAGES.values() for v in s.produces.values() if "." in v} \
        | set(RUN_FILES.values())


def typed_file_names(source: str, names: set[str]) -> list[tuple[int, str]]:
    """(line, literal) of every string literal that is a declared file name (or ends in
    ``/name``)."""
    return [(n.lineno, n.value) for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and any(n.value == x or n.value.endswith("/" + x) for x in names)]


def stages_opened(source: str) -> set[str]:
    """The stages whose outputs ``source`` reaches: ``layout.file("X", ...)``,
    ``layout.stage("X")``, ``file_name("X", ...)`` and RunLayout's properties of a stage."""
    found = set()
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant):
            f = n.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("file", "stage", "file_name") and n.args[0].value in STAGES:
                found.add(n.args[0].value)
        elif isinstance(n, ast.Attribute) and n.attr in _LAYOUT_PROPERTIES and \
                isinstance(n.value, ast.Name) and n.value.id == "layout":
            found.add(_LAYOUT_PROPERTIES[n.attr])
    return found


def _stage_modules():
    """(stage, module path) of every module of a stage's package (or its one module)."""
    pkg = paths.ROOT / "lib" / "desivoids"
    for name in ORDER:
        if (pkg / name).is_dir():
            yield from ((name, py) for py in sorted((pkg / name).rglob("*.py")))
        elif (pkg / f"{name}.py").exists():
            yield name, pkg / f"{name}.py"


def test_no_declared_file_name_is_typed_outside_the_registry():
    """Every stage's files are named once, in stages.py (``produces``); everywhere else they are
    reached by stage and key (``layout.file("environment", "assignments")``)."""
    names = _declared_names()
    assert "galaxy_void_assignments.parquet" in names and "report.json" in names
    typed = [f"{py.relative_to(paths.ROOT)}:{line}: {value!r}"
             for py in sorted((paths.ROOT / "lib" / "desivoids").rglob("*.py"))
             if py.name != "stages.py"
             for line, value in typed_file_names(py.read_text(), names)]
    assert typed == [], "declared file names typed outside stages.py:\n" + "\n".join(typed)
    # the scan sees a typed name, whichever way it is written
    assert typed_file_names('p = layout.stage("environment") / "galaxy_void_assignments.parquet"',
                            names)
    assert typed_file_names('x = {"reports/a": ("systematics", "x/summary.csv")}', names)


def test_every_stage_opens_only_the_files_of_the_stages_it_reads():
    """A static scan of each stage's package: the stages it reaches through the run layout are
    itself and those of its ``reads``."""
    bad = [f"{py.relative_to(paths.ROOT)}: opens {sorted(opened)} undeclared in {name}'s reads"
           for name, py in _stage_modules()
           for opened in [stages_opened(py.read_text()) - {name, *STAGES[name].reads}] if opened]
    assert bad == [], "\n".join(bad)
    # the scan sees the example of the issue: a stage reading environment's assignments
    assert stages_opened('p = layout.file("environment", "assignments")') == {"environment"}
    assert stages_opened('q = layout.convert / x') == {"convert"}


def test_a_stage_opening_a_file_of_a_stage_it_does_not_read_is_refused(tmp_path):
    """At run time too: while a stage's run runs, RunLayout refuses the files (and folders) of
    a stage not in its reads, naming both stages."""
    from desivoids.errors import StageError
    from desivoids.stages import running

    layout = paths.RunLayout(tmp_path)
    with running("recon"):  # recon reads acquire only
        assert layout.raw == tmp_path / "acquire" / "raw"
        assert layout.file("recon", "inventory").name == "inventory.json"
        with pytest.raises(StageError, match=r"recon stage opened the environment stage's "
                           r"'assignments' .*reads \['acquire'\]"):
            layout.file("environment", "assignments")
        with pytest.raises(StageError, match="environment"):
            layout.stage("environment")
    assert layout.file("environment", "assignments").name == "galaxy_void_assignments.parquet"


@pytest.mark.slow
def test_a_stage_declared_to_read_acquire_while_reading_environment_fails(tiny_run, monkeypatch):
    """systematics reads environment's assignments: declared to read plausibility and acquire
    instead, its run fails naming the undeclared read (and the declared one passes)."""
    import dataclasses

    from desivoids import stages
    from desivoids.errors import StageError

    data, rp, _ = tiny_run
    wrong = dataclasses.replace(STAGES["systematics"], reads=("acquire", "plausibility"))
    monkeypatch.setitem(stages.STAGES, "systematics", wrong)
    with pytest.raises(StageError, match="systematics stage opened the environment stage's"):
        wrong.entry()(**rp.for_stage(wrong))


def test_every_stage_is_a_package_exporting_its_run():
    """One skeleton: ``desivoids.<stage>`` is a package whose ``stage.py`` defines ``run`` (the
    entry point the verb, the runner's notebook and the contract tests call) and the type it
    returns; the package re-exports both."""
    import importlib
    import typing

    for s in STAGES.values():
        mod = importlib.import_module(s.module)
        assert hasattr(mod, "__path__"), f"{s.module} is a module, not a package"
        assert s.entry() is mod.run, s.name
        assert mod.run.__module__ == f"{s.module}.stage", \
            f"{s.name}: run is defined in {mod.run.__module__}, not in {s.module}.stage"
        result = typing.get_type_hints(inspect.unwrap(mod.run))["return"]
        assert result.__module__ == f"{s.module}.stage", \
            f"{s.name}: its result type {result.__name__} is defined in {result.__module__}"
        assert getattr(mod, result.__name__) is result, f"{s.module} does not export {result.__name__}"


def _contributing_blocks() -> list[str]:
    text = (paths.ROOT / "CONTRIBUTING.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_a_toy_stage_by_the_walkthrough(tiny_run, tmp_path, monkeypatch):
    """CONTRIBUTING.md's toy stage, its code taken from the page: registry entry, package and
    notebook parameters in a scratch registry; it runs on the tiny run, publishes its declared
    file sealed with its record, and is fresh until its parameter changes."""
    import dataclasses
    import importlib
    import shutil

    import desivoids
    from desivoids import freshness, stages
    from desivoids.stages import Stage

    entry, stage_py, init_py, cell = _contributing_blocks()[:4]
    toy = eval(entry.strip().rstrip(","), {"Stage": Stage})
    nb = tmp_path / "notebooks"
    nb.mkdir()
    header = STAGES["recon"].source.read_text().split("# %% [markdown]")[0]
    (nb / f"{toy.stem}.py").write_text(f"{header}# %% [markdown]\n# # tally\n\n{cell}\n")
    toy = dataclasses.replace(toy, directory=nb)
    pkg = tmp_path / "desivoids" / toy.name
    pkg.mkdir(parents=True)
    (pkg / "stage.py").write_text(stage_py.split("\n", 1)[1])
    (pkg / "__init__.py").write_text(init_py.split("\n", 1)[1])
    monkeypatch.setitem(stages.STAGES, toy.name, toy)
    monkeypatch.setattr(desivoids, "__path__", [*desivoids.__path__, str(tmp_path / "desivoids")])
    for mod in (toy.module, toy.module + ".stage"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    data, _, _ = tiny_run
    try:
        run = toy.entry()
        assert importlib.import_module(toy.module).run is run
        assert list(P.declared_parameters(toy)) == list(inspect.signature(run).parameters)
        result = run(data_dir=str(data))
        counts = paths.RunLayout(data).file("tally", "counts")
        assert result.counts and sum(result.counts.values()) > 0 and counts.is_file()
        assert freshness.INPUTS in (data / "tally" / "MANIFEST.sha256").read_text()
        assert freshness.stale("tally", data, {"data_dir": str(data), "min_count": 0}) == []
        assert freshness.stale("tally", data, {"data_dir": str(data), "min_count": 5}) == [
            "parameter min_count changed: 0 -> 5"]
    finally:
        shutil.rmtree(data / "tally", ignore_errors=True)
