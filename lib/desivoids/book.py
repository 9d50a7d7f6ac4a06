"""Build the Jupyter Book (version 1, offline) from the executed stage notebooks.

Warnings are errors (``-W -n --keep-going``), as in QuantEcon's lecture books. Math is rendered
by a local MathJax (the default loads it from a CDN, which this project never reaches): the es5
build that the PyPI package django-static-mathjax installs is copied into ``book/_mathjax`` and
served from ``_static/mathjax``.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from . import paths
from .errors import StageError
from .runinfo import RunInfo, run_info
from .systematics.expected import beside_expected, read_expected

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
    (book/executed/run.json) into ``book/_generated`` (git-ignored): the first line of every
    page and the book's title (mock or DESI DR1, :func:`desivoids.runinfo.run_info`), the answer
    figure, caption, words and table of its release (on a mock run beside the planted values),
    its data, the stage table and every stage's parameters from the registry, the README's
    DR1-scale measurements, its run report and data dictionary. So the pages' numbers are the
    run's own, never typed in."""
    from .stages import ORDER, STAGES

    record = root / "book" / "executed" / "run.json"
    if not record.exists():
        raise BookError(f"{paths.display(record)} is missing: run `desivoids run` first")
    run = json.loads(record.read_text())
    data_dir = paths.resolve(run["data_dir"])
    releases = sorted((data_dir / "release").glob("*/completeness.json"),
                      key=lambda p: p.stat().st_mtime)
    report = paths.RunLayout(data_dir).run_file("report_md")
    missing = [paths.display(p) for p, ok in ((data_dir / "release", bool(releases)),
                                              (report, report.exists())) if not ok]
    if missing:
        raise BookError(f"the run of {paths.display(record)} has no {', '.join(missing)}: run "
                        "every stage (`desivoids run`) before building the book")
    release = releases[-1].parent
    out = root / GENERATED
    out.mkdir(parents=True, exist_ok=True)
    info = run_info(data_dir)
    _copy_downloads([p.parent for p in releases], out / DOWNLOADS)
    shutil.copyfile(release / "figures" / "answer.png", out / "answer.png")
    shutil.copyfile(release / "data_dictionary.md", out / "data_dictionary.md")
    (out / "run_report.md").write_text(report.read_text() + _dr1_scale_section(data_dir))
    systematics = json.loads((release / "reports" / "systematics.json").read_text())
    summary = pd.read_csv(release / "reports" / "systematics_summary.csv")
    edges = (systematics.get("parameters") or {}).get("mass_edges")
    expected = beside_expected(summary, read_expected(data_dir), edges) if edges else None
    (out / "banner.md").write_text(_banner(info))
    (out / "answer_caption.md").write_text(_answer_caption(info, expected))
    (out / "answer.md").write_text(systematics["paragraph"] + "\n\n"
                                   + answer_table(summary, expected, info.label))
    (out / "data.md").write_text(_data_page(run, json.loads(
        (release / "provenance.json").read_text()), info.settings if info.mock else None))
    (out / "stages.md").write_text("\n".join(
        ["| stage | what it does |", "|---|---|"] +
        [f"| {{doc}}`{n} <{STAGES[n].chapter.removeprefix('book/')}>` | {STAGES[n].summary} |"
         for n in ORDER]) + "\n")
    (out / "parameters.md").write_text(parameters_tables())
    (out / "dr1_needs.md").write_text(_dr1_needs(root))
    (out / "_config.yml").write_text(_config(root, info))
    (out / "repository.md").write_text(_repository(root))
    return out


#: the folder of book/_generated that Sphinx copies into the HTML root (``html_extra_path``)
DOWNLOADS = "downloads"


def _copy_downloads(releases: list[Path], dest: Path) -> None:
    """The release files that the release chapter links for download, copied (afresh) where
    the built book serves them (:mod:`desivoids.release.downloads`)."""
    from .release.downloads import copy_for_book

    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for folder in releases:
        copy_for_book(folder, dest)


def _repository(root: Path) -> str:
    """A sentence linking the source repository: ``repository: url:`` of _config.yml."""
    url = ((yaml.safe_load((root / "_config.yml").read_text()) or {}).get("repository")
           or {}).get("url")
    if url:
        return (f"The source code, its tests and its issues: the [desivoids repository]({url}) "
                "(its README says how to set it up).\n")
    return ("The source code and its tests are in the desivoids repository that built this "
            "book (its README says how to set it up; the book's _config.yml gives no public "
            "address).\n")


