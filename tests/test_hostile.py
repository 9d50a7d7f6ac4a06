"""Hostile inputs (issue 20): what a hostile source, a careless user and a failing machine give
the pipeline, each through the command line.

A loopback HTTP server (127.0.0.1 only) and a moto S3 server serve traversal keys, ``.`` and
empty names, huge checksum lists and index pages (generated lazily, the real caps included),
bad Content-Lengths, redirects to ``file://`` and redirect loops; parameters name folders
outside the run; a symlink in the run's raw folder leads out; a database cannot be reached; a
Parquet file is truncated. Every case asserts the exit status, that stderr names the culprit
(the URL, the key, the file), that stderr holds no ``Traceback``, and that nothing was written
outside ``data_dir`` (the test's folder and its parent are snapshot before and after).

The counts (cases, clear errors, silent acceptances, escapes, tracebacks) are printed at the end
of the module: ``.venv/bin/python -m pytest tests/test_hostile.py -q -rA`` (the ``hostile
inputs:`` line).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from acquire_fixtures import MotoS3
from sealing import reseal

from desivoids.acquire import sources
from desivoids.formats import checksum_filename

pytestmark = pytest.mark.slow  # each case runs the command line as a subprocess

D = "dr1/x"  # the folder every HTTP case asks for (set `dir`)
SUMS = f"{D}/{checksum_filename(D)}"
FITS = b"SIMPLE  =                    T" + b" " * 2850  # 2880 bytes: any content will do


# ------------------------------------------------------------------------------ the record
@dataclass
class Case:
    name: str
    code: int
    culprit_named: bool
    traceback: bool
    escaped: list[str]

    @property
    def clear(self) -> bool:
        return self.code in (1, 2) and self.culprit_named and not self.traceback and not self.escaped


CASES: list[Case] = []


@pytest.fixture(scope="module", autouse=True)
def tally(request):
    yield
    n = len(CASES)
    line = (f"hostile inputs: {n} cases, {sum(c.clear for c in CASES)} clear errors, "
            f"{sum(c.code == 0 for c in CASES)} silent acceptances, "
            f"{sum(bool(c.escaped) for c in CASES)} escapes, {sum(c.traceback for c in CASES)} tracebacks")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown with -q too, passed or not
        print(f"\n{line}")


def snapshot(root: Path, inside: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every path below ``root`` except those below ``inside`` (data_dir)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if here == inside or inside in here.parents:
            dirnames[:] = []
            continue
        for n in dirnames + filenames:
            p = here / n
            if p == inside:
                continue
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def verb(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desivoids.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def check(name: str, tmp_path: Path, data: Path, run, culprits: tuple[str, ...], code: int = 1) -> str:
    """Run ``run()`` (returns (exit status, stderr)), record the case, assert it failed clearly."""
    root = tmp_path.parent
    before = snapshot(root, data)
    got, err = run()
    after = snapshot(root, data)
    escaped = sorted(set(after) - set(before)) + sorted(p for p in before if p in after and after[p] != before[p]
                                                        and not p.startswith(str(tmp_path / "srv")))
    CASES.append(Case(name, got, all(c in err for c in culprits), "Traceback" in err, escaped))
    assert "Traceback" not in err, err
    assert not escaped, f"written outside data_dir: {escaped}"
    assert got == code, (got, err)
    for c in culprits:
        assert c in err, (c, err)
    return err


def cli_case(name, tmp_path, data, args, culprits, code=1, **kw):
    def run():
        r = verb(*args, **kw)
        return r.returncode, r.stderr
    return check(name, tmp_path, data, run, culprits, code)


def inprocess_case(name, tmp_path, data, args, culprits, capsys, code=1):
    from desivoids.cli import main

    def run():
        capsys.readouterr()
        got = main(list(args))
        return got, capsys.readouterr().err
    return check(name, tmp_path, data, run, culprits, code)


def acquire_args(data: Path, source: str, *more: str) -> list[str]:
    return ["acquire", "-p", "data_dir", str(data), "-p", "source", source, "-p", "spectra", "false",
            "-p", "retries", "0", "-p", "min_free_gb", "0", "-p", "workers", "2", "-p", "sets", "[dir]",
            "-p", "dirs", f"[{D}]", *more]


# ------------------------------------------------------------------------------ loopback HTTP
class Hostile:
    """An HTTP server on 127.0.0.1 whose answers are set per path: ``routes[path] =
    handler(request, head)``; ``sent`` counts the body bytes written per path."""

    def __init__(self):
        self.routes: dict[str, callable] = {}
        self.sent: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a body may run until the connection closes

            def log_message(self, *a):
                pass

            def do_GET(self):
                self._go(False)

            def do_HEAD(self):
                self._go(True)

            def _go(self, head):
                path = self.path.split("?")[0]
                fn = owner.routes.get(path)
                if fn is None:
                    reply(self, 404, {}, b"not found\n", head)
                else:
                    try:
                        fn(self, head)
                    except (BrokenPipeError, ConnectionResetError):
                        pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def index(self, folder: str, hrefs: list[str]) -> None:
        body = ("<html><head><title>Index of /{0}</title></head><body><h1>Index of /{0}</h1>\n".format(folder)
                + "\n".join(f'<a href="{h}">{h}</a>' for h in hrefs) + "\n</body></html>\n").encode()
        self.routes[f"/{folder}/"] = lambda h, head: reply(h, 200, {"Content-Type": "text/html"}, body, head)

    def file(self, path: str, data: bytes, **headers) -> None:
        self.routes[f"/{path}"] = lambda h, head: reply(h, 200, headers, data, head)

    def redirect(self, path: str, location: str) -> None:
        self.routes[f"/{path}"] = lambda h, head: reply(h, 302, {"Location": location}, b"", head)

    def stream(self, path: str, head_bytes: bytes, line, content_type: str = "text/plain") -> None:
        """An endless body (no Content-Length), generated as it is sent; counts what was sent."""
        def serve(h, head):
            h.send_response(200)
            h.send_header("Content-Type", content_type)
            h.end_headers()
            if head:
                return
            self.sent[path] = 0
            h.wfile.write(head_bytes)
            i = 0
            block = []
            while True:
                block.append(line(i))
                i += 1
                if len(block) == 4096:
                    data = b"".join(block)
                    block = []
                    h.wfile.write(data)
                    self.sent[path] += len(data)
        self.routes[f"/{path}"] = serve


def reply(h, status: int, headers: dict, body: bytes, head: bool) -> None:
    h.send_response(status)
    if "Content-Length" not in headers:
        h.send_header("Content-Length", str(len(body)))
    for k, v in headers.items():
        h.send_header(k, v)
    h.end_headers()
    if not head:
        h.wfile.write(body)


@pytest.fixture
def http():
    s = Hostile()
    yield s
    s.close()


@pytest.fixture
def run_dir(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return data


# ------------------------------------------------------------------------------ S3 (moto)
@pytest.fixture(scope="module")
def moto():
    with MotoS3() as m:
        yield m


def hostile_bucket(moto, tmp_path, name: str, keys: dict[str, bytes]) -> str:
    empty = tmp_path / f"empty-{name}"
    empty.mkdir()
    moto.upload_tree(name, empty)  # the bucket, public-read as DESI's
    c = moto.client()
    for k, v in keys.items():
        c.put_object(Bucket=name, Key=k, Body=v)
    return f"s3://{name}"


@pytest.mark.parametrize("key, culprit", [
    ("dr1/x/../../../../../s3pwned.fits", "'..'"),
    ("dr1/x/./dot.fits", "'.'"),
    ("dr1/x//empty.fits", "an empty name"),
])
def test_s3_listing_keys_that_leave_the_raw_folder_are_refused(moto, tmp_path, run_dir, key, culprit):
    bucket = f"hostile-{hashlib.md5(key.encode()).hexdigest()[:8]}"
    src = hostile_bucket(moto, tmp_path, bucket, {"dr1/x/ok.fits": FITS, key: b"pwned"})
    err = cli_case(f"s3 key {key}", tmp_path, run_dir,
                   acquire_args(run_dir, src, "-p", "s3_endpoint", moto.endpoint), (culprit, f"s3://{bucket}/dr1/x/"))
    assert "refused" in err
    assert not (run_dir / "acquire" / "raw" / "dr1" / "x" / "ok.fits").exists()  # refused before fetching


def test_an_s3_traversal_key_is_refused_by_a_dry_run_too(moto, tmp_path, run_dir):
    src = hostile_bucket(moto, tmp_path, "hostile-dry", {"dr1/x/../../../../../s3pwned.fits": b"pwned"})
    cli_case("s3 traversal key, dry run", tmp_path, run_dir,
             acquire_args(run_dir, src, "-p", "s3_endpoint", moto.endpoint, "-p", "dry_run", "true"),
             ("'..'", "s3://hostile-dry/dr1/x/"))


def test_an_s3_listing_beyond_the_key_cap_is_refused_naming_bucket_and_prefix(moto, tmp_path, run_dir,
                                                                              monkeypatch, capsys):
    """The listing cap (MAX_LISTED) is read at call time: made small here, a prefix of 12 keys is
    refused before anything is fetched; at the real cap the same bucket is acquired."""
    keys = {f"dr1/x/f{i:02d}.fits": FITS for i in range(12)}
    src = hostile_bucket(moto, tmp_path, "hostile-many", keys)
    monkeypatch.setattr(sources, "MAX_LISTED", 5)
    inprocess_case("s3 listing beyond a small key cap", tmp_path, run_dir,
                   acquire_args(run_dir, src, "-p", "s3_endpoint", moto.endpoint),
                   ("s3://hostile-many/dr1/x/", "more than 5 keys"), capsys)
    assert not (run_dir / "acquire" / "raw" / "dr1" / "x").exists() or \
        not any((run_dir / "acquire" / "raw" / "dr1" / "x").iterdir())
    monkeypatch.undo()
    from desivoids.cli import main

    assert main(acquire_args(run_dir, src, "-p", "s3_endpoint", moto.endpoint)) == 0
    assert len(list((run_dir / "acquire" / "raw" / "dr1" / "x").glob("f*.fits"))) == 12


# ------------------------------------------------------------------------------ parameters, symlinks
@pytest.fixture
def mirror(tmp_path):
    """A folder source in DESI's layout, and a folder beside it that must stay unread."""
    m = tmp_path / "srv" / "mirror"
    (m / D).mkdir(parents=True)
    (m / D / "a.fits").write_bytes(FITS)
    secret = tmp_path / "srv" / "secret"
    secret.mkdir()
    (secret / "b.fits").write_bytes(FITS)
    return m


