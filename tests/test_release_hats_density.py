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


def test_the_release_hashes_each_file_once_and_density_s_not_at_all(continuous_release,
                                                                     monkeypatch):
    """The HATS properties, SHA256SUMS and the completeness check share one sha256 per file;
    density's galaxy_environment (checked against its manifest before the release read it)
    is not hashed again: its sha256 is the manifest's."""
    from collections import Counter

    from desivoids.release import stage

    d, _ = continuous_release
    hashed = Counter()

    def counting(path):
        hashed[str(path)] += 1
        return sha256_file(path)

    monkeypatch.setattr(stage, "sha256_file", counting)
    monkeypatch.setattr(H, "sha256_file", counting)
    res = release.run(data_dir=str(d), version="once", sample_size=50,
                      hats_pixel_threshold=300, hats_margin_arcsec=600.0)
    assert all(r["ok"] for r in res.completeness)
    assert hashed and max(hashed.values()) == 1, [p for p, n in hashed.items() if n > 1]
    assert not [p for p in hashed if p.endswith("galaxy_environment.parquet")]
    props = hats.read_hats(res.out_dir / "hats" / "galaxies").catalog_info
    sha = sha256_file(d / "density" / "galaxy_environment.parquet")
    assert f"density/galaxy_environment.parquet:{sha}" in props.desivoids_source_sha256
