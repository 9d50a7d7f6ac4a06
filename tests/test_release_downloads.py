"""The release's files for download from the book (issue 22, point 6), on a release folder
written by hand (sha256sum-format SHA256SUMS, no pipeline run): what the chapter lists and
links, what the book copies, and that every link lands on the copy of the file it names."""
from __future__ import annotations

import hashlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from desivoids import book
from desivoids.errors import InputError
from desivoids.release import downloads

CHAPTER = "book/executed/10_release"


def _release(root: Path, files: dict[str, bytes]) -> Path:
    folder = root / "release" / "v7"
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    (folder / "SHA256SUMS").write_text("".join(
        f"{hashlib.sha256(body).hexdigest()}  {name}\n" for name, body in files.items()))
    return folder


FILES = {"galaxies_core.parquet": b"P" * 5000, "README.md": b"# release\n",
         "hats/voids/properties": b"obs_collection=voids\n",
         "hats/voids/dataset/Norder=0/Dir=0/Npix=4.parquet": b"Q" * 300}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "download" in a.get("class", ""):
            self.links.append(a["href"])

    def handle_data(self, data):
        self.text.append(data)


def _served(html_root: Path, links: list[str]) -> dict[str, Path]:
    page_dir = html_root / Path(CHAPTER).parent
    return {u: (page_dir / unquote(u)).resolve() for u in links}


def test_every_link_lands_on_a_copy_with_the_listed_sha256(tmp_path):
    folder = _release(tmp_path, FILES)
    html_root = tmp_path / "html"
    copies = downloads.copy_for_book(folder, html_root)
    parser = _Links()
    parser.feed(downloads.download_list(folder, chapter=CHAPTER)._repr_html_())
    sums = {**{n: hashlib.sha256(b).hexdigest() for n, b in FILES.items()},
            "SHA256SUMS": hashlib.sha256((folder / "SHA256SUMS").read_bytes()).hexdigest()}
    served = _served(html_root, parser.links)
    assert len(served) == len(sums) == len(copies)
    for url, file in served.items():
        assert file.is_file(), url
        name = file.relative_to((html_root / "release" / "v7").resolve()).as_posix()
        assert hashlib.sha256(file.read_bytes()).hexdigest() == sums[name], name
    shown = " ".join(parser.text)
    assert "hats/voids/dataset/Norder=0/Dir=0/Npix=4.parquet" in shown
    assert "The HATS catalogues' 2 files" in shown


def test_a_file_above_the_limit_is_listed_with_its_checksum_not_linked(tmp_path):
    folder = _release(tmp_path, FILES)
    html_root = tmp_path / "html"
    copies = downloads.copy_for_book(folder, html_root, limit=1000)
    big = html_root / "release" / "v7" / "galaxies_core.parquet"
    assert not big.exists() and len(copies) == len(FILES)  # three small + SHA256SUMS
    text = downloads.download_list(folder, limit=1000, chapter=CHAPTER)._repr_html_()
    parser = _Links()
    parser.feed(text)
    assert not any("galaxies_core" in u for u in parser.links)
    assert hashlib.sha256(FILES["galaxies_core.parquet"]).hexdigest() in text
    assert "1 larger file is listed with its path in the release folder and its sha256" in text
    assert "galaxies_core.parquet</code> (not linked: larger than 1.0 kB)" in text
    assert all(f.is_file() for f in _served(html_root, parser.links).values())


def test_a_sumfile_naming_a_path_outside_the_release_is_refused(tmp_path):
    folder = _release(tmp_path, {"a.txt": b"a"})
    (tmp_path / "secret").write_text("x")
    with (folder / "SHA256SUMS").open("a") as f:
        f.write(f"{hashlib.sha256(b'x').hexdigest()}  ../../secret\n")
    with pytest.raises(InputError, match=r"SHA256SUMS: names outside the release folder: \.\./\.\./secret"):
        downloads.copy_for_book(folder, tmp_path / "html")


def test_the_book_serves_the_copies_from_its_html_root(tmp_path):
    """The generated _config.yml names the copies' folder in html_extra_path, so Sphinx puts
    release/<version>/ at the root of the built book, where the chapter's links point."""
    import yaml

    from desivoids import paths

    root = book.copy_sources(tmp_path / "site", paths.ROOT)
    config = yaml.safe_load(book._config(root, _Info()))
    extra = config["sphinx"]["config"]["html_extra_path"]
    assert extra == [str((root / book.GENERATED / book.DOWNLOADS).resolve())]
    assert downloads.href("v1", "hats/voids/properties", CHAPTER) == "../../release/v1/hats/voids/properties"


class _Info:
    title = "desivoids: a mock"
