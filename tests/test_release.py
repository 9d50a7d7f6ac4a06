"""The release stage on the tiny mock: every promised file exists, reads, matches SHA256SUMS
(checked by sha256sum itself) and has its documented columns; the data dictionary covers every
column; CITATION.cff is valid Citation File Format; provenance names every input with its
sha256; the 10k sample is reproducible from its seed; and a missing or corrupted artefact fails
the release naming it, leaving the previous release as it was."""
from __future__ import annotations

import json
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest
import yaml

from desivoids import release
from desivoids.errors import InputError, StageError
from desivoids.release import columns as C
from desivoids.release.provenance import release_date, validate_citation
from sealing import reseal


@pytest.fixture(scope="module")
def released(analysed):
    return analysed, release.run(data_dir=str(analysed), sample_size=500, sample_seed=7)


def test_every_promised_file_is_complete_and_sha256sum_agrees(released):
    d, res = released
    out = d / "release" / "v1"
    assert res.out_dir == out
    assert [r["file"] for r in res.completeness] == list(release.PROMISED) + [
        f"{n}/" for n in release.hats.CATALOGUES]
    assert all(r["ok"] for r in res.completeness), [r for r in res.completeness if not r["ok"]]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines()}
    hats_files = {p.relative_to(out).as_posix() for p in (out / "hats").rglob("*") if p.is_file()}
    assert {n.split("/")[1] for n in hats_files} == {"galaxies", "galaxies_margin", "voids"}
    assert listed == set(release.PROMISED) - {"SHA256SUMS"} | {"completeness.json"} | hats_files
    for name in C.TABLES:
        assert pq.read_schema(out / name).names == [c.name for c in C.TABLES[name][0]]


def test_the_data_dictionary_documents_every_column(released):
    d, _ = released
    out = d / "release" / "v1"
    rows = json.loads((out / "data_dictionary.json").read_text())
    for name in C.TABLES:
        schema = pq.read_schema(out / name)
        mine = [r for r in rows if r["table"] == name]
        assert [r["column"] for r in mine] == schema.names
        for r, field in zip(mine, schema):
            assert r["type"] == str(field.type) and r["description"] and r["source"], r
            assert "unit" in r
    md = (out / "data_dictionary.md").read_text()
    assert all(f"| {r['column']} |" in md for r in rows)


def test_citation_and_provenance(released):
    d, res = released
    out = d / "release" / "v1"
    assert validate_citation(out / "CITATION.cff") == []
    cff = yaml.safe_load((out / "CITATION.cff").read_text())
    titles = " ".join(r["title"] for r in cff["references"])
    assert "Data Release 1" in titles and "DESIVAST" in titles and "FastSpecFit" in titles
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["inputs"]["from"] == "recon/inventory.json" and len(prov["inputs"]["files"]) >= 20
    assert all(len(f["sha256"]) == 64 for f in prov["inputs"]["files"])
    assert prov["software"]["desivoids"] and prov["software"]["numpy"]
    assert set(prov["git"]) == {"commit", "dirty"}
    assert prov["parameters"]["release"] == {"version": "v1", "sample_size": 500, "sample_seed": 7,
                                             "allow_failed_integrity": False,
                                             "hats_pixel_threshold": 1_000_000,
                                             "hats_margin_arcsec": 10.0}
    assert prov["integrity"]["status"] == "passed"
    assert "systematics" in prov["parameters"]["stages"]


