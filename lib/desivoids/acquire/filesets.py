"""Named DESI DR1 file sets as relative paths, and where DESI publishes their checksums.

Every source (HTTPS portal, the ``desidata`` S3 bucket, a local mirror) shares one relative
layout below ``public/``, so a file set is a list of *requests*: a directory, the files wanted in
it (explicit names, or a pattern matched against the directory listing) and the name of the
``.sha256sum`` file DESI ships in that directory.

DESI names a directory's checksum file after the directory itself, slashes replaced by
underscores: below the release root for value-added catalogues
(``dr1/vac/dr1/desivast/v1.0/dr1_vac_dr1_desivast_v1.0.sha256sum``) and below ``spectro/`` for
the spectroscopic reductions (``.../tiles/cumulative/80613/20210324/
redux_iron_tiles_cumulative_80613_20210324.sha256sum``,
``.../healpix/main/dark/100/10000/redux_iron_healpix_main_dark_100_10000.sha256sum``). The
planner reads these lists first, because they name every file of their folder even where the
server has no index pages, and also looks for any ``*.sha256sum`` in a listed directory, so a
differently named sum file is still found.

A checksum list decides what is fetched and where it is written, so it is parsed strictly
(:func:`parse_checksum_list`): every line ``HEX  NAME`` as ``sha256sum`` writes it, names that
stay inside the list's folder, no name twice with two sums, at least one entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import InputError, UsageError
from ..formats import (DESIVAST_FILES, DESIVAST_ROOT as DESIVAST_DIR, FASTSPEC_V21_FILENAME,
                       FASTSPEC_V3_FILES, HEALPIX_DIR, TILES_DIR, checksum_filename,
                       fastspec_dir)

#: nside-1 pixels of the FastSpecFit v3.0 split, hp00..hp11
FASTSPEC_V3_HP = tuple(range(len(FASTSPEC_V3_FILES)))
PETALS = tuple(range(10))
SETS = ("desivast", "fastspecfit", "tiles", "healpix", "dir")


class FileSetError(UsageError):
    """A file-set parameter that names nothing DESI publishes."""


class ChecksumListError(InputError):
    """A checksum list that does not parse: names the list (its URL at the source) and the line."""

    def where(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in (("checksum list", self.file), ("line", self.row))
                         if v is not None)


#: one line of ``sha256sum`` output: text mode ``HEX  NAME``, binary mode ``HEX *NAME`` (a line
#: that GNU coreutils escapes with a leading backslash holds a name DESI never uses: an error)
_SUM_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *](.+)")


def parse_checksum_list(data: bytes, where: str) -> dict[str, str]:
    """DESI's ``.sha256sum`` bytes -> {name relative to the list's folder: lower-case hex}.

    Strict, because the names become paths to fetch and write: UTF-8; every non-blank line
    exactly as ``sha256sum`` writes it (an HTML error page served with status 200, a truncated
    line, a comment are errors); a name may hold sub-folders (a version-level VAC list) but not
    be absolute, hold ``..`` or end in ``/``; a name listed twice must have one sum; the list
    names at least one file. Raises :class:`ChecksumListError` naming ``where`` and the line.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChecksumListError(where, None, None, f"not UTF-8 text (byte {exc.start})") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    out: dict[str, str] = {}
    for i, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if not line.strip():
            continue
        m = _SUM_LINE.fullmatch(line)
        if not m:
            raise ChecksumListError(where, None, None, f"not 'SHA256  NAME' as sha256sum writes it: "
                                    f"{line[:80]!r}", row=i)
        hexd, name = m.groups()
        name = name[2:] if name.startswith("./") else name
        parts = name.split("/")
        if name.startswith("/") or name.endswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in name:
            raise ChecksumListError(where, None, None, f"file name {name!r} does not stay inside the list's "
                                    "folder", row=i)
        hexd = hexd.lower()
        if out.get(name, hexd) != hexd:
            raise ChecksumListError(where, None, None, f"{name} listed twice with different sums", row=i)
        out[name] = hexd
    if not out:
        raise ChecksumListError(where, None, None, "names no file (empty)")
    return out


@dataclass(frozen=True)
class Request:
    """Files wanted in one source directory.

    ``names``: explicit file names (a name missing at the source is reported, never skipped).
    ``pattern``: otherwise, a regex that names in the directory listing must match in full.
    ``recursive``: with a pattern, also walk sub-directories (generic ``dir`` set only).
    """

    fileset: str
    directory: str
    sumfiles: tuple[str, ...]  # candidate checksum files (relative paths), tried in order
    names: tuple[str, ...] | None = None
    pattern: str | None = None
    recursive: bool = False
    label: str = ""  # how a report names the request (e.g. "tile 80613/20210324, petals 0,4")

    def __post_init__(self):
        if (self.names is None) == (self.pattern is None):
            raise ValueError("a Request needs exactly one of names or pattern")

    def matches(self, name: str) -> bool:
        return self.pattern is not None and re.fullmatch(self.pattern, name) is not None


@dataclass(frozen=True)
class TileSpec:
    """One tile of the cumulative coadds; ``night`` None means "the latest found at the source"."""

    tileid: int
    night: int | None = None
    petals: tuple[int, ...] = field(default=PETALS)


def sumfiles_for(directory: str, up: int = 0) -> tuple[str, ...]:
    """The checksum file of ``directory`` and of up to ``up`` parent directories (a VAC may
    publish one sum file at its version level listing ``sub/dir/file`` paths)."""
    parts = directory.strip("/").split("/")
    out = []
    for k in range(up + 1):
        d = "/".join(parts[: len(parts) - k])
        out.append(f"{d}/{checksum_filename(d)}")
    return tuple(out)


