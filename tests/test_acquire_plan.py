"""acquire file sets, planning and the command line: DESI's relative paths and checksum-file
names, tile discovery through listings, and `desivoids acquire` end to end on a local mirror."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acquire_fixtures import FaultyHTTPServer, sha256_of, write_tree

from desivoids.acquire import filesets as fs
from desivoids.formats import checksum_filename
from desivoids.cli import main as cli_main
from desivoids.acquire.plan import PlanError, plan, requests_for
from desivoids.acquire.steps import manifest_rows
from desivoids.acquire.sources import FsspecSource, HTTPSource
from desivoids.mock.tiles import write_tile_pair

TD = "dr1/spectro/redux/iron/tiles/cumulative"


def test_checksum_file_names_follow_desi():
    assert fs.desivast()[0].sumfiles == ("dr1/vac/dr1/desivast/v1.0/dr1_vac_dr1_desivast_v1.0.sha256sum",)
    assert checksum_filename(f"{TD}/80613/20210324") == "redux_iron_tiles_cumulative_80613_20210324.sha256sum"
    assert checksum_filename("dr1/spectro/redux/iron/healpix/main/dark/100/10000") == \
        "redux_iron_healpix_main_dark_100_10000.sha256sum"
    fsf = fs.fastspecfit("v3.0")[0]
    assert fsf.sumfiles[0].endswith("catalogs/dr1_vac_dr1_fastspecfit_iron_v3.0_catalogs.sha256sum")


def test_named_sets_expand_to_desi_relative_paths():
    (r,) = fs.desivast()
    assert len(r.names) == 8 and "DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits" in r.names
    (r,) = fs.fastspecfit("v3.0")
    assert r.names[0] == "fastspec-iron-main-bright-nside1-hp00.fits" and len(r.names) == 12
    assert fs.fastspecfit("v3.0", [10, 2])[0].names == ("fastspec-iron-main-bright-nside1-hp02.fits",
                                                         "fastspec-iron-main-bright-nside1-hp10.fits")
    assert fs.fastspecfit("v2.1")[0].directory == "dr1/vac/dr1/fastspecfit/iron/v2.1/catalogs"
    with pytest.raises(fs.FileSetError):
        fs.fastspecfit("v3.0", [12])
    assert fs.tile_files(80613, 20210324, 4) == (f"{TD}/80613/20210324/coadd-4-80613-thru20210324.fits",
                                                 f"{TD}/80613/20210324/redrock-4-80613-thru20210324.fits")
    (h,) = fs.healpix([fs.parse_healpix("main/bright/10032")])
    assert h.directory == "dr1/spectro/redux/iron/healpix/main/bright/100/10032"
    assert h.names == ("coadd-main-bright-10032.fits", "redrock-main-bright-10032.fits")
    assert fs.parse_tile("80613/20210324/0,4") == fs.TileSpec(80613, 20210324, (0, 4))
    with pytest.raises(fs.FileSetError):
        fs.parse_tile("tile-one")


def test_sumfile_parsing_is_strict():
    from desivoids.checksums import parse_sumfile

    h = "a" * 64
    assert parse_sumfile(f"{h}  x.fits\n{h.upper()} *./y.fits\n\n") == {"x.fits": h, "y.fits": h}
    with pytest.raises(ValueError, match="line 2"):
        parse_sumfile(f"{h}  x.fits\nnot a checksum line\n", "some.sha256sum")


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A mirror with two tiles (one with two petals), DESIVAST-like files and their sums
    (shared by the tests of this module: read it, never write into it)."""
    m = tmp_path_factory.mktemp("acquire_plan") / "mirror"
    rng = np.random.default_rng(0)
    n = 3
    t = {"TARGETID": np.arange(n) + 10, "TARGET_RA": np.full(n, 150.0), "TARGET_DEC": np.full(n, 2.0),
         "Z": np.full(n, 0.1), "SPECTYPE": np.array(["GALAXY"] * n), "ZWARN": np.zeros(n, int),
         "DELTACHI2": np.full(n, 100.0)}
    write_tile_pair(m, 1000, 0, 20220101, t, rng)
    write_tile_pair(m, 1000, 5, 20220101, t, rng)
    write_tile_pair(m, 1000, 1, 20211231, t, rng)  # an older night of the same tile
    write_tile_pair(m, 2000, 2, 20220105, t, rng)
    vast = {f"dr1/vac/dr1/desivast/v1.0/{n}": bytes([i]) * (1000 + i)
            for i, n in enumerate(fs.DESIVAST_FILES)}
    write_tree(m, vast)
    return m


