"""Run parameters: declared once, in each stage notebook's parameters cell.

The cell tagged ``parameters`` is the declaration: one ``name: type = default  # help`` line per
parameter. Everything else reads it from there: a params file (one YAML file per run profile) is
validated against it, the command line ``desivoids <stage>`` builds its options and help from
it, and a test checks that ``desivoids.<stage>.run`` has the same names and defaults.

Paths. A parameter whose name ends in ``_dir``, ``_file`` or ``_path`` is a path. A relative
path in a params file, in a notebook or given to the library is relative to the repository
root; on the command line it is relative to the current directory (the CLI makes it absolute).

Run-level parameters (``data_dir``, ``db_url``, ``scheduler_address``) are set once at the top
of a params file and given to every stage that declares them; a stage section may not set them.
papermill only warns on an unknown parameter, so a misspelt name would silently run with the
default; here it is an error naming the file and the key.

Domains. A number's or a word's help comment starts with the values it may take: an interval
(``[1, inf) rows per chunk``, brackets closed or open as in mathematics) or a set of words
(``{threads, processes, synchronous} Dask local scheduler``). A value outside its domain is
refused before anything runs (exit 2), by the command line, a params file and the library's
``run`` alike (:func:`checked`); ``None``, where a parameter allows it, is always accepted.
"""
from __future__ import annotations

import ast
import functools
import inspect
import io
import math
import numbers
import re
import tokenize
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .errors import UsageError
from .freshness import recording
from .stages import STAGES, Stage, running


class ParamsError(UsageError):
    """A parameters file or value that cannot be run: names the file and the offending key."""


#: Run-level parameters: one value per run, for every stage that declares them.
RUN_LEVEL = {"data_dir": str, "db_url": str, "scheduler_address": str}
#: Keys allowed at the top of a params file, and their types.
TOP_LEVEL = {"profile": str, **RUN_LEVEL, "mock": dict, "stages": dict}
PATH_SUFFIXES = ("_dir", "_file", "_path")

_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


def is_path(name: str) -> bool:
    return name.endswith(PATH_SUFFIXES)


#: A domain at the start of a help comment: ``[lo, hi]`` (either end open with ``(`` or ``)``)
#: or ``{word, word, ...}``.
_INTERVAL = re.compile(r"^([\[(])\s*([^,\s]+)\s*,\s*([^\])\s]+)\s*([\])])")
_CHOICES = re.compile(r"^\{([^}]*)\}")


