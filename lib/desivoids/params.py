"""Run parameters: one YAML file per profile, validated against the stage notebooks.

The schema of a stage's parameters is its notebook's ``parameters`` cell: each name declared
there, with the type of its default (or its annotation). papermill only warns on an unknown
parameter, so a misspelt name would silently run with the default; here it is an error naming it.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import yaml

from . import paths
from .stages import STAGES, Stage


class ParamsError(ValueError):
    """A parameters file that cannot be run: names the file and the offending key."""


#: Keys allowed at the top of a params file, and their types.
TOP_LEVEL = {"profile": str, "data_dir": str, "mock": dict, "stages": dict}
#: Parameters of desivoids.mock.generate that a params file may set.
MOCK_KEYS = {"seed": int, "scale": str, "fastspec_version": str, "tiles": int}

_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Declared:
    """One parameter as the notebook declares it."""

    name: str
    types: tuple[type, ...]  # accepted Python types; empty means any
    default: Any


def declared_parameters(stage: Stage) -> dict[str, Declared]:
    """Parse the notebook's cell tagged ``parameters`` into name -> declared type and default."""
    nb = jupytext.read(stage.source)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamsError(f"{stage.source}: expected exactly one cell tagged 'parameters', found {len(cells)}")
    out: dict[str, Declared] = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, value, ann = node.target.id, node.value, node.annotation
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value, ann = node.targets[0].id, node.value, None
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = None  # computed default (e.g. from desivoids.paths); type from annotation
        out[name] = Declared(name, _accepted_types(ann, default), default)
    return out


def _accepted_types(ann: ast.expr | None, default: Any) -> tuple[type, ...]:
    if ann is not None:
        names = [n.id for n in ast.walk(ann) if isinstance(n, ast.Name)]
        types = tuple(_TYPE_NAMES[n] for n in names if n in _TYPE_NAMES)
        return types + ((type(None),) if "None" in ast.unparse(ann) else ())
    if default is None:
        return ()
    return (type(default),)


def _check_type(value: Any, types: tuple[type, ...]) -> bool:
    if not types:
        return True
    if isinstance(value, bool):  # bool is an int subclass: an int parameter must not take True
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


@dataclass
class RunParams:
    """A validated parameters file."""

    file: Path
    profile: str
    data_dir: Path
    mock: dict[str, Any] | None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def for_stage(self, stage: Stage) -> dict[str, Any]:
        """The papermill parameters of one stage: the shared data_dir plus its own section."""
        return {"data_dir": str(self.data_dir), **self.stages.get(stage.name, {})}


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
    for key, value in (mock or {}).items():
        if key not in MOCK_KEYS:
            raise ParamsError(f"{file}: unknown parameter mock.{key}; allowed: {sorted(MOCK_KEYS)}")
        if not _check_type(value, (MOCK_KEYS[key],)):
            raise ParamsError(f"{file}: mock.{key} must be {MOCK_KEYS[key].__name__}, got {value!r}")
    stages: dict[str, dict[str, Any]] = {}
    for name, section in (raw.get("stages") or {}).items():
        if name not in STAGES:
            raise ParamsError(f"{file}: unknown stage {name!r} under 'stages'; known: {list(STAGES)}")
        section = section or {}
        if not isinstance(section, dict):
            raise ParamsError(f"{file}: stages.{name} must be a mapping of parameters, got {section!r}")
        declared = declared_parameters(STAGES[name])
        for key, value in section.items():
            where = f"{file}: stages.{name}.{key}"
            if key == "data_dir":
                raise ParamsError(f"{where}: data_dir is set once at the top of the file")
            if key not in declared:
                raise ParamsError(f"{where}: unknown parameter; {STAGES[name].source.name} declares {sorted(declared)}")
            if not _check_type(value, declared[key].types):
                want = " or ".join(t.__name__ for t in declared[key].types)
                raise ParamsError(f"{where}: must be {want}, got {type(value).__name__} {value!r}")
        stages[name] = section
    return RunParams(
        file=file,
        profile=raw.get("profile", file.stem),
        data_dir=paths.resolve(raw.get("data_dir", "data/" + file.stem)),
        mock=mock,
        stages=stages,
    )
