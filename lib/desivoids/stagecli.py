"""``desivoids <stage>``: one stage without Jupyter, with the notebook's own parameters.

    desivoids <stage> [--params FILE] [-p NAME VALUE]...

The options are built from the notebook's parameters cell (the declaration), so the command line
accepts exactly the notebook's names, with the same defaults, and shows the cell's comments as
help. ``--params FILE`` reads the run-level values and the stage's section of a params file
(relative paths there are relative to the repository root, as in every params file); ``-p NAME
VALUE`` sets one parameter, as papermill's ``-p`` does (VALUE is read as YAML: ``-p strict
true``, ``-p hp '[0, 3]'``; relative paths are relative to the current directory). The stage's
library entry point ``desivoids.<stage>.run`` then runs with them.

Exit status: 0 success; 1 bad input or a failed stage (the message on stderr); 2 a usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from . import params as P
from .errors import EXIT_FAILED, EXIT_USAGE, DesivoidsError, UsageError
from .stages import Stage

__all__ = ["parser", "parse", "main"]


def _help_table(stage: Stage) -> str:
    rows = []
    for d in P.declared_parameters(stage).values():
        path = ", a path" if d.path else ""
        rows.append(f"  {d.name} ({d.type_name}{path}; default {d.default!r})\n      {d.help}")
    return "parameters (-p NAME VALUE):\n" + "\n".join(rows)


def parser(stage: Stage) -> argparse.ArgumentParser:
    epilog = _help_table(stage) + (
        "\n\nRelative paths: on this command line, relative to the current directory; in a "
        "params file, relative to the repository root.")
    if stage.subcommands:
        epilog += "\n\nmore: " + ", ".join(f"desivoids {stage.name} {w} --help"
                                           for w in stage.subcommands)
    ap = argparse.ArgumentParser(prog=f"desivoids {stage.name}", description=stage.summary,
                                 epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", metavar="FILE",
                    help="params file: its run-level values and its stages.%s section" % stage.name)
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="set one parameter (VALUE read as YAML)")
    return ap


def _value(d: P.Declared, text: str) -> Any:
    if d.types and set(d.types) <= {str, type(None)}:
        return text  # a string parameter takes the text as typed (no YAML surprises: '0123')
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"-p {d.name}: cannot read {text!r}: {exc}") from None


def parse(stage: Stage, argv: list[str], cwd: str | Path | None = None) -> dict[str, Any]:
    """The keyword arguments of ``desivoids.<stage>.run`` for a command line."""
    args = parser(stage).parse_args(argv)
    declared = P.declared_parameters(stage)
    values: dict[str, Any] = {}
    if args.params:
        rp = P.load(Path(cwd or os.getcwd()) / args.params)
        values.update(rp.for_stage(stage))
    given = {}
    for name, text in args.parameter:
        if name not in declared:
            raise P.ParamsError(f"-p {name}: unknown parameter of stage {stage.name}; "
                             f"{stage.source.name} declares {sorted(declared)}")
        given[name] = _value(declared[name], text)
    given = P.validate(stage, given, "command line -p")
    base = Path(cwd or os.getcwd())
    for name, value in given.items():
        if declared[name].path and isinstance(value, str) and value:
            value = str((base / Path(value).expanduser()).resolve())
        values[name] = value
    return values


def main(stage: Stage, argv: list[str]) -> int:
    if argv and argv[0] in stage.subcommands:
        import importlib

        module, func = stage.subcommands[argv[0]].split(":")
        return int(getattr(importlib.import_module(module), func)(argv[1:]) or 0)
    try:
        kwargs = parse(stage, argv)
    except UsageError as exc:
        print(f"desivoids {stage.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = stage.entry()(**kwargs)
    except UsageError as exc:  # a value the library refuses (its declared domain)
        print(f"desivoids {stage.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DesivoidsError as exc:
        print(f"desivoids {stage.name}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"desivoids {stage.name}: interrupted", file=sys.stderr)
        return 130
    if result is not None:
        print(result)
    return 0
