"""Where DESI files come from: one small interface over HTTPS, anonymous S3 and any fsspec URL.

A source answers four questions about a path of DESI's relative layout (``dr1/...``): its size
(and a digest, where the source offers one), a byte stream starting at an offset (HTTP
``Range``, S3 ``GetObject Range``, ``seek`` for fsspec), a small file's bytes (checksum lists),
and a directory listing, which may be *unknown*: a plain static host, an S3 website endpoint or
a mirror answers 404 for a folder that exists, so an HTTP 404 on a folder says nothing about it.

Errors are sorted into the kinds the transfer loop acts on: ``Missing`` (404: report, do not
retry), ``Transient`` (5xx, timeouts, resets, short bodies: retry that file with backoff),
``Permanent``, and ``Unreachable`` (connection refused, name not resolved: the whole source is
down, so retrying file by file only adds silence; the batch stops instead).

Digests a source offers for the whole file (``Digest``/``Repr-Digest`` sha-256 or md5, and on a
full response ``Content-MD5``/``Content-Digest``; the ETag of a single-part, not KMS-encrypted
S3 object, which is its MD5) let a file without a published sha256 still be *verified*.
"""
from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import html
import mmap
import os
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import quote, unquote, urlsplit

from .. import __version__
from ..errors import DesivoidsError

from ..formats import HTTPS_ROOT as DESI_HTTPS, S3_BUCKET as DESI_BUCKET, S3_REGION as DESI_REGION
USER_AGENT = f"desivoids/{__version__} (DESI DR1 void pipeline; acquire)"
CHUNK = 1 << 20

#: The most bytes acquire reads of one checksum list, and of one HTTP index page. Both are held
#: in memory to be parsed, so a broken or hostile source must not make that unbounded: they are
#: read as a stream and refused, naming the URL, once they pass the cap. A list or an index page
#: of 100,000 entries (more than any one DESI folder holds) is about 10 MB. README, "Real data",
#: states these figures.
MAX_CHECKSUM_LIST = 32 << 20
MAX_INDEX_PAGE = 32 << 20
#: The most entries acquire lists of one S3 prefix (keys and sub-prefixes, page after page): the
#: listing is held in memory, so a prefix with millions of keys is refused, naming the bucket and
#: prefix, as soon as a page takes it past the cap, instead of being listed whole.
#: No DESI folder acquire fetches holds more than ~100,000 entries (a few tens of MB listed).
MAX_LISTED = 200_000


class SourceError(DesivoidsError):
    """A failure reading from a source; ``str()`` names the source and the path."""


class Missing(SourceError):
    """The path does not exist at the source (HTTP 404/410, NoSuchKey, FileNotFoundError)."""


class Transient(SourceError):
    """Worth retrying: 5xx, 429, timeouts, dropped connections, short bodies."""


class RangeNotSatisfiable(Transient):
    """The source refused a range request (HTTP 416): the partial file is discarded."""


class Permanent(SourceError):
    """Retrying will not help (403, 400, ...)."""


class TooLarge(Permanent):
    """A checksum list or an index page larger than its cap (MAX_CHECKSUM_LIST, MAX_INDEX_PAGE)."""


class Unreachable(SourceError):
    """The source itself cannot be reached (connection refused, host name not resolved, no
    route): not a fault of one file, so the transfer probes once and stops the batch."""


_DOWN_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}


