"""One table of a later stage's results into the run's database, transactionally.

The load stage owns the tables it loads from the convert stage's Parquet; later stages (the
tracer selection, void membership) publish their own tables through :func:`publish_table`,
with the same SQL schema rules (columns from the Arrow schema, a primary key the database
enforces, B-tree indexes) and the same backends: the table is rebuilt inside one transaction
(PostgreSQL: in a staging schema, swapped in before the commit), so a failure leaves the
previous table, and every other table, as it was.
"""
from __future__ import annotations

import pyarrow as pa

from ..errors import LoadError
from .loader import connect_target

__all__ = ["publish_table"]

BATCH_ROWS = 200_000


def publish_table(db_url: str, name: str, table: pa.Table, key: tuple[str, ...],
                  indexes: tuple[tuple[str, ...], ...] = ()) -> int:
    """Replace table ``name`` of the database with ``table``; returns its row count."""
    target = connect_target(db_url)
    committed = False
    try:
        sql_table = target.new_table(name, table.schema, key=key, indexes=indexes)
        target.create_table(sql_table)
        target.write(sql_table, table.to_batches(max_chunksize=BATCH_ROWS), name)
        target.finish_table(sql_table)
        n = target.count(name)
        if n != table.num_rows:
            raise LoadError(None, name, None, f"{n} rows in the database, {table.num_rows} given")
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
