"""acquire: resumable, verified bulk download of DESI DR1 files, and tile spectra to Parquet.

Modules: ``filesets`` (named sets -> relative paths and checksum-file locations), ``sources``
(HTTPS, anonymous S3, fsspec behind one interface), ``plan`` (sizes and published sha256 from
metadata), ``manifest`` (SQLite state), ``transfer`` (.part, verify, rename, retries, disk guard),
``spectra`` (coadd + redrock -> Parquet), ``steps`` (the stage: :func:`run`), ``cli`` (the extra
verbs ``desivoids acquire spectra`` and ``desivoids acquire status``).
"""
from .steps import AcquireResult, run

__all__ = ["run", "AcquireResult"]
