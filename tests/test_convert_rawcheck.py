"""convert checks every raw FITS file it reads against the sha256 acquire recorded for it
(issue 20: one byte changed in a raw file after acquire passed convert; recon noticed it, and
exited 0). The files are hashed while convert reads them; a difference fails the stage before
it publishes, naming the file and both digests."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from astropy.io import fits


def _folder(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _verb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "desivoids.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_a_raw_file_changed_after_acquire_fails_convert_naming_it_and_publishes_nothing(
        tiny_sky, tmp_path):
    root, _ = tiny_sky
    d = tmp_path / "data"
    r = _verb("acquire", "-p", "data_dir", str(d), "-p", "source", str(root),
              "-p", "min_free_gb", "0")
    assert r.returncode == 0, r.stderr
    r = _verb("convert", "-p", "data_dir", str(d))
    assert r.returncode == 0, r.stderr
    before = _folder(d / "convert")

    raw = sorted((d / "acquire" / "raw").rglob("fastspec*.fits"))[0]
    with fits.open(raw) as hdul:
        info = hdul.fileinfo(1)
        where = info["datLoc"] + info["datSpan"] // 2  # inside the table's rows
    want = hashlib.sha256(raw.read_bytes()).hexdigest()
    data = bytearray(raw.read_bytes())
    data[where] ^= 0x01
    raw.write_bytes(bytes(data))
    got = hashlib.sha256(bytes(data)).hexdigest()

    r = _verb("convert", "-p", "data_dir", str(d))
    assert r.returncode == 1, r.stdout + r.stderr
    assert raw.name in r.stderr and want in r.stderr and got in r.stderr, r.stderr
    assert "acquire" in r.stderr and "Traceback" not in r.stderr
    assert _folder(d / "convert") == before
    assert not [p for p in d.iterdir() if p.name.startswith(".convert.")]
