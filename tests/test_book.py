"""The book builds with warnings as errors even when tools leave hidden folders in the tree
(pytest's .pytest_cache/README.md broke `make book` after `make test`), its table of contents
must list every stage of the registry (a stage left out of _toc.yml used to vanish from the book
without a word), and the pages written by hand show the run's own answer, data and report."""
from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from matplotlib.figure import Figure

from desivoids import book, paths
from desivoids.stages import ORDER, STAGES


PARAGRAPH = "VoidFinder (12 void and 34 wall galaxies): a sentence only this stub run wrote."


EDGES = [9.5, 10.0, 12.0]


def stub_summary() -> pd.DataFrame:
    """A systematics summary of both caps, all voids: VoidFinder's effect and three V2 prunings
    with one identical result."""
    rows = []
    for algorithm, rd in (("VoidFinder", -0.10), ("REVOLVER", -0.02), ("VIDE", -0.02),
                          ("ZOBOV", -0.02)):
        for definition, shift in (("ssfr", 0.0), ("dn4000", 0.01), ("ur", 0.004)):
            rows.append({"algorithm": algorithm, "sample": "all voids", "definition": definition,
                         "cap": "both", "n_void": 1234, "n_wall": 56789, "rd": rd + shift,
                         "rd_jk_lo": rd + shift - 0.011, "rd_jk_hi": rd + shift + 0.012})
    return pd.DataFrame(rows)


def stub_chapters(root, *, release=True, mock=True):
    """A one-cell executed notebook per stage and the few files of a run that the hand-written
    pages show (run.json, a release, a run report), so a book can build without running stages.
    ``mock``: the run's profile had a mock section (its truth planted VoidFinder's -0.10)."""
    for name in ORDER:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = root / (STAGES[name].chapter + ".ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    data = root / "stubdata"
    (root / "book" / "executed" / "run.json").write_text(json.dumps(
        {"params_file": "params/stub.yml", "profile": "stub", "data_dir": str(data), "stages": []}))
    (data / "run").mkdir(parents=True)
    (data / "run" / "report.md").write_text("# Run report\n\n| stage | seconds |\n|---|---:|\n| stub | 1.0 |\n")
    (data / "run" / "params.json").write_text(json.dumps(
        {"profile": "stub", "mock": {"seed": 1, "scale": "tiny"} if mock else None}))
    if mock:
        truth = data / "mirror" / "truth"
        truth.mkdir(parents=True)
        (truth / "truth.json").write_text(json.dumps({"expected_answers": {
            "mass_edges": EDGES, "by_algorithm": {
                a: {"both": {"expected_rd": -0.10 if a == "VoidFinder" else -0.05}}
                for a in ("VoidFinder", "REVOLVER", "VIDE", "ZOBOV")}}}))
    if not release:
        return
    v1 = data / "release" / "v1"
    (v1 / "figures").mkdir(parents=True)
    (v1 / "reports").mkdir()
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [0, 1])
    fig.savefig(v1 / "figures" / "answer.png")
    (v1 / "data_dictionary.md").write_text("# Data dictionary\n\n| column | type |\n|---|---|\n| z | double |\n")
    (v1 / "reports" / "systematics.json").write_text(json.dumps(
        {"paragraph": PARAGRAPH, "parameters": {"mass_edges": EDGES}}))
    stub_summary().to_csv(v1 / "reports" / "systematics_summary.csv", index=False)
    (v1 / "provenance.json").write_text(json.dumps({"inputs": {"from": "recon/inventory.json", "files": [
        {"path": "a.fits", "bytes": 2**20, "kind": "voidfinder"},
        {"path": "b.fits", "bytes": 2**21, "kind": "voidfinder"}]}}))
    (v1 / "completeness.json").write_text("[]")


