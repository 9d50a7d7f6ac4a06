"""Every stage seals what it publishes (MANIFEST.sha256) and every stage checks what it reads
against its producer's manifest: a flipped bit, a file added or removed between two stages fails
the reader, naming the file and the stage to rerun (issue 20: one bit flipped in a Parquet data
page of convert's output once passed load and integrity)."""
from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from desivoids import environment, integrity, load, outputs, plausibility
from desivoids.errors import InputError
from desivoids.outputs import MANIFEST, staged
from desivoids.params import checked
from desivoids.stages import STAGES


def _listing(folder: Path) -> dict[str, str]:
    """name -> sha256 as the manifest says, read as sha256sum's format (not by the library)."""
    out = {}
    for line in (folder / MANIFEST).read_text().splitlines():
        digest, name = line.split("  ", 1)
        out[name] = digest
    return out


def _on_disk(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}


def test_staged_seals_exactly_the_published_files(tmp_path):
    out = tmp_path / "stage"
    with staged(out) as tmp:
        (tmp / "a.json").write_text("{}\n")
        (tmp / "parts" / "deep").mkdir(parents=True)
        (tmp / "parts" / "deep" / "p-0.parquet").write_bytes(b"\x00" * 70_000)
        (tmp / "parts" / ".hidden").write_bytes(b"x")
        (tmp / "empty").write_bytes(b"")
    assert _listing(out) == _on_disk(out)
    assert set(_listing(out)) == {"a.json", "parts/deep/p-0.parquet", "parts/.hidden", "empty"}
    assert (out / MANIFEST).read_text().splitlines() == sorted(
        (out / MANIFEST).read_text().splitlines(), key=lambda ln: ln.split("  ", 1)[1])
    outputs.verify(out, "stage")  # untouched: passes
    if shutil.which("sha256sum"):  # the format coreutils checks
        subprocess.run(["sha256sum", "--strict", "--quiet", "-c", MANIFEST], cwd=out, check=True)


def test_a_failed_stage_leaves_no_manifest_and_no_folder(tmp_path):
    out = tmp_path / "stage"
    with pytest.raises(RuntimeError):
        with staged(out) as tmp:
            (tmp / "a").write_text("x")
            raise RuntimeError("boom")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_convert_and_load_folders_list_exactly_their_files(loaded_run):
    for stage in ("convert", "load"):
        folder = loaded_run / stage
        assert _listing(folder) == _on_disk(folder), stage


def _flip_a_bit_in_a_data_page(part: Path, column: str) -> None:
    """One bit of ``column``'s first data page (past its header) flipped in place."""
    chunk = pq.ParquetFile(part).metadata.row_group(0)
    c = next(chunk.column(i) for i in range(chunk.num_columns)
             if chunk.column(i).path_in_schema == column)
    data = bytearray(part.read_bytes())
    data[c.data_page_offset + c.total_compressed_size // 2] ^= 0x01
    part.write_bytes(bytes(data))


def _db_digest(d: Path) -> str:
    con = sqlite3.connect(f"file:{d / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:
        h = hashlib.sha256()
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                   "ORDER BY name"):
            for row in con.execute(f'SELECT * FROM "{name}"'):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


def test_one_bit_flipped_in_a_parquet_page_fails_every_reader_naming_the_file(selected_copy):
    d = selected_copy
    part = sorted((d / "convert" / "galaxies").glob("*.parquet"))[1]
    before = pq.read_table(part)
    _flip_a_bit_in_a_data_page(part, "ra")
    after = pq.read_table(part)  # the silent case: the file still reads, one value differs
    assert after.num_rows == before.num_rows and not after["ra"].equals(before["ra"])
    db = _db_digest(d)
    for stage, run in (("load", load.run), ("integrity", integrity.run),
                       ("plausibility", plausibility.run),
                       ("environment", lambda data_dir: environment.run(data_dir=data_dir,
                                                                        randoms=2_000))):
        with pytest.raises(InputError) as err:
            run(data_dir=str(d))
        msg = str(err.value)
        assert err.value.file == str(part), stage
        assert "sha256 differs" in msg and "rerun `desivoids convert`" in msg, stage
        assert "problems" not in msg, f"{stage}: only the flipped file is named: {msg}"
    assert _db_digest(d) == db  # load refused before it opened the database
    assert not (d / "integrity").exists() and not (d / "environment").exists()

    cli = subprocess.run([sys.executable, "-m", "desivoids.cli", "load", "-p", "data_dir", str(d)],
                         capture_output=True, text=True)
    assert cli.returncode == 1, cli.stderr
    assert part.name in cli.stderr and "desivoids convert" in cli.stderr
    assert "Traceback" not in cli.stderr


def test_a_file_added_or_removed_after_publication_is_named_with_every_other(selected_copy):
    d = selected_copy
    parts = sorted((d / "convert" / "galaxies").glob("*.parquet"))
    extra = parts[0].with_name("part-999-00000.parquet")
    shutil.copyfile(parts[0], extra)  # a stray part: the galaxies would be counted twice
    (d / "convert" / "holes.parquet").unlink()
    (d / "plausibility" / "report.json").write_text("{}\n")
    with pytest.raises(InputError) as err:
        environment.run(data_dir=str(d), randoms=2_000)
    e = err.value
    named = {Path(p.file).relative_to(d).as_posix(): p.message for p in (e, *e.problems)}
    assert set(named) == {"convert/galaxies/part-999-00000.parquet", "convert/holes.parquet",
                          "plausibility/report.json"}
    assert "not in the manifest" in named["convert/galaxies/part-999-00000.parquet"]
    assert "missing" in named["convert/holes.parquet"]
    assert "rerun `desivoids plausibility`" in named["plausibility/report.json"]


@pytest.mark.parametrize("name", [n for n, s in STAGES.items() if s.reads])
def test_every_stage_checks_every_folder_it_reads(name, tmp_path):
    """The check runs in the decorator of every stage's run, before the stage reads anything."""
    d = tmp_path / "run"
    for producer in STAGES[name].reads:
        with staged(d / producer) as tmp:
            (tmp / "out.bin").write_bytes(b"published")
        (d / producer / "out.bin").write_bytes(b"changed!!")
    with pytest.raises(InputError) as err:
        STAGES[name].entry()(data_dir=str(d))
    e = err.value
    blamed = {Path(p.file).parent.name for p in (e, *e.problems)}
    assert blamed == set(STAGES[name].reads)
    for producer in STAGES[name].reads:
        assert f"rerun `desivoids {producer}`" in str(e)


def test_a_folder_without_a_manifest_is_left_to_its_reader(tmp_path):
    """acquire grows file by file and has no manifest: recon checks its files against DESI's
    published checksums."""
    (tmp_path / "acquire").mkdir()
    (tmp_path / "acquire" / "x.fits").write_bytes(b"x")
    outputs.verify(tmp_path / "acquire", "acquire")
    outputs.verify(tmp_path / "absent", "convert")

    @checked("recon")
    def run(data_dir: str = "data/mock"):
        return "ran"
    assert run(data_dir=str(tmp_path)) == "ran"


def test_a_sealed_stages_folder_without_its_manifest_fails_the_reader_naming_it(selected_copy):
    """Deleting a producer's MANIFEST.sha256 once switched the check of its folder off."""
    d = selected_copy
    (d / "convert" / MANIFEST).unlink()
    with pytest.raises(InputError) as err:
        plausibility.run(data_dir=str(d))
    assert Path(err.value.file) == d / "convert" / MANIFEST
    assert "missing" in str(err.value) and "rerun `desivoids convert`" in str(err.value)
