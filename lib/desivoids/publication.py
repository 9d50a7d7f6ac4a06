"""A stage's database tables and its folder as one crash-consistent unit.

The database commit is the single decision point. The stage builds its folder under a staging
name (``.<stage>.tmp-XXXXXXXX``, :func:`desivoids.outputs.staged`) and seals it
(``MANIFEST.sha256``); inside the transaction that rebuilds its tables it records, in the
bookkeeping table ``stage_publications`` (one row per stage, the stage's own), the staging
folder's name and the sha256 of its manifest (:func:`record`); it commits; then it renames the
staging folder into place.

- A kill before the commit leaves the previous tables and the previous folder; the sealed
  staging folder it left is not the recorded one, and the next run of the stage removes it.
- A kill after the commit leaves the new tables and the new folder under its recorded staging
  name: the next run of the stage, or any stage that reads it, rolls it forward under the
  stage's lock (:func:`settle`) before reading, so a reader always sees the pair as committed.
- Any other disagreement between the record and the folder (a folder replaced or resealed by
  hand, a database restored from elsewhere) is refused, naming the stage to rerun. A folder
  that does not exist is left to the reader, as :func:`desivoids.outputs.verify` leaves it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["TABLE", "manifest_digest", "record", "recorded", "settle"]

#: the bookkeeping table: stage -> the staging name and manifest sha256 of its committed folder
TABLE = "stage_publications"
_DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (stage TEXT PRIMARY KEY, staging TEXT NOT NULL, "
        "manifest TEXT NOT NULL)")


def manifest_digest(folder: str | Path) -> str | None:
    """The sha256 of ``folder``'s MANIFEST.sha256 (which lists every file's sha256: one digest
    for the whole sealed folder), None when it has none."""
    from .outputs import MANIFEST

    try:
        return hashlib.sha256((Path(folder) / MANIFEST).read_bytes()).hexdigest()
    except (FileNotFoundError, NotADirectoryError):
        return None


def record(target, stage: str, staging: Path) -> None:
    """Record, in ``target``'s open transaction, that ``stage``'s folder is the sealed staging
    folder ``staging`` (a load target: :class:`~desivoids.load.sqlite.SqliteTarget` or
    :class:`~desivoids.load.postgres.PostgresTarget`; plain SQL that both run)."""
    digest = manifest_digest(staging)
    if digest is None:
        raise ValueError(f"{staging}: not sealed (no manifest); seal it before recording it")
    target.execute(_DDL)
    target.execute(f"DELETE FROM {TABLE} WHERE stage = ?", (stage,))
    target.execute(f"INSERT INTO {TABLE} (stage, staging, manifest) VALUES (?, ?, ?)",
                   (stage, staging.name, digest))


def recorded(db_url: str, stage: str) -> tuple[str, str] | None:
    """(staging name, manifest sha256) of ``stage``'s last committed publication, None when the
    database (or its bookkeeping table, or the stage's row) does not exist."""
    from sqlalchemy import inspect, text

    from .load.queries import new_engine, normalise_url

    url = normalise_url(db_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or not Path(url.database).is_file():
            return None  # connecting would create an empty database
        url = url.set(database=f"file:{url.database}?mode=ro", query={"uri": "true"})
    # waits for a stage beside this one (`desivoids run --jobs`) committing its tables
    engine = new_engine(url)
    try:
        with engine.connect() as con:
            if not inspect(con).has_table(TABLE):
                return None
            row = con.execute(text(f"SELECT staging, manifest FROM {TABLE} WHERE stage = :s"),
                              {"s": stage}).first()
    finally:
        engine.dispose()
    return (row[0], row[1]) if row else None


def settle(data_dir: str | Path, stage: str, db_url: str = "", *, locked: bool = False,
           strict: bool = True) -> str:
    """Make ``stage``'s folder the one its last committed run recorded: nothing to do when its
    manifest matches the record ("agrees"); a committed staging folder that a kill left before
    its rename is renamed into place ("rolled forward"), under the stage's lock (taken here
    unless ``locked``; a running holder is refused with StageLocked). Any other disagreement is
    an InputError naming the stage to rerun (``strict``), or "disagrees" (the stage's own run,
    which replaces both; it also goes on, "unreadable", when the database cannot be read).
    "unrecorded" when the database records nothing for the stage; "missing" when the folder
    does not exist and nothing can be rolled forward (what reads it says the stage to run)."""
    from .errors import InputError
    from .outputs import STAGING, holding, manifest_problems, publish
    from .paths import RunLayout

    layout = RunLayout.of(data_dir)
    try:
        rec = recorded(layout.db_url(db_url), stage)
    except Exception:  # the stage's own run reports its database's problems
        if strict:
            raise
        return "unreadable"
    if rec is None:
        return "unrecorded"
    name, digest = rec
    folder = layout.stage(stage)
    if manifest_digest(folder) == digest:
        return "agrees"
    staging = folder.parent / name
    if STAGING.fullmatch(name) and "/" not in name and manifest_digest(staging) == digest:
        # the lock only when there is something to roll forward: a stage run by `desivoids
        # run` checks its own folder in a kernel while the runner holds the stage's lock
        with holding(layout.data_dir, stage, locked=locked, db_url=db_url):
            if manifest_digest(folder) == digest:  # settled while we took the lock
                return "agrees"
            if manifest_digest(staging) == digest and manifest_problems(staging) == []:
                publish(staging, folder)
                return "rolled forward"
    if not folder.exists():
        return "missing"  # as for a folder without a record: left to the reader (verify)
    if not strict:
        return "disagrees"
    raise InputError(folder, None, None,
                     f"is not the folder that the {stage} stage's last committed run recorded in "
                     f"the database ({TABLE}: {name}, manifest sha256 {digest}; the folder's: "
                     f"{manifest_digest(folder) or 'no manifest'}); its tables and folder "
                     f"disagree: rerun `desivoids {stage}`")
