"""The release's HATS catalogues on the tiny run: hats validates them, LSDB opens them with the
release's rows and columns, a cone search through LSDB returns the database's cone query's rows,
and a cross-match (with the margin cache, across partition boundaries) equals a KD-tree's."""
from __future__ import annotations

import hats
import lsdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hats.io.validation import is_valid_catalog
from scipy.spatial import cKDTree

from desivoids import paths, release
from desivoids.formats import ALGORITHMS
from desivoids.load.queries import cone, dispose_engines
from desivoids.release import hats as H

#: small partitions (several on the tiny sky) and a margin wide enough for pairs across them
THRESHOLD, MARGIN_ARCSEC = 300, 1800.0


@pytest.fixture(scope="module")
def hats_release(analysed):
    import warnings

    with warnings.catch_warnings():
        # a notebook's stderr fails its stage: hats-import's note on a non-empty margin (this
        # wide margin has rows) must not reach it (the default mock's release once failed so)
        warnings.filterwarnings("error", message="Computing partitions")
        res = release.run(data_dir=str(analysed), version="hats", sample_size=50,
                          hats_pixel_threshold=THRESHOLD, hats_margin_arcsec=MARGIN_ARCSEC)
    return analysed, res.out_dir


def _unit(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _galaxies(out):
    return lsdb.read_hats(out / "hats" / "galaxies",
                          margin_cache=out / "hats" / "galaxies_margin")


def test_hats_validates_the_catalogues_and_the_release_checks_them(hats_release):
    _, out = hats_release
    for name in H.CATALOGUES:
        assert is_valid_catalog(out / name, strict=True), name
    cat = hats.read_hats(out / "hats" / "galaxies")
    assert len(cat.get_healpix_pixels()) >= 4  # the small threshold gave several partitions
    rows = [pq.ParquetFile(f).metadata.num_rows
            for f in (out / "hats" / "galaxies" / "dataset").rglob("Npix=*.parquet")]
    assert len(rows) == len(cat.get_healpix_pixels()) and max(rows) <= THRESHOLD
    done = {r["file"]: r for r in release.check_completeness(out)}
    assert all(done[n + "/"]["ok"] for n in H.CATALOGUES), done
    props = cat.catalog_info
    prov_files = __import__("json").loads((out / "provenance.json").read_text())["inputs"]["files"]
    assert props.desivoids_release == "hats" and "DESIVAST" in props.desivoids_citation
    assert f"{prov_files[0]['path']}:{prov_files[0]['sha256']}" in props.desivoids_inputs_sha256
    sums = dict(reversed(line.split("  ", 1)) for line in (out / "SHA256SUMS").read_text()
                .splitlines())
    assert f"galaxies_core.parquet:{sums['galaxies_core.parquet']}" in \
        props.desivoids_source_sha256
    assert any(k.startswith("hats/galaxies_margin/") for k in sums)
    md = (out / "data_dictionary.md").read_text()
    assert all(f"`{n}/`" in md for n in H.CATALOGUES)
    from desivoids.release.provenance import release_date

    prov = __import__("json").loads((out / "provenance.json").read_text())
    assert props.hats_creation_date == f"{release_date(prov)}T00:00UTC"  # the run's, not now
    margin = hats.read_hats(out / "hats" / "galaxies_margin").catalog_info
    assert margin.primary_catalog == "galaxies"  # not the staging folder's absolute path
    assert str(out.parent) not in "".join(
        (out / n / "hats.properties").read_text() for n in H.CATALOGUES)


def test_a_damaged_catalogue_fails_the_completeness_check(hats_release, tmp_path):
    import shutil

    _, out = hats_release
    copy = tmp_path / "v"
    shutil.copytree(out, copy)
    part = next((copy / "hats" / "voids" / "dataset").rglob("Npix=*.parquet"))
    part.unlink()
    (copy / "hats" / "galaxies" / "extra.txt").write_text("x")
    bad = {r["file"]: r["problem"] for r in release.check_completeness(copy) if not r["ok"]}
    assert set(bad) == {"hats/voids/", "hats/galaxies/"}, bad
    assert "hats does not validate" in bad["hats/voids/"]
    assert "not listed in SHA256SUMS: hats/galaxies/extra.txt" in bad["hats/galaxies/"]


def test_lsdb_opens_the_release_rows_and_columns(hats_release):
    _, out = hats_release
    core = pq.read_table(out / "galaxies_core.parquet").to_pandas(types_mapper=pd.ArrowDtype)
    assign = pq.read_table(out / "galaxy_void_assignments.parquet").to_pandas()
    got = _galaxies(out).compute().reset_index(drop=True).sort_values("targetid",
                                                                      ignore_index=True)
    assert list(got.columns) == [c.name for c in H.GALAXIES]
    pd.testing.assert_frame_equal(got[core.columns], core, check_dtype=False)
    for alg in ALGORITHMS:
        a = assign[assign.algorithm == alg].set_index("targetid").loc[core.targetid]
        for col in ("flag", "void", "r_over_reff", "interior"):
            mine = got[f"{col}_{alg.lower()}"]
            np.testing.assert_array_equal(mine.isna(), a[col].isna().to_numpy(), err_msg=col)
            np.testing.assert_array_equal(mine[mine.notna()].astype(float),
                                          a[col][a[col].notna()].astype(float), err_msg=col)
    voids = pq.read_table(out / "voids_unified.parquet").to_pandas(types_mapper=pd.ArrowDtype)
    v = lsdb.read_hats(out / "hats" / "voids").compute().reset_index(drop=True)
    v = v.sort_values(["algorithm", "cap", "void"], ignore_index=True)
    pd.testing.assert_frame_equal(v[voids.columns], voids, check_dtype=False)
    known = voids.is_edge.notna().to_numpy()
    assert (v.interior.to_numpy()[known] == ~voids.is_edge.to_numpy()[known].astype(bool)).all()
    assert v.interior.isna().sum() == (~known).sum()


def test_a_cone_search_returns_the_databases_cone_rows(hats_release):
    d, out = hats_release
    core_ids = set(pq.read_table(out / "galaxies_core.parquet", columns=["targetid"])
                   .column("targetid").to_pylist())
    cat = lsdb.read_hats(out / "hats" / "galaxies")
    sky = pq.read_table(out / "galaxies_core.parquet", columns=["ra", "dec"]).to_pandas()
    rng = np.random.default_rng(24)
    db = paths.RunLayout.of(str(d)).sqlite_url
    found = 0
    for i in rng.choice(len(sky), 10, replace=False):
        ra, dec, radius = sky.ra[i], sky.dec[i], rng.uniform(0.5, 8.0)
        want = sorted(set(cone(db, ra, dec, radius).targetid) & core_ids)
        got = sorted(cat.cone_search(ra, dec, radius * 3600).compute().targetid)
        assert got == want, (ra, dec, radius)
        found += len(got)
    dispose_engines()
    assert found > 20


def _points(out, rng, near, offset_arcsec, n_random=200):
    """Random positions: ``near`` of them offset_arcsec (a range) from galaxies, the rest
    uniform on the galaxies' sky; written as a HATS catalogue by lsdb itself."""
    g = pq.read_table(out / "galaxies_core.parquet", columns=["ra", "dec"]).to_pandas()
    pick = rng.choice(len(g), near, replace=False)
    sep = rng.uniform(*offset_arcsec, near) / 3600
    pa_ = rng.uniform(0, 2 * np.pi, near)
    dec = np.clip(g.dec.to_numpy()[pick] + sep * np.cos(pa_), -89.9, 89.9)
    ra = (g.ra.to_numpy()[pick] + sep * np.sin(pa_) / np.cos(np.radians(dec))) % 360
    ra = np.r_[ra, rng.uniform(g.ra.min(), g.ra.max(), n_random)]
    dec = np.r_[dec, rng.uniform(g.dec.min(), g.dec.max(), n_random)]
    return pd.DataFrame({"pid": np.arange(len(ra)), "ra": ra, "dec": dec}), g


def _kdtree_match(points, g, radius_arcsec):
    """pid -> targetid of the nearest galaxy within the radius (scipy's KD-tree)."""
    ids = pq.read_table(g, columns=["targetid"]).column("targetid").to_numpy()
    sky = pq.read_table(g, columns=["ra", "dec"]).to_pandas()
    tree = cKDTree(_unit(sky.ra, sky.dec))
    chord = 2 * np.sin(np.radians(radius_arcsec / 3600) / 2)
    dist, idx = tree.query(_unit(points.ra, points.dec), distance_upper_bound=chord)
    ok = np.isfinite(dist)
    return dict(zip(points.pid[ok], ids[idx[ok]]))


def _lsdb_match(out, points, radius_arcsec, tmp_path, margin=True):
    lsdb.from_dataframe(points, ra_column="ra", dec_column="dec",
                        partition_rows=100).to_hats(tmp_path / "points")
    left = lsdb.read_hats(tmp_path / "points")
    right = _galaxies(out) if margin else lsdb.read_hats(out / "hats" / "galaxies")
    m = left.crossmatch(right, n_neighbors=1, radius_arcsec=radius_arcsec,
                        suffixes=("_p", "_g")).compute()
    return dict(zip(m.pid_p, m.targetid_g))


def test_a_cross_match_equals_a_kdtree_cross_match(hats_release, tmp_path):
    _, out = hats_release
    points, _ = _points(out, np.random.default_rng(1), 150, (0.05, 0.95))
    want = _kdtree_match(points, out / "galaxies_core.parquet", 1.0)
    assert len(want) >= 150  # every planted point, maybe a random one too
    assert _lsdb_match(out, points, 1.0, tmp_path) == want


def test_the_margin_cache_finds_pairs_across_partition_boundaries(hats_release, tmp_path):
    """Points up to a quarter degree from galaxies: some fall in another partition than their
    galaxy; with the margin cache LSDB finds those pairs too, without it it misses them."""
    _, out = hats_release
    points, _ = _points(out, np.random.default_rng(2), 1500, (60, 900), n_random=0)
    radius = 1000.0
    want = _kdtree_match(points, out / "galaxies_core.parquet", radius)
    cat = hats.read_hats(out / "hats" / "galaxies")
    gal = pq.read_table(out / "galaxies_core.parquet", columns=["targetid", "ra", "dec"]
                        ).to_pandas().set_index("targetid")
    pid = np.array(list(want))
    tid = np.array([want[p] for p in pid])
    p_pix = _partition(cat, points.ra.to_numpy()[pid], points.dec.to_numpy()[pid])
    g_pix = _partition(cat, gal.ra.loc[tid].to_numpy(), gal.dec.loc[tid].to_numpy())
    straddle = set(pid[p_pix != g_pix])
    assert len(straddle) >= 5, straddle
    assert _lsdb_match(out, points, radius, tmp_path / "with") == want
    without = _lsdb_match(out, points, radius, tmp_path / "without", margin=False)
    missed = set(want) - set(without)
    assert missed and missed <= straddle  # the margin cache is what found them


def _partition(cat, ra, dec) -> np.ndarray:
    """Index of the catalogue partition holding each position."""
    from hats.pixel_math import HealpixPixel
    from hats.pixel_math.healpix_shim import radec2pix

    pixels = cat.get_healpix_pixels()
    top = max(p.order for p in pixels)
    fine = radec2pix(top, ra, dec)
    lookup = {}
    for k, p in enumerate(pixels):
        shift = 2 * (top - p.order)
        for sub in range(p.pixel << shift, (p.pixel + 1) << shift):
            lookup[sub] = k
    assert isinstance(pixels[0], HealpixPixel)
    return np.array([lookup[int(f)] for f in fine])


def test_a_threshold_no_partition_can_meet_is_a_clear_error():
    """hats-import would fail deep in its alignment; the release names the parameter."""
    import pyarrow as pa

    from desivoids.errors import StageError

    same = pa.table({"ra": np.full(150, 150.0), "dec": np.full(150, 2.0)})
    with pytest.raises(StageError, match="hats_pixel_threshold 100: .*raise the threshold"):
        H.finest_order(same, 100)
    spread = pa.table({"ra": np.linspace(0, 359, 5000), "dec": np.zeros(5000)})
    assert H.finest_order(spread, 5000) == 1 and H.finest_order(spread, 100) > 1


def test_hats_import_gets_the_rows_in_sky_order_as_arrow_files(hats_release, tmp_path,
                                                               monkeypatch):
    """hats-import's input: every row once, in the order of hats' spatial index (its split and
    reduce are faster so), as Arrow IPC files that its reader hands over as they are."""
    import importlib

    _, out = hats_release
    mod = importlib.import_module("hats_import.pipeline")
    real, seen = mod.pipeline_with_client, {}

    def spy(args, client):
        if hasattr(args, "input_file_list"):  # the catalogue imports, not the margin
            reader = args.file_reader
            assert isinstance(reader, H.ArrowFileReader)
            parts = [t for f in args.input_file_list for t in reader.read(f)]
            cols = [t for f in args.input_file_list for t in reader.read(f, ["ra", "dec"])]
            assert all(t.column_names == ["ra", "dec"] for t in cols)
            seen[args.output_artifact_name] = __import__("pyarrow").concat_tables(parts)
        real(args, client)

    monkeypatch.setattr(mod, "pipeline_with_client", spy)
    tables = {n: pq.read_table(out / n) for n in ("galaxies_core.parquet",
                                                  "galaxy_void_assignments.parquet",
                                                  "voids_unified.parquet")}
    dest = tmp_path / "v"
    dest.mkdir()
    for n in tables:
        (dest / n).write_bytes((out / n).read_bytes())
    H.write(dest, tables, version="t", citation="c", inputs=[], pixel_threshold=THRESHOLD,
            margin_arcsec=MARGIN_ARCSEC)
    assert set(seen) == {"galaxies", "voids"}
    for name, n in (("galaxies", tables["galaxies_core.parquet"].num_rows),
                    ("voids", tables["voids_unified.parquet"].num_rows)):
        index = H.spatial_index(seen[name])
        assert len(index) == n and (np.diff(index) >= 0).all(), name
    assert sorted(seen["galaxies"]["targetid"].to_pylist()) == sorted(
        tables["galaxies_core.parquet"]["targetid"].to_pylist())


def test_the_import_cluster_starts_without_a_dashboard():
    """The dashboard imports bokeh and starts a web app: 0.6 s of every release, unused."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from desivoids.release import hats as H\n"
            "with H.dask_client('') as client:\n"
            "    assert client.scheduler_info()['workers']\n"
            "print('bokeh' in sys.modules)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"


def test_the_import_cluster_does_not_profile_its_tasks():
    """A worker's statistical profiler samples its threads' stacks every 10 ms for a dashboard
    the release never opens: 2-4 of its CPU seconds at DR1 scale (measured), off."""
    with H.dask_client("") as client:
        callbacks = client.run(lambda dask_worker: sorted(dask_worker.periodic_callbacks))
    assert callbacks and all("profile" not in cbs and "profile-cycle" not in cbs
                             for cbs in callbacks.values()), callbacks


def test_scheduler_address_sends_the_import_to_that_cluster(analysed):
    """With the run's scheduler_address, hats-import's tasks run on that cluster."""
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:
        res = release.run(data_dir=str(analysed), version="cluster", sample_size=50,
                          scheduler_address=cluster.scheduler_address)
        ran = set(cluster.scheduler.task_prefixes)
    assert {"map_to_pixels", "reduce_pixel_shards", "map_pixel_shards"} <= ran, ran
    assert all(is_valid_catalog(res.out_dir / n) for n in H.CATALOGUES)


def test_the_import_cluster_takes_a_free_port_without_a_warning():
    """Another cluster on distributed's default dashboard port 8787 once made the release's
    LocalCluster warn on stderr, which failed the release notebook of `make book`."""
    import socket
    import warnings

    held = socket.socket()
    try:
        held.bind(("127.0.0.1", 8787))
        held.listen(1)
    except OSError:
        pass  # already taken by someone else: the case this test is about
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Port .* is already in use")
            with H.dask_client("") as client:
                assert client.scheduler_info()["workers"]
    finally:
        held.close()


@pytest.mark.slow  # two fresh interpreters importing hats and compiling (10-30 s)
def test_hats_numba_functions_are_kept_in_the_disk_cache(tmp_path):
    """hats compiles its pixel-tree alignment in every new process (6.5 s of the DR1-scale
    margin pipeline); after numba_disk_cache() a compiled function lands in numba's on-disk
    cache (here NUMBA_CACHE_DIR), which the next process loads instead of compiling."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np\n"
            "from desivoids.release import hats as H\n"
            "assert H.numba_disk_cache() >= 2\n"
            "from hats.pixel_tree.moc_filter import perform_filter_by_moc\n"
            "r = np.array([[0, 4], [8, 12]], dtype=np.int64)\n"
            "print(perform_filter_by_moc(r, np.array([[2, 9]], dtype=np.int64)).tolist())\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout  # the cached code gives the same answer
    index = sorted(p.name for p in (tmp_path / "numba").rglob("*perform_filter_by_moc*.nbi"))
    assert index, "no numba cache index written"
    data = sorted((tmp_path / "numba").rglob("*perform_filter_by_moc*.nbc"))
    assert len(data) == 1  # compiled once: the second process loaded it
