"""Tests that edit a stage's published output on purpose, to stand for bad content from the
producer stage itself, seal the folder again: its manifest then vouches for the edit, and the
reading stage's own checks (not the manifest check) are what the test exercises."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from desivoids.outputs import MANIFEST, write_manifest
from desivoids.publication import TABLE, manifest_digest


def reseal(path: str | Path) -> Path | None:
    """Rewrite the manifest of the published folder holding ``path`` (the nearest folder above it
    with a manifest), and, for a stage with tables, the run's SQLite database's record of it
    (:mod:`desivoids.publication`: the producer itself published the edit, tables and folder
    alike); None when there is none (inputs written by a test, never published)."""
    path = Path(path)
    for folder in (path, *path.parents):
        if (folder / MANIFEST).is_file():
            write_manifest(folder)
            _rerecord(folder)
            return folder
    return None


def _rerecord(folder: Path) -> None:
    db = folder.parent / "database" / "desivoids.sqlite"
    if not db.is_file():
        return
    con = sqlite3.connect(db)
    try:
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone():
            with con:
                con.execute(f"UPDATE {TABLE} SET manifest = ? WHERE stage = ?",
                            (manifest_digest(folder), folder.name))
    finally:
        con.close()
