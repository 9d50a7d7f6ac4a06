"""Turn named file sets into a plan: every file with its size and expected checksum.

Planning reads metadata only: directory listings, sizes (listing, HEAD, HeadObject, fsspec
info) and DESI's ``.sha256sum`` lists (small text files read into memory). It writes nothing,
so a dry run is a plan plus arithmetic. A checksum list is itself part of the plan (kind
``checksums``), expected to have exactly the bytes that were parsed, so the local copy is the
list the data files were verified against.
"""
from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TypeVar

from ..errors import StageError
from . import filesets as fs
from .sources import Listed, Missing, Source, SourceError, Transient

T = TypeVar("T")


@dataclass(frozen=True)
class Planned:
    path: str
    fileset: str
    kind: str  # data | checksums
    size: int | None  # None: not found at the source
    sha256_expected: str | None
    checksum: str  # published | computed
    error: str | None = None


class PlanError(StageError):
    """The plan cannot be made (source unreachable, an explicitly requested tile is absent, ...)."""


def retrying(fn: Callable[[], T], what: str, attempts: int = 4, backoff: float = 0.5) -> T:
    """Metadata requests get a few quick retries on transient errors."""
    for i in range(attempts):
        try:
            return fn()
        except Transient as exc:
            if i == attempts - 1:
                raise PlanError(f"{what}: {exc} (after {attempts} attempts)") from None
            time.sleep(backoff * 2 ** i)
    raise AssertionError("unreachable")


def _listing(source: Source, d: str) -> dict[str, Listed] | None:
    """{name: entry} of a directory; {} when it does not exist; None when the source cannot list."""
    try:
        got = retrying(lambda: source.list(d), f"listing {source.label}{d}")
    except Missing:
        return {}
    return None if got is None else {e.name: e for e in got}


# ------------------------------------------------------------------------ resolve named sets
def resolve_tiles(source: Source, specs: Sequence[fs.TileSpec], max_tiles: int | None = None) -> list[fs.TileSpec]:
    """Fill in each tile's night (the latest cumulative coadd at the source); no specs means every
    tile the source holds (optionally the first ``max_tiles`` by TILEID)."""
    if not specs:
        top = _listing(source, fs.TILES_DIR)
        if top is None:
            raise PlanError(f"{source.label}: cannot list {fs.TILES_DIR}; give the tiles explicitly "
                            "as TILEID/YYYYMMDD")
        ids = sorted(int(n) for n, e in top.items() if e.is_dir and n.isdigit())
        specs = [fs.TileSpec(t) for t in (ids[:max_tiles] if max_tiles else ids)]
    out = []
    for s in specs:
        if s.night is not None:
            out.append(s)
            continue
        entries = _listing(source, f"{fs.TILES_DIR}/{s.tileid}")
        if entries is None:
            raise PlanError(f"{source.label}: cannot list tile {s.tileid}; give it as TILEID/YYYYMMDD")
        nights = sorted(int(n) for n, e in entries.items() if e.is_dir and n.isdigit())
        if not nights:
            raise PlanError(f"tile {s.tileid}: not found at {source.label}{fs.TILES_DIR}/{s.tileid}/")
        out.append(fs.TileSpec(s.tileid, nights[-1], s.petals))
    return out


def requests_for(source: Source, sets: Iterable[str], *, desivast_version: str = "v1.0",
                 fastspec_version: str = "v3.0", hp: Sequence[int] = (), tiles: Sequence[str | int] = (),
                 petals: Sequence[int] = (), max_tiles: int | None = None, healpix: Sequence[str] = (),
                 dirs: Sequence[str] = ()) -> list[fs.Request]:
    """The requests of the named sets, with tile nights looked up at the source."""
    out: list[fs.Request] = []
    for name in sets:
        if name == "desivast":
            out += fs.desivast(desivast_version)
        elif name == "fastspecfit":
            out += fs.fastspecfit(fastspec_version, hp or None)
        elif name == "tiles":
            resolved = resolve_tiles(source, [fs.parse_tile(t) for t in tiles], max_tiles)
            if petals:
                resolved = [fs.TileSpec(s.tileid, s.night, tuple(petals)) for s in resolved]
            out += fs.tiles(resolved)
        elif name == "healpix":
            if not healpix:
                raise fs.FileSetError("set 'healpix' needs pixels, e.g. main/bright/10000")
            out += fs.healpix([fs.parse_healpix(h) for h in healpix])
        elif name == "dir":
            if not dirs:
                raise fs.FileSetError("set 'dir' needs at least one directory of the relative layout")
            for d in dirs:
                out += fs.directory(d)
        else:
            raise fs.FileSetError(f"unknown file set {name!r}; known: {list(fs.SETS)}")
    return out