def _banner(info: RunInfo) -> str:
    """The first line of every hand-written page: what the run is of."""
    if info.mock:
        return (f"**Mock run.** This book shows a run on {info.sky}, written by `desivoids.mock` "
                "with a planted answer to test the pipeline. Its numbers describe the mock, not "
                "the Universe; {doc}`run_dr1` says how to run it on DESI's files.\n")
    return f"**DESI DR1.** This book shows a run on {info.sky}.\n"


def _answer_caption(info: RunInfo, expected) -> str:
    """Figure 1's caption: the answer of this run, of a mock or DESI DR1."""
    what = "the mock sky of this run (not DESI DR1)" if info.mock else "DESI DR1"
    extra = (" Open diamonds: the value each algorithm is expected to give, planted in the mock "
             "and computed by the mock's own code." if expected is not None else "")
    return (f"**{'MOCK: ' if info.mock else ''}The answer on {what}.** Quenched fraction of void "
            "galaxies minus that of wall galaxies of the same stellar mass (walls reweighted to "
            "the void mass distribution), for each void-finding algorithm and each of the three "
            "quenched definitions, both caps, all voids. The bars are 95% jackknife intervals "
            "over equal-area sky patches ({doc}`methods`). Negative: void galaxies are quenched "
            f"less often.{extra}\n")


def _pp(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x * 100:+.1f}"


#: the quenched definitions as the results table names them
DEFINITION_SHORT = {"ssfr": "sSFR < 1e-11 /yr", "dn4000": "Dn4000 > 1.6", "ur": "u - r ≥ 2.22"}


def answer_table(summary: pd.DataFrame, expected: pd.DataFrame | None,
                 label: str = "DESI DR1") -> str:
    """The results table (both caps, all voids), in percentage points, one row per algorithm
    and definition; on a mock run each estimate beside the mock's expected value and whether
    its interval covers it."""
    from .formats import ALGORITHMS

    s = summary[(summary.cap == "both") & (summary["sample"] == "all voids")]
    order = {a: k for k, a in enumerate(ALGORITHMS)}
    defs = {d: k for k, d in enumerate(DEFINITION_SHORT)}
    s = s.sort_values(["algorithm", "definition"], key=lambda c: c.map(
        order if c.name == "algorithm" else defs))
    e = ({(r.algorithm, r.definition): r for r in expected.itertuples()}
         if expected is not None else {})
    head = "| algorithm | quenched if | void / wall galaxies | void - wall, points (95% interval) |"
    rule = "|---|---|---:|---|"
    if e:
        head += " expected (mock) | covered |"
        rule += "---:|---|"
    rows = [head, rule]
    for r in s.itertuples():
        counts = (f"{int(r.n_void):,d} / {int(r.n_wall):,d}"
                  if np.isfinite(r.n_void) and np.isfinite(r.n_wall) else "-")
        estimate = _pp(r.rd)
        if np.isfinite(r.rd) and np.isfinite(r.rd_jk_lo) and np.isfinite(r.rd_jk_hi):
            estimate += f" ({_pp(r.rd_jk_lo)} to {_pp(r.rd_jk_hi)})"
        row = (f"| {r.algorithm} | {DEFINITION_SHORT.get(r.definition, r.definition)} | "
               f"{counts} | {estimate} |")
        if e:
            x = e.get((r.algorithm, r.definition))
            covered = "-" if x is None or x.covered is None or x.covered != x.covered else \
                ("yes" if x.covered else "**no**")
            row += f" {_pp(None if x is None else x.expected)} | {covered} |"
        rows.append(row)
    note = (f"\n**{label.upper() if label == 'mock' else label}**, percentage points, both caps, "
            "all voids; intervals are the delete-one-patch jackknife's; a dash: no estimate "
            "(no void or no wall galaxies). ")
    if e:
        note += ("Expected: the void-minus-wall difference the mock planted, for the latent "
                 "quenched state (the observed definitions misclassify a few per cent of "
                 "galaxies each way, which pulls an estimate slightly towards zero).")
    return "\n".join(rows) + "\n" + note + "\n"


