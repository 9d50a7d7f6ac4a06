"""fitstable's direct (O_DIRECT) reads: the same values as buffered reads and as astropy, at
unaligned offsets, across blocks, at the end of the file, from several threads; the fall-back
where a file system refuses O_DIRECT; truncation still reported. Files written with astropy."""
from __future__ import annotations

import errno
import fcntl
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from astropy.io import fits

from desivoids.convert import fitstable
from desivoids.errors import FormatError

N = 2003


def _supports_direct(path) -> bool:
    if not hasattr(os, "O_DIRECT"):
        return False
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_DIRECT))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """Two table HDUs, the second one's rows starting off any 4096 boundary; 41-byte rows."""
    rng = np.random.default_rng(11)
    p = tmp_path_factory.mktemp("direct") / "t.fits"
    first = fits.BinTableHDU.from_columns([fits.Column("A", "K", array=np.arange(77))], name="A")
    cols = [fits.Column("ID", "K", array=np.arange(N) * 7 + 1),
            fits.Column("F", "E", array=rng.normal(size=N).astype(np.float32)),
            fits.Column("V", "3D", array=rng.normal(size=(N, 3))),
            fits.Column("S", "3A", array=np.array(["ab", "c ", "xyz"] * (N // 3) + ["q"] * (N % 3))),
            fits.Column("U", "I", array=rng.integers(0, 65535, N).astype(np.uint16), bzero=32768)]
    fits.HDUList([fits.PrimaryHDU(), first,
                  fits.BinTableHDU.from_columns(cols, name="T")]).writeto(p)
    _, hdus, _ = fitstable.open_tables(p, ["T"])
    t = hdus["T"]
    assert t.offset % fitstable.DIRECT_ALIGN and t.row_bytes == 41
    return p, t, fits.getdata(p, "T")


NAMES = ["ID", "F", "V", "S", "U"]


def _same(got, ref, err=""):
    for c in NAMES:
        if c == "S":
            assert got[c].to_pylist() == [s.strip() for s in ref[c]], err
        else:
            np.testing.assert_array_equal(got[c], ref[c], err_msg=f"{c} {err}")


@pytest.mark.parametrize("start,stop,block", [(0, N, 2**20), (5, 1999, 1000), (17, N, 4096),
                                              (N - 1, N, 100), (1000, 1001, 41)])
def test_direct_reads_equal_buffered_reads_and_astropy(table, start, stop, block, monkeypatch):
    p, t, ref = table
    calls = []
    real = fitstable._Reader._direct
    monkeypatch.setattr(fitstable._Reader, "_direct",
                        lambda self, *a: calls.append(a[:2]) or real(self, *a))
    direct = fitstable.read_rows(t, start, stop, NAMES, block_bytes=block, direct=True)
    # every block went through a direct read where the file system takes them
    per_block = max(1, block // t.row_bytes)
    assert len(calls) == (-(-(stop - start) // per_block) if _supports_direct(p) else 0)
    buffered = fitstable.read_rows(t, start, stop, NAMES, block_bytes=block, direct=False)
    _same(direct, ref[start:stop], "direct")
    _same(buffered, ref[start:stop], "buffered")


def test_direct_reader_is_direct_where_the_file_system_allows_it(table):
    p, t, _ = table
    with fitstable._Reader(str(p), True) as r:
        assert r.direct == _supports_direct(p)
        if r.direct:  # the descriptor really bypasses the page cache
            assert fcntl.fcntl(r.fd, fcntl.F_GETFL) & os.O_DIRECT
    with fitstable._Reader(str(p), False) as r:
        assert not r.direct


def test_threads_reading_at_once_each_get_their_own_rows(table):
    """Each thread keeps its own read buffer: concurrent ranges must not see each other's bytes."""
    p, t, ref = table
    ranges = [(a, min(N, a + 150)) for a in range(0, N, 150)] * 3

    def one(ab):
        return ab, fitstable.read_rows(t, *ab, NAMES, block_bytes=700, direct=True)

    with ThreadPoolExecutor(4) as pool:
        for (a, b), got in pool.map(one, ranges):
            _same(got, ref[a:b], f"rows {a}..{b}")


def test_open_refusing_o_direct_falls_back_to_buffered_reads(table, monkeypatch):
    p, t, ref = table
    real_open = os.open

    def refusing(path, flags, *a, **k):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument", path)
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refusing)
    with fitstable._Reader(str(p), True) as r:
        assert not r.direct
    _same(fitstable.read_rows(t, 3, 1500, NAMES, block_bytes=900, direct=True), ref[3:1500])


def test_reads_refusing_o_direct_fall_back_to_buffered_reads(table, monkeypatch):
    """Some file systems accept O_DIRECT at open and refuse the reads (EINVAL)."""
    p, t, ref = table
    if not _supports_direct(p):
        pytest.skip("this file system refuses O_DIRECT at open")
    real = os.preadv
    refused = []

    def preadv(fd, bufs, offset, *a):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, bufs, offset, *a)

    monkeypatch.setattr(os, "preadv", preadv)
    _same(fitstable.read_rows(t, 0, N, NAMES, block_bytes=5000, direct=True), ref)
    assert len(refused) == 1  # refused once, then buffered for the rest of the range


def test_other_read_errors_are_not_swallowed(table, monkeypatch):
    p, t, _ = table
    if not _supports_direct(p):
        pytest.skip("this file system refuses O_DIRECT at open")

    def failing(fd, bufs, offset, *a):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "preadv", failing)
    with pytest.raises(OSError, match="Input/output"):
        fitstable.read_rows(t, 0, 10, NAMES, direct=True)


@pytest.mark.parametrize("direct", [True, False])
def test_truncated_file_is_reported_the_same_either_way(table, tmp_path, direct):
    p, t, _ = table
    cut = tmp_path / "cut.fits"
    keep = t.offset + 1234 * t.row_bytes + 20  # row 1234 only partly there
    cut.write_bytes(p.read_bytes()[:keep])
    tc = fitstable.TableHDU(str(cut), t.extname, t.offset, t.row_bytes, t.nrows, t.dtype,
                            t.columns, t.header)
    ok = fitstable.read_rows(tc, 0, 1234, NAMES, block_bytes=3000, direct=direct)
    assert len(ok["ID"]) == 1234
    with pytest.raises(FormatError, match=r"file truncated: rows 1\d\d\d\.\.\d+ need "
                       r"\d+ bytes at offset \d+, the file has \d+ from there"):
        fitstable.read_rows(tc, 1100, 1300, NAMES, block_bytes=3000, direct=direct)


def test_convert_writes_the_same_tables_with_and_without_direct_reads(tmp_path):

    import pyarrow.parquet as pq

    from convert_fixtures import convert_dir, write_sky

    tables = {}
    for direct in (True, False):
        d = tmp_path / str(direct)
        write_sky(d / "raw", rows=250)
        res = convert_dir(d, chunk_rows=60, direct_io=direct)
        assert res.reconciliation["direct_io"] is direct
        tables[direct] = {name: pq.read_table(d / "convert" / name)
                          for name in ("galaxies", "voids.parquet", "holes.parquet", "rejects.parquet")}
    for direct in tables:  # parts finish in any order
        tables[direct]["galaxies"] = tables[direct]["galaxies"].sort_by(
            [("source_file", "ascending"), ("source_row", "ascending")])
    for name, t in tables[True].items():
        assert (t.num_rows or name == "rejects.parquet") and t.equals(tables[False][name]), name


def test_an_error_while_a_read_ahead_runs_leaves_the_next_call_correct(table, tmp_path):
    """A block that fails to decode (a string that is not UTF-8) while the next block is being
    read ahead: the error names the column, and the same thread's next read is not corrupted
    by the abandoned read-ahead writing into its buffers."""
    p, t, ref = table
    bad = tmp_path / "bad.fits"
    raw = bytearray(p.read_bytes())
    s_at = t.offset + 600 * t.row_bytes + t.dtype.fields["S"][1]
    raw[s_at:s_at + 3] = b"\xff\xfe\xfd"
    bad.write_bytes(bytes(raw))
    tb = fitstable.TableHDU(str(bad), t.extname, t.offset, t.row_bytes, t.nrows, t.dtype,
                            t.columns, t.header)
    with pytest.raises(FormatError, match="'S'|S.*not UTF-8"):
        fitstable.read_rows(tb, 0, N, NAMES, block_bytes=4100, direct=True)
    _same(fitstable.read_rows(t, 0, N, NAMES, block_bytes=4100, direct=True), ref, "after")
