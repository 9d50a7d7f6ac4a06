"""The load stage on the real convert output of the project's tiny mock sky, both backends."""
from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids.load import cone, load, queries, report, sphere

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def converted(tiny_sky, tmp_path_factory):
    from desivoids.convert import build

    root, _ = tiny_sky
    out = tmp_path_factory.mktemp("tiny_convert") / "convert"
    fast, vast = build.discover(root)
    build.convert_files(fast, vast, out, base=root, chunk_rows=5000)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_mock_convert_output_loads_and_queries(backend, converted, request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'tiny.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("pg_db_url"))
    res = load(parquet_dir=converted, db_url=url)
    assert all(t.action == "loaded" for t in res.tables)
    rec = report.reconcile(converted, url)
    assert rec["match"].all(), rec
    assert rec.set_index("table").loc["galaxies", "db_rows"] > 1000

    gal = pq.read_table(converted / "galaxies").to_pandas()
    voids = pq.read_table(converted / "voids.parquet").to_pandas()
    v = voids[voids["algorithm"] == "VoidFinder"].sort_values(["cap", "void"]).iloc[0]
    got = sphere(url, v.x, v.y, v.z, 2 * v.radius)
    cx, cy, cz = (gal[c].to_numpy(float) for c in ("comoving_x", "comoving_y", "comoving_z"))
    r2 = (2 * v.radius) * (2 * v.radius)
    with np.errstate(invalid="ignore"):
        ref = np.sort(gal["targetid"].to_numpy()[((cx - v.x) * (cx - v.x) + (cy - v.y) *
                                                   (cy - v.y) + (cz - v.z) * (cz - v.z)) < r2])
    np.testing.assert_array_equal(got["targetid"].to_numpy(), ref)
    assert len(ref) > 0

    c = cone(url, v.ra, v.dec, 3.0, 0.0, 0.24)
    assert c["targetid"].is_monotonic_increasing and len(c) > 0
    # loading the same convert output again changes nothing
    again = load(parquet_dir=converted, db_url=url)
    assert {t.action for t in again.tables} == {"unchanged"}
    queries.dispose_engines()
