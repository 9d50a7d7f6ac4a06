"""Rows that cannot enter an output table, each with the column and the reason.

Checks run in a fixed order and a row is charged to the first check it fails, so each source row
is counted exactly once (the reconciliation balances by construction, and is then re-verified
against the written files).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .arrays import constant_strings
from .columns import REJECTS
from ..errors import FormatError

__all__ = ["NONFINITE", "OUT_OF_RANGE", "Check", "classify", "reject_table", "empty_rejects"]

NONFINITE = "nonfinite"
OUT_OF_RANGE = "out_of_range"


@dataclass(frozen=True)
class Check:
    """A row fails when ``bad`` is true: charged to ``column`` with ``reason``."""

    column: str
    reason: str
    bad: np.ndarray
    hdu: str | None = None  # the HDU holding ``column``, when not the table's default HDU


def classify(checks: list[Check], n: int, *, strict: bool, file: str, hdu: str,
             first_row: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(keep mask, per-row check index of the first failure or -1, failing row indices).

    With ``strict`` any failure raises FormatError naming the file, HDU and column instead.
    """
    which = np.full(n, -1, dtype=np.int16)
    for i, chk in enumerate(checks):
        hit = chk.bad & (which < 0)
        if strict and hit.any():
            rows = np.flatnonzero(hit)
            raise FormatError(file, chk.hdu or hdu, chk.column,
                              f"{rows.size} row(s) {chk.reason} (first at row {first_row + rows[0]}); "
                              "strict mode rejects no rows")
        which[hit] = i
    keep = which < 0
    return keep, which, np.flatnonzero(~keep)


def reject_table(table: str, source_file: str, hdu: str, source_rows: np.ndarray,
                 keys: np.ndarray | None, checks: list[Check], which: np.ndarray) -> pa.Table:
    """Rejects rows for the failing rows (``which`` >= 0 at those rows, indexed like the rows)."""
    n = len(source_rows)
    cols = np.array([c.column for c in checks] or [""], dtype=object)
    reasons = np.array([c.reason for c in checks] or [""], dtype=object)
    hdus = np.array([c.hdu or hdu for c in checks] or [hdu], dtype=object)
    return pa.Table.from_arrays([
        constant_strings(table, n),
        constant_strings(source_file, n),
        pa.array(hdus[which], pa.string()),
        pa.array(np.asarray(source_rows, dtype=np.int64)),
        pa.array(np.asarray(keys, dtype=np.int64)) if keys is not None else pa.nulls(n, pa.int64()),
        pa.array(cols[which], pa.string()),
        pa.array(reasons[which], pa.string()),
    ], schema=REJECTS)


def empty_rejects() -> pa.Table:
    return REJECTS.empty_table()


def reason_counts(rejects: pa.Table) -> dict[str, int]:
    """{'<reason>:<column>': rows} of a rejects table."""
    if rejects.num_rows == 0:
        return {}
    keys = [f"{r}:{c}" for r, c in zip(rejects.column("reason").to_pylist(),
                                       rejects.column("column").to_pylist())]
    u, k = np.unique(np.array(keys, dtype=object), return_counts=True)
    return {str(a): int(b) for a, b in zip(u, k)}
