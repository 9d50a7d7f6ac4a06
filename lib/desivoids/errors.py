"""One family of exceptions for the whole pipeline, so that every verb fails one way.

- :class:`DesivoidsError` is the base: the command line reports any of them on stderr and exits 1.
- :class:`InputError`: bad input. Names the file, the part of it (FITS HDU, Parquet or database
  table), the column and the row where known, and can carry several problems at once, so a user
  fixes everything in one pass instead of one error per rerun.
- :class:`StageError`: a stage that could not finish for a reason other than its input (a source
  that cannot be reached, an incomplete download, a failed check).
- :class:`UsageError`: parameters that cannot be run (unknown name, wrong type); exit status 2.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["DesivoidsError", "InputError", "FormatError", "LoadError", "StageError", "UsageError",
           "UnsafePathError", "EXIT_FAILED", "EXIT_USAGE"]

EXIT_FAILED = 1  # bad input or a failed stage
EXIT_USAGE = 2  # parameters or arguments that cannot be run


class DesivoidsError(Exception):
    """Base of every error the pipeline raises on purpose."""


class UsageError(DesivoidsError, ValueError):
    """Parameters or arguments that cannot be run; the message names the key."""


class StageError(DesivoidsError, RuntimeError):
    """A stage could not finish (not because of a bad input file)."""


class InputError(DesivoidsError, ValueError):
    """Bad input: where it is (file, HDU or table, column, row) and what is wrong.

    ``problems`` holds further errors of the same input, reported together (see :meth:`all`).
    ``part_label`` says what the second coordinate is: an ``HDU`` of a FITS file, a ``table``.
    """

    part_label = "HDU"

    def __init__(self, file: str | Path | None, hdu: str | None, column: str | None,
                 message: str, row: int | None = None, problems: tuple["InputError", ...] = ()):
        self.file = None if file is None else str(file)
        self.hdu = hdu
        self.column = column
        self.message = message
        self.row = row
        self.problems = tuple(problems)
        super().__init__(str(self))

    def where(self) -> str:
        """'file F, HDU H, column C, row R', leaving out the parts that do not apply."""
        parts = [("file", self.file), (self.part_label, self.hdu), ("column", self.column),
                 ("row", self.row)]
        return ", ".join(f"{k} {v}" for k, v in parts if v is not None) or "input"

    def __str__(self) -> str:
        head = f"{self.where()}: {self.message}"
        if not self.problems:
            return head
        rest = "\n".join(f"  - {p.where()}: {p.message}" for p in self.problems)
        return f"{len(self.problems) + 1} problems:\n  - {head}\n{rest}"

    def amended(self, note: str) -> "InputError":
        """The same error with ``note`` appended to its message."""
        return type(self)(self.file, self.hdu, self.column, f"{self.message}; {note}", self.row,
                          self.problems)

    @classmethod
    def all(cls, errors: list["InputError"]) -> "InputError":
        """One error carrying every problem found (the first is the headline)."""
        first, *rest = errors
        return cls(first.file, first.hdu, first.column, first.message, first.row,
                   tuple(first.problems) + tuple(rest))

    def __reduce__(self):  # survive pickling through Dask process and distributed workers
        return (type(self), (self.file, self.hdu, self.column, self.message, self.row,
                             self.problems))


class FormatError(InputError):
    """A FITS file does not match the documented DESI format (or is internally inconsistent)."""


class LoadError(InputError):
    """A Parquet input that cannot be loaded, or a load that failed; the database is left as it
    was. The second coordinate is the table."""

    part_label = "table"

    @property
    def table(self) -> str | None:
        return self.hdu


class UnsafePathError(InputError):
    """A path that a source, a listing, a checksum list or a parameter supplied and that would
    lead outside the folder it is read from or written to (``..``, an absolute path, a symlink
    leading out, an empty or ``.`` name). The first coordinate is the source, the second the key."""

    def __init__(self, source: str | Path | None, key: str | None, message: str,
                 problems: tuple["InputError", ...] = ()):
        super().__init__(source, None, key, message, None, problems)

    def where(self) -> str:
        parts = [("source", self.file), ("key", None if self.column is None else repr(self.column))]
        return ", ".join(f"{k} {v}" for k, v in parts if v is not None) or "input"

    @classmethod
    def all(cls, errors: list["InputError"]) -> "UnsafePathError":
        first, *rest = errors
        return cls(first.file, first.column, first.message, tuple(first.problems) + tuple(rest))

    def amended(self, note: str) -> "UnsafePathError":
        return type(self)(self.file, self.column, f"{self.message}; {note}", self.problems)

    def __reduce__(self):
        return (type(self), (self.file, self.column, self.message, self.problems))


def describe(exc: BaseException) -> str:
    """One line saying what went wrong, for an exception the pipeline did not raise on purpose:
    the file of an OSError (and ``no space left on device``), the first line of any other
    message, and where in the library it happened with the path that frame was working on (the
    innermost ``desivoids`` frame holding a local ``path``, ``file``, ``filename``, ``source`` or
    ``url``), so a user sees the culprit without the traceback."""
    import os

    if isinstance(exc, OSError) and (exc.filename is not None or exc.strerror):
        what = exc.strerror or type(exc).__name__
        head = f"{type(exc).__name__}: {what}" + (f": {exc.filename}" if exc.filename is not None else "")
        if exc.filename2 is not None:
            head += f" -> {exc.filename2}"
    else:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        head = f"{type(exc).__name__}: {lines[0] if lines else '(no message)'}"
    head = head if len(head) <= 400 else head[:397] + "..."
    loc, hit, tb = None, None, exc.__traceback__
    while tb is not None:  # outermost to innermost: keep the innermost of each
        frame = tb.tb_frame
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] == "desivoids":
            loc = f"{module}:{tb.tb_lineno} in {frame.f_code.co_name}"
            hit = next(((k, frame.f_locals[k]) for k in ("path", "file", "filename", "source", "url")
                        if isinstance(frame.f_locals.get(k), (str, os.PathLike))), None) or hit
        tb = tb.tb_next
    if loc is not None:
        head = f"{head} (at {loc}" + (f"; {hit[0]} {os.fspath(hit[1])}" if hit else "") + ")"
    return _masked(head)


def _masked(text: str) -> str:
    """A password written in a URL (``scheme://user:secret@host``) shown as ``user:***@host``."""
    import re

    return re.sub(r"(://[^:/@\s]+):[^@\s]*@", r"\1:***@", text)