def is_unreachable(exc: BaseException) -> str | None:
    """Why the source cannot be reached ("connection refused", "host name not resolved", "no
    route to host"), when an exception chain (requests -> urllib3 -> socket, or botocore) bottoms
    out in one; None for a fault of one request (a reset mid-body, a timeout, a 5xx)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError":
            return "host name not resolved"
        if isinstance(e, OSError) and not isinstance(e, TimeoutError) and e.errno in _DOWN_ERRNOS:
            return "no route to host"
        if type(e).__name__ == "EndpointConnectionError":  # botocore: refused or not resolved
            return "could not connect to the endpoint"
        todo += [e.__cause__, e.__context__, getattr(e, "reason", None)]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return None


@dataclass(frozen=True)
class Digest:
    """A digest of the whole file offered by the source: ``algorithm`` md5 or sha256, ``hex``,
    and ``origin`` the header it came from (ETag, Content-MD5, Digest, Repr-Digest, ...)."""

    algorithm: str
    hex: str
    origin: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str | None, origin: str | None) -> "Digest | None":
        """The inverse of ``str()`` (as the manifest stores it)."""
        if not text or ":" not in text:
            return None
        algorithm, hexd = text.split(":", 1)
        return cls(algorithm, hexd, origin or "")


_HEX_LEN = {"md5": 32, "sha256": 64}
_ALGO = {"sha-256": "sha256", "sha256": "sha256", "md5": "md5"}


def _b64_hex(value: str, algorithm: str) -> str | None:
    try:
        raw = base64.b64decode(value.strip().strip(":"), validate=True)
    except (binascii.Error, ValueError):
        return None
    h = raw.hex()
    return h if len(h) == _HEX_LEN[algorithm] else None


def digest_from_headers(headers, *, full: bool, s3: bool = False) -> Digest | None:
    """The strongest whole-file digest in HTTP response headers. ``full``: the response carries
    the whole file (200, or a HEAD), so digests of the *content* (Content-MD5, Content-Digest)
    describe the file too; ``Digest`` and ``Repr-Digest`` describe it whatever the range. The
    ETag counts only on S3 (``s3``, or S3's own response headers) and only for a single-part
    object stored without KMS (its ETag is then the MD5 of the bytes)."""
    found: list[Digest] = []
    names = ["Repr-Digest", "Digest"] + (["Content-Digest", "Content-MD5"] if full else [])
    for name in names:
        value = headers.get(name)
        if not value:
            continue
        if name == "Content-MD5":
            h = _b64_hex(value, "md5")
            if h:
                found.append(Digest("md5", h, name))
            continue
        for item in value.split(","):  # "sha-256=BASE64, md5=BASE64" or "sha-256=:BASE64:"
            key, _, val = item.strip().partition("=")
            algorithm = _ALGO.get(key.strip().lower())
            if algorithm and val:
                h = _b64_hex(val, algorithm)
                if h:
                    found.append(Digest(algorithm, h, name))
    s3 = s3 or "AmazonS3" in (headers.get("Server") or "") or "x-amz-request-id" in headers
    etag = (headers.get("ETag") or "").strip()
    if s3 and not headers.get("x-amz-server-side-encryption", "").startswith("aws:kms") \
            and "x-amz-server-side-encryption-customer-algorithm" not in headers:
        m = re.fullmatch(r'"?([0-9a-fA-F]{32})"?', etag)  # no '-N': not a multipart upload
        if m:
            found.append(Digest("md5", m.group(1).lower(), "ETag"))
    for algorithm in ("sha256", "md5"):
        for d in found:
            if d.algorithm == algorithm:
                return d
    return None


@dataclass(frozen=True)
class Stat:
    size: int
    digest: Digest | None = None


@dataclass(frozen=True)
class Listed:
    name: str
    size: int | None  # None where the listing carries no exact size (HTTP index pages)
    is_dir: bool


class Body:
    """A byte stream from ``start`` (which may be 0 when the server ignored the Range request);
    ``digest``: a whole-file digest the response carried, if any."""

    def __init__(self, start: int, chunks: Iterator[bytes], close=lambda: None, digest: Digest | None = None):
        self.start, self._chunks, self._close, self.digest = start, chunks, close, digest

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Source:
    """The interface; ``label`` is what the manifest records as the origin of every file."""

    label: str = ""
    chunk: int = CHUNK

    def size(self, path: str) -> int:
        return self.stat(path).size

    def stat(self, path: str) -> Stat:
        """Size and, where the source offers one, a digest of the whole file."""
        raise NotImplementedError

    def open(self, path: str, start: int = 0) -> Body:
        raise NotImplementedError

    def where(self, path: str) -> str:
        """How a message names ``path`` at this source (its URL)."""
        return f"{self.label}{path}"

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """A small file's bytes (a checksum list), read as a stream; :class:`TooLarge` as soon
        as more than ``limit`` bytes (default :data:`MAX_CHECKSUM_LIST`) arrive."""
        limit = MAX_CHECKSUM_LIST if limit is None else limit
        out = bytearray()
        with self.open(path, 0) as body:
            for chunk in body:
                out += chunk
                if len(out) > limit:
                    raise TooLarge(f"{self.where(path)}: more than {limit:,} bytes, the most acquire reads "
                                   "of a checksum list; refused (nothing was planned from it)")
        return bytes(out)

    def list(self, directory: str) -> list[Listed] | None:
        """Entries of a directory, or None when this source cannot say (no listings, or an HTTP
        folder without an index page); raises Missing only when the source knows it is absent."""
        return None

    def probe(self) -> None:
        """One cheap request to the source: raises Unreachable when it cannot be reached (any
        answer, even an error status, means it is up)."""

    def walk(self, directory: str) -> list[tuple[str, Listed]]:
        """(relative path, entry) of every file below ``directory``."""
        out, todo = [], [directory.strip("/")]
        while todo:
            d = todo.pop()
            for e in self.list(d) or []:
                p = f"{d}/{e.name}" if d else e.name
                (todo.append(p) if e.is_dir else out.append((p, e)))
        return sorted(out, key=lambda t: t[0])

    def __repr__(self):
        return f"{type(self).__name__}({self.label})"


# ---------------------------------------------------------------------------------------- HTTP
class HTTPSource(Source):
    """DESI's HTTPS portal (or any HTTP server with the same layout), via ``requests``.

    One ``requests.Session`` per thread (sessions are not thread-safe); connect and read
    timeouts on every request; a User-Agent naming desivoids; no retries inside requests (the
    transfer loop owns retries, so that it can resume by Range instead of starting over).
    """

    def __init__(self, base_url: str = DESI_HTTPS, *, timeout: tuple[float, float] = (10.0, 60.0),
                 chunk: int = CHUNK):
        self.base = base_url if base_url.endswith("/") else base_url + "/"
        self.label, self.timeout, self.chunk = self.base, timeout, chunk
        self._local = threading.local()

    def _session(self):
        import requests

        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["User-Agent"] = USER_AGENT
            s.headers["Accept-Encoding"] = "identity"  # byte ranges and sizes of the stored file
            self._local.session = s
        return s

    def url(self, path: str) -> str:
        return self.base + quote(path.lstrip("/"))

    where = url

    def _raise_for(self, r, path: str):
        code = r.status_code
        where = f"{self.url(path)}: HTTP {code} {r.reason or ''}".rstrip()
        if code in (404, 410):
            raise Missing(where)
        if code >= 500 or code in (408, 429):
            raise Transient(where)
        raise Permanent(where)

    def _request(self, method: str, path: str, **kw):
        import requests

        try:
            return self._session().request(method, self.url(path), timeout=self.timeout,
                                           allow_redirects=True, **kw)
        except (requests.ConnectionError, requests.Timeout) as exc:
            why = None if isinstance(exc, requests.Timeout) else is_unreachable(exc)
            if why:
                raise Unreachable(f"{self.url(path)}: {why}") from None
            raise Transient(f"{self.url(path)}: {type(exc).__name__}: {exc}") from None
        except requests.TooManyRedirects:
            raise Permanent(f"{self.url(path)}: redirect loop (more than "
                            f"{self._session().max_redirects} redirects); refused") from None
        except (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidURL) as exc:
            # requests has adapters for http and https only: a redirect to file://, ftp:// ...
            # is never followed (nothing is read), and is refused here by name
            raise Permanent(f"{self.url(path)}: redirected to a URL acquire does not follow (http and "
                            f"https only): {exc}") from None
        except (requests.RequestException, ValueError) as exc:  # bad headers, bad chunking, ...
            raise Permanent(f"{self.url(path)}: {type(exc).__name__}: {exc}") from None

    def _length(self, r, path: str) -> int | None:
        """The response's Content-Length as a byte count; Permanent for '-5', 'lots', ..."""
        n = r.headers.get("Content-Length")
        if n is None:
            return None
        if not n.strip().isdigit():
            r.close()
            raise Permanent(f"{self.url(path)}: Content-Length {n!r} is not a byte count; refused")
        return int(n)

    def probe(self) -> None:
        self._request("HEAD", "").close()

    def stat(self, path: str) -> Stat:
        r = self._request("HEAD", path)
        if r.status_code != 200:
            self._raise_for(r, path)
        digest = digest_from_headers(r.headers, full=True)
        n = self._length(r, path)
        if n is None:  # no length on HEAD: ask for one byte and read the total from Content-Range
            r = self._request("GET", path, headers={"Range": "bytes=0-0"}, stream=True)
            r.close()
            m = re.search(r"/(\d+)$", r.headers.get("Content-Range", ""))
            if r.status_code != 206 or not m:
                raise Permanent(f"{self.url(path)}: server reports no size (no Content-Length, no Range)")
            return Stat(int(m.group(1)), digest)
        return Stat(n, digest)

    def open(self, path: str, start: int = 0) -> Body:
        import requests
        import urllib3

        headers = {"Range": f"bytes={start}-"} if start > 0 else {}
        r = self._request("GET", path, headers=headers, stream=True)
        if r.status_code in (200, 206):
            self._length(r, path)
        if r.status_code == 206:
            m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
            got = int(m.group(1)) if m else -1
            if got != start:
                r.close()
                raise Transient(f"{self.url(path)}: asked for bytes from {start}, server sent Content-Range "
                                f"{r.headers.get('Content-Range')!r}")
        elif r.status_code == 200:
            start = 0  # the server ignored Range: the caller starts the file over
        elif r.status_code == 416:
            r.close()
            raise RangeNotSatisfiable(f"{self.url(path)}: HTTP 416, range from byte {start} not satisfiable")
        else:
            r.close()
            self._raise_for(r, path)

        def chunks():
            try:
                yield from r.iter_content(self.chunk)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                raise Transient(f"{self.url(path)}: body interrupted: {type(exc).__name__}: {exc}") from None

        return Body(start, chunks(), r.close, digest_from_headers(r.headers, full=r.status_code == 200))

    def _page(self, r, path: str) -> str:
        """An index page's text, read as a stream and refused past :data:`MAX_INDEX_PAGE`."""
        import requests
        import urllib3

        n = self._length(r, path)
        if n is not None and n > MAX_INDEX_PAGE:
            r.close()
            raise TooLarge(f"{self.url(path)}: index page of {n:,} bytes, more than the {MAX_INDEX_PAGE:,} "
                           "acquire reads; refused")
        data = bytearray()
        try:
            for chunk in r.iter_content(CHUNK):
                data += chunk
                if len(data) > MAX_INDEX_PAGE:
                    raise TooLarge(f"{self.url(path)}: index page of more than {MAX_INDEX_PAGE:,} bytes, the "
                                   "most acquire reads; refused")
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise Transient(f"{self.url(path)}: index page interrupted: {type(exc).__name__}: {exc}") from None
        finally:
            r.close()
        return bytes(data).decode(r.encoding or "utf-8", errors="replace")

    def list(self, directory: str) -> list[Listed] | None:
        """The entries of an index page; None when the folder has none (404, 403 or a page that
        is not an index): a static host without index pages answers so for folders that exist."""
        d = directory.strip("/")
        r = self._request("GET", d + "/", stream=True)
        if r.status_code in (403, 404, 410):
            r.close()
            return None
        if r.status_code != 200:
            r.close()
            self._raise_for(r, directory)
        text = self._page(r, d + "/")
        here = urlsplit(r.url).path  # after redirects: the folder's own path
        here = here if here.endswith("/") else here + "/"
        out, parent = {}, False
        for href in re.findall(r'href\s*=\s*"([^"]+)"', text, flags=re.I):
            href = unquote(html.unescape(href).split("?")[0].split("#")[0])
            if href.startswith("/"):  # an absolute path: an entry only if it lies in this folder
                if not href.startswith(here):
                    parent = parent or here.startswith(href)
                    continue
                href = href[len(here):]
            if href in ("..", "../") or href.startswith("../"):
                parent = True
                continue
            if not href or href.startswith(("?", "#", "./")) or "://" in href or href.startswith("mailto:"):
                continue
            is_dir = href.endswith("/")
            name = href.rstrip("/")
            if name and "/" not in name:
                out[name] = Listed(name, None, is_dir)
        if not out and not parent and not re.search(r"index of|directory listing", text, flags=re.I):
            return None  # some page, but not an index: the folder's content is unknown
        return sorted(out.values(), key=lambda e: e.name)


# ------------------------------------------------------------------------------------------ S3
class S3Source(Source):
    """An S3 bucket read anonymously (unsigned requests) with boto3; ``endpoint_url`` points it
    at another S3 server (a local moto server in the tests)."""

    def __init__(self, bucket: str = DESI_BUCKET, prefix: str = "", *, region: str = DESI_REGION,
                 endpoint_url: str | None = None, timeout: tuple[float, float] = (10.0, 60.0),
                 chunk: int = CHUNK):
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        self.bucket, self.prefix, self.chunk = bucket, prefix.strip("/"), chunk
        self.label = f"s3://{bucket}/{self.prefix + '/' if self.prefix else ''}" + (
            f" ({endpoint_url})" if endpoint_url else f" ({region})")
        cfg = Config(signature_version=UNSIGNED, connect_timeout=timeout[0], read_timeout=timeout[1],
                     retries={"max_attempts": 1, "mode": "standard"}, user_agent_extra=USER_AGENT,
                     max_pool_connections=32)
        self.client = boto3.session.Session().client("s3", region_name=region, endpoint_url=endpoint_url,
                                                     config=cfg)

    def key(self, path: str) -> str:
        return f"{self.prefix}/{path.lstrip('/')}" if self.prefix else path.lstrip("/")

    def where(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def _wrap(self, exc: Exception, path: str) -> SourceError:
        from botocore.exceptions import ClientError

        where = f"s3://{self.bucket}/{self.key(path)}"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            msg = f"{where}: {code or status} {err.get('Message', '')}".rstrip()
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket") or status == 404:
                return Missing(msg)
            if code == "InvalidRange" or status == 416:
                return RangeNotSatisfiable(msg)
            if status >= 500 or status in (408, 429) or code in ("SlowDown", "RequestTimeout",
                                                                 "InternalError", "ServiceUnavailable"):
                return Transient(msg)
            return Permanent(msg)
        why = is_unreachable(exc)
        if why:
            return Unreachable(f"{where}: {why}: {exc}")
        return Transient(f"{where}: {type(exc).__name__}: {exc}")

    @staticmethod
    def _digest(resp: dict) -> Digest | None:
        """The ETag as MD5 (single-part, not KMS- or customer-key-encrypted objects only)."""
        if resp.get("ServerSideEncryption") == "aws:kms" or resp.get("SSECustomerAlgorithm"):
            return None
        return digest_from_headers({"ETag": resp.get("ETag") or ""}, full=True, s3=True)

    def stat(self, path: str) -> Stat:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self.key(path))
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._wrap(exc, path) from None
        return Stat(int(resp["ContentLength"]), self._digest(resp))

    def probe(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except ClientError:
            return  # an answer (even AccessDenied): the source is up
        except (BotoCoreError, OSError) as exc:
            raise self._wrap(exc, "") from None

    def open(self, path: str, start: int = 0) -> Body:
        from botocore.exceptions import BotoCoreError, ClientError

        kw = {"Range": f"bytes={start}-"} if start > 0 else {}
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(path), **kw)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._wrap(exc, path) from None
        if start > 0:
            m = re.match(r"bytes (\d+)-", resp.get("ContentRange") or "")
            if not m:
                start = 0
            elif int(m.group(1)) != start:
                resp["Body"].close()
                raise Transient(f"s3://{self.bucket}/{self.key(path)}: asked for bytes from {start}, got "
                                f"{resp.get('ContentRange')!r}")
        body = resp["Body"]

        def chunks():
            try:
                yield from body.iter_chunks(self.chunk)
            except Exception as exc:  # botocore and urllib3 errors both surface here
                raise Transient(f"s3://{self.bucket}/{self.key(path)}: body interrupted: "
                                f"{type(exc).__name__}: {exc}") from None

        return Body(start, chunks(), body.close, self._digest(resp))

    def list(self, directory: str) -> list[Listed] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self.key(directory).strip("/")
        prefix = prefix + "/" if prefix else ""
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for cp in page.get("CommonPrefixes", []):
                    out.append(Listed(cp["Prefix"][len(prefix):].rstrip("/"), None, True))
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix):]
                    if name and "/" not in name:
                        out.append(Listed(name, int(obj["Size"]), False))
                if len(out) > MAX_LISTED:  # stop paginating: the listing is held in memory
                    raise TooLarge(f"s3://{self.bucket}/{prefix}: more than {MAX_LISTED:,} keys "
                                   "listed, the most acquire lists of one prefix; refused")
        except (ClientError, BotoCoreError, OSError) as exc:
            raise self._wrap(exc, directory) from None
        return sorted(out, key=lambda e: e.name)


