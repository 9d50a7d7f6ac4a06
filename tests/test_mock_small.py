"""The default `small` mock (what `make book` analyses): counts, footprint density and a planted
effect recovered with small binomial errors. Generates ~150k rows (~20 s): marked slow."""
import json

import pyarrow.parquet as pq
import pytest

from desivoids import formats
from desivoids.mock import generate, scales, truth

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_sky(tmp_path_factory):
    out = tmp_path_factory.mktemp("small_sky")
    return out, generate(out, seed=20251125, scale="small", tiles=0)


def test_counts(small_sky):
    root, s = small_sky
    sc = scales.SCALES["small"]
    assert s["rows"] == sc.rows
    assert s["tracers"] == sc.tracers
    for cap in formats.CAPS:
        assert s["desivast"][cap]["voids"] == sc.vf_voids[cap]
        assert s["desivast"][cap]["holes"] == sc.vf_holes[cap]
    fs = [v for k, v in s["files"].items() if "fastspec" in k]
    assert len(fs) == 12 and min(fs) >= sc.min_hp_rows and sum(fs) == sc.rows


def test_planted_offset_recovered_precisely(small_sky):
    root, _ = small_sky
    t = pq.read_table(root / "truth" / "galaxies.parquet").to_pandas()
    doc = json.loads((root / "truth" / "truth.json").read_text())
    s = t[t.IS_QUALITY & ~t.COMP.isin(["star", "qso"])]
    off = truth.offsets_by_mass(s.LOGMSTAR_TRUE, s.QUENCHED, s.FLAG_VOIDFINDER,
                                doc["parameters"]["mass_bins"], min_count=20)
    est, err = off["weighted_offset"], off["weighted_error"]
    assert err < 0.015
    assert abs(est - doc["planted_offset"]["VoidFinder"]) < 3 * err, (est, err)
    # each observational definition sees most of it (they scatter around the latent flag)
    for key in ("QUENCHED_SSFR", "QUENCHED_DN4000", "QUENCHED_COLOR"):
        off = doc["realised_offsets"]["quality"]["VoidFinder"][key]["weighted_offset"]
        assert -0.12 < off < -0.05, key
    # void galaxies are a minority for VoidFinder, a majority for the V2 variants
    vf = doc["void_fraction_tracers"]
    assert 0.03 < vf["VoidFinder"] < 0.4 and vf["REVOLVER"] > 0.6
