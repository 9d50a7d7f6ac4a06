"""The `desivoids` command: the same stages as the notebooks, without Jupyter.

    desivoids run [--params FILE] [--stages S ...]   execute stage notebooks with papermill
    desivoids book                                   build the Jupyter Book into _build/html
    desivoids mock --out DIR [...]                   write a DESI-format mock sky
    desivoids <stage> [--params FILE] [-p NAME VALUE]...   one stage's library code directly

The stage verbs come from the stage registry (desivoids.stages). Exit status of every verb: 0
success; 1 bad input or a failed stage (message on stderr; the traceback of an unexpected error
in the verb's log file, see desivoids.stagecli.guarded); 2 a usage error.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import hugepages

hugepages.set_default()  # before anything imports numpy (see desivoids.hugepages)

from . import paths  # noqa: E402
from .errors import UsageError  # noqa: E402
from .stagecli import guarded  # noqa: E402
from .stages import ORDER, STAGES  # noqa: E402


def _run(args, argv) -> int:
    from .params import load
    from .runner import run

    got = {}

    def body() -> int:
        try:
            got["params"] = params = load(Path(args.params).resolve())  # paths: from the current folder
        except UsageError as exc:
            raise UsageError(f"invalid parameters: {exc}") from None
        results = run(params, args.stages, progress=not args.quiet,
                      executed_dir=Path(args.executed_dir).resolve(), force=args.force,
                      jobs=args.jobs)
        for r in results:
            print(f"  {r.stage:<14} {r.seconds:8.1f} s  -> {paths.display(r.notebook)}" if r.ran
                  else f"  {r.stage:<14}    fresh    {paths.display(r.notebook)} (kept)")
        return 0

    return guarded("run", body, argv, lambda: got["params"].data_dir if "params" in got else None)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _book(args, argv) -> int:
    from .book import build

    def body() -> int:
        print(f"book: {build(Path(args.root).resolve(), strict=not args.no_strict)}")
        return 0

    return guarded("book", body, argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in STAGES:
        from .stagecli import main as stage_main

        return stage_main(STAGES[argv[0]], argv[1:])
    if argv and argv[0] == "mock":
        def mock() -> int:
            from .mock.cli import cli_main

            return int(cli_main(argv[1:]) or 0)

        return guarded("mock", mock, argv)
    ap = argparse.ArgumentParser(prog="desivoids", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="verb")
    run_p = sub.add_parser("run", help="execute the stage notebooks in order with papermill")
    run_p.add_argument("--params", default=str(paths.PARAMS / "mock.yml"),
                       help="params file (default params/mock.yml; relative to the current directory)")
    run_p.add_argument("--stages", nargs="+", choices=ORDER, help="run only these stages (in pipeline order)")
    run_p.add_argument("--quiet", action="store_true", help="no progress bars")
    run_p.add_argument("--force", action="store_true",
                       help="run every selected stage, fresh or not (by default a stage runs only "
                       "when its parameters, its inputs or its outputs changed since its last run)")
    run_p.add_argument("--executed-dir", default=str(paths.EXECUTED),
                       help="where executed notebooks go (default book/executed, which the book renders)")
    run_p.add_argument("--jobs", type=_positive, default=os.cpu_count() or 1,
                       help="stages run at once where their inputs allow (default: the number of "
                       "cores); each stage starts once the stages it reads have ended, and two "
                       "stages that write database tables never run at once")
    run_p.set_defaults(func=_run)
    book_p = sub.add_parser("book", help="build the Jupyter Book into _build/html")
    book_p.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")
    book_p.add_argument("--root", default=str(paths.ROOT), help="book source tree (default: the repository)")
    book_p.set_defaults(func=_book)
    sub.add_parser("mock", help="write a DESI-format mock sky (see `desivoids mock --help`)", add_help=False)
    for name in ORDER:
        sub.add_parser(name, help=f"{STAGES[name].summary} (see `desivoids {name} --help`)",
                       add_help=False)
    args = ap.parse_args(argv)
    return args.func(args, argv)


if __name__ == "__main__":
    raise SystemExit(main())
