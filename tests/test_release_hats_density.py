"""The release's hats/galaxies with the continuous environment: when the run's density stage
has published galaxy_environment, the HATS galaxies catalogue (and its margin cache) carries its
columns, equal to the density table row by row, and the release's own check accepts them; the
catalogue's sources name the density table's sha256."""
from __future__ import annotations

import shutil

import hats
import lsdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import density, release
from desivoids.checksums import sha256_file
from desivoids.load.queries import dispose_engines
from desivoids.release import hats as H


@pytest.fixture(scope="module")
def continuous_release(analysed, tmp_path_factory):
    d = tmp_path_factory.mktemp("hats_density") / "run"
    shutil.copytree(analysed, d, ignore=shutil.ignore_patterns("release"))
    density.run(data_dir=str(d), n_patches={"NGC": 8, "SGC": 4})
    dispose_engines()
    res = release.run(data_dir=str(d), version="dens", sample_size=50,
                      hats_pixel_threshold=300, hats_margin_arcsec=600.0)
    return d, res


def test_hats_galaxies_carries_the_continuous_environment(continuous_release):
    d, res = continuous_release
    out = res.out_dir
    assert all(r["ok"] for r in res.completeness), [r for r in res.completeness if not r["ok"]]
    got = lsdb.read_hats(out / "hats" / "galaxies").compute().sort_values("targetid")
    assert list(got.columns) == [c.name for c in H.GALAXIES + H.CONTINUOUS]
    env = pq.read_table(d / "density" / "galaxy_environment.parquet").to_pandas()
    env = env.set_index("targetid").loc[got.targetid.to_numpy()]
    for c in H.CONTINUOUS:
        mine, want = got[c.name].to_numpy(), env[c.name].to_numpy()
        np.testing.assert_array_equal(got[c.name].isna().to_numpy(), env[c.name].isna().to_numpy(),
                                      err_msg=c.name)
        ok = ~env[c.name].isna().to_numpy()
        np.testing.assert_array_equal(mine[ok].astype(float), want[ok].astype(float),
                                      err_msg=c.name)
    margin = hats.read_hats(out / "hats" / "galaxies_margin")
    assert "delta_k" in margin.schema.names
    props = hats.read_hats(out / "hats" / "galaxies").catalog_info
    sha = sha256_file(d / "density" / "galaxy_environment.parquet")
    assert f"density/galaxy_environment.parquet:{sha}" in props.desivoids_source_sha256
    assert "web_class" in (out / "data_dictionary.md").read_text()
