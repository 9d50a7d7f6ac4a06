"""The acquire stage's steps: plan (dry run), transfer (resumable), convert tile spectra, each
callable on its own (tests, benchmarks); :mod:`.stage` (``run``) runs them in turn."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import StageError, UnsafePathError
from ..paths import RunLayout, contained, display, resolve
from .manifest import CHECKSUM, PRESENT, Manifest
from .plan import Listings, Plan, Planned, plan, requests_for
from .sources import Source, make_source
from .spectra import Selection, SpectraSummary, convert_all, find_pairs, pairs_from_manifest
from .transfer import Options, Summary, Transfer, _human

#: bytes/s assumed for the time estimate until a transfer into this manifest has been measured
ASSUMED_RATE = 20e6


def source_for(source: str, data_dir: str | Path, *, s3_endpoint: str | None = None,
               timeout: tuple[float, float] = (10.0, 60.0)) -> Source:
    """``""`` means the run's mock mirror (a local folder in DESI's layout); anything else as
    :func:`desivoids.acquire.sources.make_source`."""
    if not str(source).strip():
        mirror = RunLayout.of(data_dir).mirror
        if not mirror.is_dir():
            raise StageError(f"{display(mirror)}: no mock mirror; write one with `desivoids mock` or give a "
                             "source ('https', 's3', a URL or a folder)")
        source = str(mirror)
    return make_source(source, s3_endpoint=s3_endpoint, timeout=timeout)


@dataclass
class DryRun:
    """What a run would fetch; made from metadata only, writes nothing."""

    plan: Plan
    present: dict[str, str]  # path -> state of the files already in place (verified, complete, empty)
    free: int
    min_free: int
    rate: float
    rate_measured: bool

    @property
    def planned(self) -> list[Planned]:
        return self.plan.files

    @property
    def missing(self) -> list[Planned]:
        return [p for p in self.planned if p.size is None]

    @property
    def to_fetch(self) -> list[Planned]:
        return [p for p in self.planned if p.size is not None and p.path not in self.present]

    @property
    def total_bytes(self) -> int:
        return sum(p.size or 0 for p in self.planned)

    @property
    def fetch_bytes(self) -> int:
        return sum(p.size for p in self.to_fetch)

    @property
    def fits(self) -> bool:
        return self.free - self.fetch_bytes >= self.min_free

    @property
    def seconds(self) -> float:
        return self.fetch_bytes / self.rate if self.rate else 0.0

    def rows(self) -> list[dict]:
        """One row per file: path, set, kind, bytes, what it will be checked against, status."""
        out = []
        for p in self.planned:
            status = ("not found at source" if p.size is None else
                      self.present[p.path] if p.path in self.present else "to fetch")
            out.append({"path": p.path, "set": p.fileset, "kind": p.kind, "bytes": p.size,
                        "checksum": p.checksum, "status": status})
        return out

    def totals(self) -> list[dict]:
        """Deterministic totals (no free-disk figure, no time: those depend on the machine)."""
        data = [p for p in self.planned if p.kind == "data"]
        here = {p.path for p in self.planned} & set(self.present)
        return [{"quantity": q, "value": v} for q, v in (
            ("files", len(self.planned)), ("bytes", self.total_bytes),
            ("with a published sha256", sum(p.checksum == "published" for p in data)),
            ("with a source digest", sum(p.checksum == "source" for p in data)),
            ("with nothing to verify against yet", sum(p.checksum == "computed" for p in data)),
            ("already verified", sum(self.present[p] == "verified" for p in here)),
            ("already complete", sum(self.present[p] == "complete" for p in here)),
            ("to fetch (files)", len(self.to_fetch)), ("to fetch (bytes)", self.fetch_bytes),
            ("not found at source", len(self.missing)),
            ("could not be planned", len(self.plan.unplanned)),
            ("fits on disk (keeping the reserve free)", "yes" if self.fits else "NO"))]

    def __str__(self) -> str:
        lines = [f"{'bytes':>14}  {'checksum':<9}  {'status':<10}  path"]
        for r in self.rows():
            size = "?" if r["bytes"] is None else f"{r['bytes']:,}"
            lines.append(f"{size:>14}  {r['checksum']:<9}  {r['status']:<10}  {r['path']}")
        est = f"{self.seconds:,.0f} s at {_human(self.rate)}/s ({'measured' if self.rate_measured else 'assumed'})"
        lines += [""] + [f"NOT PLANNED {u.what}: {u.reason}" for u in self.plan.unplanned]
        lines += [f"no checksum list in {d}/: its files can be complete, not verified (unless the source "
                  "offers a digest)" for d in self.plan.unsummed]
        lines += [f"files {len(self.planned)}, {_human(self.total_bytes)}; to fetch {len(self.to_fetch)} files, "
                  f"{_human(self.fetch_bytes)}; not found at source {len(self.missing)}; could not be planned "
                  f"{len(self.plan.unplanned)}",
                  f"free disk {_human(self.free)} (reserve {_human(self.min_free)}): "
                  f"{'fits' if self.fits else 'DOES NOT FIT'}; estimated time {est}",
                  "dry run: nothing downloaded"]
        return "\n".join(lines)


def _plan(source: Source, sets: Sequence[str], workers: int, **set_params) -> Plan:
    listings = Listings(source)
    return plan(source, requests_for(source, sets, listings=listings, **set_params), workers=max(4, workers),
                listings=listings)


def plan_run(source: Source, dest: str | Path, manifest_path: str | Path, sets: Sequence[str], *,
            workers: int = 4, min_free: int = Options.min_free, **set_params) -> DryRun:
    """List files, sizes, totals, free disk and an estimated time; download and write nothing."""
    planned = _plan(source, sets, workers, **set_params)
    present: dict[str, str] = {}
    rate = None
    if Path(manifest_path).exists():
        with Manifest(manifest_path, readonly=True) as m:
            present = {r.path: r.state for r in m.files(PRESENT)}
            rate = m.throughput()
    errors = []
    for p in planned.files:  # a dry run refuses what the transfer would refuse
        try:
            contained(dest, p.path, source=source.where(p.path), key=p.path)
        except UnsafePathError as exc:
            errors.append(exc)
    if errors:
        raise UnsafePathError.all(errors)
    d = Path(dest)
    while not d.exists():
        d = d.parent
    return DryRun(planned, present, shutil.disk_usage(d).free, min_free, rate or ASSUMED_RATE, rate is not None)


def acquire(source: Source, dest: str | Path, manifest_path: str | Path, sets: Sequence[str], *,
            resume: bool = False, options: Options | None = None,
            planned: Plan | list[Planned] | None = None, **set_params) -> Summary:
    """Plan (unless resuming a manifest that already has files, or given ``planned``) and fetch
    everything not in place.

    ``resume``: trust the manifest's plan (no listing, no size requests) and finish it; a kill -9
    at any instant is resumable this way, and nothing in place is fetched again.
    """
    options = options or Options()
    with Manifest(manifest_path) as m:
        m.lock()
        if planned is None and not (resume and m.totals()[0]):
            planned = _plan(source, sets, options.workers, **set_params)
        params = {"sets": list(sets), "resume": resume, "workers": options.workers, "retries": options.retries,
                  **{k: list(v) if isinstance(v, (tuple, list)) else v for k, v in set_params.items()}}
        return Transfer(source, m, dest, options).run(params, planned)


def manifest_rows(manifest_path: str | Path, states: Sequence[str] | None = None) -> list[dict]:
    """The manifest's files as plain rows (path, set, kind, bytes, checksum, state, sha256,
    source digest, error); ``checksum`` says what the bytes were checked against."""
    with Manifest(manifest_path, readonly=True) as m:
        return [{"path": r.path, "set": r.fileset, "kind": r.kind, "bytes": r.size,
                 "checksum": CHECKSUM[r.checksum], "state": r.state, "sha256": r.sha256,
                 "against": {"published": "published sha256",
                             "source": f"source {r.digest_from} "
                                       f"({(r.source_digest or '').split(':')[0]})",
                             "computed": "nothing"}[r.checksum] if r.state in PRESENT else None,
                 "source_digest": f"{r.source_digest} ({r.digest_from})" if r.source_digest else None,
                 "attempts": r.attempts, "error": r.last_error} for r in m.files(states)]


def convert_spectra(data_dir: str | Path, selection: Selection = Selection(),
                    *, inputs: Sequence[str | Path] = (),
                    workers: int = 2, redo: bool = False, progress: bool | None = None,
                    manifest_path: str | Path | None = None,
                    scheduler_address: str = "") -> SpectraSummary:
    """Convert coadd + redrock pairs to Parquet under ``RunLayout.spectra`` (resumable; the
    conversion records live in the acquire manifest). ``inputs``: folders (every pair below
    them, by DESI's names) or explicit coadd and redrock files; none: every pair the transfer
    put in place."""
    layout = RunLayout.of(data_dir)
    with Manifest(manifest_path or layout.manifest) as m:
        m.lock()
        unpaired: list[tuple[str, str]] = []
        if inputs:
            pairs, unpaired = find_pairs(inputs, layout.raw)
        else:
            pairs = pairs_from_manifest(m)
        return convert_all(pairs, layout.raw, layout.spectra, m, selection, workers=workers, redo=redo,
                           progress=progress, unpaired=unpaired,
                           scheduler_address=scheduler_address)


def read_tiles_file(items: Sequence[str]) -> list[str]:
    """Tile specs, where an item ``@FILE`` is replaced by the tiles listed in FILE: one
    TILEID[/YYYYMMDD[/PETALS]] per line, or DESI's tiles-iron.csv (columns TILEID, LASTNIGHT)."""
    import csv

    out = []
    for it in items:
        if not str(it).startswith("@"):
            out.append(str(it))
            continue
        text = resolve(str(it)[1:]).read_text()
        if text.lstrip().upper().startswith("TILEID"):
            out += [f"{r['TILEID']}/{r['LASTNIGHT']}" for r in csv.DictReader(text.splitlines())]
        else:
            out += [line.strip() for line in text.splitlines()
                    if line.strip() and not line.startswith("#")]
    return out
