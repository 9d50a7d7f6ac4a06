"""The fallback log folder below the system's temporary folder (where a verb's log goes when
data_dir cannot hold it) is private: a symlink or a folder that others can write, planted by
another user at the predictable ``desivoids-<uid>`` name, is never followed (issue 20 review)."""
from __future__ import annotations

import os
import stat
import tempfile

from desivoids import stagecli


def _private(path) -> bool:
    st = os.lstat(path)
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def test_the_fallback_log_folder_is_made_private(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = stagecli.log_path("recon", None)
    assert log == tmp_path / f"desivoids-{os.getuid()}" / "logs" / "recon.log"
    assert _private(log.parent) and _private(log.parent.parent)


def test_a_planted_symlink_or_open_folder_is_not_followed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    elsewhere = tmp_path / "victim"
    (elsewhere / "logs").mkdir(parents=True)
    (tmp_path / f"desivoids-{os.getuid()}").symlink_to(elsewhere)
    log = stagecli.log_path("load", None)
    assert elsewhere not in log.parents and _private(log.parent)
    written = stagecli.write_log("load", None, RuntimeError("boom"), ["load"])
    assert elsewhere not in written.parents and "boom" in written.read_text()
    assert not list((elsewhere / "logs").iterdir())

    (tmp_path / f"desivoids-{os.getuid()}").unlink()
    (tmp_path / f"desivoids-{os.getuid()}").mkdir(mode=0o777)
    os.chmod(tmp_path / f"desivoids-{os.getuid()}", 0o777)  # writable by anyone: not ours alone
    log = stagecli.log_path("load", None)
    assert tmp_path / f"desivoids-{os.getuid()}" not in log.parents and _private(log.parent)
