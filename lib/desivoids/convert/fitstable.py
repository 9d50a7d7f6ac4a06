"""Row-range reading of FITS binary tables with bounded memory.

astropy parses the headers (HDUs found by EXTNAME, never by index); the rows are then read as raw
bytes straight from the data offset with one positioned read per block (O_DIRECT where the file
system allows it: :class:`_Reader`), viewed with the big-endian record dtype, and only the
requested columns are converted to native arrays. Measured against
slicing astropy's memmapped ``hdu.data[a:b]``, this keeps the resident memory at one block of rows
(memmapped pages of a 5 GB file otherwise stay in the process's RSS) and avoids FITS_rec's
per-slice overhead; see benchmarks/bench_convert.py.

A :class:`TableHDU` is a small picklable description, so Dask tasks (threads, processes or a
distributed cluster) can read their own row range without sharing an open file.
"""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FormatError
from ..fitscheck import hdus_end, incompleteness
from ..formats import TFORM_ELEMENT_DTYPE, HDUFacts, value_kind

__all__ = ["FitsColumn", "TableHDU", "open_tables", "read_rows", "header_dict", "kind_of",
           "check_errors", "upper_case"]

# FITS binary-table codes -> the kind of value they hold.
_INT_CODES = {"B": 8, "I": 16, "J": 32, "K": 64}
_FLOAT_CODES = {"E", "D"}
# numpy type of a FITS integer with its unsigned TZERO (formats.UNSIGNED_TZERO; B: signed int8)
_UNSIGNED_TYPE = {"B": np.int8, "I": np.uint16, "J": np.uint32, "K": np.uint64}

#: Header keys that describe the table layout rather than the data; not copied to metadata.
_STRUCTURAL = ("XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "TTYPE", "TFORM",
               "TUNIT", "TDIM", "TNULL", "TSCAL", "TZERO", "TDISP", "SIMPLE", "EXTEND",
               "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "")


@dataclass(frozen=True)
class FitsColumn:
    name: str
    code: str          # FITS TFORM letter: L, B, I, J, K, E, D, A, X, P, Q, C, M
    repeat: int
    bzero: float | None
    bscale: float | None
    unit: str | None
    shape: tuple[int, ...]  # per-row shape for vector columns, () for scalars

    @property
    def kind(self) -> str:
        return kind_of(self)


def kind_of(col: FitsColumn) -> str:
    """'int', 'uint', 'float', 'str', 'bool' or 'other' (what the column holds once scaled):
    desivoids.formats.value_kind, the one reading of FITS codes for recon and convert."""
    return value_kind(col.code, col.bzero, col.bscale)[0]


@dataclass(frozen=True)
class TableHDU:
    """Where one binary-table HDU's rows live in its file, and how to decode them."""

    path: str
    extname: str
    offset: int        # byte offset of the first row
    row_bytes: int     # NAXIS1
    nrows: int         # NAXIS2
    dtype: np.dtype    # big-endian record dtype of one row
    columns: dict[str, FitsColumn]
    header: dict

    def facts(self) -> HDUFacts:
        """Rows and column encodings, for desivoids.formats.check_file."""
        return HDUFacts(self.nrows, {c.name: (f"{c.repeat}{c.code}", c.bzero, c.bscale)
                                     for c in self.columns.values()})

    def column(self, name: str) -> FitsColumn:
        try:
            return self.columns[name]
        except KeyError:
            raise FormatError(self.path, self.extname, name, "column not found") from None


def parse_cards(raw: bytes) -> dict:
    """Keyword -> value of the value cards of a raw FITS header (80-byte cards up to END).

    A small parser for the fixed-format values FITS writers use (strings with '' escapes and
    CONTINUE, T/F, integers, reals with E or D exponents): astropy's Card parsing spent ~0.2 s
    per FASTSPEC header (3,000 cards) in configuration look-ups (measured). COMMENT, HISTORY and
    HIERARCH cards are skipped; a value it cannot parse is kept as its raw text.
    """
    out: dict = {}
    last = None
    for i in range(0, len(raw) - 79, 80):
        card = raw[i:i + 80].decode("ascii", "replace")
        key = card[:8].rstrip()
        if key == "END":
            break
        if key == "CONTINUE" and last is not None and isinstance(out.get(last), str) \
                and out[last].endswith("&"):
            more = _value(card[8:])
            if isinstance(more, str):
                out[last] = out[last][:-1] + more
            continue
        if card[8:10] != "= " or not key:
            continue
        out[key] = _value(card[10:])
        last = key
    return out


def _value(text: str):
    text = text.strip()
    if text.startswith("'"):
        chars, j = [], 1
        while j < len(text):
            if text[j] == "'":
                if j + 1 < len(text) and text[j + 1] == "'":
                    chars.append("'")
                    j += 2
                    continue
                break
            chars.append(text[j])
            j += 1
        return "".join(chars).rstrip()
    token = text.split("/", 1)[0].strip()
    if token in ("T", "F"):
        return token == "T"
    if not token:
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token.replace("D", "E"))
    except ValueError:
        return token


