"""numpy's transparent huge pages are off in the pipeline's processes unless the user chose
(desivoids.hugepages: on the reference machine they cost the density stage 17 s of compaction)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from desivoids import runner

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="numpy madvises huge pages only on Linux")

PROBE = ("import desivoids.cli, numpy; "
         "from numpy._core.multiarray import _set_madvise_hugepage as s; print(s(True))")


def _numpy_setting_after_the_cli(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if env_value is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = env_value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def test_the_command_turns_numpys_huge_pages_off_before_numpy_is_imported():
    assert _numpy_setting_after_the_cli(None) == "False"


def test_a_users_own_setting_is_kept():
    assert _numpy_setting_after_the_cli("1") == "True"


def test_the_stage_kernels_inherit_the_setting_and_the_callers_environment_is_restored(
        tmp_path, monkeypatch):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    with runner._kernel_environment({"data_dir": str(tmp_path)}):
        assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert "NUMPY_MADVISE_HUGEPAGE" not in os.environ
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    with runner._kernel_environment({"data_dir": str(tmp_path)}):
        assert os.environ["NUMPY_MADVISE_HUGEPAGE"] == "1"
