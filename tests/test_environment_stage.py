"""The environment stage on the tiny mock: one row per galaxy and algorithm, equal to the planted
truth; galaxies per void against a brute-force count and against the load stage's SQL sphere
query; fractions, agreement and the database tables; the same result on a dask.distributed
cluster as on the local scheduler."""
from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from desivoids import environment, formats, load
from desivoids.load.queries import dispose_engines
from desivoids.vastheaders import primary_headers


def _assignments(d) -> pd.DataFrame:
    return pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas()


def test_every_galaxy_has_one_row_per_algorithm_equal_to_the_truth(env_run, tiny_sky):
    d, _ = env_run
    root, _ = tiny_sky
    a = _assignments(d)
    assert len(a) == 4 * 4800 and not a.duplicated(["targetid", "algorithm", "cap"]).any()
    assert set(a.flag.unique()) <= {0, 1, 2, 9}
    truth = pq.read_table(root / "truth" / "galaxies.parquet").to_pandas().set_index("TARGETID")
    for alg in formats.ALGORITHMS:
        got = a[a.algorithm == alg].set_index("targetid")
        t = truth.loc[got.index]
        assert (got.flag.to_numpy() == t[f"FLAG_{alg.upper()}"].to_numpy()).all(), alg
        void = got.flag.to_numpy() == 1
        assert (got.void.to_numpy()[void] == t[f"VOID_{alg.upper()}"].to_numpy()[void]).all()
        assert got.void[~void].isna().all() and got.r_over_reff[~void].isna().all()
        assert (got.cap.to_numpy() == t.CAP.to_numpy()).all()
    # interior-only variant: a void galaxy of a non-interior void is left out like an edge one
    vf = a[a.algorithm == "VoidFinder"]
    moved = (vf.flag == 1) & vf.interior.ne(True)  # None (unknown) is not interior
    assert (vf.flag_interior[moved] == 2).all() and (vf.flag_interior[~moved] == vf.flag[~moved]).all()


#: the stage's default surface tolerance (Mpc/h): inside a hole means inside by more than it
SURFACE_TOL = 1e-3


def _brute_force_vf_counts(d) -> pd.Series:
    """Galaxies per VoidFinder void, every galaxy against every hole of its cap, written here."""
    g = pq.read_table(d / "convert" / "galaxies").to_pandas()
    holes = pq.read_table(d / "convert" / "holes.parquet").to_pandas()
    heads = primary_headers(d / "convert" / "voids.parquet")
    caps = formats.cap_of_ra(g.ra.to_numpy())
    xyz = g[["comoving_x", "comoving_y", "comoving_z"]].to_numpy(float)
    counts = {}
    for cap in formats.CAPS:
        z_ok = (g.z > 0) & (g.z <= heads[("VoidFinder", cap)]["ZLIMU"]) & (caps == cap)
        h = holes[holes.cap == cap].sort_values("hole_index")
        p = xyz[z_ok.to_numpy()]
        d2 = ((p[:, None, :] - h[["x", "y", "z"]].to_numpy()[None]) ** 2).sum(axis=2)
        inside = np.sqrt(d2) < h.radius.to_numpy()[None] - SURFACE_TOL
        hit = inside.any(axis=1)
        first = np.argmax(inside, axis=1)[hit]
        for v, n in pd.Series(h.void.to_numpy()[first]).value_counts().items():
            counts[(cap, int(v))] = int(n)
    return pd.Series(counts)


def test_galaxies_per_void(env_run):
    d, result = env_run
    c = pq.read_table(d / "environment" / "void_counts.parquet").to_pandas()
    voids = pq.read_table(d / "convert" / "voids.parquet").to_pandas()
    for alg in formats.ALGORITHMS:
        cat = c[(c.algorithm == alg) & c.in_catalogue]
        assert len(cat) == (voids.algorithm == alg).sum()  # zero counts included
    vf = c[c.algorithm == "VoidFinder"].set_index(["cap", "void"]).n_galaxies
    ref = _brute_force_vf_counts(d)
    assert (vf[vf > 0].sort_index() == ref.sort_index()).all() and vf.sum() == ref.sum() > 50
    # each V2 file's ZONEVOID names only voids of its own VOIDS table (three prunings)
    assert not (~c.in_catalogue).any()
    assert set(result.report["voids_not_in_catalogue"].values()) == {0}


