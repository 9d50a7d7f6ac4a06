"""The real-data profile, params/dr1.yml, as a user runs it before fetching 27 GB: its dry run
prints the plan (the eight DESIVAST files and the twelve FastSpecFit v3.0 catalogues, with their
sizes) and fetches nothing; where DESI's portal cannot be reached it says so plainly and exits 1.

The portal itself is never contacted (tests use loopback only): the profile's `source` is
pointed at a static server on 127.0.0.1 that holds a tiny mock sky in DESI's layout, or at a
loopback port nothing listens on."""
from __future__ import annotations


import yaml

from acquire_fixtures import FaultyHTTPServer, closed_port

from desivoids import paths
from desivoids.acquire import filesets as fs
from desivoids.cli import main as cli_main

DR1 = paths.ROOT / "params" / "dr1.yml"


def _base(tmp_path, source):
    return ["acquire", "--params", str(DR1), "-p", "data_dir", str(tmp_path / "run"),
            "-p", "source", source, "-p", "min_free_gb", "0", "-p", "dry_run", "true"]


def test_the_profile_names_desis_portal_and_the_twenty_files():
    acquire = yaml.safe_load(DR1.read_text())["stages"]["acquire"]
    assert acquire["source"] == "https" and acquire["sets"] == ["desivast", "fastspecfit"]
    assert acquire["fastspec_version"] == "v3.0"


def test_its_dry_run_prints_the_plan_and_fetches_nothing(tiny_sky, tmp_path, capsys):
    root, _ = tiny_sky
    with FaultyHTTPServer(root) as server:
        assert cli_main(_base(tmp_path, server.url)) == 0
    out = capsys.readouterr().out
    names = [*fs.desivast()[0].names, *fs.fastspecfit("v3.0")[0].names]
    assert len(names) == 20 and all(n in out for n in names), out
    raw = tmp_path / "run" / "acquire" / "raw"
    assert not raw.exists() or not any(p.is_file() for p in raw.rglob("*"))


def test_offline_it_says_plainly_that_the_portal_cannot_be_reached(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}/public/"
    assert cli_main(_base(tmp_path, url)) == 1
    err = capsys.readouterr().err
    assert "source unreachable" in err and "nothing was planned or fetched" in err
    assert "cannot be reached" in err and url in err
