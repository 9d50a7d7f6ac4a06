"""One table of a later stage's results into the run's database, transactionally.

The load stage owns the tables it loads from the convert stage's Parquet; later stages (the
tracer selection, void membership) publish their own tables through :func:`publish_table`,
with the same SQL schema rules (columns from the Arrow schema, a primary key the database
enforces, B-tree indexes) and the same backends: the table is rebuilt inside one transaction
(PostgreSQL: in a staging schema, swapped in before the commit), so a failure leaves the
previous table, and every other table, as it was.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import LoadError, StageError
from .loader import connect_target
from .queries import normalise_url

__all__ = ["publish_table"]

BATCH_ROWS = 200_000
#: load's table that every loaded database holds: a later stage publishes only beside it
LOADED = "galaxies"


def _not_loaded(db_url: str, name: str) -> StageError:
    shown = normalise_url(db_url).render_as_string(hide_password=True)
    return StageError(f"cannot publish table {name!r}: the database {shown} holds no {LOADED!r} "
                      "table of the load stage; run `desivoids load` first")


def publish_table(db_url: str, name: str, table: pa.Table | str | Path, key: tuple[str, ...],
                  indexes: tuple[tuple[str, ...], ...] = ()) -> int:
    """Replace table ``name`` of the database with ``table`` (an Arrow table, or a Parquet file
    streamed in batches, so a large table never sits in memory twice); returns its row count.
    The table is stored in key order where the backend can (SQLite WITHOUT ROWID): write it
    sorted by ``key`` for the fastest load."""
    if isinstance(table, (str, Path)):
        pf = pq.ParquetFile(table)
        schema, rows = pf.schema_arrow, pf.metadata.num_rows
        batches = pf.iter_batches(batch_size=BATCH_ROWS)
    else:
        schema, rows = table.schema, table.num_rows
        batches = table.to_batches(max_chunksize=BATCH_ROWS)
    url = normalise_url(db_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise _not_loaded(db_url, name)  # connecting would create an empty database
    target = connect_target(db_url)
    committed = False
    try:
        if not target.table_exists(LOADED):
            raise _not_loaded(db_url, name)
        sql_table = target.new_table(name, schema.remove_metadata(), key=key, indexes=indexes,
                                     clustered=True)
        target.create_table(sql_table)
        target.write(sql_table, batches, name)
        target.finish_table(sql_table)
        n = target.count(name)
        if n != rows:
            raise LoadError(table if isinstance(table, (str, Path)) else None, name, None,
                            f"{n} rows in the database, {rows} given")
        target.analyze([name])
        target.publish([name])
        target.commit()
        committed = True
        return n
    finally:
        if not committed:
            try:
                target.rollback()
            finally:
                target.close()
        else:
            target.close()