# -------------------------------------------------------------------------------------- fsspec
class FsspecSource(Source):
    """Any fsspec URL, including a plain local folder (the mock mirror)."""

    def __init__(self, url: str, *, chunk: int = CHUNK, **storage_options):
        import fsspec

        self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = root.rstrip("/")
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        self.label = f"{proto}://{self.root}/"
        self.chunk = chunk
        self.local = proto in ("file", "local")  # a folder on this machine: read by _open_local

    def _p(self, path: str) -> str:
        return f"{self.root}/{path.lstrip('/')}" if path else self.root

    def stat(self, path: str) -> Stat:
        try:
            info = self.fs.info(self._p(path))
        except FileNotFoundError:
            raise Missing(f"{self.label}{path}: not found") from None
        except OSError as exc:
            raise Transient(f"{self.label}{path}: {exc}") from None
        if info.get("type") == "directory":
            raise Missing(f"{self.label}{path}: is a directory")
        return Stat(int(info["size"]))

    def probe(self) -> None:
        try:
            self.fs.info(self.root)
        except FileNotFoundError:
            raise Unreachable(f"{self.label}: no such folder") from None
        except OSError as exc:
            raise Unreachable(f"{self.label}: {exc}") from None

    def open(self, path: str, start: int = 0) -> Body:
        if self.local:
            return self._open_local(path, start)
        try:
            f = self.fs.open(self._p(path), "rb")
            if start:
                f.seek(start)
        except FileNotFoundError:
            raise Missing(f"{self.label}{path}: not found") from None
        except OSError as exc:
            raise Transient(f"{self.label}{path}: {exc}") from None

        def chunks():
            try:
                while block := f.read(self.chunk):
                    yield block
            except OSError as exc:
                raise Transient(f"{self.label}{path}: read failed: {exc}") from None

        return Body(start, chunks(), f.close)

    def _open_local(self, path: str, start: int) -> Body:
        """A local file's bytes from ``start``, read with O_DIRECT where the file system allows
        it: the source's bytes are read once, by acquire, so going through the page cache only
        costs kernel CPU (on this machine's virtual disk a cold buffered read is about 1.8 CPU
        s per GB, a direct one almost none) and evicts what later stages will read. Reads are
        aligned blocks of ``chunk`` (rounded up to :data:`DIRECT_ALIGN`) into one buffer:
        each chunk is a view, valid until the next one is asked for."""
        name = self._p(path)
        try:
            fd = _open_direct(name)
        except FileNotFoundError:
            raise Missing(f"{self.label}{path}: not found") from None
        except OSError as exc:
            raise Transient(f"{self.label}{path}: {exc}") from None
        where = f"{self.label}{path}"
        chunks = _direct_chunks(fd, start, self.chunk, where)

        def close() -> None:
            chunks.close()  # its read in flight ends before the descriptor closes
            os.close(fd)

        return Body(start, chunks, close)

    def list(self, directory: str) -> list[Listed] | None:
        try:
            items = self.fs.ls(self._p(directory.strip("/")), detail=True)
        except FileNotFoundError:
            raise Missing(f"{self.label}{directory}: no such directory") from None
        base = self._p(directory.strip("/")).rstrip("/") + "/"
        out = []
        for it in items:
            name = it["name"].rstrip("/")
            name = name[len(base):] if name.startswith(base) else name.rsplit("/", 1)[-1]
            if name and "/" not in name:
                is_dir = it.get("type") == "directory"
                out.append(Listed(name, None if is_dir else int(it.get("size") or 0), is_dir))
        return sorted(out, key=lambda e: e.name)


