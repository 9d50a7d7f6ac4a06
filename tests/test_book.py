"""The book builds with warnings as errors even when tools leave hidden folders in the tree
(pytest's .pytest_cache/README.md broke `make book` after `make test`)."""
from __future__ import annotations

import pytest

from desivoids import book


def test_hidden_folders_are_not_pages(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    (root / ".pytest_cache").mkdir()
    (root / ".pytest_cache" / "README.md").write_text("# pytest cache directory\n")
    (root / "book" / ".ipynb_checkpoints").mkdir()
    (root / "book" / ".ipynb_checkpoints" / "intro-checkpoint.md").write_text("# stale copy\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                   "- file: book/methods\n- file: book/references\n")
    index = book.build(root)
    assert index.exists()
    assert (root / "_build" / "html" / "_static" / "mathjax" / "tex-mml-chtml.js").exists()


def test_missing_chapter_is_named(tmp_path):
    root = book.copy_sources(tmp_path / "site")
    with pytest.raises(book.BookError, match="book/executed/02_recon"):
        book.build(root)