def test_a_galaxy_inside_a_hole_by_the_sql_sphere_query_is_a_void_galaxy(env_run):
    d, _ = env_run
    url = f"sqlite:///{d / 'database' / 'desivoids.sqlite'}"
    a = _assignments(d)
    vf = a[a.algorithm == "VoidFinder"].set_index("targetid")
    gal = pq.read_table(d / "convert" / "galaxies", columns=["targetid", "z"]).to_pandas()
    z = gal.set_index("targetid").z
    holes = pq.read_table(d / "convert" / "holes.parquet").to_pandas()
    checked = 0
    for h in holes.sort_values("radius", ascending=False).head(25).itertuples():
        got = load.sphere(url, h.x, h.y, h.z, h.radius - SURFACE_TOL)
        ids = got.targetid[(z.loc[got.targetid].to_numpy() > 0)
                           & (z.loc[got.targetid].to_numpy() <= 0.24)]
        assert (vf.loc[ids, "flag"] == 1).all()
        checked += len(ids)
    dispose_engines()
    assert checked > 20


def test_fractions_agreement_and_tables(env_run):
    d, result = env_run
    f = result.fractions
    assert ((f.void_of_void_and_wall >= 0) & (f.void_of_void_and_wall <= 1)).all()
    vol = f[f["of"] == "volume"]
    assert (vol.outside <= 0.001 * (vol.void + vol.wall + vol.edge)).all()  # randoms in the survey
    both = f[(f.cap == "both") & (f["of"] == "tracers")].set_index("algorithm")
    assert both.loc["VoidFinder", "void_of_void_and_wall"] < both.loc["ZOBOV", "void_of_void_and_wall"]
    ag = result.agreement.set_index(["a", "b"])
    for alg in formats.ALGORITHMS:
        assert ag.loc[(alg, alg), "same_label"] == 1.0
    for a, b in (("REVOLVER", "VIDE"), ("REVOLVER", "ZOBOV"), ("VIDE", "ZOBOV")):
        assert ag.loc[(a, b), "same_label"] < 1.0  # one tessellation, three labellings
    assert ag.loc[("VoidFinder", "ZOBOV"), "same_label"] < 1.0
    db = sqlite3.connect(d / "database" / "desivoids.sqlite")
    n, n_void = db.execute("SELECT count(*), sum(flag = 1) FROM galaxy_void_assignments").fetchone()
    m = db.execute("SELECT count(*) FROM void_counts").fetchone()[0]
    db.close()
    a = _assignments(d)
    assert n == len(a) and n_void == int((a.flag == 1).sum())
    assert m == len(pq.read_table(d / "environment" / "void_counts.parquet"))


@pytest.mark.slow
def test_a_distributed_cluster_gives_the_same_result(env_run, tmp_path):
    from distributed import LocalCluster

    d, _ = env_run
    other = tmp_path / "run"
    for sub in ("convert", "database", "plausibility"):
        shutil.copytree(d / sub, other / sub)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        environment.run(data_dir=str(other), scheduler_address=cluster.scheduler_address,
                        chunk_rows=1000, randoms=20_000)
    dispose_engines()
    a, b = _assignments(d), _assignments(other)
    pd.testing.assert_frame_equal(a, b)


def test_a_deleted_database_is_not_recreated_and_the_message_says_run_load(env_run, tmp_path):
    """environment once recreated a deleted database holding only its own tables, exit 0."""
    from desivoids.errors import StageError

    d, _ = env_run
    run = tmp_path / "run"
    for sub in ("convert", "plausibility"):
        shutil.copytree(d / sub, run / sub)
    with pytest.raises(StageError, match=r"holds no 'galaxies' table .* run `desivoids load` first"):
        environment.run(data_dir=str(run), randoms=2_000)
    assert not (run / "database").exists() or not any((run / "database").iterdir())
    assert not (run / "environment").exists()


def test_surface_galaxies_are_reported_per_cap_and_listed(env_run, tiny_sky):
    """report.json counts VoidFinder's surface galaxies per cap (the mock's holes touch their
    tracers, so there are some), and voidfinder_surface.parquet lists exactly the truth's."""
    d, result = env_run
    root, _ = tiny_sky
    rep = {r["cap"]: r for r in result.report["voidfinder_surface"]}
    assert set(rep) == {*formats.CAPS, "both"}
    truth = pq.read_table(root / "truth" / "galaxies.parquet").to_pandas()
    listed = pq.read_table(d / "environment" / "voidfinder_surface.parquet").to_pandas()
    assert set(listed.targetid) == set(truth.TARGETID[truth.SURFACE_VOIDFINDER])
    assert set(listed.flag) <= {0, 2, 9}
    for cap in formats.CAPS:
        r, mine = rep[cap], listed[listed.cap == cap]
        assert r["galaxies"] == len(mine) > 0 and r["tracers"] == mine.tracer.sum() > 0
        assert r["galaxies_strict_void"] == mine.strict_void.sum()
        assert r["tracer_void_fraction"] < r["tracer_void_fraction_surface_as_void"]
    assert rep["both"]["galaxies"] == len(listed)
    assert result.report["parameters"]["surface_tol"] == SURFACE_TOL