def header_dict(cards: dict) -> dict:
    """The informative cards of a header (from :func:`parse_cards`), layout cards dropped."""
    return {k: v for k, v in cards.items() if k.rstrip("0123456789") not in _STRUCTURAL}


def open_tables(path: str | Path, extnames: list[str] | tuple[str, ...],
                optional: tuple[str, ...] = ()) -> tuple[dict, dict[str, TableHDU], dict[str, int]]:
    """Parse ``path``'s headers: (primary header dict, {EXTNAME: TableHDU}, {EXTNAME: NAXIS2}
    for every HDU in file order).

    Raises FormatError naming the file and HDU when the file is not readable FITS, an HDU in
    ``extnames`` is missing (those in ``optional`` may be), or any HDU's data runs past the end
    of the file (truncated download).
    """
    from astropy.io import fits

    path = str(path)
    size = os.path.getsize(path)
    found: dict[str, TableHDU] = {}
    names: dict[str, int] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns on truncation; we raise below
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul, \
                    open(path, "rb") as fh:
                primary = {}
                for i, hdu in enumerate(hdul):
                    name = hdu.name or f"HDU{i}"
                    info = hdu.fileinfo()
                    fh.seek(info["hdrLoc"])
                    cards = parse_cards(fh.read(info["datLoc"] - info["hdrLoc"]))
                    if i == 0:
                        primary = header_dict(cards)
                    names[name] = int(cards.get("NAXIS2", 0)) if i else 0
                    end = info["datLoc"] + info["datSpan"]
                    if end > size:  # this HDU's data runs past the end of the file
                        raise FormatError(path, name, None, incompleteness(size, end))
                    if name in extnames and name not in found:
                        found[name] = _describe(path, hdu, cards, info["datLoc"])
                problem = incompleteness(size, hdus_end(hdul)) if names else None
                if problem:  # what is left after the last HDU astropy found
                    raise FormatError(path, f"after {list(names)[-1]}", None, problem)
    except FormatError:
        raise
    except Exception as exc:  # astropy raises OSError/TypeError/ValueError on damaged files
        raise FormatError(path, list(names)[-1] if names else None, None,
                          f"not a readable FITS file ({type(exc).__name__}: {exc}); "
                          f"truncated or corrupt?") from exc
    for name in extnames:
        if name not in found and name not in optional:
            raise FormatError(path, name, None, f"HDU missing; the file has {list(names)}")
    return primary, found, names


def upper_case(t: TableHDU) -> TableHDU:
    """The same HDU with its column names in upper case (VAST writes lower-case names by
    default, DESIVAST upper case: formats.DESIVAST_COLUMN_NAMES_ANY_CASE). A FormatError when
    two names differ only by case."""
    names = [c.upper() for c in t.columns]
    if len(set(names)) != len(names):
        raise FormatError(t.path, t.extname, None,
                          f"column names that differ only by case: {list(t.columns)}")
    if names == list(t.columns):
        return t
    dtype = np.dtype({"names": [n.upper() for n in t.dtype.names],
                      "formats": [t.dtype.fields[n][0] for n in t.dtype.names],
                      "offsets": [t.dtype.fields[n][1] for n in t.dtype.names],
                      "itemsize": t.dtype.itemsize})
    cols = {c.upper(): FitsColumn(c.upper(), v.code, v.repeat, v.bzero, v.bscale, v.unit, v.shape)
            for c, v in t.columns.items()}
    return TableHDU(t.path, t.extname, t.offset, t.row_bytes, t.nrows, dtype, cols, t.header)


def check_errors(path: str, check, names: dict[str, int]) -> list[FormatError]:
    """One FormatError per fault of desivoids.formats.check_file (the faults recon reports),
    ``names`` being every HDU of the file (from :func:`open_tables`)."""
    errors = []
    for f in check.faults:
        msg = f"{f.message}; the file has {list(names)}" if f.code == "missing_hdu" else f.message
        errors.append(FormatError(path, f.hdu, f.column, msg))
    return errors


