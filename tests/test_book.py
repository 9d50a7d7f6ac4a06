"""The book builds with warnings as errors even when tools leave hidden folders in the tree
(pytest's .pytest_cache/README.md broke `make book` after `make test`), and its table of
contents must list every stage of the registry (a stage left out of _toc.yml used to vanish from
the book without a word)."""
from __future__ import annotations

import nbformat
import pytest
import yaml

from desivoids import book
from desivoids.stages import ORDER, STAGES


def stub_chapters(root):
    """A one-cell executed notebook per stage, so a book can build without running stages."""
    for name in ORDER:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = root / (STAGES[name].chapter + ".ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


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
