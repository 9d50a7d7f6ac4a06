"""The `desivoids` command: the same stages as the notebooks, without Jupyter.

    desivoids run [--params FILE] [--stages S ...]   execute stage notebooks with papermill
    desivoids book                                   build the Jupyter Book into _build/html
    desivoids mock --out DIR [...]                   write a DESI-format mock sky
    desivoids <stage> ...                            run one stage's library code directly
"""
from __future__ import annotations

import argparse
import importlib
import sys

from . import paths
from .stages import ORDER

#: Verbs whose arguments belong to another module: verb -> "module:function(argv) -> int".
DELEGATED = {
    "mock": "desivoids.mock.cli:cli_main",
    "acquire": "desivoids.acquire.cli:cli_main",
    "recon": "desivoids.recon:cli_main",
    "convert": "desivoids.convert.cli:cli_main",
    "load": "desivoids.load.cli:cli_main",
}


def _delegate(verb: str, argv: list[str]) -> int:
    module, func = DELEGATED[verb].split(":")
    return int(getattr(importlib.import_module(module), func)(argv) or 0)


def _run(args) -> int:
    from .params import ParamsError, load
    from .runner import StageFailed, run

    try:
        params = load(args.params)
        results = run(params, args.stages, progress=not args.quiet, executed_dir=paths.resolve(args.executed_dir))
    except ParamsError as exc:
        print(f"error: invalid parameters: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"  {r.stage:<14} {r.seconds:8.1f} s  -> {r.notebook}")
    return 0


def _book(args) -> int:
    from .book import BookError, build

    try:
        index = build(paths.resolve(args.root), strict=not args.no_strict)
    except BookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"book: {index}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    ap = argparse.ArgumentParser(prog="desivoids", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="verb", required=True, metavar="verb")
    run_p = sub.add_parser("run", help="execute the stage notebooks in order with papermill")
    run_p.add_argument("--params", default=str(paths.PARAMS / "mock.yml"), help="params file (default params/mock.yml)")
    run_p.add_argument("--stages", nargs="+", choices=ORDER, help="run only these stages (in pipeline order)")
    run_p.add_argument("--quiet", action="store_true", help="no progress bars")
    run_p.add_argument("--executed-dir", default=str(paths.EXECUTED),
                       help="where executed notebooks go (default book/executed, which the book renders)")
    run_p.set_defaults(func=_run)
    book_p = sub.add_parser("book", help="build the Jupyter Book into _build/html")
    book_p.add_argument("--no-strict", action="store_true", help="do not treat warnings as errors")
    book_p.add_argument("--root", default=str(paths.ROOT), help="book source tree (default: the repository)")
    book_p.set_defaults(func=_book)
    for verb in DELEGATED:
        sub.add_parser(verb, help=f"{verb} (see `desivoids {verb} --help`)", add_help=False)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