@pytest.mark.parametrize("param, value, culprit", [
    ("dirs", "['../secret']", "'..'"),
    ("dirs", "['dr1/../../../../../outside']", "'..'"),
    ("dirs", "['/etc']", "absolute"),
    ("dirs", "['']", "an empty name"),
    ("healpix", "['../../5']", "'..'"),
    ("desivast_version", "../../../../../../../outside", "'..'"),
])
def test_parameters_naming_folders_outside_the_layout_are_refused(tmp_path, run_dir, mirror, param, value, culprit):
    sets = {"dirs": "[dir]", "healpix": "[healpix]", "desivast_version": "[desivast]"}[param]
    args = acquire_args(run_dir, str(mirror)) + ["-p", "sets", sets, "-p", param, value]
    cli_case(f"parameter {param}={value}", tmp_path, run_dir, args, (culprit, "refused"))
    assert not (run_dir / "acquire" / "raw").exists() or not any((run_dir / "acquire" / "raw").rglob("*.fits"))


def test_a_symlink_in_the_raw_folder_leading_out_is_refused(tmp_path, run_dir, mirror):
    outside = tmp_path / "outside"
    outside.mkdir()
    (run_dir / "acquire" / "raw").mkdir(parents=True)
    (run_dir / "acquire" / "raw" / "dr1").symlink_to(outside)
    cli_case("symlink in raw leading out", tmp_path, run_dir, acquire_args(run_dir, str(mirror)),
             ("dr1/x/a.fits", "symlink"))
    assert not any(outside.rglob("*"))


