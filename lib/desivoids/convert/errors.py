"""The one exception convert raises for bad input, naming where the problem is.

Every bad-input error of the convert stage says which file, which HDU (by EXTNAME) and which
column, so a reader can go straight to the offending bytes; ``None`` parts print as ``-``.
"""
from __future__ import annotations

from pathlib import Path


class FormatError(ValueError):
    """A source file does not match the documented DESI format (or is internally inconsistent)."""

    def __init__(self, file: str | Path | None, hdu: str | None, column: str | None, message: str):
        self.file = None if file is None else str(file)
        self.hdu = hdu
        self.column = column
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        return (f"file {self.file or '-'}, HDU {self.hdu or '-'}, column {self.column or '-'}: "
                f"{self.message}")

    def __reduce__(self):  # survive pickling through dask process/distributed workers
        return (type(self), (self.file, self.hdu, self.column, self.message))
