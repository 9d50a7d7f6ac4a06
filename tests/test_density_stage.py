"""The density stage on the tiny mock: one row per galaxy in Parquet and the database; the
void-centric distance of a void galaxy is environment's r_over_reff; delta_k against a
brute-force recount from the run's own tracers; the profiles and comparisons the chapter draws;
and the notebook through the runner with nothing on stderr."""
from __future__ import annotations

import re
import shutil
import sqlite3

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from desivoids import density, formats
from desivoids.load.queries import dispose_engines


@pytest.fixture(scope="module")
def density_run(env_run, tmp_path_factory):
    src, _ = env_run
    d = tmp_path_factory.mktemp("density") / "run"
    shutil.copytree(src, d)
    result = density.run(data_dir=str(d), n_patches={"NGC": 8, "SGC": 4})
    dispose_engines()
    return d, result


def _env(d) -> pd.DataFrame:
    return pq.read_table(d / "density" / "galaxy_environment.parquet").to_pandas()


def test_one_row_per_galaxy_in_parquet_and_the_database(density_run):
    d, _ = density_run
    env = _env(d)
    galaxies = pq.read_table(d / "convert" / "galaxies", columns=["targetid"]).to_pandas()
    assert env.targetid.is_monotonic_increasing and env.targetid.is_unique
    assert set(env.targetid) == set(galaxies.targetid)
    for alg in formats.ALGORITHMS:
        assert density.column_of(alg) in env and density.column_of(alg, "nearest_void") in env
    con = sqlite3.connect(d / "database" / "desivoids.sqlite")
    try:
        rows = con.execute("SELECT targetid, delta_k, web_class FROM galaxy_environment "
                           "ORDER BY targetid").fetchall()
    finally:
        con.close()
    db = pd.DataFrame(rows, columns=["targetid", "delta_k", "web_class"])
    assert np.array_equal(db.targetid, env.targetid)
    np.testing.assert_allclose(db.delta_k.astype(float), env.delta_k.astype(float))


def test_a_void_galaxys_distance_is_environments_r_over_reff(density_run):
    d, _ = density_run
    env = _env(d).set_index("targetid")
    a = pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas()
    for alg in formats.ALGORITHMS:
        v = a[(a.algorithm == alg) & (a.flag == 1) & a.r_over_reff.notna()].set_index("targetid")
        assert len(v), alg
        np.testing.assert_allclose(env.loc[v.index, density.column_of(alg)], v.r_over_reff,
                                   rtol=1e-12, err_msg=alg)
        assert (env.loc[v.index, density.column_of(alg, "nearest_void")] == v.void).all()
        out = a[(a.algorithm == alg) & (a.flag == 9)].targetid
        assert env.loc[out, density.column_of(alg)].isna().all()
        wall = a[(a.algorithm == alg) & (a.flag == 0)].targetid
        assert env.loc[wall, density.column_of(alg)].notna().mean() > 0.99


def test_voidfinder_distances_equal_the_mocks_own(density_run, tiny_sky):
    """The stage's r / R_eff (cKDTree to the nearest centre) against the distance the mock
    planted its quenching on (its own brute force over its MAXIMALS): the same for every
    galaxy, none where the galaxy is outside VoidFinder's survey."""
    d, _ = density_run
    root, _ = tiny_sky
    env = _env(d).set_index("targetid")
    t = pq.read_table(root / "truth" / "galaxies.parquet",
                      columns=["TARGETID", "R_OVER_REFF_VOIDFINDER"]).to_pandas()
    mine = env[density.column_of("VoidFinder")].to_numpy(np.float64, na_value=np.nan)
    theirs = t.set_index("TARGETID").loc[env.index].R_OVER_REFF_VOIDFINDER.to_numpy(np.float64)
    assert np.array_equal(np.isnan(mine), np.isnan(theirs)) and np.isfinite(mine).sum() > 1000
    ok = np.isfinite(mine)
    np.testing.assert_allclose(mine[ok], theirs[ok], rtol=1e-5)


