"""convert: FastSpecFit and DESIVAST FITS catalogues -> Parquet tables with a row ledger.

Public API: :func:`run` (the stage: ``desivoids convert``, the notebook; in :mod:`.stage` with
its result type), :func:`convert_files` (explicit files into any folder, :mod:`.build`),
:class:`~desivoids.errors.FormatError`, and the output contract in
:mod:`desivoids.convert.columns`.
"""
from ..errors import FormatError
from .build import convert_files, discover
from .columns import TABLES, column_dictionary, galaxy_schema, schema_of
from .reconcile import ReconciliationError
from .stage import ConvertResult, run

__all__ = ["run", "convert_files", "discover", "ConvertResult", "FormatError",
           "ReconciliationError", "TABLES", "schema_of", "galaxy_schema", "column_dictionary"]
