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


#: modules whose tests are independent and costly enough to spread over workers one by one
SPREAD = {"test_planted_bugs.py"}
#: session fixtures so costly that every module using one runs on the same worker
SHARED_ON_ONE_WORKER = ("tiny_book",)


def pytest_collection_modifyitems(config, items):
    """Under ``pytest -n N --dist loadgroup`` (make test), a module's tests run on one worker
    (its module fixtures, e.g. a finished run, are built once), the modules that share the tiny
    book on one worker together (it takes minutes to build), and the planted bugs one by one."""
    uses = {}
    for item in items:
        uses.setdefault(item.path, set()).update(item.fixturenames)
    for item in items:
        shared = [f for f in SHARED_ON_ONE_WORKER if f in uses[item.path]]
        group = (shared[0] if shared else None) or (
            item.nodeid if item.path.name in SPREAD else item.path.name)
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_unconfigure(config):
    folder = getattr(config, "_desivoids_mpl", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
