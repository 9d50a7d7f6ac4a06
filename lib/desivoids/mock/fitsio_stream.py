"""Write FITS binary tables in streamed chunks, with bounded memory.

astropy cannot append rows to a BinTableHDU, so at DR1 scale (6.4 M rows, hundreds of columns)
a table is written as: a header built by astropy (column definitions, TFORM/TUNIT/TZERO, with
NAXIS2 set to the final row count) + big-endian record chunks + zero padding to 2880 bytes.
The result is a standard FITS file (tests read it back with astropy.io.fits and check the
header/data sizes the way cfitsio/fitsio do).

Conventions kept from the real files: strings are padded with spaces, logicals are 'T'/'F',
int8 columns are stored as TFORM 'B' with TZERO = -128.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from astropy.io import fits

from .. import formats

BLOCK = 2880


def _pad(n: int) -> int:
    return (-n) % BLOCK


def storage_dtype(columns: Sequence[formats.Column]) -> np.dtype:
    """The on-disk record dtype (big-endian; logicals as uint8; TZERO columns unsigned)."""
    fields = []
    for c in columns:
        dt = formats.tform_to_dtype(c.tform)
        fields.append((c.name, dt))
    return np.dtype(fields)


def table_header(columns: Sequence[formats.Column], nrows: int, extname: str,
                 cards: Iterable[tuple] = ()) -> fits.Header:
    """A BinTable header for ``columns`` with NAXIS2 = nrows, EXTNAME and extra cards."""
    cols = []
    for c in columns:
        kw = {"name": c.name, "format": c.tform}
        if c.tunit:
            kw["unit"] = c.tunit
        if c.tzero is not None:
            kw["bzero"] = c.tzero
        cols.append(fits.Column(**kw))
    hdu = fits.BinTableHDU.from_columns(fits.ColDefs(cols), nrows=0)
    hdr = hdu.header
    hdr["NAXIS2"] = int(nrows)
    hdr["EXTNAME"] = extname
    for card in cards:
        hdr.append(fits.Card(*card), end=True)
    expected = storage_dtype(columns).itemsize
    if hdr["NAXIS1"] != expected:  # pragma: no cover - a bug in the dtype mapping
        raise AssertionError(f"{extname}: NAXIS1 {hdr['NAXIS1']} != record size {expected}")
    return hdr


def to_records(columns: Sequence[formats.Column], data: Mapping[str, np.ndarray],
               n: int) -> np.ndarray:
    """Pack column arrays into on-disk records (applies TZERO, space padding, T/F)."""
    rec = np.zeros(n, dtype=storage_dtype(columns))
    for c in columns:
        if c.name not in data:
            raise KeyError(f"no values for column {c.name}")
        v = np.asarray(data[c.name])
        if v.shape[0] != n:
            raise ValueError(f"column {c.name}: {v.shape[0]} rows, expected {n}")
        code = c.tform[-1]
        if code == "A":
            width = rec.dtype[c.name].itemsize
            if v.dtype.kind == "U":
                v = np.char.encode(v, "ascii")
            v = np.char.ljust(v.astype(f"S{width}"), width)  # pad with spaces, like DESI's files
            rec[c.name] = v
        elif code == "L":
            rec[c.name] = np.where(v.astype(bool), ord("T"), ord("F")).astype(np.uint8)
        elif c.tzero is not None:
            rec[c.name] = (v.astype(np.int64) - c.tzero).astype(rec.dtype[c.name].base)
        else:
            rec[c.name] = v
    return rec


@lru_cache(maxsize=64)
def _header_template(columns: tuple, extname: str, cards: tuple) -> tuple[str, int]:
    """Header text for NAXIS2 = 0 and the offset of the NAXIS2 card (astropy is slow to build
    headers of ~1000 columns, and the files of one kind share them)."""
    hdr = table_header(columns, 0, extname, cards)
    text = hdr.tostring()
    pos = 80 * list(hdr.keys()).index("NAXIS2")
    if not text[pos:pos + 8].startswith("NAXIS2"):  # pragma: no cover
        raise AssertionError("unexpected header layout")
    return text, pos


def header_text(columns, nrows: int, extname: str, cards=()) -> str:
    text, pos = _header_template(tuple(columns), extname, tuple(tuple(c) for c in cards))
    card = fits.Card("NAXIS2", int(nrows), "length of dimension 2").image
    return text[:pos] + card + text[pos + 80:]


class TableStream:
    """One binary-table HDU being written; call :meth:`write` with chunks, then :meth:`close`."""

    def __init__(self, fh, columns, nrows, extname, cards=()):
        self.fh, self.columns, self.nrows, self.extname = fh, tuple(columns), int(nrows), extname
        fh.write(header_text(self.columns, nrows, extname, cards).encode("ascii"))
        self.itemsize = storage_dtype(self.columns).itemsize
        self.written = 0
        self.closed = False

    def write(self, data: Mapping[str, np.ndarray] | np.ndarray, n: int | None = None) -> None:
        if isinstance(data, np.ndarray) and data.dtype.names:
            rec = data.astype(storage_dtype(self.columns), copy=False)
            n = len(rec)
        else:
            if n is None:
                n = len(next(iter(data.values())))
            rec = to_records(self.columns, data, n)
        if self.written + n > self.nrows:
            raise ValueError(f"{self.extname}: more rows than declared ({self.nrows})")
        self.fh.write(rec.tobytes())
        self.written += n

    def close(self) -> None:
        """Check the row count and pad the data to a whole number of 2880-byte blocks."""
        if self.closed:
            return
        if self.written != self.nrows:
            raise ValueError(f"{self.extname}: wrote {self.written} rows, declared {self.nrows}")
        self.fh.write(b"\0" * _pad(self.written * self.itemsize))
        self.closed = True


class FitsStreamWriter:
    """Write a multi-HDU FITS file HDU after HDU; the file appears atomically on success."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".part")
        self.fh = open(self.tmp, "wb")
        self._open: TableStream | None = None
        self._primary = False

    def primary(self, cards: Iterable[tuple] = ()) -> None:
        hdr = fits.PrimaryHDU().header
        hdr["EXTEND"] = True
        for card in cards:
            hdr.append(fits.Card(*card), end=True)
        self.fh.write(hdr.tostring().encode("ascii"))
        self._primary = True

    def table(self, extname, columns, nrows, cards=()) -> TableStream:
        if not self._primary:
            raise RuntimeError("write the primary HDU first")
        if self._open is not None:
            self._open.close()
        self._open = TableStream(self.fh, columns, nrows, extname, cards)
        return self._open

    def write_table(self, extname, columns, data, cards=()) -> None:
        """Write a whole (small) table at once."""
        n = len(next(iter(data.values()))) if data else 0
        t = self.table(extname, columns, n, cards)
        if n:
            t.write(data, n)
        t.close()

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None
        self.fh.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
