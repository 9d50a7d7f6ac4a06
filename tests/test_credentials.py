"""No credentials anywhere: a database password given in the URL reaches PostgreSQL, and never
an executed notebook, a book page, provenance.json, a run record or a log.

papermill writes every injected parameter into the executed notebook (and so into the book),
db_url included; the runner injects the URL without its password and hands the password to
the kernel in libpq's PGPASSWORD. The test server trusts every local connection, so this test
adds a role that must log in with a password (scram-sha-256, prepended to pg_hba.conf): a stage
that lost the password on the way fails, and a password that leaked into a file is found.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from desivoids import book, params, runner

pytestmark = pytest.mark.slow

PASSWORD = "Pw-" + uuid.uuid4().hex  # unique: a hit can only be a leak of this run


@pytest.fixture
def password_url(pg_url):
    """A database owned by a role that must authenticate with PASSWORD; its URL carries it."""
    import psycopg

    if os.environ.get("DESIVOIDS_PG_URL"):
        pytest.skip("needs the tests' own server (it edits pg_hba.conf)")
    plain = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    role, db = f"pw_{uuid.uuid4().hex[:8]}", f"pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(plain, autocommit=True) as c:
        hba = Path(c.execute("SHOW hba_file").fetchone()[0])
        c.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        c.execute(f'CREATE DATABASE "{db}" OWNER {role}')
        original = hba.read_text()
        hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
        c.execute("SELECT pg_reload_conf()")
    time.sleep(1)  # the postmaster rereads pg_hba.conf on SIGHUP, asynchronously
    url = make_url(pg_url).set(username=role, password=PASSWORD, database=db)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        from desivoids.load import queries

        queries.dispose_engines()
        with psycopg.connect(plain, autocommit=True) as c:
            hba.write_text(original)
            c.execute("SELECT pg_reload_conf()")
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            c.execute(f"DROP ROLE IF EXISTS {role}")


def _files_containing(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_the_password_is_required_and_then_found_nowhere(tmp_path, password_url, capfd,
                                                         monkeypatch):
    import psycopg

    monkeypatch.delenv("PGPASSWORD", raising=False)
    without, secret = params.split_password(password_url)
    assert secret == PASSWORD and PASSWORD not in without
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without.replace("+psycopg", "")).close()

    data, executed = tmp_path / "data", tmp_path / "site" / "book" / "executed"
    pfile = tmp_path / "pw.yml"
    pfile.write_text(yaml.safe_dump({
        "profile": "pw", "data_dir": str(data), "db_url": password_url,
        "mock": {"seed": 11, "scale": "tiny", "fastspec_version": "v3.0", "tiles": 0},
        "stages": {"acquire": {"sets": ["desivast", "fastspecfit"]}}}))
    results = runner.run(params.load(pfile), progress=False, executed_dir=executed)
    assert [r.stage for r in results][-1] == "release"
    assert "PGPASSWORD" not in os.environ or os.environ["PGPASSWORD"] != PASSWORD

    # the stage CLI, given the URL on its command line, prints nothing of it either
    cli = subprocess.run([str(Path(sys.executable).with_name("desivoids")), "integrity", "-p", "data_dir",
                          str(data), "-p", "db_url", password_url],
                         capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr

    root = book.copy_sources(tmp_path / "site")
    book.build(root)
    out, err = capfd.readouterr()
    leaks = _files_containing(tmp_path, PASSWORD)
    leaks = [p for p in leaks if Path(p) != pfile]  # the user's own params file holds it
    assert leaks == []
    for stream in (out, err, cli.stdout, cli.stderr):
        assert PASSWORD not in stream
    # the run record shows the URL, masked the way SQLAlchemy masks it
    recorded = (data / "run" / "params.json").read_text()
    assert "***" in recorded and make_url(password_url).username in recorded