def test_delta_k_of_the_run_equals_a_recount_from_its_tracers(density_run):
    d, result = density_run
    env = _env(d)
    gal = pq.read_table(d / "convert" / "galaxies").to_pandas().set_index("targetid")
    sel = pq.read_table(d / "plausibility" / "selection.parquet").to_pandas()
    tracer_ids = set(sel.targetid[sel.tracer])
    for cap in ("NGC", "SGC"):
        e = env[(env.cap == cap) & env.r_k.notna()]
        xyz = gal.loc[e.targetid, ["comoving_x", "comoving_y", "comoving_z"]].to_numpy()
        is_t = e.targetid.isin(tracer_ids).to_numpy()
        t = xyz[is_t]
        dist = np.sqrt(((xyz[:, None] - t[None]) ** 2).sum(-1))
        dist.sort(axis=1)
        r = np.where(is_t, dist[:, 5], dist[:, 4])
        np.testing.assert_allclose(e.r_k, r, rtol=1e-12)
        row = next(c for c in result.report["caps"] if c["cap"] == cap)
        f = e.edge_fraction.to_numpy()
        ok = f > 0
        expect = 5 / (f[ok] * 4 / 3 * np.pi * r[ok] ** 3) / (row["tracers_inside"]
                                                              / row["volume"]) - 1
        np.testing.assert_allclose(e.delta_k[ok], expect, rtol=1e-10)
        assert (e.edge_flag == ~(f >= 0.5)).all()


def test_profiles_comparison_and_web_counts(density_run):
    d, result = density_run
    p = result.profiles
    assert set(p.quantity) == {"delta_k", "r_over_reff"}
    assert set(p[p.quantity == "r_over_reff"].algorithm) == set(formats.ALGORITHMS)
    f = p.fraction.dropna()
    assert ((f >= 0) & (f <= 1)).all() and len(f) > 10
    assert list(result.comparison.labelling) == [*formats.ALGORITHMS, "T-Web"]
    counts = pd.read_parquet(d / "density" / "web_counts.parquet")
    assert set(counts.web_class) == set(density.WEB_CLASSES)
    assert (counts.groupby("cap").cells.sum() > 0).all()
    env = _env(d)
    assert env.web_class.dropna().isin([0, 1, 2, 3]).all()
    assert {r["b"] for r in result.report["web_agreement"]} == set(formats.ALGORITHMS)


def test_a_distributed_cluster_gives_the_same_table(density_run, tmp_path):
    from distributed import LocalCluster

    d, _ = density_run
    other = tmp_path / "run"
    for sub in ("convert", "database", "plausibility", "environment"):
        shutil.copytree(d / sub, other / sub)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        density.run(data_dir=str(other), scheduler_address=cluster.scheduler_address,
                    chunk_rows=700, n_patches={"NGC": 8, "SGC": 4})
    dispose_engines()
    pd.testing.assert_frame_equal(_env(d), _env(other))


@pytest.mark.parametrize("fails", ["answer", "table"])
def test_a_failure_while_the_table_is_written_publishes_nothing(density_run, tmp_path,
                                                                 monkeypatch, fails):
    """galaxy_environment is written to Parquet and the database while the answer is computed
    (a thread): an error in either leaves the previous folder and table as they were."""
    from desivoids.density import answer as answer_module
    from desivoids.load.tables import TableTransaction

    d, _ = density_run
    other = tmp_path / "run"
    for sub in ("convert", "database", "plausibility", "environment", "density"):
        shutil.copytree(d / sub, other / sub)
    before = {p.name: p.read_bytes() for p in (other / "density").iterdir() if p.is_file()}
    with sqlite3.connect(other / "database" / "desivoids.sqlite") as con:
        rows = con.execute("SELECT count(*), sum(delta_k) FROM galaxy_environment").fetchone()

    def boom(*args, **kwargs):
        raise RuntimeError(f"the {fails} failed")

    if fails == "answer":
        monkeypatch.setattr(answer_module, "answer", boom)
    else:
        monkeypatch.setattr(TableTransaction, "publish", boom)
    with pytest.raises(RuntimeError, match=f"the {fails} failed"):
        density.run(data_dir=str(other), n_patches={"NGC": 8, "SGC": 4})
    dispose_engines()
    after = {p.name: p.read_bytes() for p in (other / "density").iterdir() if p.is_file()}
    assert after == before
    with sqlite3.connect(other / "database" / "desivoids.sqlite") as con:
        assert con.execute("SELECT count(*), sum(delta_k) FROM galaxy_environment"
                           ).fetchone() == rows


@pytest.mark.slow
def test_the_notebook_runs_through_the_runner_without_stderr(density_run, tmp_path):
    from desivoids import runner
    from desivoids.stages import STAGES

    from notebook_checks import output_text

    d, _ = density_run
    out = runner.execute_stage(STAGES["density"], {"data_dir": str(d),
                                                   "n_patches": {"NGC": 8, "SGC": 4}},
                               output=tmp_path / "08_density.ipynb", progress=False)
    text = output_text(out)
    assert "galaxies in 2 cap(s) have a local density contrast" in text  # the opening
    assert "Ullah et al. 2026 red" in text and not re.search(r"\bnan\b", text, re.I)
    import nbformat

    shown = [o for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", [])
             if "image/png" in o.get("data", {})]
    assert len(shown) == 3  # the three glued figures, each once