@dataclass(frozen=True)
class Domain:
    """The values a parameter may take: an interval of numbers or a set of words."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()

    @classmethod
    def parse(cls, help_text: str) -> "Domain | None":
        """The domain that starts ``help_text``, or None when it starts with none."""
        m = _CHOICES.match(help_text)
        if m:
            return cls(choices=tuple(w.strip() for w in m.group(1).split(",") if w.strip()))
        m = _INTERVAL.match(help_text)
        if m:
            try:
                lo, hi = float(m.group(2)), float(m.group(3))
            except ValueError:
                return None
            return cls(lo, hi, m.group(1) == "(", m.group(4) == ")")
        return None

    def contains(self, value: Any) -> bool:
        if value is None:
            return True
        if self.choices:
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False  # numpy's numbers are Real too (a notebook may pass np.int64); its bool not
        if math.isnan(value):
            return False
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below

    def __str__(self) -> str:
        if self.choices:
            return "one of {" + ", ".join(self.choices) + "}"

        def num(v):
            return "inf" if v == math.inf else "-inf" if v == -math.inf else f"{v:g}"
        return (f"{'(' if self.lo_open else '['}{num(self.lo)}, "
                f"{num(self.hi)}{')' if self.hi_open else ']'}")


@dataclass(frozen=True)
class Declared:
    """One parameter as the notebook declares it."""

    name: str
    types: tuple[type, ...]  # accepted Python types; empty means any
    default: Any
    help: str = ""

    @property
    def domain(self) -> Domain | None:
        """The values allowed, from the start of the help comment (None: any of its type)."""
        return Domain.parse(self.help)

    def check_domain(self, value: Any, where: str) -> None:
        """Raise ParamsError naming ``where``, the parameter, the value and the domain."""
        d = self.domain
        if d is not None and not d.contains(value):
            raise ParamsError(f"{where}.{self.name}: {value!r} is outside its domain {d}")

    @property
    def path(self) -> bool:
        return is_path(self.name)

    @property
    def type_name(self) -> str:
        return " or ".join(t.__name__ for t in self.types if t is not type(None)) or "any"


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment that ends that line."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


#: A py:percent cell marker carrying the 'parameters' tag, e.g. ``# %% tags=["parameters"]``.
_PERCENT_CELL = re.compile(r"^# %%(.*)$")
_PARAMETERS_TAG = re.compile(r"""\btags=\[[^\]]*["']parameters["'][^\]]*\]""")


def _percent_parameters_cell(text: str) -> str | None:
    """The parameters cell of a py:percent notebook, read from its cell markers.

    Importing jupytext costs ~2 s (nbformat -> jsonschema -> format grammars, measured), once
    per ``desivoids <stage>`` command; the percent format's cell markers are enough for this one
    cell. None unless exactly one plain code cell has the tag (jupytext decides then).
    tests/test_params.py checks the result against jupytext's for every stage notebook.
    """
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if _PERCENT_CELL.match(ln)]
    tagged = [i for i in starts if _PARAMETERS_TAG.search(lines[i])
              and not re.search(r"\[(markdown|md|raw)\]", lines[i])]
    if len(tagged) != 1:
        return None
    i = tagged[0]
    end = next((j for j in starts if j > i), len(lines))
    return "\n".join(lines[i + 1:end]).strip("\n")


