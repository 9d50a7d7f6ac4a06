"""The acquire stage as functions: plan (dry run), transfer (resumable), convert tile spectra.

The notebook and the command line call these, so a mock run (the source is the mock mirror, a
local folder) and a real run (DESI's HTTPS portal or S3 bucket) go through the same code.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..paths import RunLayout
from .manifest import CHECKSUM, Manifest
from .plan import Planned, plan, requests_for
from .sources import Source, make_source
from .spectra import Selection, SpectraSummary, convert_all, pairs_from_manifest
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
            raise FileNotFoundError(f"{mirror}: no mock mirror; write one with `desivoids mock` or give a source "
                                    "('https', 's3', a URL or a folder)")
        source = str(mirror)
    return make_source(source, s3_endpoint=s3_endpoint, timeout=timeout)


@dataclass
class DryRun:
    """What a run would fetch; made from metadata only, writes nothing."""

    planned: list[Planned]
    verified: set[str]
    free: int
    min_free: int
    rate: float
    rate_measured: bool
    missing: list[Planned] = field(default_factory=list)

    def __post_init__(self):
        self.missing = [p for p in self.planned if p.size is None]

    @property
    def to_fetch(self) -> list[Planned]:
        return [p for p in self.planned if p.size is not None and p.path not in self.verified]

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
        """One row per file: path, set, kind, bytes, checksum origin, status."""
        out = []
        for p in self.planned:
            status = ("not found at source" if p.size is None else
                      "verified" if p.path in self.verified else "to fetch")
            out.append({"path": p.path, "set": p.fileset, "kind": p.kind, "bytes": p.size,
                        "checksum": p.checksum, "status": status})
        return out

    def totals(self) -> list[dict]:
        """Deterministic totals (no free-disk figure, no time: those depend on the machine)."""
        return [{"quantity": q, "value": v} for q, v in (
            ("files", len(self.planned)), ("bytes", self.total_bytes),
            ("with a published sha256", sum(p.checksum == "published" for p in self.planned if p.kind == "data")),
            ("already verified", len(self.verified & {p.path for p in self.planned})),
            ("to fetch (files)", len(self.to_fetch)), ("to fetch (bytes)", self.fetch_bytes),
            ("not found at source", len(self.missing)),
            ("fits on disk (keeping the reserve free)", "yes" if self.fits else "NO"))]

    def __str__(self) -> str:
        lines = [f"{'bytes':>14}  {'checksum':<9}  {'status':<10}  path"]
        for r in self.rows():
            size = "?" if r["bytes"] is None else f"{r['bytes']:,}"
            lines.append(f"{size:>14}  {r['checksum']:<9}  {r['status']:<10}  {r['path']}")
        est = f"{self.seconds:,.0f} s at {_human(self.rate)}/s ({'measured' if self.rate_measured else 'assumed'})"
        lines += ["",
                  f"files {len(self.planned)}, {_human(self.total_bytes)}; to fetch {len(self.to_fetch)} files, "
                  f"{_human(self.fetch_bytes)}; not found at source {len(self.missing)}",
                  f"free disk {_human(self.free)} (reserve {_human(self.min_free)}): "
                  f"{'fits' if self.fits else 'DOES NOT FIT'}; estimated time {est}",
                  "dry run: nothing downloaded"]
        return "\n".join(lines)


def _plan(source: Source, sets: Sequence[str], workers: int, **set_params) -> list[Planned]:
    return plan(source, requests_for(source, sets, **set_params), workers=max(4, workers))


def dry_run(source: Source, dest: str | Path, manifest_path: str | Path, sets: Sequence[str], *,
            workers: int = 4, min_free: int = Options.min_free, **set_params) -> DryRun:
    """List files, sizes, totals, free disk and an estimated time; download and write nothing."""
    planned = _plan(source, sets, workers, **set_params)
    verified: set[str] = set()
    rate = None
    if Path(manifest_path).exists():
        with Manifest(manifest_path, readonly=True) as m:
            verified = {r.path for r in m.files(["verified", "empty"])}
            rate = m.throughput()
    d = Path(dest)
    while not d.exists():
        d = d.parent
    return DryRun(planned, verified, shutil.disk_usage(d).free, min_free, rate or ASSUMED_RATE, rate is not None)


def acquire(source: Source, dest: str | Path, manifest_path: str | Path, sets: Sequence[str], *,
            resume: bool = False, options: Options | None = None, **set_params) -> Summary:
    """Plan (unless resuming a manifest that already has files) and fetch everything not verified.

    ``resume``: trust the manifest's plan (no listing, no size requests) and finish it; a kill -9
    at any instant is resumable this way, and nothing verified is fetched again.
    """
    options = options or Options()
    with Manifest(manifest_path) as m:
        m.lock()
        planned = None
        if not (resume and m.totals()[0]):
            planned = _plan(source, sets, options.workers, **set_params)
        params = {"sets": list(sets), "resume": resume, "workers": options.workers, "retries": options.retries,
                  **{k: list(v) if isinstance(v, (tuple, list)) else v for k, v in set_params.items()}}
        return Transfer(source, m, dest, options).run(params, planned)


def manifest_rows(manifest_path: str | Path, states: Sequence[str] | None = None) -> list[dict]:
    """The manifest's files as plain rows (path, set, kind, bytes, checksum, state, sha256, error)."""
    with Manifest(manifest_path, readonly=True) as m:
        return [{"path": r.path, "set": r.fileset, "kind": r.kind, "bytes": r.size,
                 "checksum": CHECKSUM[r.checksum], "state": r.state, "sha256": r.sha256,
                 "attempts": r.attempts, "error": r.last_error} for r in m.files(states)]


def convert_spectra(data_dir: str | Path, selection: Selection = Selection(), *, workers: int = 2,
                    redo: bool = False, progress: bool = False, raw: str | Path | None = None,
                    out: str | Path | None = None, manifest_path: str | Path | None = None) -> SpectraSummary:
    """Convert every verified coadd + redrock pair of the manifest to Parquet under
    ``parquet/spectra`` (resumable; the conversion state lives in the same manifest)."""
    layout = RunLayout.of(data_dir)
    raw = Path(raw) if raw else layout.raw
    out = Path(out) if out else layout.parquet / "spectra"
    with Manifest(manifest_path or layout.manifest) as m:
        m.lock()
        pairs = pairs_from_manifest(m)
        return convert_all(pairs, raw, out, m, selection, workers=workers, redo=redo, progress=progress)