def test_tiles_are_discovered_with_their_latest_night_and_petals(mirror):
    src = FsspecSource(str(mirror))
    got = [p.path for p in plan(src, requests_for(src, ["tiles"])) if p.kind == "data"]
    assert got == sorted([f"{TD}/1000/20220101/{k}-{p}-1000-thru20220101.fits" for p in (0, 5)
                          for k in ("coadd", "redrock")]
                         + [f"{TD}/2000/20220105/{k}-2-2000-thru20220105.fits" for k in ("coadd", "redrock")])
    only = [p.path for p in plan(src, requests_for(src, ["tiles"], tiles=["1000"], petals=[5])) if p.kind == "data"]
    assert only == [f"{TD}/1000/20220101/coadd-5-1000-thru20220101.fits",
                    f"{TD}/1000/20220101/redrock-5-1000-thru20220101.fits"]
    planned = plan(src, requests_for(src, ["tiles"], tiles=["1000/20220101"]))
    assert {p.checksum for p in planned if p.kind == "data"} == {"published"}
    with pytest.raises(PlanError, match="tile 3000"):
        requests_for(src, ["tiles"], tiles=["3000"])


def test_tiles_over_http_listings(mirror):
    with FaultyHTTPServer(mirror) as server:
        src = HTTPSource(server.url)
        got = [p for p in plan(src, requests_for(src, ["tiles"], max_tiles=1)) if p.kind == "data"]
    assert len(got) == 4 and all(p.size and p.checksum == "published" for p in got)


