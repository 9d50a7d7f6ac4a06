"""Build the Jupyter Book (version 1, offline) from the executed stage notebooks.

Warnings are errors (``-W -n --keep-going``), as in QuantEcon's lecture books. Math is rendered
by a local MathJax (the default loads it from a CDN, which this project never reaches): the es5
build that the PyPI package django-static-mathjax installs is copied into ``book/_mathjax`` and
served from ``_static/mathjax``.
"""
from __future__ import annotations

import importlib.util
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
    return [f for f in toc_files(root / "_toc.yml") if not any((root / (f + s)).exists() for s in suffixes)]


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
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(root)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
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
    shutil.copytree(root / "book", dest / "book", ignore=shutil.ignore_patterns("executed", "_mathjax"), dirs_exist_ok=True)
    return dest
