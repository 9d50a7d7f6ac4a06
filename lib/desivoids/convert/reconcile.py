"""Row accounting: for each source file, HDU and output table, rows in = rows out + rejected.

The ledger is filled while converting and then checked three times: against the source's own
row count (each FITS HDU's NAXIS2, recorded by :meth:`Ledger.expect` before any row is read,
so rows that were never read cannot pass as rows that never existed), arithmetically (every
entry must balance exactly) and against the files actually written (Parquet row counts per source file must
equal the ``rows_out`` claimed). Either failure raises: a conversion that cannot account for every
row is not allowed to publish its output.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import StageError

__all__ = ["Entry", "Ledger", "ReconciliationError"]


class ReconciliationError(StageError):
    """The row counts do not balance: a bug in convert, never a property of the input."""


@dataclass
class Entry:
    table: str
    source_file: str
    hdu: str
    rows_in: int = 0
    rows_out: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_rejected


@dataclass
class Ledger:
    entries: dict[tuple[str, str, str], Entry] = field(default_factory=dict)
    skipped_hdus: list[dict] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    #: (table, source_file, hdu) -> rows the source says it holds (its header)
    source_rows: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def expect(self, table: str, source_file: str, hdu: str, rows: int) -> None:
        """The rows the source's header declares: what the entry's rows_in must add up to."""
        key = (table, source_file, hdu)
        self.entries.setdefault(key, Entry(table, source_file, hdu))
        self.source_rows[key] = self.source_rows.get(key, 0) + int(rows)

    def add(self, table: str, source_file: str, hdu: str, rows_in: int, rows_out: int,
            rejected: dict[str, int] | None = None) -> None:
        e = self.entries.setdefault((table, source_file, hdu), Entry(table, source_file, hdu))
        e.rows_in += int(rows_in)
        e.rows_out += int(rows_out)
        for k, v in (rejected or {}).items():
            e.rejected[k] = e.rejected.get(k, 0) + int(v)

    def skip(self, source_file: str, hdu: str, rows: int, why: str) -> None:
        """An HDU deliberately not converted (e.g. DESIVAST's TRIANGLE/GALVIZ visualisation)."""
        self.skipped_hdus.append({"source_file": source_file, "hdu": hdu, "rows": int(rows),
                                  "why": why})

    def check(self, written: dict[tuple[str, str], int] | None = None) -> None:
        """Raise ReconciliationError unless every entry balances and matches what was written.

        ``written`` maps (table, source_file) to the row count found in the output files.
        """
        unread = {f"{k[0]}:{k[1]}:{k[2]}": (self.entries[k].rows_in, n)
                  for k, n in self.source_rows.items() if self.entries[k].rows_in != n}
        if unread:
            raise ReconciliationError(f"rows read vs rows in the source's header: {unread}")
        bad = [e for e in self.entries.values() if not e.balanced]
        if bad:
            raise ReconciliationError(f"unbalanced: {[asdict(e) for e in bad]}")
        if written is not None:
            claimed: dict[tuple[str, str], int] = {}
            for e in self.entries.values():
                claimed[(e.table, e.source_file)] = claimed.get((e.table, e.source_file), 0) + e.rows_out
            diff = {f"{k[0]}:{k[1]}": (claimed.get(k, 0), written.get(k, 0))
                    for k in set(claimed) | set(written) if claimed.get(k, 0) != written.get(k, 0)}
            if diff:
                raise ReconciliationError(f"rows claimed vs written (claimed, written): {diff}")

    def totals(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for e in self.entries.values():
            t = out.setdefault(e.table, {"rows_in": 0, "rows_out": 0, "rejected": {}})
            t["rows_in"] += e.rows_in
            t["rows_out"] += e.rows_out
            for k, v in e.rejected.items():
                t["rejected"][k] = t["rejected"].get(k, 0) + v
        return out

    def to_json(self) -> dict:
        entries = sorted(self.entries.values(), key=lambda e: (e.table, e.source_file, e.hdu))
        return {
            "balanced": all(e.balanced for e in entries),
            "entries": [{**asdict(e), "rows_rejected": e.rows_rejected, "balanced": e.balanced}
                        for e in entries],
            "totals": self.totals(),
            "skipped_hdus": self.skipped_hdus,
            **self.notes,
        }

    def write(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, sort_keys=False) + "\n")


def table(reconciliation: dict):
    """The reconciliation as a DataFrame: one row per (table, file, HDU), rejects by reason."""
    import pandas as pd

    rows = []
    for e in reconciliation["entries"]:
        rows.append({"table": e["table"], "source_file": Path(e["source_file"]).name,
                     "hdu": e["hdu"], "rows_in": e["rows_in"], "rows_out": e["rows_out"],
                     "rows_rejected": e["rows_rejected"],
                     "rejected_by_reason": ", ".join(f"{k}={v}" for k, v in
                                                     sorted(e["rejected"].items())) or "",
                     "balanced": e["balanced"]})
    return pd.DataFrame(rows)