@pytest.fixture(scope="module")
def stub_book(tmp_path_factory) -> tuple[Path, Path]:
    """(root, index.html) of the stub run's book (:func:`stub_chapters`, a mock run with a
    release), built once for the tests that only read it; its tree holds the hidden folders
    that tools leave (a pytest cache, a notebook checkpoint)."""
    root = book.copy_sources(tmp_path_factory.mktemp("stub") / "site")
    stub_chapters(root)
    (root / ".pytest_cache").mkdir()
    (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
    (root / "book" / ".ipynb_checkpoints").mkdir()
    (root / "book" / ".ipynb_checkpoints" / "intro-checkpoint.md").write_text("# stale copy\n")
    return root, book.build(root)


def test_hidden_folders_are_not_pages(stub_book):
    root, index = stub_book
    assert index.exists()
    html = index.parent
    assert not list(html.rglob(".pytest_cache")) and not list(html.rglob("intro-checkpoint*"))
    assert (root / "_build" / "html" / "_static" / "mathjax" / "tex-mml-chtml.js").exists()


def test_missing_chapter_is_named(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    with pytest.raises(book.BookError, match="book/executed/02_recon"):
        book.build(root)


def _toc_without(root, chapter):
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    for part in toc["parts"]:
        part["chapters"] = [c for c in part["chapters"] if c.get("file") != chapter]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))


@pytest.mark.parametrize("name", ORDER)
def test_a_stage_left_out_of_the_toc_fails_the_build(tmp_path, name):
    root = book.copy_sources(tmp_path / "site")
    stub_chapters(root)
    _toc_without(root, STAGES[name].chapter)
    with pytest.raises(book.BookError, match=f"{STAGES[name].chapter} is missing from _toc.yml"):
        book.build(root)


def test_the_repository_toc_matches_the_registry():
    assert book.stage_chapter_problems() == []


def test_the_hand_written_pages_show_the_runs_own_answer_data_and_report(tmp_path, monkeypatch):
    root = book.copy_sources(tmp_path / "site")
    stub_chapters(root)
    dr1 = tmp_path / "dr1"  # a DR1-scale run made on this machine: its report joins the page
    (dr1 / "run").mkdir(parents=True)
    (dr1 / "run" / "report.md").write_text("# Run report\n\n| stage | seconds |\n|---|---:|\n| environment | 58.75 |\n")
    (tmp_path / "dr1.yml").write_text(f"profile: dr1-mock\ndata_dir: {dr1}\n")
    monkeypatch.setattr(book, "DR1_MOCK_PROFILE", tmp_path / "dr1.yml")
    index = book.build(root)
    html = index.parent / "book"
    intro = unescape((html / "intro.html").read_text()).replace("\u2019", "'")
    assert PARAGRAPH in intro                      # the answer in words, from the release
    assert "3.0" in intro and "voidfinder" in intro  # its input files: 2 files, 3.0 MiB
    assert "mock sky" in intro and "on the mock sky of this run (not DESI DR1)" in intro  # says so
    text = " ".join(_text(html / "intro.html").split())  # glossary links split the raw HTML
    assert all(STAGES[n].summary.split(":")[0] in text for n in ORDER)  # the registry's table
    assert "answer.png" in intro and list((index.parent / "_images").glob("answer*.png"))
    assert "| stub |" not in (html / "run_report.html").read_text()  # rendered, not raw
    report = (html / "run_report.html").read_text()
    assert "stub" in report and "The DR1-scale run" in report and "58.75" in report
    assert "double" in (html / "data_dictionary.html").read_text()
    refs = (html / "references.html").read_text()
    assert "Newcombe" in refs and "DESIVAST" in refs


