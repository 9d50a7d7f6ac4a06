"""Shared fixtures: a tiny mock sky written once per test session, and the real DESI tile
fixtures when ../shared is present (tests that need them skip cleanly otherwise)."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from desivoids import paths

#: the shared fixtures of these modules reach every test by name, without an import
pytest_plugins = ["book_fixtures", "pg_fixtures", "validation_fixtures"]

SHARED_TILE = paths.ROOT.parent / "shared" / "fixtures" / "desi-iron-tile"
TINY = {"seed": 12345, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 1}


@pytest.fixture(scope="session")
def tiny_sky(tmp_path_factory) -> tuple[Path, dict]:
    """A tiny mock sky in DESI's relative layout (a read-only input: do not modify it)."""
    from desivoids import mock

    out = tmp_path_factory.mktemp("tiny_sky")
    summary = mock.generate(out, **TINY)
    return out, summary


@pytest.fixture
def real_tile_dir() -> Path:
    if not SHARED_TILE.is_dir():
        pytest.skip(f"real DESI tile fixtures not present at {SHARED_TILE}")
    return SHARED_TILE


def pytest_configure(config):
    # Notebooks run by tests must never pick a non-interactive backend that strips figures.
    os.environ.pop("MPLBACKEND", None)
    # Nor read the user's matplotlib font cache or matplotlibrc (nbval re-executes notebooks
    # outside the runner, which gives stage kernels their own): a cache another matplotlib
    # wrote in ~/.cache, without the bundled STIX fonts, puts a findfont line on stderr.
    config._desivoids_mpl = tempfile.mkdtemp(prefix="desivoids-mplconfig-")
    os.environ["MPLCONFIGDIR"] = config._desivoids_mpl


def pytest_unconfigure(config):
    folder = getattr(config, "_desivoids_mpl", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
