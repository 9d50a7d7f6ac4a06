"""Sphere, cone and per-void count queries: exact against numpy references and an independent
astropy check, correct across RA = 0/360 and at the poles, and identical on SQLite, PostgreSQL
with Q3C and PostgreSQL with the GiST fallback."""
from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from desivoids.load import cone, load, queries, sphere
from desivoids.load.spatial import chord2, unit_vectors
from load_fixtures import write_inputs

N_GAL = 4000


@pytest.fixture(scope="module")
def sky_inputs(tmp_path_factory):
    pdir = tmp_path_factory.mktemp("queries") / "parquet"
    tables = write_inputs(pdir, n_galaxies=N_GAL, parts=2, seed=11)
    return pdir, {k: v.to_pandas() for k, v in tables.items()}


@pytest.fixture(scope="module")
def sqlite_db(sky_inputs, tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('qdb') / 'q.sqlite'}"
    load(parquet_dir=sky_inputs[0], db_url=url)
    yield url
    queries.dispose_engines()


def _pg_database(pg_url, pdir, sky_index):
    import psycopg

    name = f"q_{uuid.uuid4().hex[:10]}"
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = plain.rpartition("/")[0].replace("postgresql://", "postgresql+psycopg://") + "/" + name
    load(parquet_dir=pdir, db_url=url, sky_index=sky_index)
    return url, plain, name


