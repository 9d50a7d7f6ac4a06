"""File I/O around the page cache (O_DIRECT), for the stages that move the raw files' bytes once.

On this project's machines (a virtual disk) a buffered cold read costs about 1.9 CPU s of kernel
work per GB and buffered writes are written back at a fraction of the disk's speed (2 GB: 6.8 s
with ``dd conv=fsync``, 1.3 s with ``oflag=direct``, measured), while direct transfers cost
almost no CPU. O_DIRECT needs offsets, lengths and buffer addresses that are multiples of
:data:`ALIGN`; where the file system refuses it (tmpfs on older kernels, some FUSE and network
file systems) everything here falls back to buffered I/O, with the same bytes either way.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

__all__ = ["ALIGN", "Appender", "sha256_direct"]

#: offsets, lengths and buffer addresses of O_DIRECT transfers are multiples of this (the
#: logical block size of any disk; a page)
ALIGN = 4096
_DIRECT = getattr(os, "O_DIRECT", 0)


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for ``fd``; whether it is on afterwards."""
    if not _DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, (flags | _DIRECT) if on else (flags & ~_DIRECT))
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: this file system has no O_DIRECT
            raise
        return False
    return on


def _aligned(view: memoryview) -> bool:
    return len(view) % ALIGN == 0 and np.frombuffer(view, np.uint8).ctypes.data % ALIGN == 0


class Appender:
    """``with Appender(path, offset) as w: w.write(bytes)...``: the file cut to ``offset`` bytes
    and appended to with O_DIRECT writes of whole aligned blocks (a block already started in
    the file is read back and rewritten whole); the tail that ends off a block is written
    buffered on close, and the file is fsynced (a direct write is not a durable one until
    then). At most ``capacity`` bytes wait in the buffer: what a kill can lose."""

    def __init__(self, path: str | Path, offset: int = 0, capacity: int = 1 << 20):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            os.ftruncate(self.fd, offset)
            head = offset % ALIGN
            self.pos = offset - head  # file offset of the buffer's first byte
            size = max(ALIGN, -(-capacity // ALIGN) * ALIGN)
            self._view = memoryview(mmap.mmap(-1, size))  # anonymous memory is page-aligned
            self.fill = head
            if head and os.preadv(self.fd, [self._view[:head]], self.pos) != head:
                raise OSError(errno.EIO, f"{path}: could not read back its last {head} bytes")
            self.direct = _set_direct(self.fd, True)
        except BaseException:
            os.close(self.fd)
            raise

    def __enter__(self) -> "Appender":
        return self

    def __exit__(self, typ, *exc) -> None:
        try:
            self.close()
        except OSError:
            if typ is None:  # else the error that stopped the writing is the one to see
                raise

    def write(self, data) -> None:
        mv = memoryview(data).cast("B")
        if not self.fill and self.direct and _aligned(mv):
            self._put(mv)  # the caller's aligned block as it is: no copy
            return
        i, n, cap = 0, len(mv), len(self._view)
        while i < n:
            k = min(n - i, cap - self.fill)
            self._view[self.fill:self.fill + k] = mv[i:i + k]
            self.fill += k
            i += k
            if self.fill == cap:
                self._put(self._view)
                self.fill = 0

    def _put(self, mv: memoryview) -> None:
        """Write ``mv`` at ``pos`` (direct while the file system takes it) and advance."""
        done = 0
        while done < len(mv):
            try:
                done += os.pwrite(self.fd, mv[done:], self.pos + done)
            except OSError as exc:
                if exc.errno != errno.EINVAL or not self.direct:
                    raise
                self.direct = _set_direct(self.fd, False)  # accepted at open, refused here
        self.pos += done

    def flush(self) -> None:
        """Write what waits in the buffer (its aligned part direct, the rest buffered)."""
        if self.fill:
            whole = self.fill - self.fill % ALIGN
            if whole:
                self._put(self._view[:whole])
            if self.fill > whole:
                if self.direct:
                    self.direct = _set_direct(self.fd, False)
                self._put(self._view[whole:self.fill])
            self.fill = 0

    def sync(self) -> None:
        """Everything written, and on disk."""
        self.flush()
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            try:
                self.flush()
            finally:
                os.close(self.fd)
                self.fd = None


def _read_direct(fd: int, buf: memoryview, offset: int) -> int:
    got = 0
    while got < len(buf):
        k = os.preadv(fd, [buf[got:]], offset + got)
        got += k
        if k == 0 or got % ALIGN:  # the end of the file
            break
    return got


def sha256_direct(path: str | Path, block: int = 8 << 20, stop=None) -> "hashlib._Hash | None":
    """The sha256 of a whole file read with O_DIRECT (buffered where refused), the next block
    read while this one is hashed. ``stop``: a threading.Event; once set, None is returned at
    the next block."""
    h = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL or not _DIRECT:
            raise
        fd = os.open(path, os.O_RDONLY)
    block = max(ALIGN, block // ALIGN * ALIGN)
    bufs = [memoryview(mmap.mmap(-1, block)) for _ in range(2)]
    try:
        with ThreadPoolExecutor(1) as reader:
            pos = 0
            pending = reader.submit(_read_direct_or_buffered, fd, bufs[0], pos)
            i = 0
            while True:
                n = pending.result()
                if n == len(bufs[i % 2]):  # not the end yet: read the next block meanwhile
                    pending = reader.submit(_read_direct_or_buffered, fd, bufs[(i + 1) % 2],
                                            pos + n)
                if stop is not None and stop.is_set():
                    if n == len(bufs[i % 2]):
                        pending.result()
                    return None
                h.update(bufs[i % 2][:n])
                pos += n
                if n < len(bufs[i % 2]):
                    return h
                i += 1
    finally:
        os.close(fd)


def _read_direct_or_buffered(fd: int, buf: memoryview, offset: int) -> int:
    try:
        return _read_direct(fd, buf, offset)
    except OSError as exc:  # EINVAL: O_DIRECT accepted at open but not for reads
        if exc.errno != errno.EINVAL or not fcntl.fcntl(fd, fcntl.F_GETFL) & _DIRECT:
            raise
        _set_direct(fd, False)
        return _read_direct(fd, buf, offset)