def test_a_run_without_a_release_is_named_before_the_book_builds(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    stub_chapters(root, release=False)
    with pytest.raises(book.BookError, match=r"has no .*stubdata/release.*desivoids run"):
        book.build(root)


def _text(html_file):
    """A page's readable text (tags stripped), for what a reader sees."""
    import re

    t = html_file.read_text()
    t = re.sub(r"</?(a|span|strong|em|code)\b[^>]*>", "", t[t.find("<main"):])  # inline: no space
    return unescape(re.sub(r"<[^>]+>", " ", t)).replace("\u2019", "'")


def _title(html_file):
    import re

    return unescape(re.search(r"<title>(.*?)</title>", html_file.read_text(), re.S).group(1))


HAND_WRITTEN = ("intro", "run_dr1", "methods", "glossary", "data_dictionary", "run_report",
                "references")


def test_a_mock_run_says_mock_first_and_shows_the_planted_truth(stub_book):
    """Issue 22 points 1 and 2: every page's title and first line say mock, the intro does not
    claim DR1's 6.4 million galaxies, Fig. 1's caption says mock, and the results table puts the
    mock's expected value beside each estimate with whether its interval covers it."""
    html = stub_book[1].parent / "book"  # stub_chapters(root, mock=True)
    for page in HAND_WRITTEN:
        text = " ".join(_text(html / f"{page}.html").split())
        assert "mock" in _title(html / f"{page}.html").lower(), page
        assert "Mock run. This book shows a run on a mock sky of 4,800 galaxies" in text, page
        assert text.find("Mock run") < text.find("Fig. 1") if "Fig. 1" in text else True
    intro = " ".join(_text(html / "intro.html").split())
    assert "6.4 million" not in intro
    assert "MOCK: The answer on the mock sky of this run (not DESI DR1)" in intro
    assert "expected (mock) covered" in intro
    assert re.search(r"MOCK\s*, percentage points, both caps", intro)  # the table's note
    # VoidFinder planted -10.0 points: covered; the V2 prunings' -5.0 lies outside their intervals
    assert "VoidFinder sSFR < 1e-11 /yr 1,234 / 56,789 -10.0 (-11.1 to -8.8) -10.0 yes" in intro
    assert "ZOBOV sSFR < 1e-11 /yr 1,234 / 56,789 -2.0 (-3.1 to -0.8) -5.0 no" in intro
    assert "A null mock" in intro and "20 of 20" in intro
    for executed in ("executed/07_environment",):
        assert "mock" in _title(html / f"{executed}.html").lower()


def test_a_real_run_says_desi_dr1_and_shows_no_planted_truth(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    stub_chapters(root, mock=False)
    html = book.build(root).parent / "book"
    for page in HAND_WRITTEN:
        assert "DESI DR1" in _title(html / f"{page}.html") and \
            "mock" not in _title(html / f"{page}.html").lower(), page
        assert "DESI DR1. This book shows a run on DESI DR1" in " ".join(
            _text(html / f"{page}.html").split()), page
    intro = " ".join(_text(html / "intro.html").split())
    assert "The answer on DESI DR1." in intro and "Mock run" not in intro
    assert "expected (mock)" not in intro and "VoidFinder sSFR < 1e-11 /yr 1,234 / 56,789 -10.0" in intro
    assert re.search(r"DESI DR1\s*, percentage points, both caps", intro)


def test_the_run_dr1_page_lists_every_stage_parameter_from_the_registry(stub_book):
    """Issue 22 point 6: the page exists, links DESI's documentation and the README's DR1-scale
    measurements, and its parameter tables are generated from every notebook's parameters cell
    (name, default, domain, meaning)."""
    from desivoids.params import declared_parameters

    tables = book.parameters_tables()
    for name in ORDER:
        assert f"### {name}" in tables
        for p in declared_parameters(STAGES[name]).values():
            assert f"| `{p.name}` | `{p.default!r}`".replace("|", "|") in tables.replace("\\|", "|"), \
                (name, p.name)
    assert "| `chunk_kb` | `1024` | [4, " in tables           # a domain from its help comment
    assert "| `fastspec_version` | `'v3.0'` | one of {v3.0, v2.1} | v3.0 (12 nside-1" in tables
    root, index = stub_book
    page = index.parent / "book" / "run_dr1.html"
    text = " ".join(_text(page).split())
    raw = page.read_text()
    load_row = re.search(r"^\| load \(SQLite\) \| ([\d.]+ s) \| ([\d.]+ GiB) \|",
                         (paths.ROOT / "README.md").read_text(), re.M)
    assert load_row, "README's DR1-scale table has no load row"
    for needed in ("27 GB", "80 GB", *load_row.groups(), "GALZONE", "PostgreSQL", "Dask",
                   "params/dr1.yml", "dry_run", "strict"):
        assert needed in text, needed
    assert "https://data.desi.lbl.gov/doc/releases/dr1/vac/desivast/" in raw
    assert "https://data.desi.lbl.gov/doc/releases/dr1/vac/fastspecfit/" in raw
    assert "book/run_dr1" in [c.get("file") for part in yaml.safe_load(
        (root / "_toc.yml").read_text())["parts"] for c in part["chapters"]]



def test_the_run_dr1_page_links_the_repository_the_config_names(tmp_path):
    """Issue 22 point 6: "Run it on DESI DR1" links the repository of _config.yml's
    ``repository: url:``; without one it says the book names no public address (never a
    made-up link)."""
    (tmp_path / "_config.yml").write_text("title: t\nrepository:\n  url: https://example.org/desivoids\n")
    assert "[desivoids repository](https://example.org/desivoids)" in book._repository(tmp_path)
    (tmp_path / "_config.yml").write_text("title: t\n")
    text = book._repository(tmp_path)
    assert "](" not in text and "gives no public address" in text


def test_the_run_dr1_page_names_every_stage_the_readme_has_not_measured(tmp_path):
    """Issue 22 point 6, time per stage: a registry stage without a row in the README's DR1-scale
    table is named as not measured (never silently absent from the page)."""
    readme = (paths.ROOT / "README.md").read_text()
    without_recon = re.sub(r"^\| recon \| [\d.]+ s \|.*\n", "", readme, count=1, flags=re.M)
    assert without_recon != readme, "README's DR1-scale table has no recon row"
    for text in (readme, without_recon):
        (tmp_path / "README.md").write_text(text)
        table, _, note = book._dr1_needs(tmp_path).partition("Not yet measured at DR1 scale")
        rows = {r.strip("|").split("|")[0].split("(")[0].strip() for r in table.splitlines()[2:]
                if r.startswith("|")}
        unmeasured = [n for n in ORDER if n not in rows]
        assert not unmeasured or note.endswith(f": {', '.join(unmeasured)}.\n"), (unmeasured, note)
    assert "recon" in unmeasured

#: entries whose identifier or title could not be checked on the offline machine that wrote
#: them (no DOI or arXiv listing to copy from; searched again for issue 22: no record found);
#: kept out of the completeness check by name, never silently: each says "Unverified" in the
#: note that the references page prints
UNVERIFIED = {"Zaidouni2024": "no identifier recorded; title not checked",
              "DESIVoidGalaxies2025": "arXiv:2507.17243, title not recorded"}


def test_every_cited_reference_is_complete_and_author_year():
    """Issue 22 point 7: every key cited in the book and notebooks has a title, a year, where it
    appeared and an identifier (DOI, arXiv id or URL); proper nouns in titles are braced so the
    style cannot lower-case them; citations are author-year. An entry that could not be
    checked offline (UNVERIFIED) says "Unverified:" in the note the references page prints."""
    import re

    from desivoids import paths
    from pybtex.database import parse_file

    bib = parse_file(str(paths.BOOK / "references.bib")).entries
    sources = [*paths.BOOK.glob("*.md"), *(paths.ROOT / "notebooks").glob("*.py")]
    cited = {k.strip() for f in sources for group in re.findall(
        r"\{cite(?::[pt])?\}`([^`]+)`", f.read_text()) for k in group.split(",")}
    assert cited and cited <= set(bib), sorted(cited - set(bib))
    problems = [f"{key}: exempted as unverified but its note does not say so on the page"
                for key in sorted(UNVERIFIED) if key in cited
                and not bib[key].fields.get("note", "").startswith("Unverified:")]
    for key in sorted(cited - set(UNVERIFIED)):
        f = bib[key].fields
        if not f.get("title"):
            problems.append(f"{key}: no title")
        if not f.get("year"):
            problems.append(f"{key}: no year")
        if bib[key].type == "article" and not f.get("journal"):
            problems.append(f"{key}: no journal")
        if not (f.get("doi") or f.get("eprint") or f.get("url") or bib[key].type == "book"):
            problems.append(f"{key}: no DOI, arXiv id or URL")
        for noun in ("DESI", "SDSS", "Sloan", "DESIVAST", "FastSpecFit", "ZOBOV", "VAST"):
            title = f.get("title", "")
            if re.search(rf"(?<![{{\w]){noun}\b", title):
                problems.append(f"{key}: {noun} in the title is not braced")
    assert not problems, problems
    config = yaml.safe_load((paths.ROOT / "_config.yml").read_text())
    assert config["sphinx"]["config"]["bibtex_reference_style"] == "author_year"


# --------------------------------------------------------------------------------------------
# issue 22 point 4: math and text

#: TeX that a reader must never see as text: a dollar sign, \operatorname, an escaped underscore
RAW_TEX = re.compile(r"\$|\\operatorname|\\_")


class _VisibleText(HTMLParser):
    """The text of a page's <main> outside Sphinx's math elements (MathJax typesets those),
    code and scripts: what a reader would see as plain text."""

    SKIP = {"script", "style", "pre", "code", "textarea", "mjx-container"}
    VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: is its text hidden?
        self.main = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.main = True
        if tag in self.VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = (self.stack[-1] if self.stack else False) or tag in self.SKIP or "math" in classes
        self.stack.append(hidden)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if self.stack:
            self.stack.pop()
        if tag == "main":
            self.main = False

    def handle_data(self, data):
        if self.main and not (self.stack and self.stack[-1]):
            self.text.append(data)


def raw_tex(page) -> list[str]:
    """Every place on a built page where TeX shows as text (with some context)."""
    parser = _VisibleText()
    parser.feed(page.read_text(errors="replace"))
    text = " ".join(" ".join(parser.text).split())
    return [text[max(0, m.start() - 60):m.end() + 60] for m in RAW_TEX.finditer(text)]


def test_the_raw_tex_check_sees_tex_outside_math(tmp_path):
    page = tmp_path / "p.html"
    page.write_text('<main><p>a <span class="math notranslate">\\(x_\\mathrm{a}\\)</span>'
                    "<code>$HOME</code></p><li><p>then</p>$$ h = \\operatorname{logit} p $$ and "
                    "ABSMAG01\\_SDSS</li></main>")
    found = raw_tex(page)
    assert len(found) == 6 and "then" in found[0], found  # four $, \operatorname, \_; no $HOME


def test_no_page_shows_raw_tex_and_the_glossary_and_index_resolve(stub_book):
    """Issue 22 point 4 on the built book's hand-written pages (the methods page showed Cohen's
    h and the logistic model as raw TeX, displayed math inside list items, and a literal \\_
    in eq. 2), the glossary's terms are linked from the pages that use them (first use, by
    book/_ext/desivoids_sphinx.py) and the general index is not empty. No page cites
    science.md, a file that is in neither the book nor the repository."""
    html = stub_book[1].parent
    pages = sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_"))
    problems = [f"{p.relative_to(html)}: {t!r}" for p in pages for t in raw_tex(p)]
    assert not problems, "\n".join(problems)
    methods = (html / "book" / "methods.html").read_text()
    for label in ("eq-cohen", "eq-logit", "eq-mag"):  # displayed, numbered equations
        assert re.search(rf'<div class="math[^"]*" id="equation-{label}"', methods), label
    glossary = (html / "book" / "glossary.html").read_text()
    terms = set(re.findall(r'<dt id="(term-[^"]+)"', glossary))
    assert {"term-V2", "term-GALZONE", "term-ZONEVOID", "term-tracer", "term-edge",
            "term-outside", "term-Dn4000", "term-risk-difference", "term-Newcombe", "term-Kish",
            "term-jackknife", "term-HEALPix", "term-pruning"} <= terms
    linked = {m for p in pages if p.name != "glossary.html"
              for m in re.findall(r'href="(?:\.\./)*(?:book/)?glossary\.html#(term-[^"]+)"',
                                  p.read_text())}
    assert linked and linked <= terms, sorted(linked - terms)
    # first use only: the methods page links each term once
    first = re.findall(r'href="glossary\.html#(term-[^"]+)"', methods)
    assert "term-GALZONE" in first and "term-jackknife" in first and len(first) == len(set(first))
    index = (html / "genindex.html").read_text()
    assert "glossary.html#term-jackknife" in index and "Satterthwaite" in index
    assert "genindex.html" in (html / "book" / "intro.html").read_text()  # in the sidebar
    for source in [*paths.BOOK.glob("*.md"), *(paths.ROOT / "notebooks").glob("*.py")]:
        assert "science.md" not in source.read_text(), source