@pytest.fixture(scope="module")
def pg_dbs(sky_inputs, pg_url):
    """Two PostgreSQL databases with the same data: Q3C sky index, and GiST-only."""
    import psycopg

    made = [_pg_database(pg_url, sky_inputs[0], s) for s in ("q3c", "blocks")]
    yield {"q3c": made[0][0], "blocks": made[1][0]}
    queries.dispose_engines()
    for _, plain, name in made:
        with psycopg.connect(plain, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


BACKENDS = ["sqlite", pytest.param("pg-q3c", marks=pytest.mark.postgres),
            pytest.param("pg-blocks", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db(request, sqlite_db):
    """The same data on SQLite, PostgreSQL + Q3C and PostgreSQL + GiST only."""
    if request.param == "sqlite":
        return sqlite_db
    return request.getfixturevalue("pg_dbs")[request.param.removeprefix("pg-")]


# -- references ----------------------------------------------------------------------------
def _gal(sky_inputs) -> pd.DataFrame:
    g = sky_inputs[1]["galaxies"]
    ux, uy, uz = unit_vectors(g["ra"].to_numpy(), g["dec"].to_numpy())
    return g.assign(ux=ux, uy=uy, uz=uz)


def sphere_ref(g: pd.DataFrame, x, y, z, r) -> np.ndarray:
    cx, cy, cz = (g[c].to_numpy(float) for c in ("comoving_x", "comoving_y", "comoving_z"))
    with np.errstate(invalid="ignore"):
        d2 = (cx - x) * (cx - x) + (cy - y) * (cy - y) + (cz - z) * (cz - z)
        inside = d2 < r * r
    return np.sort(g["targetid"].to_numpy()[inside])


def cone_ref(g: pd.DataFrame, ra, dec, rad, zmin, zmax) -> np.ndarray:
    u = [float(v) for v in unit_vectors(ra, dec)]
    d2 = (g["ux"] - u[0]) * (g["ux"] - u[0]) + (g["uy"] - u[1]) * (g["uy"] - u[1]) + \
        (g["uz"] - u[2]) * (g["uz"] - u[2])
    keep = (d2 <= chord2(rad)) & (g["z"] >= zmin) & (g["z"] <= zmax)
    return np.sort(g["targetid"].to_numpy()[keep.to_numpy()])


def great_circle_deg(ra1, dec1, ra2, dec2):
    """Haversine separation, an independent formula (no unit vectors)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


CONES = [  # (ra, dec, radius_deg, zmin, zmax)
    (0.3, 10.0, 2.0, 0.0, 0.3),         # straddles RA = 0/360 from the east
    (359.7, 10.0, 1.5, 0.05, 0.2),      # ... and from the west, in a redshift slice
    (-0.5, 10.0, 1.0, -1.0, 1.0),       # RA given negative
    (123.0, 89.6, 1.0, -1.0, 1.0),      # holds the north pole
    (0.0, -90.0, 0.8, 0.0, 0.3),        # centred on the south pole
    (200.0, -88.5, 3.0, 0.1, 0.25),     # over the south pole, off-centre
    (40.0, 20.0, 60.0, 0.0, 0.1),       # wide
    (10.0, 10.0, 3.0, -0.01, 0.0),      # only Z < 0 rows (no comoving position)
    (180.0, 0.0, 0.5, 0.0, 0.3),        # probably empty
]


def test_cone_exact_across_ra_wrap_and_poles(db, sky_inputs):
    g = _gal(sky_inputs)
    seen_wrap = seen_pole = 0
    for ra, dec, rad, zmin, zmax in CONES:
        got = cone(db, ra, dec, rad, zmin, zmax)
        assert list(got.columns) == ["targetid", "ra", "dec", "z"]
        assert got["targetid"].is_monotonic_increasing
        ids = got["targetid"].to_numpy()
        np.testing.assert_array_equal(ids, cone_ref(g, ra, dec, rad, zmin, zmax),
                                      err_msg=f"cone {ra, dec, rad}")
        # independent check: haversine separation, with a margin for the two formulas
        sep = great_circle_deg(ra, dec, g["ra"].to_numpy(), g["dec"].to_numpy())
        zok = (g["z"] >= zmin) & (g["z"] <= zmax)
        sure_in = set(g["targetid"][(sep < rad - 1e-7) & zok])
        sure_out = set(g["targetid"][(sep > rad + 1e-7) | ~zok])
        assert sure_in <= set(ids) and not (sure_out & set(ids))
        seen_wrap += int(((got["ra"] > 359) .any()) and (got["ra"] < 1).any())
        seen_pole += int((got["dec"].abs() > 89).any() and got["ra"].max() - got["ra"].min() > 180)
    assert seen_wrap >= 2 and seen_pole >= 2  # the hard cases really had galaxies


def test_sphere_exact(db, sky_inputs):
    g = _gal(sky_inputs)
    rng = np.random.default_rng(3)
    has = g["comoving_x"].notna().to_numpy()
    centres = g[has].sample(25, random_state=4)
    cases = [(r.comoving_x + rng.normal(0, 5), r.comoving_y, r.comoving_z,
              float(rng.uniform(5, 120))) for r in centres.itertuples()]
    cases += [(0.0, 0.0, 0.0, 50.0), (10.0, -5.0, 3.0, 100.0),  # spheres holding the observer
              (1e4, 0.0, 0.0, 10.0)]                             # far outside: empty
    total = 0
    for x, y, z, r in cases:
        got = sphere(db, x, y, z, r)
        assert got["targetid"].is_monotonic_increasing
        np.testing.assert_array_equal(got["targetid"].to_numpy(), sphere_ref(g, x, y, z, r))
        total += len(got)
    assert total > 100
    with pytest.raises(ValueError):
        sphere(db, 0, 0, 0, 0)


@pytest.mark.postgres
def test_backends_return_identical_frames(sqlite_db, pg_dbs, sky_inputs):
    all_dbs = {"sqlite": sqlite_db, **{f"pg-{k}": v for k, v in pg_dbs.items()}}
    g = _gal(sky_inputs)
    row = g[g["comoving_x"].notna()].iloc[7]
    frames = {}
    for name, db in all_dbs.items():
        frames[name] = (sphere(db, row.comoving_x, row.comoving_y, row.comoving_z, 60.0),
                        cone(db, 0.2, 10.0, 2.5, 0.0, 0.3), sphere(db, 1e4, 0.0, 0.0, 10.0))
    ref = frames.pop("sqlite")
    assert len(ref[0]) > 0 and len(ref[1]) > 0 and len(ref[2]) == 0  # and an empty sphere
    for name, fr in frames.items():
        for a, b in zip(ref, fr):
            pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
