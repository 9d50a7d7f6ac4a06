"""The release's files for download from the book (issue 22, point 6).

The release chapter lists every file of ``SHA256SUMS`` (and ``SHA256SUMS`` itself) with its size
and sha256; the book build (:func:`desivoids.book.generated_pages`) copies each file of at most
:data:`LIMIT` bytes to ``<book html>/release/<version>/<path>`` (through Sphinx's
``html_extra_path``), and the chapter links it there. A larger file (a DR1 release's tables run
to GBs) is listed with its path in the release folder and its checksum, not linked: the page
says so. The chapter's links are relative to its own page, so the built book works from any
folder or host, offline.

Raw HTML, not Markdown: the chapter is an executed notebook, and a Markdown link to a file
outside the Sphinx project in its output would be a missing cross-reference to Sphinx.
"""
from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..checksums import parse_sumfile, sha256_file
from ..errors import InputError

__all__ = ["LIMIT", "BOOK_FOLDER", "Download", "listing", "href", "DownloadList", "download_list",
           "copy_for_book"]

#: the largest file (bytes) the book copies and links; larger ones are listed, not linked
LIMIT = 50_000_000
#: where the built book serves the release's files, relative to its HTML root
BOOK_FOLDER = "release"
#: the CSS class of the chapter's download table (tests find the list by it)
TABLE_CLASS = "dv-downloads"
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Download:
    path: str      # relative to the release folder (posix)
    bytes: int
    sha256: str
    linked: bool   # at most the size limit: copied into the book and linked


def listing(folder: Path, limit: int = LIMIT) -> list[Download]:
    """Every file ``SHA256SUMS`` lists, then ``SHA256SUMS`` itself, with its size and sha256 (as
    listed; ``SHA256SUMS``'s own computed)."""
    folder = Path(folder)
    sums_path = folder / SUMS
    sums = parse_sumfile(sums_path.read_text(), str(sums_path))
    outside = [n for n in sums if Path(n).is_absolute() or ".." in Path(n).parts]
    if outside:  # the book would copy them from outside the release
        raise InputError(sums_path, None, None,
                         f"names outside the release folder: {', '.join(outside)}")
    out = []
    for name, digest in [*sums.items(), (SUMS, sha256_file(sums_path))]:
        size = (folder / name).stat().st_size
        out.append(Download(name, size, digest, size <= limit))
    return out


def href(version: str, path: str, chapter: str | None = None) -> str:
    """The link from the release chapter's page to a copied file of release ``version``."""
    if chapter is None:
        from ..stages import STAGES

        chapter = STAGES["release"].chapter
    up = "../" * chapter.count("/")
    return quote(f"{up}{BOOK_FOLDER}/{version}/{path}")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:,d} B"


class DownloadList:
    """The chapter's download list: HTML in the book, plain text elsewhere."""

    def __init__(self, version: str, files: list[Download], limit: int = LIMIT,
                 chapter: str | None = None):
        self.version, self.files, self.limit, self.chapter = version, files, limit, chapter

    def _table(self, files: list[Download]) -> str:
        esc = html.escape
        rows = []
        for f in files:
            name = (f'<a class="reference download" href="{esc(href(self.version, f.path, self.chapter))}"'
                    f' download><code>{esc(f.path)}</code></a>' if f.linked else
                    f"<code>{esc(f.path)}</code> (not linked: larger than {_size(self.limit)})")
            rows.append(f'<tr><td>{name}</td><td class="num">{_size(f.bytes)}</td>'
                        f"<td><code>{f.sha256}</code></td></tr>")
        return ('<div class="dv-table" style="overflow-x:auto;max-width:100%">'
                f'<table class="dataframe dv-table {TABLE_CLASS}"><thead><tr><th>file</th>'
                '<th class="num">size</th><th>sha256</th></tr></thead><tbody>'
                + "".join(rows) + "</tbody></table></div>")

    def _repr_html_(self) -> str:
        top = [f for f in self.files if not f.path.startswith("hats/")]
        hats = [f for f in self.files if f.path.startswith("hats/")]
        out = [f"<p>{self._sentence()}</p>", self._table(top)]
        if hats:
            out.append(f"<details><summary>The HATS catalogues' {len(hats):,d} files</summary>"
                       f"{self._table(hats)}</details>")
        return "".join(out)

    def _sentence(self) -> str:
        big = sum(not f.linked for f in self.files)
        text = (f"Every file of release {html.escape(self.version)}, as <code>SHA256SUMS</code> "
                f"lists it. Files up to {_size(self.limit)} are copied into this book and linked "
                "for download; ")
        if big:
            text += (f"{big:,d} larger file{'s are' if big > 1 else ' is'} listed with "
                     "its path in the release folder and its sha256, not linked: copy "
                     f"{'them' if big > 1 else 'it'} from the run's "
                     f"<code>release/{html.escape(self.version)}/</code>. ")
        else:
            text += "every file of this release is within that size. "
        return text + "Check a download with <code>sha256sum -c SHA256SUMS</code>."

    def __repr__(self) -> str:
        return "\n".join(f"{f.path}  {f.bytes}  {f.sha256}  {'linked' if f.linked else 'not linked'}"
                         for f in self.files)


def download_list(folder: Path, limit: int = LIMIT, chapter: str | None = None) -> DownloadList:
    """The download list of the release in ``folder`` (its name is the version)."""
    folder = Path(folder)
    return DownloadList(folder.name, listing(folder, limit), limit, chapter)


def copy_for_book(folder: Path, dest: Path, limit: int = LIMIT) -> list[Path]:
    """Copy the release's files of at most ``limit`` bytes to ``dest/release/<version>/``, the
    folder the chapter links (``dest`` is served as the HTML root); return the copies. A
    release without ``SHA256SUMS`` (never published) has nothing to offer."""
    folder = Path(folder)
    if not (folder / SUMS).is_file():
        return []
    out = []
    for f in listing(folder, limit):
        if f.linked:
            target = Path(dest) / BOOK_FOLDER / folder.name / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / f.path, target)
            out.append(target)
    return out
