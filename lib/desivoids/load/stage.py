"""The load stage: its entry point :func:`run` (convert's Parquet into the run's database, by
:func:`.loader.load`, and the report) and its result types."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import LoadError
from ..outputs import staged
from ..params import checked
from ..paths import RunLayout
from ..stages import file_name
from . import schema as S
from .loader import load


@dataclass(frozen=True)
class TableResult:
    table: str
    rows: int
    parts: int
    action: str  # "loaded" or "unchanged"


@dataclass
class LoadResult:
    run_id: int
    dialect: str
    sky_index: str | None
    tables: list[TableResult] = field(default_factory=list)
    #: wall-clock seconds per phase ("galaxies:copy", "galaxies:index", "galaxies:spatial",
    #: "commit", ...), for the benchmarks; never shown in notebook outputs
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows_loaded(self) -> int:
        return sum(t.rows for t in self.tables if t.action == "loaded")

    def frame(self):
        import pandas as pd

        return pd.DataFrame([t.__dict__ for t in self.tables])

    def __str__(self) -> str:
        lines = [f"  {t.table:<10} {t.rows:>10} rows  {t.action}" for t in self.tables]
        lines.append(f"load: committed run {self.run_id} into {self.dialect} (sky index: "
                     f"{self.sky_index}); {self.rows_loaded} rows loaded")
        return "\n".join(lines)



@checked("load")
def run(data_dir: str = "data/mock", db_url: str = "", force: bool = False,
        sky_index: str = "auto") -> LoadResult:
    """The load stage: the convert stage's Parquet into the run's database (``db_url``, default
    the SQLite file ``RunLayout.database``) in one transaction; every table's row count is
    reconciled with its Parquet input and the report published in ``<data_dir>/load``.

    The tables and the folder are one unit (as environment's and plausibility's, see
    :mod:`desivoids.publication`): the report is written from the open transaction and sealed,
    the commit records the sealed folder, then the folder is renamed into place; a failure (or a
    kill) before the commit leaves the previous tables and report, one after it leaves the
    committed folder under its staging name for the next run or reader to rename. (The load
    once committed its tables first: a failure then left new tables beside the previous
    report.)"""
    from ..publication import record
    from .report import DERIVED_TABLES, parquet_rows, reconciled

    layout = RunLayout.of(data_dir)
    url = layout.db_url(db_url)
    recs = []
    # @checked has just verified convert's folder against its manifest, hashing every file:
    # its digests are the parts' sha256 (hashing 1.7 GB again costs seconds at DR1 scale)
    from ..checksums import parse_sumfile
    from ..outputs import MANIFEST

    manifest = layout.convert / MANIFEST
    sums = parse_sumfile(manifest.read_text(), str(manifest)) if manifest.is_file() else None

    def publish_report(target, result: LoadResult, commit) -> None:
        counts = {t: target.published_count(t) for t in S.DATA_TABLES + DERIVED_TABLES
                  if target.table_exists(t)}
        rec = reconciled(parquet_rows(layout.convert), counts)
        recs.append(rec)
        with staged(layout.load, commit=lambda tmp: (record(target, "load", tmp), commit())) as tmp:
            doc = {"dialect": result.dialect, "sky_index": result.sky_index,
                   "run_id": result.run_id, "tables": [t.__dict__ for t in result.tables],
                   "reconciliation": rec.to_dict(orient="records")}
            (tmp / file_name("load", "report")).write_text(json.dumps(doc, indent=1, default=int) + "\n")

    result = load(layout.data_dir, url, force=force, sky_index=sky_index,
                  before_commit=publish_report, part_sha256=sums)
    rec = recs[0]
    bad = rec[~rec["match"]]
    if not bad.empty:
        raise LoadError(layout.convert, ", ".join(bad["table"]), None,
                        f"row counts differ after the load:\n{bad.to_string(index=False)}")
    return result