#: offsets, lengths and buffer addresses of O_DIRECT reads are multiples of this (the logical
#: block size of any disk; a page)
DIRECT_ALIGN = 4096


def _open_direct(name: str) -> int:
    """A read-only descriptor of ``name``, O_DIRECT unless the system or file system refuses."""
    if hasattr(os, "O_DIRECT"):
        try:
            return os.open(name, os.O_RDONLY | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: no O_DIRECT here (tmpfs, some FUSE)
                raise
    return os.open(name, os.O_RDONLY)


def _direct_chunks(fd: int, start: int, chunk: int, where: str) -> Iterator[memoryview]:
    """Blocks of the file ``fd`` from byte ``start`` (aligned reads, the head of the first one
    skipped) as views of two buffers, the next block read (by a thread) while the caller uses
    this one, so the disk has a read in flight while the caller hashes and writes; a view is
    valid until the next one is asked for. A file system that accepts O_DIRECT at open but
    refuses the read gets buffered reads on the same descriptor."""
    size = max(DIRECT_ALIGN, -(-chunk // DIRECT_ALIGN) * DIRECT_ALIGN)
    # anonymous memory is page-aligned, as O_DIRECT needs
    views = [memoryview(mmap.mmap(-1, size)) for _ in range(2)]
    pos = start - start % DIRECT_ALIGN
    skip = start - pos
    with ThreadPoolExecutor(1, thread_name_prefix="acquire-read") as reader:
        pending = reader.submit(_read_block, fd, views[0], pos, where)
        i = 0
        try:
            while True:
                n = pending.result()
                pending = None
                if n == size:  # not the end: the next block is read meanwhile
                    pending = reader.submit(_read_block, fd, views[(i + 1) % 2], pos + n, where)
                if n > skip:
                    yield views[i % 2][skip:n]
                if n < size:  # a regular file's short read is its end
                    return
                pos, skip, i = pos + n, 0, i + 1
        finally:
            if pending is not None:  # never leave a read writing into a buffer being dropped
                try:
                    pending.result()
                except SourceError:
                    pass


def _read_block(fd: int, view: memoryview, pos: int, where: str) -> int:
    while True:
        try:
            return os.preadv(fd, [view], pos)
        except OSError as exc:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            if exc.errno == errno.EINVAL and flags & getattr(os, "O_DIRECT", 0):
                fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
                continue
            raise Transient(f"{where}: read failed: {exc}") from None


def make_source(spec: str, *, s3_endpoint: str | None = None, timeout: tuple[float, float] = (10.0, 60.0),
                chunk: int = CHUNK) -> Source:
    """``"https"``: DESI's portal; ``"s3"``: the anonymous ``desidata`` bucket (us-west-2);
    ``s3://bucket/prefix``; ``http(s)://...`` any server with DESI's layout; anything else an
    fsspec URL or a local folder."""
    spec = str(spec).strip()
    if not spec:
        raise ValueError("empty source: give 'https', 's3', a URL or a folder")
    if spec == "https":
        return HTTPSource(DESI_HTTPS, timeout=timeout, chunk=chunk)
    if spec == "s3":
        return S3Source(DESI_BUCKET, "", endpoint_url=s3_endpoint, timeout=timeout, chunk=chunk)
    if spec.startswith("s3://"):
        u = urlsplit(spec)
        return S3Source(u.netloc, u.path, endpoint_url=s3_endpoint, timeout=timeout, chunk=chunk)
    if spec.startswith(("http://", "https://")):
        return HTTPSource(spec, timeout=timeout, chunk=chunk)
    return FsspecSource(spec, chunk=chunk)
