"""acquire: resumable, verified bulk download of DESI DR1 files, and tile spectra to Parquet.

Modules: ``filesets`` (named sets -> relative paths and checksum-file locations), ``sources``
(HTTPS, anonymous S3, fsspec behind one interface), ``plan`` (sizes and published sha256 from
metadata), ``manifest`` (SQLite state), ``transfer`` (.part, verify, rename, retries, disk guard),
``spectra`` (coadd + redrock -> Parquet), ``run`` (the stage as functions), ``cli``.
"""
from .cli import cli_main

__all__ = ["cli_main"]
