"""The raw files' bytes move around the page cache (issue 25): acquire writes them with O_DIRECT,
recon and convert hash them with O_DIRECT reads. Buffered, acquire's 9.3 GB took 41 s of this
machine's write-back and the readers' cold reads cost kernel CPU; the bytes must be the same.
Residency is asked of the kernel with mincore(2): a page written or read around the page cache
is not in it."""
from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import random
import threading
from pathlib import Path

import numpy as np
import pytest

from desivoids.directio import ALIGN, Appender, sha256_direct


def _resident(path: Path) -> int:
    """How many of the file's pages are in the page cache (mincore of a mapping that touches
    none)."""
    size = path.stat().st_size
    if not size:
        return 0
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), size, prot=mmap.PROT_READ)
    try:
        pages = -(-size // mmap.PAGESIZE)
        vec = (ctypes.c_ubyte * pages)()
        libc = ctypes.CDLL(None, use_errno=True)
        addr = np.frombuffer(m, np.uint8).ctypes.data
        if libc.mincore(ctypes.c_void_p(addr), ctypes.c_size_t(size), vec) != 0:
            pytest.skip(f"mincore failed: {os.strerror(ctypes.get_errno())}")
        return sum(v & 1 for v in vec)
    finally:
        m.close()


def _evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages are not dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


@pytest.fixture
def direct_dir(tmp_path):
    """tmp_path, where O_DIRECT keeps pages out of the page cache (not on tmpfs, whose pages
    are its storage)."""
    probe = tmp_path / "probe"
    with Appender(probe) as w:
        w.write(b"x" * (4 * ALIGN))
    if not w.direct or _resident(probe):
        pytest.skip("this file system caches O_DIRECT writes (tmpfs?) or has no O_DIRECT")
    probe.unlink()
    return tmp_path


@pytest.mark.parametrize("capacity", [ALIGN, 10_000, 1 << 20])
def test_appended_and_resumed_bytes_are_the_bytes_given(tmp_path, capacity):
    rng = random.Random(capacity)
    for trial in range(12):
        data = os.urandom(rng.choice([0, 1, ALIGN, 3 * ALIGN + 7, rng.randint(0, 3_000_000)]))
        part = tmp_path / f"f{trial}.part"
        cut = rng.randint(0, len(data))
        with Appender(part, 0, capacity) as w:
            i = 0
            while i < cut:
                k = rng.choice([1, 100, ALIGN, 65_536, 1 << 20])
                w.write(data[i:min(cut, i + k)])
                i += k
        assert part.read_bytes() == data[:cut]
        with open(part, "ab") as f:  # bytes past the resume point are cut away
            f.write(b"junk" * rng.randint(0, 3000))
        with Appender(part, cut, capacity) as w:  # resumed from any offset, aligned or not
            w.write(memoryview(data)[cut:])
            w.sync()
        assert part.read_bytes() == data, (trial, cut)


def test_a_kill_loses_at_most_the_buffer(tmp_path):
    """What was given to write() is in the file but for the last ``capacity`` bytes at most,
    without close() (a kill -9 runs no close)."""
    part = tmp_path / "x.part"
    data = os.urandom(5 * (1 << 20) + 123)
    w = Appender(part, 0, 1 << 20)
    for i in range(0, len(data), 50_000):
        w.write(data[i:i + 50_000])
    on_disk = part.read_bytes()
    assert len(data) - len(on_disk) <= 1 << 20
    assert data.startswith(on_disk)
    os.close(w.fd)  # as a kill would: no flush
    w.fd = None


def test_sha256_direct_is_hashlib_s(tmp_path):
    rng = random.Random(2)
    for n in (0, 1, ALIGN - 1, ALIGN, 1 << 20, (1 << 20) + 1, 3 * (1 << 20), rng.randint(1, 5_000_000)):
        p = tmp_path / f"{n}.bin"
        data = os.urandom(n)
        p.write_bytes(data)
        for block in (ALIGN, 1 << 20):
            assert sha256_direct(p, block).hexdigest() == hashlib.sha256(data).hexdigest(), n


def test_sha256_direct_stops_when_asked(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(os.urandom(4 << 20))
    stop = threading.Event()
    stop.set()
    assert sha256_direct(p, 1 << 20, stop) is None


def test_appended_bytes_are_not_left_in_the_page_cache(direct_dir):
    """Fails with buffered writes: every written page stays cached (until written back and
    reclaimed), which is the write-back acquire waited for."""
    part = direct_dir / "x.part"
    with Appender(part, 0, 1 << 20) as w:
        for _ in range(8):
            w.write(os.urandom(1 << 20))
        w.write(b"tail")
        w.sync()
    assert part.stat().st_size == 8 * (1 << 20) + 4
    assert _resident(part) <= 1  # the buffered tail's page at most


def test_acquire_writes_around_the_page_cache(direct_dir, tiny_sky):
    """A local-folder acquire of the tiny mock: every fetched file verified and byte-identical,
    and (almost) none of its pages cached: buffered, all of them were."""
    from desivoids import acquire

    root, _ = tiny_sky
    data = direct_dir / "data"
    acquire.run(data_dir=str(data), source=str(root), min_free_gb=0.0, spectra=False)
    raw = data / "acquire" / "raw"
    files = [p for p in raw.rglob("*.fits")]
    assert files
    pages = sum(-(-p.stat().st_size // mmap.PAGESIZE) for p in files)
    cached = sum(_resident(p) for p in files)
    for p in files:
        assert p.read_bytes() == (root / p.relative_to(raw)).read_bytes()
    assert cached <= len(files), f"{cached} of {pages} pages cached"


def test_recon_and_convert_hash_around_the_page_cache(direct_dir):
    """recon's sha256 and convert's raw check read without filling the page cache (a buffered
    read caches every page it reads)."""
    from desivoids.convert.rawcheck import RawCheck
    from desivoids.recon.stage import inspect_file

    p = direct_dir / "x.fits"
    data = os.urandom(6 << 20)
    p.write_bytes(data)
    _evict(p)
    if _resident(p):
        pytest.skip("the page cache could not be emptied of the file")
    want = hashlib.sha256(data).hexdigest()
    info = inspect_file(p, direct_dir)
    assert info.sha256 == want
    with RawCheck([p], {p.resolve(): want}) as check:
        check.require()
    # inspect_file's FITS parsing reads the first block (not FITS here: it gives up there)
    assert _resident(p) <= 8