# ------------------------------------------------------------------------------ HTTP sources
def test_an_index_entry_dot_is_refused_naming_the_url(http, tmp_path, run_dir):
    http.index(D, ["../", ".", "a.fits"])
    http.file(f"{D}/a.fits", FITS)
    cli_case("index entry '.'", tmp_path, run_dir, acquire_args(run_dir, http.url), (f"{http.url}{D}/", "'.'"))


def test_an_index_whose_only_entry_is_dotdot_fetches_nothing_and_fails(http, tmp_path, run_dir):
    http.index(D, [".."])
    cli_case("index entry '..'", tmp_path, run_dir, acquire_args(run_dir, http.url), (f"{http.url}{D}/",))


def test_a_checksum_list_naming_a_path_outside_its_folder_is_refused(http, tmp_path, run_dir):
    http.index(D, ["a.fits", checksum_filename(D)])
    http.file(f"{D}/a.fits", FITS)
    http.file(SUMS, b"0" * 64 + b"  ../../../../../pwned.fits\n")
    cli_case("checksum list naming ../", tmp_path, run_dir, acquire_args(run_dir, http.url),
             (f"{http.url}{SUMS}", "does not stay inside"))


@pytest.mark.parametrize("where", ["file", "index"])
def test_a_redirect_to_file_url_is_refused_naming_the_url(http, tmp_path, run_dir, where):
    if where == "file":
        http.index(D, ["a.fits"])
        http.redirect(f"{D}/a.fits", "file:///etc/passwd")
        culprit = f"{http.url}{D}/a.fits"
    else:
        http.redirect(f"{D}/", "file:///etc/")
        culprit = f"{http.url}{D}/"
    err = cli_case(f"redirect to file:// ({where})", tmp_path, run_dir, acquire_args(run_dir, http.url),
                   (culprit, "file:///etc/"))
    assert "root:" not in err


