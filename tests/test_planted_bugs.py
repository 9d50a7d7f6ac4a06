"""Planted bugs the suite must catch.

Each entry is a deliberate, realistic bug in ``lib/desivoids`` and the test that must fail
because of it. The test copies the repository (without .git, .venv, data or build outputs),
plants the bug in the copy's library, and runs that one test against the copy with pytest, the
copy first on ``PYTHONPATH``; it passes only if the planted test fails. Without such a list, a
test that asserts something its code cannot get wrong (``assert True``, a value computed by the
code under test) looks as good as one that protects a result.

Add a line here when a bug slips past the suite once: the planted bug, the test that now
catches it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from desivoids import paths

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Bug:
    what: str
    file: str  # below lib/desivoids
    old: str
    new: str
    test: str  # pytest node id, relative to the repository


BUGS = [
    Bug("acquire accepts a complete file in place without its sha256 matching",
        "acquire/transfer.py",
        "            if digest != row.sha256_expected:\n                return None\n",
        "            if False:\n                return None\n",
        "tests/test_acquire_transfer.py::"
        "test_a_file_in_place_with_the_right_size_but_wrong_bytes_is_fetched_again"),
    Bug("convert's ledger lets a file whose rows do not add up through",
        "convert/reconcile.py",
        "bad = [e for e in self.entries.values() if not e.balanced]", "bad = []",
        "tests/test_convert_bad_input.py::test_the_ledger_refuses_rows_it_cannot_account_for"),
    Bug("a galaxy on a VoidFinder hole's surface counts as inside",
        "environment/voidfinder.py", "    return distance < radius - surface_tol\n",
        "    return distance <= radius + surface_tol\n",
        "tests/test_environment.py::test_galaxy_on_a_hole_surface_is_not_inside"),
    Bug("the mock's truth moves the radial limit by 30 Mpc/h",
        "mock/truth.py", "(r > dlimu)", "(r > dlimu - 30.0)",
        "tests/test_environment_truth.py::test_membership_equals_the_planted_truth"),
    Bug("formats.py says HOLES RADIUS is a float32 (E), DESI's data model says float64 (D)",
        "formats.py", 'RADIUS:D{_L} VOID:K"),', 'RADIUS:E{_L} VOID:K"),',
        "tests/test_golden.py"),
    Bug("plausibility keeps DELTACHI2 == 40 (DESIVAST's cut is > 40)",
        "plausibility/selection.py", 'pc.greater(t["deltachi2"], min_deltachi2)',
        'pc.greater_equal(t["deltachi2"], min_deltachi2)',
        "tests/test_plausibility.py::"
        "test_each_cut_removes_what_it_should_and_failed_fits_are_counted"),
    Bug("Cohen's h without its factor 2",
        "systematics/intervals.py",
        "h = 2.0 * np.arcsin(np.sqrt(p1)) - 2.0 * np.arcsin(np.sqrt(p2))",
        "h = np.arcsin(np.sqrt(p1)) - np.arcsin(np.sqrt(p2))",
        "tests/test_systematics_stats.py::test_cohens_h_known_values"),
    Bug("desivoids run injects a database URL with its password into the notebooks",
        "runner.py", 'url, password = split_password(parameters.get("db_url", ""))',
        'url, password = parameters.get("db_url", ""), None',
        "tests/test_runner.py::test_the_kernel_gets_the_database_password_in_pgpassword_and_the_"
        "notebook_never_does"),
    Bug("the release's completeness check trusts SHA256SUMS without reading the files",
        "release/stage.py", "r[\"checksum\"] = sums.get(name) == digest(p)",
        "r[\"checksum\"] = name in sums",
        "tests/test_release.py::test_a_corrupted_artefact_fails_the_release_naming_it"),
    Bug("integrity accepts a V2 VOID0 that is another pruning's void, not the file's own",
        "integrity/references.py",
        'own = np.concatenate([[-1], _np(voids(algorithm=alg, cap=cap), "void")])',
        'own = np.concatenate([[-1], _np(voids(cap=cap), "void")])',
        "tests/test_v2_labellings.py::test_integrity_fails_a_void0_outside_the_files_own_voids"),
    Bug("the mock's truth labels every V2 pruning with ZOBOV's ZONEVOID",
        "mock/generate.py", 'zv = v2["ZOBOV"]["GALZONE"], {a: v2[a]["ZONEVOID"]',
        'zv = v2["ZOBOV"]["GALZONE"], {a: v2["ZOBOV"]["ZONEVOID"]',
        "tests/test_environment_truth.py::"
        "test_the_three_v2_labellings_differ_and_each_equals_the_truth"),
    Bug("a stage reads its producers' folders without checking them against their manifests",
        "params.py", '            verify_reads(stage_name, data_dir, bound.arguments.get("db_url") or "")\n',
        "            pass\n",
        "tests/test_manifest.py::"
        "test_one_bit_flipped_in_a_parquet_page_fails_every_reader_naming_the_file"),
    Bug("plausibility renames its folder before the commit that records it",
        "plausibility/stage.py", 'staged(out, commit=db.committing("plausibility")) as tmp:',
        "staged(out) as tmp:",
        "tests/test_publish_unit.py::"
        "test_a_crash_between_plausibility_commit_and_rename_is_rolled_forward_by_a_reader"),
    Bug("the answer figure of a mock run carries no MOCK mark",
        "systematics/figures.py", "    if mock and not marked:\n        mark_mock(fig)",
        "    if False:\n        mark_mock(fig)",
        "tests/test_runinfo.py::test_the_answer_figure_says_mock_and_shows_the_planted_value"),
    Bug("the answer in words repeats one template sentence per algorithm",
        "systematics/stage.py", "groups.setdefault(key, []).append(algorithm)",
        "groups.setdefault((algorithm, key), []).append(algorithm)",
        "tests/test_runinfo.py::test_the_answer_in_words_has_one_sentence_per_distinct_result"),
    Bug("load commits its tables before it records its sealed report folder",
        "load/stage.py", 'commit=lambda tmp: (record(target, "load", tmp), commit())',
        'commit=lambda tmp: (commit(), record(target, "load", tmp))',
        "tests/test_publish_unit.py::test_a_kill_between_load_commit_and_rename_leaves_a_pair_"
        "that_the_next_run_or_reader_completes"),
    Bug("a failed Dask task returns while the others still write into the staging folder",
        "compute.py", "pool=pool)\n        finally:\n            pool.shutdown(wait=True, cancel_futures=True)",
        "pool=pool)\n        finally:\n            pool.shutdown(wait=False, cancel_futures=True)",
        "tests/test_convert_failure.py::"
        "test_a_failed_chunk_waits_for_the_running_ones_and_leaves_nothing"),
    Bug("an S3 listing is held whole, however many keys a prefix has",
        "acquire/sources.py", "                if len(out) > MAX_LISTED:", "                if False:",
        "tests/test_hostile.py::"
        "test_an_s3_listing_beyond_the_key_cap_is_refused_naming_bucket_and_prefix"),
]

_IGNORE = shutil.ignore_patterns(".git", ".venv", "_build", "executed", "_mathjax",
                                 "_generated", "__pycache__", ".pytest_cache", "*.egg-info")


def IGNORE(folder: str, names: list[str]) -> set[str]:
    """What the copy leaves out: builds and caches anywhere, and the run's data/ at the top (the
    package's own lib/desivoids/data is part of the code)."""
    top = {"data"} if Path(folder) == paths.ROOT else set()
    return set(_IGNORE(folder, names)) | (top & set(names))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("planted") / "repo"
    shutil.copytree(paths.ROOT, dest, ignore=IGNORE)
    return dest


