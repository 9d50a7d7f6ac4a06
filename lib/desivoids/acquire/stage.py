"""The acquire stage: plan (dry run), transfer (resumable), convert tile spectra.

:func:`run` is the stage's entry point (the notebook and ``desivoids acquire`` call it), so a
mock run (the source is the mock mirror, a local folder) and a real run (DESI's HTTPS portal or
S3 bucket) go through the same code. Everything it writes is below ``<data_dir>/acquire``:
``raw/`` (fetched files in DESI's relative layout, each ``verified`` or ``complete`` in the
manifest), ``manifest.sqlite`` and ``spectra/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import StageError
from ..params import checked
from ..paths import RunLayout
from .spectra import Selection, SpectraSummary
from .steps import DryRun, acquire, convert_spectra, plan_run, read_tiles_file, source_for
from .transfer import Options, Summary


@dataclass
class AcquireResult:
    """What one acquire run planned, fetched and converted."""

    data_dir: Path
    plan: DryRun | None  # None when resuming a manifest's plan
    summary: Summary | None = None  # None for a dry run
    spectra: SpectraSummary | None = None

    @property
    def manifest(self) -> Path:
        return RunLayout(self.data_dir).manifest

    @property
    def spectra_dir(self) -> Path:
        return RunLayout(self.data_dir).spectra

    def __str__(self) -> str:
        parts = [str(p) for p in (self.plan if self.summary is None else None, self.summary,
                                  self.spectra) if p is not None]
        return "\n".join(parts)


@checked("acquire")
def run(data_dir: str = "data/mock", source: str = "", s3_endpoint: str = "",
        sets: Sequence[str] = ("desivast", "fastspecfit"), desivast_version: str = "v1.0",
        fastspec_version: str = "v3.0", hp: Sequence[int] = (), tiles: Sequence[str] = (),
        max_tiles: int = 0, petals: Sequence[int] = (), healpix: Sequence[str] = (),
        dirs: Sequence[str] = (), workers: int = 4, retries: int = 5, backoff: float = 0.5,
        connect_timeout: float = 10.0, read_timeout: float = 60.0, chunk_kb: int = 1024,
        min_free_gb: float = 1.0,
        dry_run: bool = False, resume: bool = False, rehash: bool = False, spectra: bool = True,
        spectype: Sequence[str] = ("GALAXY",), zwarn_zero: bool = True,
        min_deltachi2: float = 40.0, scheduler_address: str = "") -> AcquireResult:
    """The acquire stage (parameters as the notebook declares them).

    Plans the named file sets at the source, fetches every file not yet in place into
    ``RunLayout.raw`` (``dry_run``: plan only), and converts the fetched coadd + redrock pairs
    to Parquet in ``RunLayout.spectra`` (``spectra``; on the dask.distributed cluster of
    ``scheduler_address`` when given). Raises StageError when files are missing
    at the source or a request could not be planned (a dry run included), files could not be
    fetched, the source is unreachable, or a pair failed to convert.
    """
    layout = RunLayout.of(data_dir)
    src = source_for(source, layout.data_dir, s3_endpoint=s3_endpoint or None,
                     timeout=(connect_timeout, read_timeout))
    src.chunk = chunk_kb * 1024
    set_params = dict(desivast_version=desivast_version, fastspec_version=fastspec_version,
                      hp=list(hp), tiles=read_tiles_file(tiles), petals=list(petals),
                      max_tiles=max_tiles or None, healpix=list(healpix), dirs=list(dirs))
    options = Options(workers=workers, retries=retries, backoff=backoff,
                      min_free=int(min_free_gb * 1e9), progress=None, rehash=rehash)
    planned = None
    if dry_run or not (resume and layout.manifest.exists()):
        planned = plan_run(src, layout.raw, layout.manifest, sets, workers=workers,
                           min_free=options.min_free, **set_params)
    result = AcquireResult(layout.data_dir, planned)
    if dry_run:
        problems = [f"{len(planned.missing)} planned file(s) not found at {src.label}: " +
                    "; ".join(p.path for p in planned.missing[:10])] if planned.missing else []
        problems += [f"could not plan {u.what}: {u.reason}" for u in planned.plan.unplanned]
        if problems:
            raise StageError("acquire dry run: " + " | ".join(problems))
        return result
    result.summary = acquire(src, layout.raw, layout.manifest, sets, resume=resume, options=options,
                             planned=None if planned is None else planned.plan, **set_params)
    if result.summary.status != "done":
        s = result.summary
        if s.unreachable:
            raise StageError(f"acquire stopped: {s.note}; {s.remaining} file(s) still to fetch, rerun with "
                             "resume = True once the source is back")
        details = [f"{p}: {why}" for p, why in s.failed[:10]] + \
            [f"could not plan {w}: {why}" for w, why in s.unplanned[:10]] + ([f"note: {s.note}"] if s.note else [])
        raise StageError(f"acquire did not finish ({s.status}): {len(s.failed)} failed, {len(s.unplanned)} "
                         f"could not be planned, {s.remaining} still to fetch; rerun with resume = True. " +
                         "; ".join(details))
    if spectra and any(s in sets for s in ("tiles", "healpix", "dir")):
        result.spectra = convert_spectra(layout.data_dir, Selection(tuple(spectype), zwarn_zero,
                                                                    min_deltachi2),
                                         workers=min(workers, 2),
                                         scheduler_address=scheduler_address)
        if result.spectra.failed:
            raise StageError(f"spectra conversion failed for {len(result.spectra.failed)} pair(s): "
                             + "; ".join(f"{c}: {e}" for c, e in result.spectra.failed))
    return result
