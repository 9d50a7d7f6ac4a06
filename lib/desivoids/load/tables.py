"""One table of a later stage's results into the run's database, transactionally.

The load stage owns the tables it loads from the convert stage's Parquet; later stages (the
tracer selection, void membership) publish their own tables through :func:`publish_table`,
with the same SQL schema rules (columns from the Arrow schema, a primary key the database
enforces, B-tree indexes) and the same backends: the table is rebuilt inside one transaction
(PostgreSQL: in a staging schema, swapped in before the commit), so a failure leaves the
previous table, and every other table, as it was.

A stage's tables and its folder are one unit: :func:`table_transaction` rebuilds all of the
stage's tables in one transaction, and :meth:`TableTransaction.committing` makes its commit the
decision point of the folder's publication (:mod:`desivoids.publication`)::

    with table_transaction(url) as db, staged(out, commit=db.committing("stage")) as tmp:
        ...  # write the folder
        db.publish("selection", table, key=("targetid",))
    # staged() sealed the folder, the transaction recorded its manifest and committed, then
    # staged() renamed the folder into place

A failure anywhere before the commit (a full disk, a bad report, a kill) leaves the previous
tables and the previous folder (environment once committed its tables first: the two then
disagreed); a kill between the commit and the rename leaves the committed folder under its
recorded staging name, which the next run of the stage, or a stage reading it, renames into
place before anything reads it (:func:`desivoids.publication.settle`).
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import LoadError, StageError
from ..outputs import wait_while_running
from .loader import connect_target
from .queries import normalise_url

__all__ = ["publish_table", "table_transaction", "TableTransaction"]

BATCH_ROWS = 200_000
#: load's table that every loaded database holds: a later stage publishes only beside it
LOADED = "galaxies"


def _not_loaded(db_url: str, what: str) -> StageError:
    shown = normalise_url(db_url).render_as_string(hide_password=True)
    return StageError(f"cannot publish {what}: the database {shown} holds no {LOADED!r} "
                      "table of the load stage; run `desivoids load` first")


class TableTransaction:
    """A stage's tables, rebuilt in one open transaction (see :func:`table_transaction`)."""

    def __init__(self, db_url: str, what: str = "tables"):
        url = normalise_url(db_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            raise _not_loaded(db_url, what)  # connecting would create an empty database
        self.target = connect_target(db_url)
        self.names: list[str] = []
        self.prepared = False
        self.committed = False
        try:
            if not self.target.table_exists(LOADED):
                raise _not_loaded(db_url, what)
        except BaseException:
            self.close(commit=False)
            raise

    def publish(self, name: str, table: pa.Table | pa.RecordBatchReader | str | Path,
                key: tuple[str, ...], indexes: tuple[tuple[str, ...], ...] = ()) -> int:
        """Rebuild table ``name`` from ``table`` (an Arrow table; a Parquet file, or a stream of
        record batches, taken batch by batch, so a large table never sits in memory whole);
        returns its row count. Visible to other connections only after the commit. The table is
        stored in key order where the backend can (SQLite WITHOUT ROWID): write it sorted by
        ``key`` for the fastest load."""
        if isinstance(table, (str, Path)):
            pf = pq.ParquetFile(table)
            schema, rows = pf.schema_arrow, pf.metadata.num_rows
            batches = pf.iter_batches(batch_size=BATCH_ROWS)
        elif isinstance(table, pa.RecordBatchReader):
            schema, rows = table.schema, None  # counted as the batches go by
            streamed = [0]

            def batches(reader=table):
                for batch in reader:
                    streamed[0] += batch.num_rows
                    yield batch
            batches = batches()
        else:
            schema, rows = table.schema, table.num_rows
            batches = table.to_batches(max_chunksize=BATCH_ROWS)
        target = self.target
        previous = self._set_aside(name)
        sql_table = target.new_table(name, schema.remove_metadata(), key=key, indexes=indexes,
                                     clustered=True)
        target.create_table(sql_table)
        target.write(sql_table, batches, name)
        if previous is not None:  # after the rows, before the indexes that reuse its names
            target.execute(f"DROP TABLE {previous}")
        target.finish_table(sql_table)
        n = target.count(name)
        rows = streamed[0] if rows is None else rows
        if n != rows:
            raise LoadError(table if isinstance(table, (str, Path)) else None, name, None,
                            f"{n} rows in the database, {rows} given")
        self.names.append(name)
        return n

    def _set_aside(self, name: str) -> str | None:
        """SQLite: rename the previous table ``name`` (if any) out of the way, to be dropped
        once its replacement's rows are written; returns its quoted new name.

        Why not drop it first: its pages would then be freed inside the transaction, and SQLite
        journals a freed page's old content before the new rows reuse it (a 0.97 GB rollback
        journal and ~6 CPU s for environment's 25.8M rows at DR1 scale); the new rows instead
        fill pages free before the transaction, or the file's end, which need no journal. The
        new table is created under its own name, so its stored CREATE TABLE reads as before
        (renaming a new table into place would store its name quoted). legacy_alter_table:
        views and triggers keep naming ``name``, i.e. the new table."""
        target = self.target
        if target.dialect != "sqlite" or not target.table_exists(name):
            return None
        q = '"' + f"{name}__previous".replace('"', '""') + '"'
        target.execute(f"DROP TABLE IF EXISTS {q}")
        target.execute("PRAGMA legacy_alter_table = ON")
        try:
            target.execute('ALTER TABLE "' + name.replace('"', '""') + f'" RENAME TO {q}')
        finally:
            target.execute("PRAGMA legacy_alter_table = OFF")
        return q

    def prepare(self) -> None:
        """Analyze the rebuilt tables and swap them in, inside the open transaction: everything
        that can fail but the commit. Call it as the last step before the stage's folder is
        published, so that only the commit follows the folder's swap."""
        if self.names and not self.prepared:
            self.target.analyze(self.names)
            self.target.publish(self.names)
        self.prepared = True

    def committing(self, stage: str):
        """The ``commit`` of :func:`desivoids.outputs.staged`: swap the tables in, record the
        sealed staging folder as ``stage``'s (:func:`desivoids.publication.record`) and commit,
        all before the folder's rename."""
        from ..publication import record

        def commit(tmp: Path) -> None:
            self.prepare()
            record(self.target, stage, tmp)
            self.target.commit()
            self.committed = True
        return commit

    def close(self, commit: bool) -> None:
        """Swap the rebuilt tables in (unless :meth:`prepare` did) and commit (``commit``), or
        roll everything back."""
        target = self.target
        if self.committed:  # committed by committing(): nothing left to roll back
            target.close()
            return
        try:
            if commit:
                self.prepare()
                target.commit()
            else:
                target.rollback()
        except BaseException:
            if commit:
                try:
                    target.rollback()
                except Exception:  # the first error is the one to report
                    pass
            raise
        finally:
            target.close()


@contextmanager
def table_transaction(db_url: str, what: str = "tables",
                      data_dir: str | Path | None = None) -> Iterator[TableTransaction]:
    """``with table_transaction(url) as db:`` rebuild tables with ``db.publish(...)``; all of
    them are committed together when the block ends without error, none otherwise. Refused
    (StageError, naming ``what`` is published) unless the load stage has filled the database.

    ``data_dir``: the run's folder; a load running on it (another process holding its stage
    lock, e.g. ``desivoids load`` started in another terminal) is waited out first, so the
    tables go into the database the load has finished. (``desivoids run`` itself starts a stage
    with tables only after the load: :func:`desivoids.runner.waits_for`.)"""
    if data_dir is not None:
        wait_while_running(data_dir, "load")
    db = TableTransaction(db_url, what)
    try:
        yield db
    except BaseException:
        _roll_back(db)
        raise
    db.close(commit=True)


def _roll_back(db: TableTransaction) -> None:
    """Roll back after a failure, whose error is the one to report: SQLite may have rolled the
    transaction back itself (a full disk), and "cannot rollback - no transaction is active"
    would hide "database or disk is full"."""
    try:
        db.close(commit=False)
    except Exception:
        pass


def publish_table(db_url: str, name: str, table: pa.Table | str | Path, key: tuple[str, ...],
                  indexes: tuple[tuple[str, ...], ...] = ()) -> int:
    """Replace table ``name`` of the database with ``table`` in a transaction of its own
    (:meth:`TableTransaction.publish`); returns its row count."""
    with table_transaction(db_url, f"table {name!r}") as db:
        return db.publish(name, table, key, indexes)