@pytest.mark.parametrize("where", ["file", "index"])
def test_a_redirect_loop_is_refused_naming_the_url(http, tmp_path, run_dir, where):
    if where == "file":
        http.index(D, ["a.fits"])
        http.redirect(f"{D}/a.fits", f"/{D}/a.fits")
        culprit = f"{http.url}{D}/a.fits"
    else:
        http.redirect(f"{D}/", f"/{D}/")
        culprit = f"{http.url}{D}/"
    cli_case(f"redirect loop ({where})", tmp_path, run_dir, acquire_args(run_dir, http.url),
             (culprit, "redirect loop"))


@pytest.mark.parametrize("length, method", [("-5", "HEAD"), ("lots", "HEAD"), ("-5", "GET"), ("lots", "GET")])
def test_a_content_length_that_is_not_a_byte_count_is_refused(http, tmp_path, run_dir, length, method):
    http.index(D, ["a.fits"])

    def serve(h, head):
        bad = head == (method == "HEAD")
        h.send_response(200)
        h.send_header("Content-Length", length if bad else str(len(FITS)))
        h.end_headers()
        if not head:
            h.wfile.write(FITS)
    http.routes[f"/{D}/a.fits"] = serve
    cli_case(f"Content-Length {length} on {method}", tmp_path, run_dir, acquire_args(run_dir, http.url),
             (f"{http.url}{D}/a.fits", f"Content-Length {length!r}"))
    assert not (run_dir / "acquire" / "raw" / D / "a.fits").exists()


def _sum_line(i: int) -> bytes:
    return b"%064x  f%09d.fits\n" % (i, i)


