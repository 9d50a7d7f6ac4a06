"""convert: FastSpecFit and DESIVAST FITS catalogues -> Parquet tables with a row ledger.

Public API: :func:`convert` (a run folder), :func:`convert_files` (explicit files),
:class:`FormatError`, the output contract in :mod:`desivoids.convert.columns`, and
:func:`cli_main` for ``desivoids convert``.
"""
from .columns import TABLES, column_dictionary, galaxy_schema, schema_of
from .errors import FormatError
from .reconcile import ReconciliationError
from .run import ConvertResult, convert, convert_files, discover


def cli_main(argv=None) -> int:
    from .cli import cli_main as _main

    return _main(argv)


__all__ = ["convert", "convert_files", "discover", "ConvertResult", "FormatError",
           "ReconciliationError", "TABLES", "schema_of", "galaxy_schema", "column_dictionary",
           "cli_main"]