def test_cli_dry_run_then_fetch_then_resume_then_spectra(mirror, tmp_path, capsys):
    data = tmp_path / "run"
    base = ["acquire", "-p", "data_dir", str(data), "-p", "source", str(mirror),
            "-p", "sets", "[desivast, tiles]", "-p", "min_free_gb", "0", "-p", "spectra", "false"]
    assert cli_main(base + ["-p", "dry_run", "true"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing downloaded" in out and "DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits" in out
    assert not (data / "acquire").exists()
    assert cli_main(base) == 0
    out = capsys.readouterr().out
    assert "acquire batch 1: done" in out
    rows = manifest_rows(data / "acquire" / "manifest.sqlite")
    assert len(rows) == 8 + 1 + 6 + 2
    # data files matched their published sums; a checksum list has none of its own
    assert {r["state"] for r in rows if r["kind"] == "data"} == {"verified"}
    assert {r["state"] for r in rows if r["kind"] == "checksums"} == {"complete"}
    for r in rows:
        assert sha256_of(data / "acquire" / "raw" / r["path"]) == sha256_of(mirror / r["path"])
    assert cli_main(base + ["-p", "resume", "true"]) == 0
    assert "this batch: 0 files" in capsys.readouterr().out
    assert cli_main(["acquire", "spectra", "--data-dir", str(data), "--no-progress"]) == 0
    assert "3 converted" in capsys.readouterr().out
    assert cli_main(["acquire", "status", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert "verified  14" in out and "complete  3" in out


def test_cli_reports_failures_with_exit_status(tmp_path, capsys):
    (tmp_path / "mirror").mkdir()
    assert cli_main(["acquire", "-p", "data_dir", str(tmp_path), "-p", "sets", "[desivast]",
                     "-p", "min_free_gb", "0", "-p", "retries", "0"]) == 1
    assert capsys.readouterr().err.count("not found at source") == 8
    assert cli_main(["acquire", "-p", "data_dir", str(tmp_path / "none")]) == 1  # no mirror, no source
    assert "no mock mirror" in capsys.readouterr().err
    assert cli_main(["acquire", "-p", "workers", "four"]) == 2  # a usage error
    assert "workers" in capsys.readouterr().err


def test_tiles_from_a_tiles_csv_or_a_list_file(tmp_path):
    from desivoids.acquire.steps import read_tiles_file

    csv = tmp_path / "tiles-iron.csv"
    csv.write_text("TILEID,SURVEY,PROGRAM,LASTNIGHT\n80613,sv1,bright,20210324\n1000,main,bright,20220101\n")
    lst = tmp_path / "tiles.txt"
    lst.write_text("# tiles\n2000/20220105\n\n3000\n")
    assert read_tiles_file([f"@{csv}", f"@{lst}", "42"]) == ["80613/20210324", "1000/20220101", "2000/20220105",
                                                          "3000", "42"]


# ------------------------------------------------------------------ issue 8.1: no index pages
def _static_tree(root: Path, *, sums: bool = True) -> dict[str, bytes]:
    """DESIVAST-named files, one tile's coadd/redrock pair and a generic folder, as bytes."""
    rng = np.random.default_rng(81)
    tile = f"{TD}/1000/20220101"
    files = {f"dr1/vac/dr1/desivast/v1.0/{n}": rng.bytes(2000 + 10 * i) for i, n in enumerate(fs.DESIVAST_FILES)}
    files.update({f"{tile}/coadd-3-1000-thru20220101.fits": rng.bytes(5000),
                  f"{tile}/redrock-3-1000-thru20220101.fits": rng.bytes(3000),
                  "dr1/vac/dr1/other/v1/a.fits": rng.bytes(1234)})
    write_tree(root, files, sums=sums)
    return files


def test_a_server_without_index_pages_is_planned_from_the_checksum_lists(tmp_path):
    """A static host answers 404 for every folder: the lists name the files, HEADs size them,
    and every file arrives verified against its published sum."""
    files = _static_tree(tmp_path / "src")
    with FaultyHTTPServer(tmp_path / "src", index=False) as server:
        src = HTTPSource(server.url)
        got = plan(src, requests_for(src, ["desivast", "tiles", "dir"], tiles=["1000/20220101"],
                                     dirs=["dr1/vac/dr1/other/v1"]))
        heads = {e.path for e in server.log if e.method == "HEAD"}
    assert not [p.error for p in got if p.error]
    data = {p.path: p for p in got if p.kind == "data"}
    assert set(data) == set(files)
    assert all(p.checksum == "published" and p.size == len(files[p.path]) for p in data.values())
    assert set(files) <= heads  # sizes asked for, not concluded from a missing listing
    assert len([p for p in got if p.kind == "checksums"]) == 3 and not got.unplanned
    run = tmp_path / "run"
    with FaultyHTTPServer(tmp_path / "src", index=False) as server:
        res = acquire_run(run, server.url, ["desivast", "tiles", "dir"], tiles=["1000/20220101"],
                          dirs=["dr1/vac/dr1/other/v1"])
    assert res.summary.status == "done" and res.summary.verified == len(files)
    for rel, data_ in files.items():
        assert (run / "acquire" / "raw" / rel).read_bytes() == data_


def acquire_run(run: Path, url: str, sets, **kw):
    from desivoids.acquire import run as stage_run

    return stage_run(data_dir=str(run), source=url, sets=list(sets), min_free_gb=0, spectra=False, retries=1,
                     backoff=0.01, **kw)


def test_named_files_are_asked_for_with_head_when_the_server_has_no_listing(tmp_path):
    """No index pages and no checksum list: the DESIVAST names are still planned, by HEAD, and
    fetched as complete (nothing to verify them against), never 'not found at source'."""
    files = {k: v for k, v in _static_tree(tmp_path / "src", sums=False).items() if "/desivast/" in k}
    with FaultyHTTPServer(tmp_path / "src", index=False) as server:
        res = acquire_run(tmp_path / "run", server.url, ["desivast"])
        heads = [e for e in server.log if e.method == "HEAD" and e.path in files]
    assert len(heads) == len(files) and {e.status for e in heads} == {200}
    s = res.summary
    assert s.status == "done" and (s.verified, s.complete) == (0, len(files)) and not s.failed
    assert "dr1/vac/dr1/desivast/v1.0" in res.plan.plan.unsummed  # the plan says there was no list


def test_a_tile_set_that_plans_nothing_says_why(tmp_path, capsys):
    """A tile folder with no checksum list on a server without index pages cannot be planned:
    the dry run and the run fail naming the tile and the reason, instead of 'done' with 0 files."""
    _static_tree(tmp_path / "src", sums=False)
    with FaultyHTTPServer(tmp_path / "src", index=False) as server:
        base = ["acquire", "-p", "data_dir", str(tmp_path / "run"), "-p", "source", server.url,
                "-p", "sets", "[tiles]", "-p", "tiles", "[1000/20220101]", "-p", "min_free_gb", "0",
                "-p", "spectra", "false"]
        assert cli_main(base + ["-p", "dry_run", "true"]) == 1
        err = capsys.readouterr().err
        assert "could not plan tile 1000/20220101" in err and "no index page and no checksum list" in err
        assert cli_main(base) == 1
        err = capsys.readouterr().err
        assert "1 could not be planned" in err and "tile 1000/20220101" in err
    with FaultyHTTPServer(tmp_path / "src") as server:  # with listings: a petal that is not there
        src = HTTPSource(server.url)
        got = plan(src, requests_for(src, ["tiles"], tiles=["1000/20220101/7", "1000/20990101"]))
    reasons = {u.what: u.reason for u in got.unplanned}
    assert "matches" in reasons["tile 1000/20220101, petals 7"]
    assert "no such folder" in reasons["tile 1000/20990101, every petal"]


def test_a_folder_missing_from_its_parents_listing_is_absent_without_head_guessing(tmp_path):
    """With index pages, a 404 folder is absent when its parent's listing lacks it; named files
    are still confirmed by HEAD and reported not found with the reason."""
    _static_tree(tmp_path / "src")
    with FaultyHTTPServer(tmp_path / "src") as server:
        src = HTTPSource(server.url)
        got = plan(src, requests_for(src, ["fastspecfit"], hp=[1]))
    (p,) = [p for p in got if p.kind == "data"]
    assert p.size is None and "not found at source" in p.error and "HTTP 404" in p.error


# ------------------------------------------------------------------ issue 8.3: strict checksum lists
H = "ab" * 32


@pytest.mark.parametrize("text, says", [
    (f"{H}  ../../outside.fits\n", "does not stay inside"),
    (f"{H}  /etc/passwd\n", "does not stay inside"),
    ("", "names no file"),
    (f"{H}  a.fits\n{'cd' * 32}  a.fits\n", "listed twice with different sums"),
    (f"{H} a.fits\n", "line 1"),  # one space: not what sha256sum writes
    ("<html><body>Not Found</body></html>\n", "line 1"),  # a soft 404 served with status 200
    (f"{H}  a.fits\n{H[:40]}", "line 2"),  # a truncated list
])
def test_a_checksum_list_that_does_not_parse_is_an_error_naming_it(tmp_path, capsys, text, says):
    d = "dr1/vac/dr1/listcheck/v1"
    root = tmp_path / "src"
    (root / d).mkdir(parents=True)
    (root / d / "a.fits").write_bytes(b"a" * 100)
    (root / d / checksum_filename(d)).write_text(text)
    with FaultyHTTPServer(root) as server:
        rc = cli_main(["acquire", "-p", "data_dir", str(tmp_path / "run"), "-p", "source", server.url,
                       "-p", "sets", "[dir]", "-p", "dirs", f"[{d}]", "-p", "min_free_gb", "0",
                       "-p", "dry_run", "true"])
    err = capsys.readouterr().err
    assert rc == 1 and f"{server.url}{d}/{checksum_filename(d)}" in err and says in err, err
    assert not (tmp_path / "outside.fits").exists()


def test_checksum_list_parser_accepts_what_sha256sum_writes():
    got = fs.parse_checksum_list(f"{H}  a.fits\r\n{H.upper()} *./sub/b.fits\n\n{H}  a.fits\n".encode(), "L")
    assert got == {"a.fits": H, "sub/b.fits": H}
    with pytest.raises(fs.ChecksumListError, match="not UTF-8"):
        fs.parse_checksum_list(b"\xff\xfe", "L")