_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")
_ELEMENT = TFORM_ELEMENT_DTYPE


def _describe(path: str, hdu, hdr: dict, offset: int) -> TableHDU:
    """Column layout from the header cards (TTYPE/TFORM/TZERO/TSCAL/TUNIT/TDIM).

    Parsed here rather than through astropy's ColDefs, which takes ~0.3 s for FASTSPEC's 887
    columns (measured); the layout is checked against NAXIS1 below.
    """
    from astropy.io import fits

    if not isinstance(hdu, fits.BinTableHDU):
        raise FormatError(path, hdu.name, None, f"expected a binary table, found {type(hdu).__name__}")
    cols: dict[str, FitsColumn] = {}
    fields = []
    for i in range(1, int(hdr.get("TFIELDS", 0)) + 1):
        name = str(hdr.get(f"TTYPE{i}", f"COL{i}")).strip()
        tform = str(hdr.get(f"TFORM{i}", ""))
        m = _TFORM.match(tform)
        if not m:
            raise FormatError(path, hdu.name, name, f"unreadable TFORM{i} = {tform!r}")
        repeat = int(m.group(1) or 1)
        code = m.group(2)
        shape: tuple[int, ...] = () if repeat == 1 or code == "A" else (repeat,)
        dim = hdr.get(f"TDIM{i}")
        if dim and code != "A":
            shape = tuple(int(x) for x in reversed(str(dim).strip("() ").split(",")))
        if code == "A":
            np_type: object = f"S{repeat}"
        elif code == "X":
            np_type = ("u1", ((repeat + 7) // 8,))
        elif code in "PQ":  # variable-length array descriptors: (count, offset)
            np_type = (">i4" if code == "P" else ">i8", (2,))
        else:
            np_type = (_ELEMENT[code], shape) if shape else _ELEMENT[code]
        fields.append((name, np_type))
        cols[name] = FitsColumn(name, code, repeat, hdr.get(f"TZERO{i}"), hdr.get(f"TSCAL{i}"),
                                hdr.get(f"TUNIT{i}"), shape)
    row_bytes = int(hdr["NAXIS1"])
    try:
        dtype = np.dtype(fields)
    except (TypeError, ValueError) as exc:
        raise FormatError(path, hdu.name, None, f"unusable column layout: {exc}") from exc
    if dtype.itemsize != row_bytes:
        raise FormatError(path, hdu.name, None,
                          f"row layout has {dtype.itemsize} bytes but NAXIS1 = {row_bytes}")
    return TableHDU(path, hdu.name, int(offset), row_bytes, int(hdr["NAXIS2"]), dtype, cols,
                    header_dict(hdr))


#: Rows are read in blocks of at most this many bytes, whatever the chunk size.
BLOCK_BYTES = 2 * 2**20


def _out_dtype(t: TableHDU, c: FitsColumn, want: np.dtype | None) -> np.dtype:
    """dtype of the converted column: ``want`` if given, else what FITS scaling implies."""
    if want is not None:
        return np.dtype(want)
    return _convert(t, c, np.zeros((0,) + c.shape, t.dtype[c.name].base)).dtype


def read_rows(t: TableHDU, start: int, stop: int, names: list[str],
              dtypes: dict[str, np.dtype] | None = None,
              block_bytes: int = BLOCK_BYTES, ahead: int = 0,
              direct: bool = False) -> dict[str, np.ndarray | pa.Array]:
    """Columns ``names`` of rows [start, stop) as native arrays (strings: stripped arrow strings).

    ``dtypes`` optionally gives the wanted numpy dtype of numeric columns (e.g. float64 for a
    FITS E column): the byte swap and the widening then happen in one pass. Memory: one block
    of raw rows (``block_bytes``) plus the requested columns of the range. ``ahead``: rows after
    ``stop`` that the kernel is asked to fetch meanwhile (the next task's range), so the disk
    stays busy while this range is decoded. ``direct``: read with O_DIRECT where the file
    system allows it (see :class:`_Reader`); the values are the same either way.
    """
    dtypes = dtypes or {}
    start, stop = max(0, start), min(stop, t.nrows)
    n = max(0, stop - start)
    cols = [t.column(nm) for nm in names]
    per_block = max(1, block_bytes // max(1, t.row_bytes))
    out: dict[str, np.ndarray | list] = {}
    for c in cols:
        if c.code == "A":
            out[c.name] = []
        else:
            out[c.name] = np.empty((n,) + c.shape, dtype=_out_dtype(t, c, dtypes.get(c.name)))
    with _Reader(t.path, direct and n > 0) as f:
        if n and not f.direct:
            # ask the kernel to fetch the whole range now, in large asynchronous reads, while
            # we decode block by block (a cold-cache DR1-scale convert went from 40 s to 19 s,
            # measured); the pages are reclaimable page cache, not this process's memory.
            # The advice returns at once: the next range is queued behind this one.
            upto = min(t.nrows, stop + max(0, ahead))
            f.willneed(t.offset + start * t.row_bytes, (upto - start) * t.row_bytes)
        spans = [(a, min(stop, a + per_block)) for a in range(start, stop, per_block)]
        # closing(): the read ahead is waited for before the descriptor closes, whatever
        # raises while a block is decoded
        with closing(f.blocks([(t.offset + a * t.row_bytes, (b - a) * t.row_bytes)
                               for a, b in spans])) as blocks:
            for (a, b), view in zip(spans, blocks):
                if view is None:
                    size = os.fstat(f.fd).st_size
                    raise FormatError(t.path, t.extname, None,
                                      f"file truncated: rows {a}..{b - 1} need "
                                      f"{(b - a) * t.row_bytes} bytes at offset "
                                      f"{t.offset + a * t.row_bytes}, the file has "
                                      f"{max(0, size - t.offset - a * t.row_bytes)} from there")
                rec = np.frombuffer(view, dtype=t.dtype, count=b - a)
                for c in cols:
                    raw = rec[c.name]
                    if c.code == "A":
                        out[c.name].append(_convert(t, c, raw))
                    elif _plain(c):
                        out[c.name][a - start:b - start] = raw  # swap (and widen) in one pass
                    else:
                        out[c.name][a - start:b - start] = _convert(t, c, raw)
                del rec, view
    for c in cols:
        if c.code == "A":
            ps = out[c.name]
            out[c.name] = pa.concat_arrays(ps) if ps else pa.array([], pa.string())
    return out


#: O_DIRECT transfers must start, end and land on multiples of the device's logical block
#: size; 4096 covers the usual 512 and 4096.
DIRECT_ALIGN = 4096

_buffers = threading.local()


def _buffer(nbytes: int, which: int = 0) -> memoryview:
    """This thread's page-aligned read buffer ``which`` (0 or 1) of at least ``nbytes``, kept
    between calls: a new buffer per call would be fresh memory for the kernel to fault in and
    zero, every block."""
    bufs = getattr(_buffers, "bufs", None)
    if bufs is None:
        bufs = _buffers.bufs = [None, None]
    if bufs[which] is None or len(bufs[which]) < nbytes:
        # anonymous memory is page-aligned, as O_DIRECT needs
        bufs[which] = mmap.mmap(-1, -(-nbytes // DIRECT_ALIGN) * DIRECT_ALIGN)
    return memoryview(bufs[which])


_pool: tuple[int, ThreadPoolExecutor] | None = None
_pool_lock = threading.Lock()


def _read_ahead_pool() -> ThreadPoolExecutor:
    """Threads that run the next block's direct read (made again in a forked child)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(8, thread_name_prefix="fits-read-ahead"))
        return _pool[1]


class _Reader:
    """Positioned reads of one file's bytes, through the page cache or around it.

    With ``direct``, the file is opened O_DIRECT, so the disk writes the rows into this
    process's buffer: no page-cache page is allocated, filled and copied again. On this
    machine's virtual disk a buffered cold read of a 2 GB FastSpecFit file takes 3.5 s of
    kernel CPU and a direct one 0.1 s (dd, measured); a 26 GB convert also no longer evicts
    everything else from the page cache. Reads are widened to aligned offsets and lengths,
    and the next block is read while the caller decodes this one (the kernel's read-ahead does
    that for buffered reads). Where the file system refuses O_DIRECT (tmpfs on older kernels,
    some FUSE and network file systems), at open or at the first read, the reader falls back
    to buffered reads. Data not yet written back is still seen: the kernel flushes a range
    before a direct read.
    """

    def __init__(self, path: str, direct: bool):
        self.direct, self.fd = False, None
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self.fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
                self.direct = True
            except OSError:
                self.fd = None
        if self.fd is None:
            self.fd = os.open(path, os.O_RDONLY)

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)

    def willneed(self, offset: int, nbytes: int) -> None:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self.fd, offset, nbytes, os.POSIX_FADV_WILLNEED)

    def blocks(self, spans: list[tuple[int, int]]) -> Iterator[memoryview | None]:
        """The bytes of each (offset, nbytes) span in turn, or None where the file ends first.
        A view is valid until the next one is asked for."""
        done = (yield from self._direct_blocks(spans)) if self.direct else 0
        for offset, nbytes in spans[done:]:
            buf = _buffer(nbytes)[:nbytes]
            yield buf if _fill(self.fd, buf, offset) == nbytes else None

    def _direct_blocks(self, spans: list[tuple[int, int]]) -> Iterator[memoryview | None]:
        """Direct reads of the spans, the next one read by the pool while this one is used;
        returns how many spans it gave, fewer than all when the file system refused a read
        (the rest are then read buffered)."""
        if not spans:
            return 0
        most = max(n for _, n in spans) + 2 * DIRECT_ALIGN
        bufs = (_buffer(most, 0), _buffer(most, 1))  # this thread's: the pool's reads fill them
        pending = _read_ahead_pool().submit(self._direct, *spans[0], bufs[0])
        try:
            for i in range(len(spans)):
                try:
                    view = pending.result()
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._buffered()  # O_DIRECT accepted at open but not for reads
                    return i
                finally:
                    pending = None
                if i + 1 < len(spans) and view is not None:
                    pending = _read_ahead_pool().submit(self._direct, *spans[i + 1],
                                                        bufs[(i + 1) % 2])
                yield view
            return len(spans)
        finally:
            if pending is not None:  # never leave a read writing into this thread's buffer
                try:
                    pending.result()
                except OSError:
                    pass

    def _direct(self, offset: int, nbytes: int, buf: memoryview) -> memoryview | None:
        """A direct read of the aligned span around the bytes wanted, into ``buf``."""
        lo = offset - offset % DIRECT_ALIGN
        want = -(-(offset + nbytes - lo) // DIRECT_ALIGN) * DIRECT_ALIGN
        got = _fill(self.fd, buf[:want], lo, DIRECT_ALIGN)
        skip = offset - lo
        return buf[skip:skip + nbytes] if got >= skip + nbytes else None

    def _buffered(self) -> None:
        """Buffered reads from now on, on the same descriptor (the same file, whatever has
        happened to its path since)."""
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fcntl.fcntl(self.fd, fcntl.F_GETFL) & ~os.O_DIRECT)
        self.direct = False


def _fill(fd: int, buf: memoryview, offset: int, align: int = 1) -> int:
    """Read into all of ``buf`` from ``offset`` unless the file ends first; bytes read. A
    direct read (``align``) that ends off the alignment has met the end of the file."""
    got = 0
    while got < len(buf):
        k = os.preadv(fd, [buf[got:]], offset + got)
        got += k
        if k == 0 or got % align:
            break
    return got


def _plain(c: FitsColumn) -> bool:
    """A numeric column whose stored value is its value (no TZERO/TSCAL, not logical)."""
    return (c.code in _INT_CODES or c.code in _FLOAT_CODES) and c.bzero in (None, 0) \
        and c.bscale in (None, 1)


def _convert(t: TableHDU, c: FitsColumn, raw: np.ndarray):
    """Native-order copy of one column of a block, with FITS scaling, logicals and strings."""
    if c.code == "A":
        arr = pa.array(raw.reshape(-1) if raw.ndim > 1 else raw, type=pa.binary())
        try:
            arr = arr.cast(pa.string())
        except pa.ArrowInvalid as exc:
            raise FormatError(t.path, t.extname, c.name, f"string column is not UTF-8: {exc}") from None
        return pc.utf8_trim_whitespace(arr)
    if c.code == "L":
        return raw == ord("T")
    native = raw.astype(raw.dtype.newbyteorder("="), copy=True)
    k = kind_of(c)
    if c.code in _INT_CODES and k in ("int", "uint") and c.bzero not in (None, 0):
        typ = _UNSIGNED_TYPE[c.code]
        if c.code == "B":
            return (native.astype(np.int16) - 128).astype(np.int8)
        return native.view(typ) ^ typ(1 << (np.dtype(typ).itemsize * 8 - 1))
    if k == "float" and (c.bscale not in (None, 1) or c.bzero not in (None, 0)):
        out = native.astype(np.float64)
        if c.bscale not in (None, 1):
            out *= c.bscale
        if c.bzero not in (None, 0):
            out += c.bzero
        return out
    return native
