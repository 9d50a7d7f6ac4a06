"""The book builds with warnings as errors even when tools leave hidden folders in the tree
(pytest's .pytest_cache/README.md broke `make book` after `make test`), its table of contents
must list every stage of the registry (a stage left out of _toc.yml used to vanish from the book
without a word), and the pages written by hand show the run's own answer, data and report."""
from __future__ import annotations

import json
from html import unescape

import nbformat
import pytest
import yaml
from matplotlib.figure import Figure

from desivoids import book
from desivoids.stages import ORDER, STAGES


PARAGRAPH = "VoidFinder (12 void and 34 wall galaxies): a sentence only this stub run wrote."


def stub_chapters(root, *, release=True):
    """A one-cell executed notebook per stage and the few files of a run that the hand-written
    pages show (run.json, a release, a run report), so a book can build without running stages."""
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
    (data / "run" / "params.json").write_text(json.dumps({"mock": {"seed": 1}}))
    if not release:
        return
    v1 = data / "release" / "v1"
    (v1 / "figures").mkdir(parents=True)
    (v1 / "reports").mkdir()
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([0, 1], [0, 1])
    fig.savefig(v1 / "figures" / "answer.png")
    (v1 / "data_dictionary.md").write_text("# Data dictionary\n\n| column | type |\n|---|---|\n| z | double |\n")
    (v1 / "reports" / "systematics.json").write_text(json.dumps({"paragraph": PARAGRAPH}))
    (v1 / "provenance.json").write_text(json.dumps({"inputs": {"from": "recon/inventory.json", "files": [
        {"path": "a.fits", "bytes": 2**20, "kind": "voidfinder"},
        {"path": "b.fits", "bytes": 2**21, "kind": "voidfinder"}]}}))
    (v1 / "completeness.json").write_text("[]")


def test_hidden_folders_are_not_pages(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    stub_chapters(root)
    (root / ".pytest_cache").mkdir()
    (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
    (root / "book" / ".ipynb_checkpoints").mkdir()
    (root / "book" / ".ipynb_checkpoints" / "intro-checkpoint.md").write_text("# stale copy\n")
    index = book.build(root)
    assert index.exists()
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
    assert "mock sky" in intro and "On the mock sky of this run" in intro  # a mock run says so
    assert all(STAGES[n].summary.split(":")[0] in intro for n in ORDER)  # the registry's table
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