def desivast(version: str = "v1.0") -> list[Request]:
    d = f"{DESIVAST_DIR}/{version}"
    return [Request("desivast", d, sumfiles_for(d), names=DESIVAST_FILES)]


def fastspecfit(version: str = "v3.0", hp: Iterable[int] | None = None) -> list[Request]:
    """v3.0: the twelve nside-1 HEALPix files of main-bright (or those in ``hp``); v2.1: one file."""
    d = fastspec_dir(version)
    if version == "v2.1":
        if hp:
            raise FileSetError("fastspecfit v2.1 main-bright is a single file: hp selection applies to v3.0 only")
        names = (FASTSPEC_V21_FILENAME,)
    elif version == "v3.0":
        pix = sorted(set(FASTSPEC_V3_HP if not hp else hp))
        bad = [p for p in pix if p not in FASTSPEC_V3_HP]
        if bad:
            raise FileSetError(f"fastspecfit v3.0 has nside-1 pixels hp00..hp11; not {bad}")
        names = tuple(FASTSPEC_V3_FILES[p] for p in pix)
    else:
        raise FileSetError(f"fastspecfit version {version!r}: expected 'v3.0' or 'v2.1'")
    return [Request("fastspecfit", d, sumfiles_for(d, up=1), names=names)]


def tile_dir(tileid: int, night: int) -> str:
    return f"{TILES_DIR}/{int(tileid)}/{int(night)}"


def tile_files(tileid: int, night: int, petal: int) -> tuple[str, str]:
    """Relative paths of one petal's coadd and redrock files."""
    d = tile_dir(tileid, night)
    return (f"{d}/coadd-{petal}-{tileid}-thru{night}.fits", f"{d}/redrock-{petal}-{tileid}-thru{night}.fits")


def tiles(specs: Sequence[TileSpec]) -> list[Request]:
    """Coadd + redrock pairs of the given tiles; petals come from the directory listing (a petal
    without spectra is simply absent at DESI), restricted to ``spec.petals``."""
    out = []
    for s in specs:
        if s.night is None:
            raise FileSetError(f"tile {s.tileid}: night unresolved (resolve_tiles() looks it up at the source)")
        bad = [p for p in s.petals if p not in PETALS]
        if bad:
            raise FileSetError(f"tile {s.tileid}: petals are 0..9, not {bad}")
        petals = "".join(str(p) for p in sorted(set(s.petals)))
        pattern = rf"(coadd|redrock)-[{petals}]-{s.tileid}-thru{s.night}\.fits"
        d = tile_dir(s.tileid, s.night)
        out.append(Request("tiles", d, sumfiles_for(d), pattern=pattern,
                           label=f"tile {s.tileid}/{s.night}, " + ("every petal" if set(s.petals) == set(PETALS)
                                                                    else f"petals {','.join(petals)}")))
    return out


def healpix_dir(survey: str, program: str, pixel: int) -> str:
    return f"{HEALPIX_DIR}/{survey}/{program}/{int(pixel) // 100}/{int(pixel)}"


def healpix(specs: Sequence[tuple[str, str, int]]) -> list[Request]:
    """Coadd + redrock of nside-64 nested HEALPix pixels, given as (survey, program, pixel)."""
    out = []
    for survey, program, pixel in specs:
        d = healpix_dir(survey, program, pixel)
        names = (f"coadd-{survey}-{program}-{pixel}.fits", f"redrock-{survey}-{program}-{pixel}.fits")
        out.append(Request("healpix", d, sumfiles_for(d), names=names))
    return out


def directory(path: str, pattern: str = r".*") -> list[Request]:
    """Every file below one directory (recursive) whose name matches ``pattern``; checksums from
    the list DESI names after the folder and whatever ``*.sha256sum`` files the directories
    hold (on a server without index pages, the folder's own list names its files)."""
    d = str(path).rstrip("/")  # a leading '/' stays, and is refused as an absolute path
    return [Request("dir", d, sumfiles_for(d), pattern=pattern, recursive=True)]


def parse_tile(spec: str | int) -> TileSpec:
    """``"80613"``, ``"80613/20210324"`` or ``"80613/20210324/0,4"`` (petals) -> TileSpec."""
    parts = str(spec).strip().strip("/").split("/")
    try:
        tileid = int(parts[0])
        night = int(parts[1]) if len(parts) > 1 and parts[1] else None
        petals = tuple(int(p) for p in parts[2].split(",")) if len(parts) > 2 else PETALS
    except ValueError:
        raise FileSetError(f"tile spec {spec!r}: expected TILEID[/YYYYMMDD[/PETAL,...]]") from None
    if len(parts) > 3:
        raise FileSetError(f"tile spec {spec!r}: expected TILEID[/YYYYMMDD[/PETAL,...]]")
    return TileSpec(tileid, night, petals)


def parse_healpix(spec: str) -> tuple[str, str, int]:
    """``"main/bright/10000"`` -> ("main", "bright", 10000)."""
    parts = str(spec).strip("/").split("/")
    if len(parts) != 3 or not parts[2].isdigit():
        raise FileSetError(f"healpix spec {spec!r}: expected SURVEY/PROGRAM/PIXEL, e.g. main/bright/10000")
    return parts[0], parts[1], int(parts[2])
