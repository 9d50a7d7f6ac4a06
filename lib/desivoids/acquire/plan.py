"""Turn named file sets into a plan: every file with its size and expected checksum, and every
request that yielded no file, with the reason.

Planning reads metadata only: DESI's ``.sha256sum`` lists (small text files read into memory),
directory listings where the source has them, and sizes (listing, HEAD, HeadObject, fsspec
info). It writes nothing, so a dry run is a plan plus arithmetic.

The order matters on a plain static host (no index pages, as most mirrors and S3 website
endpoints): the checksum lists come first, because they name every file of their folder; a
listing adds what it shows; a file named by the set or a list but absent from a listing (or
with no listing at all) is asked for with a HEAD, never concluded missing. A folder whose
listing is unknown (HTTP 404 on the folder) counts as absent only when its parent's listing is
known and does not hold it. What cannot be planned (a tile folder with no checksum list and no
listing, a pattern that matches nothing) is returned in ``Plan.unplanned`` and fails the stage.

A checksum list is itself part of the plan (kind ``checksums``), expected to have exactly the
bytes that were parsed, so the local copy is the list the data files were verified against.
"""
from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence, TypeVar

from ..errors import StageError, UnsafePathError
from ..paths import safe_relative
from . import filesets as fs
from .sources import Digest, Listed, Missing, Source, SourceError, Transient, Unreachable

T = TypeVar("T")


@dataclass(frozen=True)
class Planned:
    path: str
    fileset: str
    kind: str  # data | checksums
    size: int | None  # None: not found at the source
    sha256_expected: str | None
    checksum: str  # published | source | computed (what the bytes will be checked against)
    error: str | None = None
    digest: Digest | None = None  # the source's whole-file digest, where a HEAD offered one


@dataclass(frozen=True)
class Unplanned:
    """A request that yielded no file to fetch: ``what`` names it, ``reason`` says why."""

    what: str
    reason: str


@dataclass
class Plan:
    files: list[Planned]
    unplanned: list[Unplanned] = field(default_factory=list)
    #: folders planned without a checksum list: their files can only be ``complete``
    unsummed: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)


class PlanError(StageError):
    """The plan cannot be made (source unreachable, an explicitly requested tile is absent, ...)."""


def retrying(fn: Callable[[], T], what: str, attempts: int = 4, backoff: float = 0.5) -> T:
    """Metadata requests get a few quick retries on transient errors; an unreachable source
    fails at once (every further request would only wait for the same refusal)."""
    for i in range(attempts):
        try:
            return fn()
        except Unreachable as exc:
            raise PlanError(
                f"source unreachable, nothing was planned or fetched: {exc}. If this machine is "
                "offline, DESI's portal cannot be reached from it: run acquire where there is "
                "internet access, or set `source` to a folder holding a copy in DESI's layout"
            ) from None
        except Transient as exc:
            if i == attempts - 1:
                raise PlanError(f"{what}: {exc} (after {attempts} attempts)") from None
            time.sleep(backoff * 2 ** i)
    raise AssertionError("unreachable")


class Listings:
    """Directory listings of one source, each asked for once. ``get`` returns {name: entry},
    {} for a folder known to be absent or empty, and None when the source cannot say."""

    def __init__(self, source: Source):
        self.source = source
        self._cache: dict[str, dict[str, Listed] | None] = {}

    def get(self, d: str) -> dict[str, Listed] | None:
        d = d.strip("/")
        if d in self._cache:
            return self._cache[d]
        try:
            got = retrying(lambda: self.source.list(d), f"listing {self.source.label}{d}")
        except Missing:
            got = []
        if got:
            self._check(d, got)
        if got is None and d:  # an HTTP folder without an index page: does its parent know it?
            parent, name = d.rsplit("/", 1) if "/" in d else ("", d)
            up = self.get(parent)
            if up is not None and not (name in up and up[name].is_dir):
                got = []
        self._cache[d] = None if got is None else {e.name: e for e in got}
        return self._cache[d]

    def _check(self, d: str, entries: list[Listed]) -> None:
        """Every name a listing gives becomes a path to read and write: one plain name each (no
        '..', '.', '/', empty); refused before anything is opened, all at once."""
        errors = []
        where = self.source.where(f"{d}/" if d else "")
        for e in entries:
            key = (f"{d}/{e.name}" if d else e.name) + ("/" if e.is_dir else "")
            try:
                if "/" in e.name:
                    raise UnsafePathError(where, key, "refused: a listing entry holding '/' is not one name "
                                          "in this folder")
                safe_relative(e.name, source=where, key=key)
            except UnsafePathError as exc:
                errors.append(exc)
        if errors:
            raise UnsafePathError.all(errors)


