"""acquire sources: the anonymous S3 path against a local moto server, fsspec folders and
URLs, and the mapping from a source parameter to a source."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from acquire_fixtures import MotoS3, random_files, sha256_of, write_tree  # noqa: E402

from desivoids.acquire.manifest import Manifest  # noqa: E402
from desivoids.acquire.steps import acquire, manifest_rows, plan_run  # noqa: E402
from desivoids.acquire.sources import (FsspecSource, HTTPSource, Missing, S3Source,  # noqa: E402
                                       make_source)
from desivoids.acquire.transfer import Options  # noqa: E402

D = "dr1/vac/dr1/desivast/v1.0"
DESIVAST = ["DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits", "DESIVAST_BGS_VOLLIM_VoidFinder_SGC.fits"] + [
    f"DESIVAST_BGS_VOLLIM_V2_{a}_{c}.fits" for a in ("REVOLVER", "VIDE", "ZOBOV") for c in ("NGC", "SGC")]


@pytest.fixture
def desivast_tree(tmp_path):
    rng = np.random.default_rng(11)
    files = {f"{D}/{n}": rng.integers(0, 256, int(rng.integers(5000, 80000)), dtype="u1").tobytes()
             for n in DESIVAST}
    write_tree(tmp_path / "src", files)
    return tmp_path / "src", files


def opts(**kw):
    return Options(**{"workers": 3, "retries": 2, "backoff": 0.01, "progress": False, "min_free": 0, **kw})


@pytest.fixture(scope="module")
def moto():
    with MotoS3() as s3:
        yield s3


def test_s3_anonymous_fetch_of_desivast_verifies_against_the_published_sums(moto, desivast_tree, tmp_path):
    src, files = desivast_tree
    bucket = "desidata-test-1"
    moto.upload_tree(bucket, src)
    source = make_source(f"s3://{bucket}", s3_endpoint=moto.endpoint)
    assert isinstance(source, S3Source)
    s = acquire(source, tmp_path / "raw", tmp_path / "m.sqlite", ["desivast"], options=opts())
    assert s.status == "done" and s.verified == 9
    for rel in files:
        assert sha256_of(tmp_path / "raw" / rel) == sha256_of(src / rel)
    rows = {r["path"]: r for r in manifest_rows(tmp_path / "m.sqlite")}
    assert rows[f"{D}/{DESIVAST[0]}"]["checksum"] == "published .sha256sum"
    assert rows[f"{D}/dr1_vac_dr1_desivast_v1.0.sha256sum"]["kind"] == "checksums"


def test_s3_resumes_a_partial_file_by_range_and_rejects_a_bad_prefix(moto, desivast_tree, tmp_path):
    src, files = desivast_tree
    bucket = "desidata-test-2"
    moto.upload_tree(bucket, src)
    source = S3Source(bucket, endpoint_url=moto.endpoint)
    good, bad = f"{D}/{DESIVAST[0]}", f"{D}/{DESIVAST[1]}"
    for rel, head in ((good, files[good][:3000]), (bad, b"\xff" * 3000)):
        p = tmp_path / "raw" / (rel + ".part")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(head)
    s = acquire(source, tmp_path / "raw", tmp_path / "m.sqlite", ["desivast"], options=opts())
    assert s.status == "done"
    with Manifest(tmp_path / "m.sqlite", readonly=True) as m:
        g, b = m.get(good), m.get(bad)
    assert (g.resumes, g.fetches, g.attempts) == (1, 0, 1)  # resumed once, never from zero
    assert (b.resumes, b.fetches, b.attempts) == (1, 1, 2)  # resumed, checksum failed, started over
    for rel in files:
        assert sha256_of(tmp_path / "raw" / rel) == sha256_of(src / rel)


def test_s3_source_basics(moto, desivast_tree):
    src, files = desivast_tree
    bucket = "desidata-test-3"
    moto.upload_tree(bucket, src)
    s = S3Source(bucket, endpoint_url=moto.endpoint)
    rel = f"{D}/{DESIVAST[2]}"
    assert s.size(rel) == len(files[rel])
    with s.open(rel, 100) as body:
        assert body.start == 100 and b"".join(body) == files[rel][100:]
    names = {e.name for e in s.list(D)}
    assert set(DESIVAST) <= names
    assert {e.name for e in s.list("dr1/vac/dr1") if e.is_dir} == {"desivast"}
    with pytest.raises(Missing):
        s.size(f"{D}/nope.fits")


def test_local_mirror_folder_and_fsspec_url_are_sources(desivast_tree, tmp_path):
    src, files = desivast_tree
    for spec in (str(src), f"file://{src}"):
        source = make_source(spec)
        assert isinstance(source, FsspecSource)
        out = tmp_path / spec.replace("/", "_")
        s = acquire(source, out / "raw", out / "m.sqlite", ["desivast"], options=opts())
        assert s.status == "done" and s.verified == 9
        for rel in files:
            assert sha256_of(out / "raw" / rel) == sha256_of(src / rel)


def test_memory_filesystem_via_fsspec(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    rng = np.random.default_rng(5)
    files = random_files(rng, 3, 100, 2000, "mirror/dr1/vac/dr1/x/v1")
    for rel, data in files.items():
        fs.pipe(f"/{rel}", data)
    source = make_source("memory://mirror")
    s = acquire(source, tmp_path / "raw", tmp_path / "m.sqlite", ["dir"], dirs=["dr1/vac/dr1/x/v1"], options=opts())
    assert s.status == "done" and s.verified == 3
    for rel, data in files.items():
        assert (tmp_path / "raw" / rel[len("mirror/"):]).read_bytes() == data


def test_source_parameter_mapping():
    assert make_source("https").label == "https://data.desi.lbl.gov/public/"
    s3 = make_source("s3")
    assert isinstance(s3, S3Source) and s3.bucket == "desidata" and s3.prefix == ""
    assert isinstance(make_source("http://127.0.0.1:9/x"), HTTPSource)
    with pytest.raises(ValueError):
        make_source("  ")


def test_dry_run_on_s3_uses_the_listing_sizes(moto, desivast_tree, tmp_path):
    src, files = desivast_tree
    bucket = "desidata-test-4"
    moto.upload_tree(bucket, src)
    dr = plan_run(S3Source(bucket, endpoint_url=moto.endpoint), tmp_path / "raw", tmp_path / "m.sqlite", ["desivast"])
    sizes = {r["path"]: r["bytes"] for r in dr.rows()}
    assert all(sizes[rel] == len(data) for rel, data in files.items())
    assert not (tmp_path / "raw").exists()
