"""acquire file sets, planning and the command line: DESI's relative paths and checksum-file
names, tile discovery through listings, and `desivoids acquire` end to end on a local mirror."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from acquire_fixtures import FaultyHTTPServer, sha256_of, write_tree  # noqa: E402

from desivoids.acquire import filesets as fs  # noqa: E402
from desivoids.formats import checksum_filename  # noqa: E402
from desivoids.cli import main as cli_main  # noqa: E402
from desivoids.acquire.plan import PlanError, plan, requests_for  # noqa: E402
from desivoids.acquire.steps import manifest_rows  # noqa: E402
from desivoids.acquire.sources import FsspecSource, HTTPSource  # noqa: E402
from desivoids.mock.tiles import write_tile_pair  # noqa: E402

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
    h = "a" * 64
    assert fs.parse_sumfile(f"{h}  x.fits\n{h.upper()} *./y.fits\n\n") == {"x.fits": h, "y.fits": h}
    with pytest.raises(ValueError, match="line 2"):
        fs.parse_sumfile(f"{h}  x.fits\nnot a checksum line\n", "some.sha256sum")


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
    assert only == [f"{TD}/1000/20220101/coadd-5-1000-thru20220101.fits", f"{TD}/1000/20220101/redrock-5-1000-thru20220101.fits"]
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
    assert len(rows) == 8 + 1 + 6 + 2 and {r["state"] for r in rows} == {"verified"}
    for r in rows:
        assert sha256_of(data / "acquire" / "raw" / r["path"]) == sha256_of(mirror / r["path"])
    assert cli_main(base + ["-p", "resume", "true"]) == 0
    assert "this batch: 0 files" in capsys.readouterr().out
    assert cli_main(["acquire", "spectra", "--data-dir", str(data), "--no-progress"]) == 0
    assert "3 converted" in capsys.readouterr().out
    assert cli_main(["acquire", "status", "--data-dir", str(data)]) == 0
    assert "verified  17" in capsys.readouterr().out


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