# ------------------------------------------------------------------------ resolve named sets
def resolve_tiles(source: Source, specs: Sequence[fs.TileSpec], max_tiles: int | None = None,
                  listings: Listings | None = None) -> list[fs.TileSpec]:
    """Fill in each tile's night (the latest cumulative coadd at the source); no specs means every
    tile the source holds (optionally the first ``max_tiles`` by TILEID)."""
    listings = listings or Listings(source)
    if not specs:
        top = listings.get(fs.TILES_DIR)
        if top is None:
            raise PlanError(f"{source.label}: cannot list {fs.TILES_DIR} (no index page); give the tiles "
                            "explicitly as TILEID/YYYYMMDD")
        ids = sorted(int(n) for n, e in top.items() if e.is_dir and n.isdigit())
        if not ids:
            raise PlanError(f"{source.label}{fs.TILES_DIR}/: no tile folder at the source")
        specs = [fs.TileSpec(t) for t in (ids[:max_tiles] if max_tiles else ids)]
    out = []
    for s in specs:
        if s.night is not None:
            out.append(s)
            continue
        entries = listings.get(f"{fs.TILES_DIR}/{s.tileid}")
        if entries is None:
            raise PlanError(f"{source.label}: cannot list tile {s.tileid} (no index page) to find its latest "
                            "night; give it as TILEID/YYYYMMDD")
        nights = sorted(int(n) for n, e in entries.items() if e.is_dir and n.isdigit())
        if not nights:
            raise PlanError(f"tile {s.tileid}: not found at {source.label}{fs.TILES_DIR}/{s.tileid}/")
        out.append(fs.TileSpec(s.tileid, nights[-1], s.petals))
    return out


def requests_for(source: Source, sets: Iterable[str], *, desivast_version: str = "v1.0",
                 fastspec_version: str = "v3.0", hp: Sequence[int] = (), tiles: Sequence[str | int] = (),
                 petals: Sequence[int] = (), max_tiles: int | None = None, healpix: Sequence[str] = (),
                 dirs: Sequence[str] = (), listings: Listings | None = None) -> list[fs.Request]:
    """The requests of the named sets, with tile nights looked up at the source."""
    out: list[fs.Request] = []
    for name in sets:
        if name == "desivast":
            out += fs.desivast(desivast_version)
        elif name == "fastspecfit":
            out += fs.fastspecfit(fastspec_version, hp or None)
        elif name == "tiles":
            resolved = resolve_tiles(source, [fs.parse_tile(t) for t in tiles], max_tiles, listings)
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
    errors = []
    for r in out:  # built from parameters (dirs, versions, healpix specs): refuse '..' and '/x'
        for path in (r.directory, *r.sumfiles, *(f"{r.directory}/{n}" for n in r.names or ())):
            try:
                safe_relative(path, source=f"the parameters of file set {r.fileset!r}")
            except UnsafePathError as exc:
                errors.append(exc)
    if errors:
        raise UnsafePathError.all(errors)
    return out