def test_the_release_date_is_the_runs_not_the_clocks(monkeypatch):
    """Rerun the next day (nbval in CI past midnight, a reader in JupyterLab), the release notebook
    gives the same CITATION.cff: the date is the day the stages before it finished, or
    SOURCE_DATE_EPOCH where set, never the wall clock of the rerun."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    runs = [{"stage": "environment", "finished": "2026-11-30T23:58:01+0000"},
            {"stage": "systematics", "finished": "2026-12-01T00:01:07+0000"},
            {"stage": "release", "finished": "2026-12-05T10:00:00+0000"}]
    assert release_date({"stage_run_times": runs}) == "2026-12-01"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert release_date({"stage_run_times": runs}) == "2023-11-14"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    import datetime

    assert release_date({"stage_run_times": "not recorded"}) == datetime.date.today().isoformat()


def test_a_broken_citation_is_reported():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as t:
        p = Path(t) / "CITATION.cff"
        p.write_text("cff-version: 1.2.0\ntitle: x\n")  # no message, no authors
        problems = validate_citation(p)
    assert problems and any("message" in x or "authors" in x for x in problems), problems


def test_the_sample_is_reproducible_from_its_seed(released, tmp_path):
    d, _ = released
    a = pq.read_table(d / "release" / "v1" / "sample_10k.parquet")
    core = pq.read_table(d / "release" / "v1" / "galaxies_core.parquet")
    assert a.num_rows == min(500, core.num_rows)
    assert set(a.column("targetid").to_pylist()) <= set(core.column("targetid").to_pylist())
    again = release.run(data_dir=str(d), version="again", sample_size=500, sample_seed=7)
    other = release.run(data_dir=str(d), version="other", sample_size=500, sample_seed=8)
    b = pq.read_table(again.out_dir / "sample_10k.parquet")
    c = pq.read_table(other.out_dir / "sample_10k.parquet")
    assert a.equals(b) and not a.column("targetid").equals(c.column("targetid"))


def test_a_corrupted_artefact_fails_the_release_naming_it(released, tmp_path):
    d, _ = released
    copy = tmp_path / "v1"
    shutil.copytree(d / "release" / "v1", copy)
    core = copy / "galaxies_core.parquet"
    data = bytearray(core.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte inside a data page: the footer still reads
    core.write_bytes(bytes(data))
    (copy / "figures" / "answer.png").unlink()
    bad = {r["file"]: r["problem"] for r in release.check_completeness(copy) if not r["ok"]}
    assert bad == {"galaxies_core.parquet": "sha256 differs from SHA256SUMS",
                   "figures/answer.png": "missing"}


def test_an_inconsistent_artefact_fails_the_stage_and_keeps_the_previous_release(
        released, monkeypatch):
    d, _ = released
    before = (d / "release" / "v1" / "SHA256SUMS").read_text()
    monkeypatch.setattr(release.stage, "answer_figure", lambda summary, path, **kw: path.write_text("no png"))
    with pytest.raises(StageError, match="figures/answer.png: not a PNG file"):
        release.run(data_dir=str(d), sample_size=500, sample_seed=7)
    assert (d / "release" / "v1" / "SHA256SUMS").read_text() == before


def test_a_missing_input_report_names_the_stage(tmp_path):
    with pytest.raises(InputError, match="integrity"):
        release.run(data_dir=str(tmp_path / "empty"))


def test_a_release_is_refused_while_integrity_failed_unless_allowed_and_then_says_so(
        analysed, tmp_path):
    """release once packaged a failed integrity report with exit 0."""
    import json

    d = tmp_path / "run"
    shutil.copytree(analysed, d, ignore=shutil.ignore_patterns("release"))
    report = d / "integrity" / "report.json"
    doc = json.loads(report.read_text())
    doc["checks"][0]["status"] = "fail"
    failed_id = doc["checks"][0]["id"]
    report.write_text(json.dumps(doc))
    reseal(report)  # integrity itself reported the failure
    with pytest.raises(StageError, match=rf"release refused: .*{failed_id}.*allow_failed_integrity"):
        release.run(data_dir=str(d), sample_size=50)
    assert not (d / "release").exists()
    res = release.run(data_dir=str(d), sample_size=50, allow_failed_integrity=True)
    assert all(r["ok"] for r in res.completeness)
    assert failed_id in (res.out_dir / "README.md").read_text().split("\n\n")[1]
    prov = json.loads((res.out_dir / "provenance.json").read_text())
    assert prov["integrity"] == {"status": "failed", "failed_checks": [failed_id],
                                 "released_anyway": True}
    assert "integrity stage failed" in (res.out_dir / "CITATION.cff").read_text()


def test_a_mock_runs_release_says_mock_in_its_title_readme_and_figure(analysed, tmp_path):
    """Issue 22 point 1: the run's profile decides; a run with a mock section (the runner's
    record) releases a CITATION.cff and README titled mock; a real run's say DESI DR1."""
    d = tmp_path / "run"
    shutil.copytree(analysed, d, ignore=shutil.ignore_patterns("release"))
    (d / "run").mkdir(exist_ok=True)
    (d / "run" / "params.json").write_text(json.dumps({"profile": "mock", "mock": {"scale": "tiny"}}))
    out = release.run(data_dir=str(d), sample_size=500, sample_seed=7).out_dir
    cff = yaml.safe_load((out / "CITATION.cff").read_text())
    assert "mock" in cff["title"] and "not DESI DR1" in cff["title"]
    assert "mock" in cff["abstract"] and validate_citation(out / "CITATION.cff") == []
    readme = (out / "README.md").read_text()
    assert readme.splitlines()[0] == "# desivoids release v1, mock" and "not DESI data" in readme
    (d / "run" / "params.json").write_text(json.dumps({"profile": "dr1", "mock": None}))
    out = release.run(data_dir=str(d), sample_size=500, sample_seed=7).out_dir
    cff = yaml.safe_load((out / "CITATION.cff").read_text())
    assert "DESI DR1" in cff["title"] and "mock" not in cff["title"] and "abstract" not in cff
    assert (out / "README.md").read_text().splitlines()[0] == "# desivoids release v1, DESI DR1"