def _run(copy: Path, *tests: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(copy / "lib")}
    env.pop("PYTEST_ADDOPTS", None)
    # without the plugins that no listed test uses: nbval imports nbformat, whose jsonschema
    # builds an IRI grammar on import; with hypothesis's, ~4.5 CPU s of start-up per run
    return subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           "-p", "no:nbval", "-p", "no:hypothesispytest", *tests],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=1800)


def test_the_listed_tests_pass_on_the_unchanged_copy(pristine):
    """The control: in the copy, without a planted bug, every listed test passes (so a failure
    below is the bug's doing, not the copy's)."""
    r = _run(pristine, *sorted({b.test for b in BUGS}))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]


def test_every_bug_names_code_that_exists_once():
    for bug in BUGS:
        text = (paths.ROOT / "lib" / "desivoids" / bug.file).read_text()
        assert text.count(bug.old) == 1, f"{bug.what}: {bug.file} has {text.count(bug.old)} copies"
        assert (paths.ROOT / bug.test.split("::")[0]).exists(), bug.test


@pytest.mark.parametrize("bug", BUGS, ids=[b.file for b in BUGS])
def test_the_suite_catches_the_planted_bug(bug, pristine, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(pristine, copy, symlinks=True)
    target = copy / "lib" / "desivoids" / bug.file
    target.write_text(target.read_text().replace(bug.old, bug.new))
    r = _run(copy, bug.test)
    tail = (r.stdout + r.stderr)[-3000:]
    assert r.returncode == 1 and " failed" in r.stdout, (
        f"planted bug not caught: {bug.what} ({bug.file}); {bug.test} gave exit "
        f"{r.returncode}:\n{tail}")


def test_the_copy_imports_its_own_library(pristine):
    """The planted copy's library is the one the subprocess imports (not the editable install)."""
    env = {**os.environ, "PYTHONPATH": str(pristine / "lib")}
    r = subprocess.run([sys.executable, "-c", "import desivoids; print(desivoids.__file__)"],
                       cwd=pristine, env=env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip().startswith(str(pristine / "lib")), r.stdout + r.stderr