def test_a_huge_checksum_list_stops_at_the_real_cap(http, tmp_path, run_dir):
    """The real cap (MAX_CHECKSUM_LIST), against an endless list generated as it is sent: the
    client stops reading just past the cap and refuses it; its peak memory stays a small
    multiple of the cap (a 400 MB list took 1.37 GB before)."""
    import psutil

    http.stream(SUMS, b"", _sum_line)  # no index page: the folder's list is read directly
    peak = [0]

    def run():
        p = subprocess.Popen([sys.executable, "-m", "desivoids.cli", *acquire_args(run_dir, http.url)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc = psutil.Process(p.pid)
        t0 = time.monotonic()
        while p.poll() is None:
            if time.monotonic() - t0 > 120:  # an unbounded reader never stops by itself
                p.kill()
            try:
                peak[0] = max(peak[0], proc.memory_info().rss)
            except psutil.Error:
                pass
            time.sleep(0.02)
        return p.returncode, p.stderr.read()
    check("checksum list beyond the real cap (streamed)", tmp_path, run_dir, run,
          (f"{http.url}{SUMS}", f"{sources.MAX_CHECKSUM_LIST:,}"))
    sent = http.sent[SUMS]
    assert sources.MAX_CHECKSUM_LIST < sent < sources.MAX_CHECKSUM_LIST + (16 << 20), sent
    assert peak[0] < 4 * sources.MAX_CHECKSUM_LIST + (400 << 20), peak[0]


def test_a_huge_index_page_stops_at_the_real_cap(http, tmp_path, run_dir):
    http.stream(f"{D}/", b"<html><title>Index of /dr1/x</title><body>\n",
                lambda i: b'<a href="f%09d.fits">f%09d.fits</a>\n' % (i, i), "text/html")
    check("index page beyond the real cap (streamed)", tmp_path, run_dir,
          lambda: (lambda r: (r.returncode, r.stderr))(verb(*acquire_args(run_dir, http.url))),
          (f"{http.url}{D}/", f"{sources.MAX_INDEX_PAGE:,}"))
    assert http.sent[f"{D}/"] < sources.MAX_INDEX_PAGE + (16 << 20)


def test_an_index_page_announcing_400_mb_is_refused_before_reading(http, tmp_path, run_dir):
    http.routes[f"/{D}/"] = lambda h, head: reply(h, 200, {"Content-Length": str(400 << 20),
                                                            "Content-Type": "text/html"}, b"<html>", head)
    cli_case("index page announcing 400 MB", tmp_path, run_dir, acquire_args(run_dir, http.url),
             (f"{http.url}{D}/", f"{400 << 20:,} bytes"))


def test_checksum_list_and_index_page_caps_are_module_constants(http, tmp_path, run_dir, monkeypatch, capsys):
    """The caps are read at call time: made small here, a 64 KiB list and page are refused."""
    monkeypatch.setattr(sources, "MAX_CHECKSUM_LIST", 4096)
    monkeypatch.setattr(sources, "MAX_INDEX_PAGE", 4096)
    http.file(SUMS, b"".join(_sum_line(i) for i in range(800)))
    inprocess_case("checksum list beyond a small cap", tmp_path, run_dir, acquire_args(run_dir, http.url),
                   (f"{http.url}{SUMS}", "4,096 bytes"), capsys)
    http.stream(f"{D}/", b"<html>Index of\n", lambda i: b'<a href="f%d.fits">f</a>\n' % i, "text/html")
    inprocess_case("index page beyond a small cap", tmp_path, run_dir, acquire_args(run_dir, http.url),
                   (f"{http.url}{D}/", "4,096"), capsys)


# ------------------------------------------------------------------------------ failing machine
@pytest.fixture(scope="module")
def loaded(tiny_pipeline):
    """The session's tiny mock run, every stage done (conftest.tiny_pipeline; read-only: the
    cases below copy it)."""
    return tiny_pipeline.data


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_a_data_dir_that_is_a_file_is_a_clear_error_of_every_verb(tmp_path):
    from desivoids.stages import ORDER

    afile = tmp_path / "data"
    afile.write_text("not a folder\n")
    for name in ORDER:
        cli_case(f"{name}: data_dir is a file", tmp_path, afile, [name, "-p", "data_dir", str(afile)],
                 (str(afile), "not a folder"))
    pfile = tmp_path / "p.yml"
    pfile.write_text(f"data_dir: {afile}\nstages: {{}}\n")
    cli_case("run: data_dir is a file", tmp_path, afile, ["run", "--params", str(pfile), "--stages", "recon",
                                                          "--quiet"], (str(afile), "not a folder"))


def test_an_unreachable_database_in_load_is_one_line_and_a_log(loaded, tmp_path):
    data = _copy(loaded, tmp_path / "data")
    url = "postgresql+psycopg://u@127.0.0.1:1/x"
    err = cli_case("load: unreachable database", tmp_path, data, ["load", "-p", "data_dir", str(data),
                                                                 "-p", "db_url", url], ("127.0.0.1", "port 1"))
    log = data / "run" / "logs" / "load.log"
    assert str(log) in err and "Traceback" in log.read_text()
    assert len(err.strip().splitlines()) == 1, err


def test_a_truncated_parquet_file_read_by_integrity_is_named(loaded, tmp_path):
    data = _copy(loaded, tmp_path / "data")
    part = sorted((data / "convert" / "galaxies").glob("*.parquet"))[0]
    os.truncate(part, part.stat().st_size // 2)
    reseal(part)  # as if convert had published it so: the reader's own handling is tested
    err = cli_case("integrity: truncated Parquet", tmp_path, data, ["integrity", "-p", "data_dir", str(data)],
                   (part.name,))
    assert "integrity.log" in err



@pytest.mark.parametrize("name", ["load", "environment"])
def test_an_unreachable_database_with_a_password_never_shows_it(loaded, tmp_path, name):
    data = _copy(loaded, tmp_path / "data")
    url = "postgresql+psycopg://u:s3cret-pw@127.0.0.1:1/x"
    err = cli_case(f"{name}: unreachable database, password in the URL", tmp_path, data,
                   [name, "-p", "data_dir", str(data), "-p", "db_url", url], ("127.0.0.1",))
    assert "s3cret-pw" not in err
    assert all("s3cret-pw" not in f.read_text() for f in (data / "run" / "logs").glob("*.log"))


def test_a_truncated_parquet_file_read_by_environment_is_named(loaded, tmp_path):
    data = _copy(loaded, tmp_path / "data")
    part = sorted((data / "convert" / "galaxies").glob("*.parquet"))[0]
    os.truncate(part, part.stat().st_size // 2)
    reseal(part)  # as if convert had published it so: the reader's own handling is tested
    cli_case("environment: truncated Parquet", tmp_path, data, ["environment", "-p", "data_dir", str(data)],
             (part.name,))


def test_a_non_numeric_omegam_header_is_named_by_file_hdu_and_keyword(loaded, tmp_path):
    from astropy.io import fits

    data = _copy(loaded, tmp_path / "data")
    f = sorted((data / "acquire" / "raw").rglob("DESIVAST_*VoidFinder_NGC.fits"))[0]
    with fits.open(f, mode="update") as h:
        h[0].header["OMEGAM"] = "lots"
    cli_case("convert: OMEGAM 'lots'", tmp_path, data, ["convert", "-p", "data_dir", str(data)],
             (f.name, "PRIMARY", "OMEGAM", "'lots'"))

# ------------------------------------------------------------------------------ locks, staging
def test_a_second_run_of_a_stage_on_one_data_dir_is_refused_with_the_holders_pid(loaded, tmp_path):
    from desivoids.outputs import stage_lock

    data = _copy(loaded, tmp_path / "data")
    before = sorted(p.name for p in (data / "recon").iterdir())
    with stage_lock(data, "recon"):
        err = cli_case("second concurrent recon", tmp_path, data, ["recon", "-p", "data_dir", str(data)],
                       (f"pid {os.getpid()}", "started", ".recon.lock"))
        p = tmp_path / "p.yml"
        p.write_text(f"data_dir: {data}\nstages: {{}}\n")
        cli_case("second concurrent recon (desivoids run)", tmp_path, data,
                 ["run", "--params", str(p), "--stages", "recon", "--quiet",
                  "--executed-dir", str(data / "run" / "executed")], (f"pid {os.getpid()}",))
    assert "another run of the recon stage" in err
    assert sorted(p.name for p in (data / "recon").iterdir()) == before  # the holder's outputs untouched
    assert not (data / ".recon.lock").exists()  # released with its holder
    ok = verb("recon", "-p", "data_dir", str(data))
    assert ok.returncode == 0, ok.stderr


def test_a_stale_lock_is_taken_over_and_stale_staging_folders_are_removed(loaded, tmp_path):
    data = _copy(loaded, tmp_path / "data")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (data / ".recon.lock").write_text(f'{{"pid": {dead}, "host": "h", "started": "2026-01-01T00:00:00"}}\n')
    old = time.time() - 3600
    stale = [data / ".recon.tmp-0123abcd", data / ".recon.old-89abcdef", data / "recon" / ".x.tmp-00000000"]
    keep = [data / ".convert.tmp-0123abcd", data / "integrity" / ".report.json.tmp-00000000"]
    for p in stale + keep:
        p.mkdir(parents=True, exist_ok=True)
        (p / "SHA256SUMS").write_text("complete-looking\n")
        os.utime(p, (old, old))
    r = verb("recon", "-p", "data_dir", str(data))
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in stale), [p for p in stale if p.exists()]
    assert all(p.exists() for p in keep)  # another stage's: not recon's to remove
    assert not (data / ".recon.lock").exists()


# ------------------------------------------------------------------------------ disk full
@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of a chosen size at tmp_path/data (root and a kernel that allows it; else skip)."""
    mnt = tmp_path / "data"
    mnt.mkdir()
    mounted = []

    def mount(kib: int) -> Path:
        opts = f"size={kib}k" if not mounted else f"remount,size={kib}k"
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(True)
        return mnt
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield mount
    if mounted:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _kib(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) // 1024 + 64


def test_disk_full_in_load_names_the_first_failure_not_the_rollback(loaded, tmp_path, small_disk):
    import shutil

    data = small_disk(_kib(loaded / "convert") + 1024)
    shutil.copytree(loaded / "convert", data / "convert")
    err = cli_case("load: disk full", tmp_path, data, ["load", "-p", "data_dir", str(data)], ("disk is full",))
    assert "disk is full" in err.split("(then, while handling it")[0], err  # the cause leads, not the rollback


def test_disk_full_in_convert_then_a_rerun_with_room_cleans_up(loaded, tmp_path, small_disk):
    import shutil

    data = small_disk(_kib(loaded / "acquire") + 300)
    shutil.copytree(loaded / "acquire", data / "acquire")
    cli_case("convert: disk full", tmp_path, data, ["convert", "-p", "data_dir", str(data)],
             ("No space left on device",))
    assert not (data / "convert").exists()  # nothing published
    small_disk(_kib(loaded / "acquire") + 16 * 1024)
    time.sleep(0.05)  # the lock of the rerun starts after whatever the failed run left
    ok = verb("convert", "-p", "data_dir", str(data))
    assert ok.returncode == 0, ok.stderr
    assert not [p.name for p in data.iterdir() if p.name.startswith(".convert.")]


def test_a_convert_killed_mid_run_leaves_nothing_the_rerun_does_not_clean(loaded, tmp_path):
    """kill -9 while convert writes: the lock it held is taken over, its staging folder removed,
    the published folder is the previous one until the rerun publishes the new one."""
    import signal

    data = _copy(loaded, tmp_path / "data")
    before = sorted(p.name for p in (data / "convert").iterdir())
    p = subprocess.Popen([sys.executable, "-m", "desivoids.cli", "convert", "-p", "data_dir", str(data)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(data.glob(".convert.tmp-*/galaxies/*.parquet")):
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (data / ".convert.lock").exists()  # left by the killed holder
    assert sorted(q.name for q in (data / "convert").iterdir()) == before  # the previous output
    time.sleep(0.05)
    ok = verb("convert", "-p", "data_dir", str(data))
    assert ok.returncode == 0, ok.stderr
    assert not [q.name for q in data.iterdir() if q.name.startswith(".convert.")]
