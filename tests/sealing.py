"""Tests that edit a stage's published output on purpose, to stand for bad content from the
producer stage itself, seal the folder again: its manifest then vouches for the edit, and the
reading stage's own checks (not the manifest check) are what the test exercises."""
from __future__ import annotations

from pathlib import Path

from desivoids.outputs import MANIFEST, write_manifest


def reseal(path: str | Path) -> Path | None:
    """Rewrite the manifest of the published folder holding ``path`` (the nearest folder above it
    with a manifest); None when there is none (inputs written by a test, never published)."""
    path = Path(path)
    for folder in (path, *path.parents):
        if (folder / MANIFEST).is_file():
            write_manifest(folder)
            return folder
    return None
