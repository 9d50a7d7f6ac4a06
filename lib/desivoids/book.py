"""Build the Jupyter Book (version 1, offline) from the executed stage notebooks.

Warnings are errors (``-W -n --keep-going``), as in QuantEcon's lecture books. Math is rendered
by a local MathJax (the default loads it from a CDN, which this project never reaches): the es5
build that the PyPI package django-static-mathjax installs is copied into ``book/_mathjax`` and
served from ``_static/mathjax``.
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import paths
from .errors import StageError

MATHJAX = paths.BOOK / "_mathjax" / "mathjax" / "tex-mml-chtml.js"


def installed_mathjax() -> Path:
    """The es5 folder of the MathJax that pip installed (package django-static-mathjax)."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or spec.origin is None:
        raise BookError("MathJax is not installed: pip install django-static-mathjax (a dependency of desivoids)")
    es5 = Path(spec.origin).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").exists():
        raise BookError(f"the installed mathjax package has no es5/tex-mml-chtml.js under {es5}")
    return es5


def ensure_mathjax(root: Path = paths.ROOT) -> Path:
    """Copy the installed MathJax into ``root/book/_mathjax/mathjax`` unless already there."""
    target = root / MATHJAX.relative_to(paths.ROOT)
    if not target.exists():
        shutil.copytree(installed_mathjax(), target.parent, dirs_exist_ok=True)
    return target


class BookError(StageError):
    """The book cannot be built (a chapter is missing, Sphinx failed)."""