def test_a_release_is_refused_while_the_integrity_report_is_older_than_convert_or_load(
        analysed, tmp_path):
    """release's gate once trusted any integrity report, also one written before convert or
    load ran again: the report names what it checked, and release compares."""
    from desivoids import integrity, paths

    d = tmp_path / "run"
    shutil.copytree(analysed, d, ignore=shutil.ignore_patterns("release"))
    note = d / "convert" / "NOTE.txt"
    note.write_text("convert ran again after integrity\n")
    reseal(note)  # convert itself republished its folder
    with pytest.raises(StageError, match=r"release refused: the run's integrity report is older "
                                         r".*convert_manifest.*rerun `desivoids integrity`"):
        release.run(data_dir=str(d), sample_size=50)
    assert not (d / "release").exists()
    integrity.run(data_dir=str(d))  # checks what is published now
    assert release.stage._integrity_stale(paths.RunLayout.of(d)) == []


def test_the_release_hashes_each_files_bytes_once(tmp_path, monkeypatch):
    """SHA256SUMS and the completeness check share one sha256 per file; a file changed in
    between is hashed again."""
    import os

    from desivoids.release import stage

    hashed = []
    real = stage.sha256_file
    monkeypatch.setattr(stage, "sha256_file", lambda p: hashed.append(p) or real(p))
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    digest = stage._HashedOnce()
    sums = stage._sumfile(tmp_path, digest)
    assert [digest(tmp_path / n) for n in ("a.txt", "b.txt")] == [
        line.split()[0] for line in sums.splitlines()]
    assert len(hashed) == 2
    (tmp_path / "a.txt").write_text("three")
    os.utime(tmp_path / "a.txt", ns=(1, 1))
    assert digest(tmp_path / "a.txt") == real(tmp_path / "a.txt") and len(hashed) == 3


def test_the_assignments_read_batch_by_batch_are_the_whole_files_rows(tmp_path):
    """release's galaxy_void_assignments, read and filtered batch by batch (not the whole
    environment file at once), is the table the whole read filtered gave: the same rows,
    chunked alike (row groups larger than a read's batch), written as the same bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from desivoids import paths
    from desivoids.formats import ALGORITHMS
    from desivoids.release.stage import _table, assignments

    rng = np.random.default_rng(5)
    n = 80_000  # galaxies, four rows each: 320,000 rows in row groups of 200,000
    tid = np.repeat(np.sort(rng.choice(10**12, n, replace=False)), 4)
    flag = rng.choice(np.array([0, 1, 2, 9], np.int8), 4 * n)
    source = _table(C.ASSIGNMENTS, {
        "targetid": tid, "algorithm": np.tile(ALGORITHMS, n),
        "cap": np.where(rng.random(4 * n) < 0.7, "NGC", "SGC"), "flag": flag,
        "void": pa.array(rng.integers(0, 900, 4 * n), mask=flag != 1),
        "r_over_reff": pa.array(rng.random(4 * n), mask=flag != 1),
        "interior": pa.array(rng.random(4 * n) < 0.8, mask=flag != 1), "flag_interior": flag})
    layout = paths.RunLayout.of(str(tmp_path))
    layout.file("environment", "assignments").parent.mkdir(parents=True)
    pq.write_table(source, layout.file("environment", "assignments"), row_group_size=200_000)
    ids = pa.array(rng.permutation(rng.choice(np.unique(tid), n // 9, replace=False)))
    whole = pq.read_table(layout.file("environment", "assignments"), read_dictionary=[
        c.name for c in C.ASSIGNMENTS if c.type == pa.string()])
    whole = whole.filter(pc.is_in(whole["targetid"], value_set=ids))
    want = _table(C.ASSIGNMENTS, {c.name: whole.column(c.name) for c in C.ASSIGNMENTS})
    got = assignments(layout, ids)
    assert got.num_rows == 4 * len(ids) and got.equals(want)
    assert [len(c) for c in got.column(0).chunks] == [len(c) for c in want.column(0).chunks]
    assert got.column(0).num_chunks > 2  # more batches than row groups
    written = [pa.BufferOutputStream() for _ in range(2)]
    for table, sink in zip((got, want), written):
        pq.write_table(table, sink, compression="zstd")
    assert written[0].getvalue().equals(written[1].getvalue())
