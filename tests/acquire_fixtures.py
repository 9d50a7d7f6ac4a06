"""Loopback servers for the acquire tests: an HTTP server with fault injection, a moto S3 server.

``FaultyHTTPServer`` serves a folder on 127.0.0.1 (port chosen by the OS) with HEAD, GET, byte
ranges (switchable), Apache-like directory listings (or, with ``index=False``, 404 for every
folder, as a plain static host or an S3 website endpoint answers), optional whole-file digest
headers of the true bytes (``digests``: "content-md5", "digest-md5", "digest-sha256",
"repr-digest", "s3-etag") and a request log; faults are queued per path and consumed one per GET:

    "500", "503"  an error status
    "drop"        send the headers and half the body, then close the connection
    "badlen"      announce 1000 bytes more than are sent, then close
    "shortlen"    announce (and send) 1000 bytes fewer than the file has
    "stall"       send half the body, then go silent for ``stall_seconds``
    "flip"        send the whole body with one byte inverted
    "reset"       close the connection without answering

``always`` holds a fault applied to every GET of a path. ``throttle`` limits each response to
about that many bytes/s, so a test can kill a client mid-transfer.
"""
from __future__ import annotations

import hashlib
import html
import os
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit


@dataclass(frozen=True)
class Logged:
    method: str
    path: str  # relative, no leading slash
    start: int  # first byte asked for (0 without Range)
    status: int
    fault: str | None
    time: float
    user_agent: str = ""


