"""acquire sources: the anonymous S3 path against a local moto server, fsspec folders and
URLs, and the mapping from a source parameter to a source."""
from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest

from acquire_fixtures import MotoS3, random_files, sha256_of, write_tree

from desivoids.acquire.manifest import Manifest
from desivoids.acquire.steps import acquire, manifest_rows, plan_run
from desivoids.acquire.sources import (FsspecSource, HTTPSource, Missing, S3Source,
                                       make_source)
from desivoids.acquire.transfer import Options

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
    assert rows[f"{D}/{DESIVAST[0]}"]["checksum"] == "verified against the published .sha256sum"
    # the checksum list has no published sum, but S3's ETag (its MD5) verified it
    assert rows[f"{D}/dr1_vac_dr1_desivast_v1.0.sha256sum"]["state"] == "verified"
    assert rows[f"{D}/dr1_vac_dr1_desivast_v1.0.sha256sum"]["checksum"] == "verified against the source's digest"
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
        assert s.status == "done" and (s.verified, s.complete) == (8, 1)  # a folder offers no digest
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
    assert s.status == "done" and (s.verified, s.complete) == (0, 3)
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


# ------------------------------------------------------------------ issue 8.2 and 8.4 at the source
def test_s3_etag_verifies_files_that_have_no_published_sum(moto, tmp_path):
    """A single-part object's ETag is its MD5: without any .sha256sum the files are still
    verified (against the source's digest), not merely complete."""
    rng = np.random.default_rng(12)
    files = random_files(rng, 3, 2000, 9000, "dr1/vac/dr1/nosums/v1")
    write_tree(tmp_path / "src", files, sums=False)
    moto.upload_tree("desidata-test-5", tmp_path / "src")
    s = acquire(S3Source("desidata-test-5", endpoint_url=moto.endpoint), tmp_path / "raw", tmp_path / "m.sqlite",
                ["dir"], dirs=["dr1/vac/dr1/nosums/v1"], options=opts())
    with Manifest(tmp_path / "m.sqlite", readonly=True) as m:
        rows = m.files()
    assert {(r.state, r.checksum) for r in rows} == {("verified", "source")}
    assert {r.digest_from for r in rows} == {"ETag"}
    assert s.status == "done" and (s.verified, s.verified_source, s.complete) == (3, 3, 0)
    assert {r.source_digest for r in rows} == {f"md5:{hashlib.md5(d).hexdigest()}" for d in files.values()}


def test_digests_offered_by_a_source_are_read_only_where_they_describe_the_whole_file():
    import base64

    from desivoids.acquire.sources import digest_from_headers

    data = b"desi" * 100
    md5, sha = hashlib.md5(data), hashlib.sha256(data)

    def b64(h):
        return base64.b64encode(h.digest()).decode()

    got = digest_from_headers({"Digest": f"md5={b64(md5)}, sha-256={b64(sha)}"}, full=False)
    assert (got.algorithm, got.hex, got.origin) == ("sha256", sha.hexdigest(), "Digest")
    got = digest_from_headers({"Repr-Digest": f"sha-256=:{b64(sha)}:"}, full=False)
    assert got.hex == sha.hexdigest()
    assert digest_from_headers({"Content-MD5": b64(md5)}, full=True).hex == md5.hexdigest()
    assert digest_from_headers({"Content-MD5": b64(md5)}, full=False) is None  # of a 206 part only
    etag = {"ETag": f'"{md5.hexdigest()}"'}
    assert digest_from_headers(etag, full=True) is None  # an HTTP server's ETag is no digest
    assert digest_from_headers({**etag, "Server": "AmazonS3"}, full=True).origin == "ETag"
    assert digest_from_headers({"ETag": f'"{md5.hexdigest()}-3"', "Server": "AmazonS3"}, full=True) is None
    assert digest_from_headers({**etag, "x-amz-request-id": "1", "x-amz-server-side-encryption": "aws:kms"},
                               full=True) is None
    assert digest_from_headers({"Digest": "sha-256=not base64!"}, full=True) is None


def test_connection_refused_and_unresolved_names_are_unreachable_not_transient():
    import socket

    import requests

    from desivoids.acquire.sources import Transient, Unreachable, is_unreachable

    from acquire_fixtures import closed_port

    port = closed_port()
    with pytest.raises(Unreachable, match="connection refused"):
        HTTPSource(f"http://127.0.0.1:{port}/").size("x.fits")
    with pytest.raises(Unreachable, match="connect"):
        S3Source("b", endpoint_url=f"http://127.0.0.1:{port}").size("x.fits")
    try:
        raise requests.ConnectionError("lookup failed") from socket.gaierror(-2, "Name or service not known")
    except requests.ConnectionError as exc:
        assert is_unreachable(exc) == "host name not resolved"
    try:
        raise requests.ConnectionError("reset") from ConnectionResetError(104, "Connection reset by peer")
    except requests.ConnectionError as exc:
        assert is_unreachable(exc) is None  # a fault of one transfer: per-file back-off
    assert issubclass(Unreachable, Exception) and not issubclass(Unreachable, Transient)


def _read_all(source, path, start):
    with source.open(path, start) as body:
        return b"".join(bytes(chunk) for chunk in body)  # a chunk is valid until the next one


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this system")
def test_a_local_folder_is_read_around_the_page_cache_from_any_byte(tmp_path, monkeypatch):
    """The mirror's bytes are read once: O_DIRECT saves the page cache's kernel CPU. Reads are
    aligned, so starts and chunk sizes that are not multiples of a block must still give the
    exact bytes."""
    import desivoids.acquire.sources as sources

    data = np.random.default_rng(3).integers(0, 256, 5 * 4096 + 777, dtype="u1").tobytes()
    (tmp_path / "f.fits").write_bytes(data)
    opened = []
    real_open = os.open
    monkeypatch.setattr(sources.os, "open", lambda p, flags, *a: opened.append(flags) or real_open(p, flags, *a))
    source = make_source(str(tmp_path))
    for chunk in (4096, 5120, 1 << 20):
        source.chunk = chunk
        for start in (0, 1, 4095, 4096, 9000, len(data) - 1, len(data)):
            assert _read_all(source, "f.fits", start) == data[start:], (chunk, start)
    assert opened and all(flags & os.O_DIRECT for flags in opened)


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this system")
def test_a_file_system_refusing_direct_reads_is_read_through_the_page_cache(tmp_path, monkeypatch):
    import fcntl

    import desivoids.acquire.sources as sources

    data = np.random.default_rng(4).integers(0, 256, 3 * 4096 + 5, dtype="u1").tobytes()
    (tmp_path / "f.fits").write_bytes(data)
    real_preadv = os.preadv

    def preadv(fd, buffers, offset):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # as some FUSE file systems do
        return real_preadv(fd, buffers, offset)

    monkeypatch.setattr(sources.os, "preadv", preadv)
    source = make_source(str(tmp_path))
    assert _read_all(source, "f.fits", 10) == data[10:]
    with pytest.raises(Missing):
        source.open("nope.fits")
