"""The one exception the load stage raises for bad input or a failed load."""
from __future__ import annotations

from pathlib import Path


class LoadError(ValueError):
    """A load failed; the database was rolled back to its state before the load.

    Names the Parquet file, the table and the column concerned (``-`` where not applicable).
    """

    def __init__(self, file: str | Path | None, table: str | None, column: str | None,
                 message: str):
        self.file = None if file is None else str(file)
        self.table = table
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"file {self.file or '-'}, table {self.table or '-'}, column {self.column or '-'}: "
                f"{self.message}")

    def __reduce__(self):
        return (type(self), (self.file, self.table, self.column, self.message))
