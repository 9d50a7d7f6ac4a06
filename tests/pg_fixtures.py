"""A real PostgreSQL for the tests: a throwaway cluster on 127.0.0.1, one per test session.

Fixtures:
- ``pg_url`` (session): ``DESIVOIDS_PG_URL`` if set (a server someone else runs), else a cluster
  started by tests/pg_server.sh in a temporary directory on a free port, stopped at the end.
- ``pg_db_url`` (function): a fresh, empty database on that server, dropped afterwards.

If PostgreSQL is missing, cannot be installed or does not start, the tests FAIL when CI=true or
DESIVOIDS_REQUIRE_PG=1 (set by `make test`): a backend that was skipped must not pass as tested.
A bare `pytest` elsewhere skips them with the reason.

conftest's ``pytest_plugins`` lists this module, so every test takes ``pg_url`` and
``pg_db_url`` by name; the cluster is shared by the whole session.
"""
from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "pg_server.sh"
_CLUSTER: dict = {}  # shared by every importer of this module: one cluster per process


def _have_binaries() -> bool:
    return any(os.access(p, os.X_OK) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb"))


def _required() -> bool:
    """In CI, and under `make test` (which installs and starts PostgreSQL itself), a backend that
    cannot be reached fails the tests; a bare pytest elsewhere skips them with the reason."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("CI", "DESIVOIDS_REQUIRE_PG"))


def _unavailable(reason: str):
    if _required():
        pytest.fail(f"PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop() -> None:
    d = _CLUSTER.pop("dir", None)
    if d:
        subprocess.run(["bash", str(SCRIPT), "stop", d], check=False, capture_output=True,
                       timeout=60)
        shutil.rmtree(d, ignore_errors=True)


def _start() -> str:
    if "url" in _CLUSTER:
        return _CLUSTER["url"]
    if not _have_binaries():
        r = subprocess.run(["bash", str(SCRIPT), "install"], capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0 or not _have_binaries():
            _unavailable(f"no binaries and 'pg_server.sh install' failed: {r.stderr.strip()}")
    d = tempfile.mkdtemp(prefix="desivoids-pg-")
    last = ""
    for _ in range(3):  # a port taken between probe and bind: try another
        r = subprocess.run(["bash", str(SCRIPT), "start", d, str(_free_port())],
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            _CLUSTER.update(dir=d, url=r.stdout.strip().splitlines()[-1])
            atexit.register(_stop)
            return _CLUSTER["url"]
        last = r.stderr.strip()
        subprocess.run(["bash", str(SCRIPT), "stop", d], capture_output=True, timeout=60)
        shutil.rmtree(d, ignore_errors=True)
        d = tempfile.mkdtemp(prefix="desivoids-pg-")
    shutil.rmtree(d, ignore_errors=True)
    _unavailable(f"cluster did not start: {last}")


@pytest.fixture(scope="session")
def pg_url():
    """URL of a PostgreSQL server (postgresql+psycopg://...)."""
    env = os.environ.get("DESIVOIDS_PG_URL")
    if env:
        yield env
        return
    url = _start()
    try:
        yield url
    finally:
        _stop()


@pytest.fixture
def pg_db_url(pg_url):
    """A fresh database on the test server, dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = plain.rpartition("/")
    url = f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")
    try:
        yield url
    finally:
        from desivoids.load import queries

        queries.dispose_engines()  # close pooled connections before DROP DATABASE
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