def toc_files(toc: Path) -> list[str]:
    """Every file the table of contents names (without suffix), in order."""
    data = yaml.safe_load(toc.read_text())
    out = [data["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                out.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in data.items() if k != "root"})
    return out


def stage_chapter_problems(root: Path = paths.ROOT) -> list[str]:
    """How _toc.yml's stage chapters differ from the stage registry (every stage, in run order,
    as book/executed/NN_name; nothing else under book/executed)."""
    from .stages import ORDER, STAGES

    listed = [f for f in toc_files(root / "_toc.yml") if f.startswith("book/executed/")]
    wanted = [STAGES[n].chapter for n in ORDER]
    problems = [f"stage chapter {w} is missing from _toc.yml" for w in wanted if w not in listed]
    problems += [f"_toc.yml names {f}, which is no stage of the registry" for f in listed
                 if f not in wanted]
    if not problems and listed != wanted:
        problems.append(f"_toc.yml lists the stage chapters in the order {listed}, not {wanted}")
    return problems


def missing_chapters(root: Path = paths.ROOT) -> list[str]:
    """Chapters named in _toc.yml for which no source file exists (e.g. a stage not yet run)."""
    suffixes = (".md", ".ipynb", ".rst")
    return [f for f in toc_files(root / "_toc.yml") if not any((root / (f + s)).exists() for s in suffixes)
            and not f.startswith(GENERATED)]


GENERATED = "book/_generated"


def generated_pages(root: Path) -> Path:
    """Write what the hand-written pages show from the run the executed notebooks came from
    (book/executed/run.json) into ``book/_generated`` (git-ignored): the answer figure and
    paragraph of its release, its data, the stage table of the registry, its run report and
    data dictionary. So the introduction's numbers are the run's own, never typed in."""
    from .stages import ORDER, STAGES

    record = root / "book" / "executed" / "run.json"
    if not record.exists():
        raise BookError(f"{paths.display(record)} is missing: run `desivoids run` first")
    run = json.loads(record.read_text())
    data_dir = paths.resolve(run["data_dir"])
    releases = sorted((data_dir / "release").glob("*/completeness.json"),
                      key=lambda p: p.stat().st_mtime)
    report = data_dir / "run" / "report.md"
    missing = [paths.display(p) for p, ok in ((data_dir / "release", bool(releases)),
                                              (report, report.exists())) if not ok]
    if missing:
        raise BookError(f"the run of {paths.display(record)} has no {', '.join(missing)}: run "
                        "every stage (`desivoids run`) before building the book")
    release = releases[-1].parent
    out = root / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(release / "figures" / "answer.png", out / "answer.png")
    shutil.copyfile(release / "data_dictionary.md", out / "data_dictionary.md")
    (out / "run_report.md").write_text(report.read_text() + _dr1_scale_section(data_dir))
    systematics = json.loads((release / "reports" / "systematics.json").read_text())
    params_json = data_dir / "run" / "params.json"
    mock = json.loads(params_json.read_text()).get("mock") if params_json.exists() else None
    on = ("On the mock sky of this run (see *The data* below), not on DESI's galaxies: "
          if mock else "")
    (out / "answer.md").write_text(on + systematics["paragraph"] + "\n")
    (out / "data.md").write_text(_data_page(run, json.loads(
        (release / "provenance.json").read_text()), mock))
    (out / "stages.md").write_text("\n".join(
        ["| stage | what it does |", "|---|---|"] +
        [f"| {{doc}}`{n} <{STAGES[n].chapter.removeprefix('book/')}>` | {STAGES[n].summary} |"
         for n in ORDER]) + "\n")
    return out


DR1_MOCK_PROFILE = paths.ROOT / "params" / "dr1-mock.yml"


def _dr1_scale_section(book_data_dir: Path) -> str:
    """The run report of the DR1-scale mock run on the machine that builds the book, where one
    was made (its 9.6 GB mock is not part of `make book`)."""
    from .params import load

    data_dir = load(DR1_MOCK_PROFILE).data_dir
    report = data_dir / "run" / "report.md"
    head = "\n## The DR1-scale run\n\n"
    if data_dir == book_data_dir:
        return ""
    if not report.exists():
        return head + ("Not run on the machine that built this book: `desivoids run --params "
                       "params/dr1-mock.yml` runs every stage on a mock of DR1's size (6,445,927 "
                       "galaxies) and writes its report here at the next build.\n")
    body = report.read_text().split("\n", 1)[1].lstrip()  # without its title
    return head + body


def _data_page(run: dict, prov: dict, mock: dict | None) -> str:
    files = prov["inputs"]["files"]
    kinds: dict[str, list[int]] = {}
    for f in files:
        k = kinds.setdefault(f.get("kind") or "file", [0, 0])
        k[0] += 1
        k[1] += int(f.get("bytes") or 0)
    if mock:
        origin = (f"This book was rendered from the run of `{run['params_file']}` (profile "
                  f"`{run['profile']}`), on a **mock sky**: files written by `desivoids.mock` in "
                  "exactly the formats of the real DESI files (names, HDUs, columns, FITS types, "
                  "units and header keys), with a planted, known environment effect on the "
                  "quenched fraction. The loaders cannot tell it from the real files; the planted "
                  "truth is read only by the tests, which check that the pipeline recovers it, "
                  "and by the systematics chapter, which shows it beside each estimate. "
                  "Its numbers describe the mock, not the Universe: run `params/dr1.yml` for "
                  "DESI's own files.")
    else:
        origin = (f"This book was rendered from the run of `{run['params_file']}` (profile "
                  f"`{run['profile']}`) on the DESI files that its acquire stage fetched and "
                  "verified.")
    rows = [f"| {k} | {n:,d} | {b / 2**20:,.1f} |" for k, (n, b) in sorted(kinds.items())]
    return "\n".join([origin, "", f"Its input files ({prov['inputs']['from']}), each with its "
                       "sha256 in the release's provenance.json:", "",
                       "| kind | files | MiB |", "|---|---:|---:|", *rows]) + "\n"


def build(root: Path = paths.ROOT, *, strict: bool = True) -> Path:
    """Build the HTML book of the source tree ``root`` into ``root/_build/html``; return its index.html.

    ``root`` is the repository by default; tests build a copy so they never touch the user's book.
    """
    root = Path(root)
    problems = stage_chapter_problems(root)
    if problems:
        raise BookError("the book's table of contents does not match the stage registry: "
                        + "; ".join(problems))
    ensure_mathjax(root)
    missing = missing_chapters(root)
    if missing:
        raise BookError(f"chapters named in _toc.yml have no executed notebook or page: {missing}; "
                        "run `desivoids run` first")
    generated_pages(root)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(root)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n"
                        f"{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
    index = root / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookError(f"jupyter-book reported success but {index} is missing")
    return index


def copy_sources(dest: Path, root: Path = paths.ROOT) -> Path:
    """Copy the book's hand-written sources (config, toc, pages) to ``dest``, without executed
    notebooks or MathJax, so a test can run and build a complete book outside the repository."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(root / name, dest / name)
    shutil.copytree(root / "book", dest / "book",
                    ignore=shutil.ignore_patterns("executed", "_mathjax", "_generated"),
                    dirs_exist_ok=True)
    return dest