# ------------------------------------------------------------------------------------ plan
def plan(source: Source, requests: Sequence[fs.Request], *, workers: int = 8,
         listings: Listings | None = None) -> Plan:
    """Every file of the requests, with size and expected sha256, sorted by path; and what could
    not be planned. A checksum list that does not parse raises its ChecksumListError."""
    listings = listings or Listings(source)
    sums: dict[str, tuple[str, str]] = {}  # relative path -> (published sha256, the list naming it)
    lists: dict[str, Planned] = {}
    unplanned: list[Unplanned] = []
    unsummed: list[str] = []
    wanted: dict[str, tuple[str, int | None, str]] = {}  # path -> fileset, size from a listing, why named

    def read_list(path: str, fileset: str) -> bool:
        """Read and parse one checksum list; False when the source does not have it."""
        if path in lists:
            return True
        d, name = path.rsplit("/", 1)
        lst = listings.get(d)
        if lst is not None and name not in lst:
            return False
        try:
            data = retrying(lambda: source.read_bytes(path), f"reading {source.label}{path}")
        except Missing:
            return False
        where = f"{source.label}{path}"
        for n, h in fs.parse_checksum_list(data, where).items():
            p = f"{d}/{n}"
            if p in sums and sums[p][0] != h:
                raise fs.ChecksumListError(where, None, None, f"{n}: sha256 {h} differs from {sums[p][0]} in "
                                           f"{source.label}{sums[p][1]}")
            sums[p] = (h, path)
        lists[path] = Planned(path, fileset, "checksums", len(data), hashlib.sha256(data).hexdigest(), "computed")
        return True

    def want(path: str, fileset: str, size: int | None, why: str) -> None:
        if path not in wanted:
            wanted[path] = (fileset, size, why)

    for req in requests:
        d = req.directory.strip("/")
        what = req.label or f"{req.fileset} {d}/"
        top = listings.get(d)
        dirs = [d]
        if req.recursive and top:
            todo = [d]
            while todo:
                here = todo.pop()
                for n, e in (listings.get(here) or {}).items():
                    if e.is_dir:
                        dirs.append(f"{here}/{n}")
                        todo.append(f"{here}/{n}")
        had_list = False
        if top != {}:  # a folder known to be absent has no list to read
            for cand in req.sumfiles:
                had_list |= read_list(cand, req.fileset)
            for sub in dirs:
                for n, e in sorted((listings.get(sub) or {}).items()):
                    if not e.is_dir and n.endswith(".sha256sum"):
                        had_list |= read_list(f"{sub}/{n}", req.fileset)
        if not had_list and top != {}:
            unsummed.append(d)
        if req.names is not None:
            for n in req.names:
                e = (top or {}).get(n)
                want(f"{d}/{n}", req.fileset, e.size if e is not None and not e.is_dir else None, "named")
            continue
        found: dict[str, tuple[int | None, str]] = {}
        for sub in dirs:
            for n, e in sorted((listings.get(sub) or {}).items()):
                if not e.is_dir and not n.endswith(".sha256sum") and req.matches(n):
                    found[f"{sub}/{n}"] = (e.size, "listed")
        for p in sorted(sums):  # the lists name files that a listing may not show
            pd, pn = p.rsplit("/", 1)
            if (pd == d or (req.recursive and p.startswith(d + "/"))) and req.matches(pn) and p not in found:
                found[p] = (None, f"named in {sums[p][1].rsplit('/', 1)[-1]}")
        if not found:
            if top is None and not had_list:
                tried = ", ".join(req.sumfiles) or "none"
                reason = (f"{source.label}{d}/ has no index page and no checksum list (tried {tried}): "
                          "nothing names its files")
            elif top == {}:
                reason = f"{source.label}{d}/: no such folder at the source (or it is empty)"
            else:
                reason = f"no file in {source.label}{d}/ matches {req.pattern!r}"
            unplanned.append(Unplanned(what, reason))
        for p, (size, why) in found.items():
            want(p, req.fileset, size, why)

    def sized(item: tuple[str, tuple[str, int | None, str]]) -> Planned:
        path, (fileset, size, why) = item
        error, digest = None, None
        if size is None:
            try:
                st = retrying(lambda: source.stat(path), f"size of {source.label}{path}")
                size, digest = st.size, st.digest
            except Missing as exc:
                error = f"not found at source: {exc}" + (f" ({why})" if why.startswith("named in") else "")
            except SourceError as exc:
                error = f"size unknown: {exc}"
        sha = sums.get(path, (None, None))[0]
        basis = "published" if sha else "source" if digest else "computed"
        return Planned(path, fileset, "data", size, sha, basis, error, digest)

    planned = dict(lists)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for p in pool.map(sized, wanted.items()):
            planned.setdefault(p.path, p)
    return Plan(sorted(planned.values(), key=lambda p: p.path), unplanned, unsummed)


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
