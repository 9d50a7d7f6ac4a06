"""The streamed FITS writer (used at DR1 scale) produces the same bytes as astropy."""
import numpy as np
import pytest
from astropy.io import fits

from desivoids import formats
from desivoids.mock.fitsio_stream import FitsStreamWriter

COLS = (formats.Column("TARGETID", "K"), formats.Column("SURVEY", "7A"),
        formats.Column("ZWARN", "B", tzero=-128), formats.Column("FLAG", "L"),
        formats.Column("COEFF", "5E"), formats.Column("R", "D", tunit="Mpc h-1"),
        formats.Column("N", "J"))


def _data(n, rng):
    return {"TARGETID": rng.integers(2 ** 50, 2 ** 55, n), "SURVEY": rng.choice(["main", "special"], n),
            "ZWARN": rng.integers(-128, 128, n).astype(np.int8), "FLAG": rng.random(n) < 0.5,
            "COEFF": rng.random((n, 5)).astype(np.float32), "R": rng.random(n) * 700,
            "N": rng.integers(-5, 5, n).astype(np.int32)}


def _data_bytes(path, index):
    with fits.open(path) as h:
        hdu = h[index]
        start, size = hdu._data_offset, hdu.header["NAXIS1"] * hdu.header["NAXIS2"]
    return path.read_bytes()[start:start + size]


def test_chunks_equal_one_astropy_table(tmp_path):
    rng = np.random.default_rng(0)
    n = 1000
    d = _data(n, rng)
    path = tmp_path / "s.fits"
    with FitsStreamWriter(path) as w:
        w.primary([("SPECPROD", "iron"), ("NEST", True)])
        t = w.table("METADATA", COLS, n, cards=[("VOID", 3)])
        for s in range(0, n, 333):
            t.write({k: v[s:s + 333] for k, v in d.items()}, len(d["R"][s:s + 333]))
        t.close()
        w.write_table("EMPTY", COLS[:2], {"TARGETID": np.zeros(0, np.int64), "SURVEY": np.zeros(0, "U1")})
    assert path.stat().st_size % 2880 == 0
    with fits.open(path) as h:
        h.verify("exception")
        assert [x.name for x in h] == ["PRIMARY", "METADATA", "EMPTY"]
        m = h["METADATA"].data
        assert h["METADATA"].header["VOID"] == 3 and h["METADATA"].header["TUNIT6"] == "Mpc h-1"
        np.testing.assert_array_equal(m["TARGETID"], d["TARGETID"])
        np.testing.assert_array_equal(np.char.strip(m["SURVEY"]), d["SURVEY"])
        np.testing.assert_array_equal(m["ZWARN"], d["ZWARN"])  # TZERO applied on read
        np.testing.assert_array_equal(m["FLAG"], d["FLAG"])
        np.testing.assert_array_equal(m["COEFF"], d["COEFF"])
        np.testing.assert_array_equal(m["R"], d["R"])
        np.testing.assert_array_equal(m["N"], d["N"])
        assert len(h["EMPTY"].data) == 0
    # astropy's own writer gives the same data bytes, except it pads strings with NUL: ours are
    # space-padded like DESI's files
    cols = [fits.Column(name=c.name, format=c.tform, unit=c.tunit, bzero=c.tzero, array=d[c.name])
            for c in COLS]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(tmp_path / "ref.fits")
    ours = np.frombuffer(_data_bytes(path, 1), dtype=np.uint8)
    theirs = np.frombuffer(_data_bytes(tmp_path / "ref.fits", 1), dtype=np.uint8)
    assert len(ours) == len(theirs)
    diff = ours != theirs
    assert set(ours[diff]) <= {ord(" ")} and set(theirs[diff]) <= {0}


def test_row_count_is_enforced(tmp_path):
    w = FitsStreamWriter(tmp_path / "x.fits")
    w.primary()
    t = w.table("T", COLS, 10)
    t.write(_data(4, np.random.default_rng(1)), 4)
    with pytest.raises(ValueError, match="wrote 4 rows, declared 10"):
        t.close()
    with pytest.raises(ValueError, match="more rows than declared"):
        t.write(_data(7, np.random.default_rng(1)), 7)
    w.abort()
    assert not (tmp_path / "x.fits").exists()