# ------------------------------------------------------------------------------------ plan
def plan(source: Source, requests: Sequence[fs.Request], *, workers: int = 8) -> list[Planned]:
    """Every file of the requests, with size and expected sha256, sorted by path."""
    listings: dict[str, dict[str, Listed] | None] = {}

    def listing(d: str):
        if d not in listings:
            listings[d] = _listing(source, d)
        return listings[d]

    sums: dict[str, str] = {}  # relative path -> published sha256
    planned: dict[str, Planned] = {}
    wanted: list[tuple[str, str, int | None, str | None]] = []  # path, fileset, size, error

    def read_sums(path: str, fileset: str) -> None:
        if path in planned:
            return
        d, name = path.rsplit("/", 1)
        lst = listing(d)
        if lst is not None and name not in lst:
            return
        try:
            data = retrying(lambda: source.read_bytes(path), f"reading {source.label}{path}")
        except Missing:
            return
        try:
            entries = fs.parse_sumfile(data.decode("utf-8"), f"{source.label}{path}")
        except (UnicodeDecodeError, ValueError) as exc:
            raise PlanError(f"{source.label}{path}: unreadable checksum list: {exc}") from None
        for n, h in entries.items():
            sums[f"{d}/{n}"] = h
        planned[path] = Planned(path, fileset, "checksums", len(data), hashlib.sha256(data).hexdigest(),
                                "computed")

    for req in requests:
        dirs = [req.directory]
        if req.recursive:
            lst = listing(req.directory)
            if lst is None:
                raise PlanError(f"{source.label}: cannot list {req.directory} for set '{req.fileset}'")
            todo = [req.directory]
            while todo:
                d = todo.pop()
                for n, e in (listing(d) or {}).items():
                    if e.is_dir:
                        dirs.append(f"{d}/{n}")
                        todo.append(f"{d}/{n}")
        for cand in req.sumfiles:
            read_sums(cand, req.fileset)
        for d in dirs:
            for n, e in sorted((listing(d) or {}).items()):
                if not e.is_dir and n.endswith(".sha256sum"):
                    read_sums(f"{d}/{n}", req.fileset)
        for d in dirs:
            lst = listing(d)
            if req.names is not None:
                for n in req.names:
                    if lst is not None and n not in lst:
                        wanted.append((f"{d}/{n}", req.fileset, None, f"not found at source: {source.label}{d}/{n}"))
                    else:
                        wanted.append((f"{d}/{n}", req.fileset, lst[n].size if lst else None, None))
            elif lst is not None:
                for n, e in sorted(lst.items()):
                    if not e.is_dir and not n.endswith(".sha256sum") and req.matches(n):
                        wanted.append((f"{d}/{n}", req.fileset, e.size, None))
            else:  # cannot list: the published checksum list names the files
                names = [p.rsplit("/", 1)[1] for p in sums if p.rsplit("/", 1)[0] == d]
                if not names:
                    raise PlanError(f"{source.label}: cannot list {d} and it has no checksum list")
                wanted += [(f"{d}/{n}", req.fileset, None, None) for n in sorted(names) if req.matches(n)]

    def sized(item):
        path, fileset, size, error = item
        if error is None and size is None:
            try:
                size = retrying(lambda: source.size(path), f"size of {source.label}{path}")
            except Missing as exc:
                error = f"not found at source: {exc}"
            except SourceError as exc:
                error = f"size unknown: {exc}"
        sha = sums.get(path)
        return Planned(path, fileset, "data", size, sha, "published" if sha else "computed", error)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for p in pool.map(sized, wanted):
            planned.setdefault(p.path, p)
    return sorted(planned.values(), key=lambda p: p.path)


def tile_pairs(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(coadd, redrock) pairs among relative paths, matched by directory and name."""
    paths = set(paths)
    out = []
    for p in sorted(paths):
        d, n = p.rsplit("/", 1) if "/" in p else ("", p)
        if re.fullmatch(r"coadd-.+\.fits", n):
            rr = f"{d}/redrock-{n[len('coadd-'):]}" if d else f"redrock-{n[len('coadd-'):]}"
            if rr in paths:
                out.append((p, rr))
    return out
