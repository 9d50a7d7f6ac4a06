"""acquire: resumable, verified bulk download of DESI DR1 files, and tile spectra to Parquet.

Modules: ``filesets`` (named sets -> relative paths, checksum-list locations, the strict list
parser), ``sources`` (HTTPS, anonymous S3, fsspec behind one interface; source digests; an
unreachable source told from a faulty request), ``plan`` (checksum lists first, then listings
and HEAD; what could not be planned and why), ``manifest`` (SQLite state, schema versions and
their migration), ``transfer`` (.part, verify or complete, rename, retries, disk guard),
``spectra`` (coadd + redrock -> Parquet), ``steps`` (plan, transfer, spectra as functions),
``stage`` (the stage: :func:`run` and its result type), ``cli`` (the extra
verbs ``desivoids acquire spectra`` and ``desivoids acquire status``).
"""
from .stage import AcquireResult, run

__all__ = ["run", "AcquireResult"]