def test_field_galaxies_are_counted_where_the_voidfinder_file_has_a_field_hdu(env_run,
                                                                              tmp_path):
    """The mock's files, like DESIVAST's, carry no FIELD HDU: nothing is counted. A VoidFinder
    file with VAST's FIELD HDU (written here with astropy) makes the stage count the void
    galaxies among its field galaxies, matched on position."""
    from astropy.io import fits

    from desivoids import paths as dpaths
    from desivoids.environment.stage import field_report

    d, result = env_run
    rows = result.report["voidfinder_field"]
    assert {r["cap"] for r in rows} == set(formats.CAPS)
    assert all(r["field_hdu"] is False and r["void_field_galaxies"] is None for r in rows)
    a = _assignments(d)
    vf = a[a.algorithm == "VoidFinder"].set_index("targetid")
    gal = pq.read_table(d / "convert" / "galaxies").to_pandas().set_index("targetid")
    ngc = vf[vf.cap == "NGC"]
    void_ids = ngc.index[ngc.flag == 1][:3].to_numpy()
    wall_ids = ngc.index[ngc.flag == 0][:2].to_numpy()
    pos = gal.loc[np.r_[void_ids, wall_ids], ["comoving_x", "comoving_y", "comoving_z"]]
    field = pos.to_numpy() + 1e-4  # VAST's positions differ from ours by up to 6e-4 Mpc/h
    layout = dpaths.RunLayout.of(tmp_path / "run")
    heads = primary_headers(d / "convert" / "voids.parquet")
    src = layout.raw / heads[("VoidFinder", "NGC")]["file"]
    src.parent.mkdir(parents=True)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column(c, "E", array=field[:, k]) for k, c in enumerate("XYZ")],
        name="FIELD")]).writeto(src)
    table = pq.read_table(d / "convert" / "galaxies", columns=list(environment.GALAXY_COLUMNS))
    order = np.argsort(table.column("targetid").to_numpy())
    table = table.take(order)  # row-matched with the assignments (sorted by targetid)
    ids = table.column("targetid").to_numpy()
    cap_code = np.array([formats.CAPS.index(c) for c in vf.cap.loc[ids]], np.int8)
    flag = vf.flag.loc[ids].to_numpy().astype(np.int8)
    n = len(flag)
    assign = environment.Assignment("VoidFinder", cap_code, flag, np.full(n, -1),
                                    np.full(n, np.nan), np.full(n, -1, np.int8))
    got = {r["cap"]: r for r in field_report(layout, d / "convert", table, assign,
                                             np.ones(n, bool), None)}
    assert got["NGC"]["field_hdu"] and got["NGC"]["field_galaxies"] == 5
    assert got["NGC"]["field_matched"] == 5 and got["NGC"]["void_field_galaxies"] == 3
    assert got["NGC"]["void_galaxies"] == int((ngc.flag == 1).sum())
    assert got["SGC"]["field_hdu"] is False


def test_the_galaxies_beyond_the_far_limit_from_membership_s_caps_are_those_found_alone(env_run):
    """Speed only (issue 25): the summary gives beyond_far_limit_in_holes each galaxy's cap as
    membership assigned it, instead of recomputing it from RA; membership's cap_code is
    cap_index_of_ra's for every galaxy (also with RA beyond 360, negative or NaN), and the
    galaxies found are the same."""
    from desivoids import paths
    from desivoids.environment import stage
    from desivoids.environment.membership import assign_chunk, beyond_far_limit_in_holes

    d, _ = env_run
    inputs = stage.void_inputs(paths.RunLayout.of(d), surface_tol=1e-3)
    gal = {c: inputs.galaxies.column(c).to_numpy() for c in inputs.galaxies.column_names}
    gal["ra"] = gal["ra"].copy()
    gal["ra"][:4] = [np.nan, -100.0, 83.0, 465.0]  # edge cases of the rule, either cap
    result = assign_chunk(gal, inputs.catalogues, inputs.om)
    code = result["VoidFinder"].cap_code
    assert np.array_equal(code, formats.cap_index_of_ra(gal["ra"]))
    found = 0
    for cat in inputs.catalogues.values():
        alone = beyond_far_limit_in_holes(gal, cat, inputs.om)
        assert np.array_equal(beyond_far_limit_in_holes(gal, cat, inputs.om, code), alone)
        found += len(alone)
    assert found > 0