def parameters_cell(source: Path) -> str:
    """The source of the notebook's cell tagged ``parameters``."""
    text = Path(source).read_text()
    if "format_name: percent" in text:
        cell = _percent_parameters_cell(text)
        if cell is not None:
            return cell
    import jupytext  # any other format, or anything the markers do not settle

    nb = jupytext.read(source)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamsError(f"{source}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    return cells[0].source


@lru_cache(maxsize=64)
def _declared(source: Path, mtime: float) -> dict[str, Declared]:
    cell = parameters_cell(source)
    namespace: dict[str, Any] = {}
    exec(compile(cell, str(source), "exec"), namespace)  # the defaults, as the notebook sees them
    comments = _comments(cell)
    out: dict[str, Declared] = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, ann = node.target.id, node.annotation
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, ann = node.targets[0].id, None
        else:
            continue
        default = namespace[name]
        out[name] = Declared(name, _accepted_types(ann, default), default,
                             comments.get(node.end_lineno, ""))
    return out


def declared_parameters(stage: Stage) -> dict[str, Declared]:
    """The notebook's parameters cell as name -> Declared (type, default, help), in cell order."""
    return dict(_declared(stage.source, stage.source.stat().st_mtime))


def _accepted_types(ann: ast.expr | None, default: Any) -> tuple[type, ...]:
    if ann is not None:
        names = [n.id for n in ast.walk(ann) if isinstance(n, ast.Name)]
        types = tuple(_TYPE_NAMES[n] for n in names if n in _TYPE_NAMES)
        return types + ((type(None),) if "None" in ast.unparse(ann) else ())
    if default is None:
        return ()
    return (type(default),)


def check_type(value: Any, types: tuple[type, ...]) -> bool:
    if not types:
        return True
    if isinstance(value, bool):  # bool is an int subclass: an int parameter must not take True
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def validate(stage: Stage, values: dict[str, Any], where: str) -> dict[str, Any]:
    """Check names and types against the declaration; ints become floats where declared float.
    Raises ParamsError naming ``where`` (file and key, or the command line) on the first fault."""
    declared = declared_parameters(stage)
    out = {}
    for key, value in values.items():
        if key not in declared:
            raise ParamsError(f"{where}.{key}: unknown parameter; {stage.source.name} declares "
                              f"{sorted(declared)}")
        d = declared[key]
        if not check_type(value, d.types):
            raise ParamsError(f"{where}.{key}: must be {d.type_name}, got {type(value).__name__} "
                              f"{value!r}")
        d.check_domain(value, where)
        out[key] = float(value) if float in d.types and isinstance(value, int) and \
            not isinstance(value, bool) and int not in d.types else value
    return out


def checked(stage_name: str):
    """Decorate a stage's ``run``: every argument is checked against its declared domain before
    anything runs, so a notebook or a library call refuses ``chunk_rows=-5`` as the command line
    does (types are the caller's business here: the library takes Path for str, and so on).
    Then the published folder of every stage it reads is checked against that stage's manifest
    (:func:`verify_reads`). While it runs, the stage is the active one (its reads are checked by
    :meth:`desivoids.paths.RunLayout.file`), and the record of its parameters and inputs is
    published with its outputs (:func:`desivoids.freshness.recording`)."""
    def wrap(run):
        sig = inspect.signature(run)

        @functools.wraps(run)
        def checked_run(*args, **kwargs):
            declared = declared_parameters(STAGES[stage_name])
            bound = sig.bind(*args, **kwargs)
            for name, value in bound.arguments.items():
                if name in declared:
                    declared[name].check_domain(value, f"desivoids.{stage_name}.run")
            bound.apply_defaults()
            data_dir = bound.arguments.get("data_dir")
            if data_dir is None or bound.arguments.get("dry_run"):
                with running(stage_name):
                    return run(*args, **kwargs)
            verify_reads(stage_name, data_dir, bound.arguments.get("db_url") or "")
            with running(stage_name), recording(stage_name, data_dir, dict(bound.arguments)):
                return run(*args, **kwargs)
        return checked_run
    return wrap


def verify_reads(stage_name: str, data_dir: str | Path, db_url: str = "") -> None:
    """Every output folder that ``stage_name`` reads, checked against its producer's manifest
    (:func:`desivoids.outputs.verify`): one InputError listing every bad file of every producer.
    First, a producer's folder is made the one its database tables were committed with
    (:func:`desivoids.publication.settle`: a kill between its commit and its rename is rolled
    forward; any other disagreement refused), and one that a kill displaced is put back (under
    the producer's lock); the stage's own folder is settled the same way before it reruns."""
    from .errors import InputError
    from .outputs import STAGING, holding, verify
    from .publication import settle

    layout = paths.RunLayout.of(data_dir)
    if STAGES[stage_name].tables and layout.data_dir.is_dir():
        settle(layout.data_dir, stage_name, db_url, strict=False)
    errors = []
    for producer in STAGES[stage_name].reads:
        folder = layout.stage(producer)
        if not folder.exists() and any(STAGING.fullmatch(p.name) and ".old-" in p.name
                                       for p in folder.parent.glob(f".{producer}.old-*")):
            with holding(layout.data_dir, producer, db_url=db_url):  # its lock restores it
                pass
        try:
            if STAGES[producer].tables:
                settle(layout.data_dir, producer, db_url)
            verify(folder, producer)
        except InputError as exc:  # flattened: InputError lists one level of problems
            errors += [InputError(exc.file, exc.hdu, exc.column, exc.message), *exc.problems]
    if errors:
        raise InputError.all(errors)


def mock_parameters() -> dict[str, inspect.Parameter]:
    """The mock sky's parameters: those of desivoids.mock.generate (its signature is the
    declaration), less the output folder and the progress switch."""
    from .mock import generate

    sig = inspect.signature(generate)
    return {n: p for n, p in sig.parameters.items() if p.kind == p.KEYWORD_ONLY and n != "progress"}


@dataclass
class RunParams:
    """A validated parameters file."""

    file: Path
    profile: str
    data_dir: Path
    mock: dict[str, Any] | None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    db_url: str = ""
    scheduler_address: str = ""

    def run_level(self) -> dict[str, Any]:
        return {"data_dir": paths.display(self.data_dir), "db_url": self.db_url,
                "scheduler_address": self.scheduler_address}

    def for_stage(self, stage: Stage) -> dict[str, Any]:
        """The parameters of one stage: the run-level values it declares, then its own section.
        Paths inside the repository are given relative to it (the library resolves them), so an
        executed notebook never shows the folders of the machine that ran it."""
        declared = declared_parameters(stage)
        out = {k: v for k, v in self.run_level().items() if k in declared}
        out.update(self.stages.get(stage.name, {}))
        return out


def _resolve_paths(section: dict[str, Any]) -> dict[str, Any]:
    return {k: (paths.display(paths.resolve(v)) if is_path(k) and isinstance(v, str) and v else v)
            for k, v in section.items()}


def load(file: str | Path) -> RunParams:
    """Read and validate a params file; every error names the file and the key."""
    file = paths.resolve(file)
    try:
        raw = yaml.safe_load(file.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{file}: no such params file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{file}: expected a mapping at the top level")
    for key, value in raw.items():
        if key not in TOP_LEVEL:
            raise ParamsError(f"{file}: unknown top-level key {key!r}; allowed: {sorted(TOP_LEVEL)}")
        if not isinstance(value, TOP_LEVEL[key]):
            raise ParamsError(f"{file}: {key!r} must be a {TOP_LEVEL[key].__name__}, got {value!r}")
    mock = raw.get("mock")
    if mock:
        allowed = mock_parameters()
        for key, value in mock.items():
            if key not in allowed:
                raise ParamsError(f"{file}: unknown parameter mock.{key}; allowed: {sorted(allowed)}")
            default = allowed[key].default
            if default is not inspect.Parameter.empty and not check_type(value, (type(default),)):
                raise ParamsError(f"{file}: mock.{key} must be {type(default).__name__}, got {value!r}")
    stages: dict[str, dict[str, Any]] = {}
    for name, section in (raw.get("stages") or {}).items():
        if name not in STAGES:
            raise ParamsError(f"{file}: unknown stage {name!r} under 'stages'; known: {list(STAGES)}")
        section = section or {}
        if not isinstance(section, dict):
            raise ParamsError(f"{file}: stages.{name} must be a mapping of parameters, got {section!r}")
        for key in section:
            if key in RUN_LEVEL:
                raise ParamsError(f"{file}: stages.{name}.{key}: {key} is set once at the top of the file")
        stages[name] = _resolve_paths(validate(STAGES[name], section, f"{file}: stages.{name}"))
    return RunParams(
        file=file,
        profile=raw.get("profile", file.stem),
        data_dir=paths.resolve(raw.get("data_dir", "data/" + file.stem)),
        mock=mock,
        stages=stages,
        db_url=raw.get("db_url", ""),
        scheduler_address=raw.get("scheduler_address", ""),
    )


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None). Passwords belong in the
    environment (PGPASSWORD), a ~/.pgpass file or a PostgreSQL service file, never in a
    parameter that is written down."""
    if not url or "://" not in url:
        return url, None
    from sqlalchemy.engine import URL, make_url

    u = make_url(url)
    if u.password is None:
        return url, None
    # URL.set(password=None) keeps the password (None means "unchanged"): rebuild without it
    bare = URL.create(u.drivername, username=u.username, host=u.host, port=u.port,
                      database=u.database, query=u.query)
    return bare.render_as_string(hide_password=False), str(u.password)


def masked(values: dict) -> dict:
    """Parameters with any URL's password replaced by *** (SQLAlchemy's own masking)."""
    out = {}
    for k, v in values.items():
        if isinstance(v, str) and "://" in v:
            from sqlalchemy.engine import make_url

            try:
                v = make_url(v).render_as_string(hide_password=True)
            except Exception:  # not a database URL: keep it
                pass
        out[k] = v
    return out