def parameters_tables() -> str:
    """Every stage's parameters, from the registry and each notebook's parameters cell: name,
    default, domain (the start of the help comment) and meaning."""
    from .params import Domain, declared_parameters
    from .stages import ORDER, STAGES

    def cell(text) -> str:
        return (str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")
                .replace(">", "&gt;"))

    out = []
    for name in ORDER:
        out += [f"### {name}", "", "| parameter | default | domain | meaning |",
                "|---|---|---|---|"]
        for p in declared_parameters(STAGES[name]).values():
            domain = Domain.parse(p.help)
            meaning = re.sub(r"^(\{[^}]*\}|[\[(][^\])]*[\])])\s*", "", p.help) if domain else p.help
            domain_text = str(domain) if domain is not None else p.type_name
            out.append(f"| `{p.name}` | `{cell(repr(p.default))}` | {cell(domain_text)} | "
                       f"{cell(meaning.strip()) or '-'} |")
        out.append("")
    return "\n".join(out)


def _dr1_needs(root: Path) -> str:
    """The README's table of what each stage needs at DR1 scale (measured on the DR1-scale
    mock), so the book repeats the repository's own record instead of a copy of its numbers."""
    readme = root / "README.md"
    if not readme.exists():
        raise BookError(f"{paths.display(readme)} is missing: the page run_dr1 shows its table "
                        "of what each stage needs")
    text = readme.read_text()
    start = text.find("**What each stage needs**")
    if start < 0:
        raise BookError("README.md has no paragraph '**What each stage needs**'")
    lines, table = text[start:].splitlines(), []
    for line in lines[1:]:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break
    if not table:
        raise BookError("README.md's '**What each stage needs**' has no table")
    from .stages import ORDER

    measured = {row.strip("|").split("|")[0].split("(")[0].strip() for row in table[2:]}
    missing = [n for n in ORDER if n not in measured]
    note = (f"\nNot yet measured at DR1 scale (the README's table has no row for "
            f"{'it' if len(missing) == 1 else 'them'}): {', '.join(missing)}.\n"
            if missing else "")
    return "\n".join(table) + "\n" + note


def _config(root: Path, info: RunInfo) -> str:
    """The book's _config.yml with the run's title (a mock run's says mock)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["title"] = info.title
    # Jupyter Book finds local extensions relative to the config file, which now sits in
    # book/_generated: name their folders absolutely (never shown on a page)
    ext = (config.get("sphinx") or {}).get("local_extensions") or {}
    for name, folder in ext.items():
        ext[name] = str((root / folder).resolve())
    # the release's files for download: copied by Sphinx into the HTML root (release/<version>/)
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_extra_path"] = [*sphinx.get("html_extra_path", []),
                                 str((root / GENERATED / DOWNLOADS).resolve())]
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


DR1_MOCK_PROFILE = paths.ROOT / "params" / "dr1-mock.yml"


def _dr1_scale_section(book_data_dir: Path) -> str:
    """The run report of the DR1-scale mock run on the machine that builds the book, where one
    was made (its 9.6 GB mock is not part of `make book`)."""
    from .params import load

    data_dir = load(DR1_MOCK_PROFILE).data_dir
    report = paths.RunLayout(data_dir).run_file("report_md")
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
    if mock is not None:
        origin = (f"This book was rendered from the run of `{run['params_file']}` (profile "
                  f"`{run['profile']}`), on a **mock sky**: files written by `desivoids.mock` in "
                  "exactly the formats of the real DESI files (names, HDUs, columns, FITS types, "
                  "units and header keys), with a planted, known environment effect on the "
                  "quenched fraction. The loaders cannot tell it from the real files; the planted "
                  "truth is read only by the tests, which check that the pipeline recovers it, "
                  "and by the answer above and the systematics chapter, which show it beside "
                  "each estimate. "
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
    cmd = [str(jb), "build", str(root), "--config", str(root / GENERATED / "_config.yml")]
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
    for name in ("_config.yml", "_toc.yml", "README.md", "genindex.md"):
        shutil.copy(root / name, dest / name)
    shutil.copytree(root / "book", dest / "book",
                    ignore=shutil.ignore_patterns("executed", "_mathjax", "_generated"),
                    dirs_exist_ok=True)
    return dest
