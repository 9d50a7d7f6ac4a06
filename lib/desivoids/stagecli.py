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
Every verb catches every exception at this boundary (:func:`guarded`): one line on stderr naming
the file, HDU, column or key where known, and the full traceback appended to the stage's log file
``<data_dir>/run/logs/<stage>.log`` (the message says where), never a bare Python traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import yaml

from . import params as P
from .errors import EXIT_FAILED, EXIT_USAGE, DesivoidsError, UsageError, _masked, describe
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


def log_path(verb: str, data_dir: str | Path | None) -> Path:
    """The log file of a verb: ``<data_dir>/run/logs/<verb>.log`` (the runner's record of the
    run), or, where that cannot be written (no such data_dir, a data_dir that is a file, a
    read-only disk), ``desivoids-<uid>/logs/<verb>.log`` below the system's temporary folder
    when that is this user's private folder, else a fresh private one (:func:`_private_log_dir`)."""
    from .paths import RunLayout

    verb = verb.replace(" ", "-")
    if data_dir and Path(data_dir).is_dir():  # never create a run folder for a mistyped data_dir
        candidate = RunLayout.of(data_dir).run / "logs" / f"{verb}.log"
        try:
            candidate.parent.mkdir(parents=True, exist_ok=True)
            with open(candidate, "a"):
                return candidate
        except OSError:
            pass
    return _private_log_dir() / f"{verb}.log"


def _private_dir(path: Path) -> bool:
    """Whether ``path`` is (or was just made) a real folder of this user that only it can use:
    not a symlink, owned by us, no access for group or others."""
    import stat

    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def _private_log_dir() -> Path:
    """``desivoids-<uid>/logs`` below the system's temporary folder, which every user can write
    to: used only when both are this user's private folders (not a symlink, mode 0700), since
    another user could otherwise point it at a file of ours; else a fresh ``mkdtemp`` folder."""
    base = Path(tempfile.gettempdir()) / f"desivoids-{os.getuid()}"
    if _private_dir(base) and _private_dir(base / "logs"):
        return base / "logs"
    return Path(tempfile.mkdtemp(prefix=f"desivoids-{os.getuid()}-logs-"))


def write_log(verb: str, data_dir: str | Path | None, exc: BaseException, argv: list[str]) -> Path | None:
    """Append the full traceback of ``exc`` to the verb's log; its path (None if even that fails)."""
    try:
        path = log_path(verb, data_dir)
        text = "".join(traceback.format_exception(exc))
        with open(path, "a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S%z')} pid {os.getpid()} desivoids {verb} "
                    f"{_masked(' '.join(argv))}\n{_masked(text)}\n")
        return path
    except OSError:
        return None


def guarded(verb: str, body, argv: list[str], data_dir=lambda: None) -> int:
    """Run ``body()`` (returns the exit status) with every exception caught: a usage error exits
    2, any other failure 1 with one line on stderr and the traceback in the verb's log file;
    ``data_dir()`` says where the log goes (it may itself fail: the log then goes to the
    temporary folder)."""
    def folder():
        try:
            return data_dir()
        except Exception:
            return None

    try:
        return body()
    except UsageError as exc:
        print(f"desivoids {verb}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DesivoidsError as exc:
        write_log(verb, folder(), exc, argv)
        print(f"desivoids {verb}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"desivoids {verb}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise  # argparse's own exit (2 for usage, 0 for --help)
    except BaseException as exc:  # the boundary: nothing escapes as a traceback
        log = write_log(verb, folder(), exc, argv)
        where = f"; traceback in {log}" if log else ""
        print(f"desivoids {verb}: error: {_first_failure(exc)}{where}", file=sys.stderr)
        return EXIT_FAILED


def _first_failure(exc: BaseException) -> str:
    """What went wrong first: an error raised while handling another one (a rollback failing
    after a disk-full write) would otherwise hide it. Follows implicit chaining only (``raise X
    from Y`` means X is the message meant); a DesivoidsError in the chain is the message."""
    chain = [exc]
    while (nxt := chain[-1].__context__) is not None and chain[-1].__cause__ is None \
            and not chain[-1].__suppress_context__ and nxt not in chain:
        chain.append(nxt)
    first = next((e for e in chain if isinstance(e, DesivoidsError)), chain[-1])
    text = str(first) if isinstance(first, DesivoidsError) else describe(first)
    if first is not exc:
        last = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
        text += f" (then, while handling it: {type(exc).__name__}: {_masked(last.strip())[:200]})"
    return text


def main(stage: Stage, argv: list[str]) -> int:
    if argv and argv[0] in stage.subcommands:
        import importlib

        module, func = stage.subcommands[argv[0]].split(":")
        return guarded(f"{stage.name} {argv[0]}",
                       lambda: int(getattr(importlib.import_module(module), func)(argv[1:]) or 0), argv,
                       lambda: _data_dir(stage, {}))
    kwargs: dict[str, Any] = {}

    def body() -> int:
        from .outputs import stage_lock

        kwargs.update(parse(stage, argv))
        # one run of a stage per data_dir
        with stage_lock(_data_dir(stage, kwargs), stage.name, kwargs.get("db_url") or ""):
            result = stage.entry()(**kwargs)
        if result is not None:
            print(result)
        return 0

    return guarded(stage.name, body, argv, lambda: _data_dir(stage, kwargs))


def _data_dir(stage: Stage, kwargs: dict) -> str:
    from .paths import resolve

    declared = P.declared_parameters(stage)
    given = kwargs.get("data_dir") or (declared["data_dir"].default if "data_dir" in declared else "")
    return str(resolve(given)) if given else ""