class FaultyHTTPServer:
    def __init__(self, root: str | Path, *, ranges: bool = True, throttle: float | None = None,
                 chunk: int = 64 * 1024, stall_seconds: float = 3.0, index: bool = True,
                 digests: tuple[str, ...] = ()):
        self.root = Path(root)
        self.ranges, self.throttle, self.chunk, self.stall_seconds = ranges, throttle, chunk, stall_seconds
        self.index, self.digests = index, tuple(digests)
        self.faults: dict[str, list[str]] = {}
        self.always: dict[str, str] = {}
        self.log: list[Logged] = []
        self._mu = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> "FaultyHTTPServer":
        owner = self

        class Handler(_Handler):
            server_owner = owner

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def add_fault(self, path: str, *faults: str) -> None:
        with self._mu:
            self.faults.setdefault(path, []).extend(faults)

    def _next_fault(self, path: str) -> str | None:
        with self._mu:
            q = self.faults.get(path)
            if q:
                return q.pop(0)
            return self.always.get(path)

    def _record(self, entry: Logged) -> None:
        with self._mu:
            self.log.append(entry)

    def gets(self, path: str | None = None) -> list[Logged]:
        with self._mu:
            return [e for e in self.log if e.method == "GET" and (path is None or e.path == path)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_owner: FaultyHTTPServer

    def log_message(self, *args):  # quiet
        pass

    def _rel(self) -> str:
        return unquote(urlsplit(self.path).path).lstrip("/")

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool):
        o = self.server_owner
        rel = self._rel()
        target = (o.root / rel).resolve()
        if not str(target).startswith(str(o.root.resolve())) or not target.exists():
            self._status(404, rel, head)
            return
        if target.is_dir():
            if not o.index:
                self._status(404, rel, head)
                return
            self._listing(target, rel, head)
            return
        data = target.read_bytes()
        size = len(data)
        start, status = 0, 200
        rng = self.headers.get("Range")
        if rng and o.ranges and not head:
            try:
                start = int(rng.split("=", 1)[1].split("-", 1)[0])
            except (IndexError, ValueError):
                start = -1
            if not 0 <= start < size:
                self._status(416, rel, head, extra={"Content-Range": f"bytes */{size}"})
                return
            status = 206
        fault = None if head else o._next_fault(rel)
        o._record(Logged("HEAD" if head else "GET", rel, start, status, fault, time.monotonic(),
                         self.headers.get("User-Agent", "")))
        if fault in ("500", "503"):
            self.send_response(int(fault))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if fault == "reset":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = data[start:]
        length = len(body)
        if fault == "flip":
            i = len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
        elif fault == "badlen":
            length = len(body) + 1000
        elif fault == "shortlen":
            length = max(0, len(body) - 1000)
            body = body[:length]
        self.send_response(status)
        self.send_header("Content-Length", str(size if head else length))
        self.send_header("Accept-Ranges", "bytes" if o.ranges else "none")
        for name, value in digest_headers(data, o.digests, full=status == 200):
            self.send_header(name, value)
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        if fault in ("drop", "badlen", "stall", "shortlen"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return
        if fault in ("drop", "stall"):
            body = body[: len(body) // 2]
        try:
            self._write(body)
            if fault == "stall":
                time.sleep(o.stall_seconds)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if fault in ("drop", "badlen", "stall"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _write(self, body: bytes) -> None:
        o = self.server_owner
        for i in range(0, len(body), o.chunk):
            self.wfile.write(body[i:i + o.chunk])
            if o.throttle:
                time.sleep(min(len(body) - i, o.chunk) / o.throttle)

    def _status(self, code: int, rel: str, head: bool, extra: dict | None = None) -> None:
        self.server_owner._record(Logged("HEAD" if head else "GET", rel, 0, code, None, time.monotonic()))
        body = b"" if head else f"{code}\n".encode()
        self.send_response(code)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _listing(self, target: Path, rel: str, head: bool) -> None:
        if rel and not rel.endswith("/"):
            self.send_response(301)
            self.send_header("Location", "/" + quote(rel) + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        items = ['<a href="../">Parent Directory</a>', '<a href="?C=M;O=A">Last modified</a>']
        for p in sorted(target.iterdir()):
            name = p.name + ("/" if p.is_dir() else "")
            items.append(f'<a href="{quote(name)}">{html.escape(name)}</a>')
        body = ("<html><body><h1>Index</h1>\n" + "\n".join(items) + "\n</body></html>\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


def digest_headers(data: bytes, kinds: tuple[str, ...], full: bool) -> list[tuple[str, str]]:
    """Headers describing the whole (true) file; Content-MD5 only on a full response."""
    import base64


    def b64(h):
        return base64.b64encode(h).decode()

    out = []
    for k in kinds:
        if k == "content-md5" and full:
            out.append(("Content-MD5", b64(hashlib.md5(data).digest())))
        elif k == "digest-md5":
            out.append(("Digest", f"md5={b64(hashlib.md5(data).digest())}"))
        elif k == "digest-sha256":
            out.append(("Digest", f"sha-256={b64(hashlib.sha256(data).digest())}"))
        elif k == "repr-digest":
            out.append(("Repr-Digest", f"sha-256=:{b64(hashlib.sha256(data).digest())}:"))
        elif k == "s3-etag":
            out += [("ETag", f'"{hashlib.md5(data).hexdigest()}"'), ("Server", "AmazonS3")]
    return out


# ------------------------------------------------------------------------------ test data
def write_tree(root: Path, files: dict[str, bytes], *, sums: bool = True) -> dict[str, str]:
    """Write ``files`` (relative path -> bytes) and, per directory, a DESI-style checksum list;
    returns {relative path: sha256}."""
    from desivoids.formats import checksum_filename as sumfile_name

    out = {}
    by_dir: dict[str, list[str]] = {}
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        out[rel] = hashlib.sha256(data).hexdigest()
        by_dir.setdefault(rel.rsplit("/", 1)[0], []).append(rel)
    if sums:
        for d, rels in by_dir.items():
            lines = "".join(f"{out[r]}  {r.rsplit('/', 1)[1]}\n" for r in sorted(rels))
            (root / d / sumfile_name(d)).write_text(lines)
    return out


def random_files(rng, n: int, lo: int, hi: int, directory: str = "dr1/vac/dr1/test/v1.0") -> dict[str, bytes]:
    return {f"{directory}/file{i:03d}.fits": rng.integers(0, 256, int(rng.integers(lo, hi)), dtype="u1").tobytes()
            for i in range(n)}


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------ S3 (moto)
class MotoS3:
    """A moto S3 server in this process on 127.0.0.1 (port chosen by the OS)."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def __enter__(self):
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def client(self):
        import boto3

        return boto3.client("s3", region_name="us-west-2", endpoint_url=self.endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def upload_tree(self, bucket: str, root: Path) -> None:
        """A public-read bucket (like DESI's ``desidata``) holding the files below ``root``."""
        import json

        c = self.client()
        c.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        c.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
             "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}]}))
        for p in sorted(Path(root).rglob("*")):
            if p.is_file():
                c.put_object(Bucket=bucket, Key=p.relative_to(root).as_posix(), Body=p.read_bytes())


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------------------------ spectra (astropy)
def write_spectra_pair(coadd: Path, redrock: Path, spectype: list[str], zwarn: list[int], deltachi2: list[float],
                       npix: int = 5) -> None:
    """A minimal coadd + redrock pair written with astropy directly: every HDU DESI's formats
    name, a few rows, ``npix`` wavelengths per camera (not desivoids.mock)."""
    import numpy as np
    from astropy.io import fits

    from desivoids import formats

    n = len(spectype)
    tid = np.arange(n, dtype=np.int64) + 39627000000000000
    coadd.parent.mkdir(parents=True, exist_ok=True)
    redrock.parent.mkdir(parents=True, exist_ok=True)
    fm = fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=tid),
                                        fits.Column("TARGET_RA", "D", array=np.full(n, 150.0))], name="FIBERMAP")
    hdus = {"PRIMARY": fits.PrimaryHDU(), "FIBERMAP": fm,
            "EXP_FIBERMAP": fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=tid)],
                                                          name="EXP_FIBERMAP"),
            "SCORES": fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=tid)], name="SCORES")}
    for k, cam in enumerate("BRZ"):
        hdus[f"{cam}_WAVELENGTH"] = fits.ImageHDU(np.linspace(3600 + 2000 * k, 5000 + 2000 * k, npix),
                                                  name=f"{cam}_WAVELENGTH")
        hdus[f"{cam}_FLUX"] = fits.ImageHDU(np.arange(n * npix, dtype="f4").reshape(n, npix), name=f"{cam}_FLUX")
        hdus[f"{cam}_IVAR"] = fits.ImageHDU(np.ones((n, npix), "f4"), name=f"{cam}_IVAR")
        hdus[f"{cam}_MASK"] = fits.ImageHDU(np.zeros((n, npix), "i4"), name=f"{cam}_MASK")
        hdus[f"{cam}_RESOLUTION"] = fits.ImageHDU(np.zeros((n, 3, npix), "f4"), name=f"{cam}_RESOLUTION")
    fits.HDUList([hdus[e] for e in formats.expected_hdus("coadd")]).writeto(coadd, overwrite=True)
    zs = fits.BinTableHDU.from_columns([
        fits.Column("TARGETID", "K", array=tid), fits.Column("Z", "D", array=np.full(n, 0.1)),
        fits.Column("ZWARN", "K", array=np.asarray(zwarn)), fits.Column("SPECTYPE", "6A", array=spectype),
        fits.Column("DELTACHI2", "D", array=np.asarray(deltachi2, float))], name="REDSHIFTS")
    rr = {"PRIMARY": fits.PrimaryHDU(), "REDSHIFTS": zs, "FIBERMAP": fm.copy(),
          "EXP_FIBERMAP": hdus["EXP_FIBERMAP"].copy(),
          "TSNR2": fits.BinTableHDU.from_columns([fits.Column("TARGETID", "K", array=tid)], name="TSNR2")}
    fits.HDUList([rr[e] for e in formats.expected_hdus("redrock")]).writeto(redrock, overwrite=True)
