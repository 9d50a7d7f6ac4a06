"""A stage's database tables and its folder are published as one unit (desivoids.publication):
the folder is sealed, the tables' transaction records the sealed folder and commits (the one
decision point), then the folder is renamed into place. Issue 20: environment wrote its tables
before its folder, so a failure at the last step left them disagreeing; then a kill between the
folder's rename and the commit left load's report a run ahead of its tables
(tests/test_stage_kill.py, once, in CI). A failure before the commit leaves both as they were;
a kill after it leaves the committed folder under its staging name, which the stage's next run
or any reader renames into place; any other disagreement is refused."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import environment, outputs, plausibility
from desivoids.errors import StageError
from desivoids.load.queries import dispose_engines
from desivoids.load.tables import publish_table, table_transaction


def _table(d: Path, name: str) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{d / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:
        t = pd.read_sql(f'SELECT * FROM "{name}"', con)
    finally:
        con.close()
    return t.sort_values(list(t.columns[:3]), ignore_index=True)


def _folder(d: Path) -> dict[str, str]:
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file()}


def _fail_the_folder_swap(monkeypatch):
    """The last step before the commit (sealing the folder) fails."""
    def write_manifest(folder):
        raise OSError(28, "No space left on device (injected before the commit)")
    monkeypatch.setattr(outputs, "write_manifest", write_manifest)


def test_a_failure_between_plausibility_table_and_folder_leaves_both_as_they_were(
        selected_copy, monkeypatch):
    d = selected_copy
    folder, table = _folder(d / "plausibility"), _table(d, "selection")
    _fail_the_folder_swap(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        plausibility.run(data_dir=str(d), zmin=0.08)
    dispose_engines()
    assert _folder(d / "plausibility") == folder
    pd.testing.assert_frame_equal(_table(d, "selection"), table)

    monkeypatch.undo()  # the same run without the failure publishes both, and they agree
    plausibility.run(data_dir=str(d), zmin=0.08)
    new = _table(d, "selection")
    assert new.tracer.sum() < table.tracer.sum()  # a real change, not the previous state again
    got = pq.read_table(d / "plausibility" / "selection.parquet").to_pandas()
    pd.testing.assert_frame_equal(new, got.sort_values(list(got.columns[:3]), ignore_index=True),
                                  check_dtype=False)


@pytest.mark.parametrize("where", ["insert", "files"])
def test_a_failure_beside_plausibility_table_insert_leaves_both_as_they_were(
        selected_copy, monkeypatch, where):
    """The selection table's insert runs in a thread beside the report and the files: a
    failure of either side (the insert, or a file written meanwhile) rolls both back."""
    import pyarrow.parquet as pq_module

    from desivoids.load.tables import TableTransaction

    d = selected_copy
    folder, table = _folder(d / "plausibility"), _table(d, "selection")

    def fail(*args, **kwargs):
        raise OSError(28, f"No space left on device (injected in the {where})")
    if where == "insert":
        monkeypatch.setattr(TableTransaction, "publish", fail)
    else:
        monkeypatch.setattr(pq_module, "write_table", fail)
    with pytest.raises(OSError, match=f"injected in the {where}"):
        plausibility.run(data_dir=str(d), zmin=0.08)
    dispose_engines()
    assert _folder(d / "plausibility") == folder
    pd.testing.assert_frame_equal(_table(d, "selection"), table)
    assert not list(d.glob(".plausibility.*"))


def test_a_failure_between_environment_tables_and_folder_leaves_both_as_they_were(
        selected_copy, monkeypatch):
    d = selected_copy
    environment.run(data_dir=str(d), randoms=2_000)
    folder = _folder(d / "environment")
    tables = {t: _table(d, t) for t in ("galaxy_void_assignments", "void_counts")}
    plausibility.run(data_dir=str(d), zmin=0.08)  # fewer tracers: new void counts
    _fail_the_folder_swap(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        environment.run(data_dir=str(d), randoms=2_000)
    dispose_engines()
    assert _folder(d / "environment") == folder
    for name, before in tables.items():
        pd.testing.assert_frame_equal(_table(d, name), before, obj=name)

    monkeypatch.undo()
    environment.run(data_dir=str(d), randoms=2_000)
    counts = _table(d, "void_counts")
    assert counts.n_tracers.sum() < tables["void_counts"].n_tracers.sum()
    got = pq.read_table(d / "environment" / "void_counts.parquet").to_pandas()
    pd.testing.assert_frame_equal(counts, got.sort_values(list(got.columns[:3]),
                                                          ignore_index=True), check_dtype=False)


def test_tables_of_one_transaction_are_committed_together_or_not_at_all(selected_copy):
    d = selected_copy
    url = f"sqlite:///{d / 'database' / 'desivoids.sqlite'}"
    publish_table(url, "unit_a", pa.table({"k": [1, 2]}), key=("k",))
    with pytest.raises(RuntimeError, match="after the first"):
        with table_transaction(url) as db:
            db.publish("unit_a", pa.table({"k": [7, 8, 9]}), key=("k",))
            db.publish("unit_b", pa.table({"k": [1]}), key=("k",))
            raise RuntimeError("after the first two tables")
    assert _table(d, "unit_a").k.tolist() == [1, 2]
    con = sqlite3.connect(d / "database" / "desivoids.sqlite")
    assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'unit_b'").fetchall()
    con.close()
    with table_transaction(url) as db:
        db.publish("unit_a", pa.table({"k": [7, 8, 9]}), key=("k",))
        db.publish("unit_b", pa.table({"k": [1]}), key=("k",))
    assert _table(d, "unit_a").k.tolist() == [7, 8, 9] and _table(d, "unit_b").k.tolist() == [1]


def test_a_database_without_the_load_stage_is_refused_before_anything_is_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'database' / 'desivoids.sqlite'}"
    with pytest.raises(StageError, match="the environment stage's tables: the database .* "
                                         "run `desivoids load` first"):
        with table_transaction(url, "the environment stage's tables"):
            pass
    assert not (tmp_path / "database").exists()


def _load_runs(d: Path) -> list[tuple]:
    con = sqlite3.connect(f"file:{d / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT run_id, tables_loaded FROM load_runs ORDER BY run_id").fetchall()
    finally:
        con.close()


def test_a_failure_between_load_tables_and_folder_leaves_both_as_they_were(
        loaded_run, tmp_path, monkeypatch):
    """load once committed its tables, then published its report: a failure at the folder swap
    left new tables (a new load run) beside the previous report."""
    import json
    import shutil

    from desivoids import load

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    folder, runs = _folder(d / "load"), _load_runs(d)
    tables = {t: _table(d, t) for t in ("load_tables", "voids")}
    _fail_the_folder_swap(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        load.run(data_dir=str(d), force=True)
    dispose_engines()
    assert _folder(d / "load") == folder
    assert _load_runs(d) == runs
    for name, before in tables.items():
        pd.testing.assert_frame_equal(_table(d, name), before, obj=name)

    monkeypatch.undo()  # without the failure, both are published and agree
    load.run(data_dir=str(d), force=True)
    dispose_engines()
    after = _load_runs(d)
    assert len(after) == len(runs) + 1 and after[-1][1]  # a real change: every table reloaded
    report = json.loads((d / "load" / "report.json").read_text())
    assert report["run_id"] == after[-1][0]
    assert all(r["match"] for r in report["reconciliation"])


# --------------------------------------------------------------- a crash between commit and rename
class _Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way up cleans anything."""


def _crash_at_the_rename(monkeypatch):
    def publish(tmp, target):
        raise _Killed(f"killed before renaming {tmp.name}")
    monkeypatch.setattr(outputs, "publish", publish)


def test_a_crash_between_plausibility_commit_and_rename_is_rolled_forward_by_a_reader(
        selected_copy, monkeypatch):
    from desivoids.params import verify_reads

    d = selected_copy
    folder, table = _folder(d / "plausibility"), _table(d, "selection")
    _crash_at_the_rename(monkeypatch)
    with pytest.raises(_Killed):
        plausibility.run(data_dir=str(d), zmin=0.08)
    dispose_engines()
    monkeypatch.undo()
    new = _table(d, "selection")
    assert new.tracer.sum() < table.tracer.sum()  # committed: the new table
    assert _folder(d / "plausibility") == folder  # the window: the folder not renamed yet
    assert len(list(d.glob(".plausibility.tmp-*"))) == 1
    verify_reads("environment", d)  # what every reader of plausibility does first
    assert not list(d.glob(".plausibility.tmp-*"))
    got = pq.read_table(d / "plausibility" / "selection.parquet").to_pandas()
    pd.testing.assert_frame_equal(new, got.sort_values(list(got.columns[:3]), ignore_index=True),
                                  check_dtype=False)


def _kill_load_at(d: Path, where: str) -> None:
    """Run load in a subprocess that dies (os._exit, as a kill: no cleanup) at ``where``."""
    import subprocess
    import sys

    code = ("import os, sys\nfrom desivoids import load, outputs, publication\n"
            f"{where} = lambda *a: os._exit(9)\n"
            "load.run(data_dir=sys.argv[1], force=True)\n")
    r = subprocess.run([sys.executable, "-c", code, str(d)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 9, r.stderr


def _report_run(d: Path) -> int:
    import json

    return json.loads((d / "load" / "report.json").read_text())["run_id"]


def test_a_kill_between_load_commit_and_rename_leaves_a_pair_that_the_next_run_or_reader_completes(
        loaded_run, tmp_path):
    """The CI failure of tests/test_stage_kill.py (load's report.json run 2, the database's last
    committed run 1), made deterministic: the process dies exactly between the commit and the
    rename. The next reader (integrity) or the next run of load (its lock) renames the committed
    folder into place instead of removing it as stale; the report then names the last run."""
    import shutil

    from desivoids.outputs import stage_lock
    from desivoids.params import verify_reads

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    for settle in (lambda: verify_reads("integrity", d), lambda: stage_lock(d, "load").__enter__()):
        before = _folder(d / "load")
        _kill_load_at(d, "outputs.publish")
        runs = _load_runs(d)
        assert _folder(d / "load") == before and _report_run(d) == runs[-2][0]  # the window
        assert len(list(d.glob(".load.tmp-*"))) == 1
        settle()
        assert _report_run(d) == runs[-1][0]
        assert not list(d.glob(".load.tmp-*"))
        assert outputs.manifest_problems(d / "load") == []
        (d / ".load.lock").unlink(missing_ok=True)


def test_a_kill_between_load_seal_and_commit_leaves_the_previous_pair_and_its_staging_is_removed(
        loaded_run, tmp_path):
    import shutil

    from desivoids.outputs import stage_lock

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    before, runs = _folder(d / "load"), _load_runs(d)
    _kill_load_at(d, "publication.record")
    assert _folder(d / "load") == before and _load_runs(d) == runs
    assert len(list(d.glob(".load.tmp-*"))) == 1  # sealed, never committed
    with stage_lock(d, "load"):
        assert not list(d.glob(".load.tmp-*"))
    assert _folder(d / "load") == before and _report_run(d) == runs[-1][0]


def test_a_folder_that_disagrees_with_its_committed_record_is_refused_naming_the_stage(
        loaded_run, tmp_path):
    import shutil

    from desivoids.errors import InputError
    from desivoids.params import verify_reads

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    report = d / "load" / "report.json"
    report.write_text(report.read_text().replace('"run_id": 1', '"run_id": 7'))
    outputs.write_manifest(d / "load")  # resealed by hand: the manifest check alone passes
    with pytest.raises(InputError, match=r"load: is not the folder that the load stage's last "
                                         r"committed run recorded.*rerun `desivoids load`"):
        verify_reads("integrity", d)


# ------------------------------------------------------- a kill between the two renames of publish
def test_a_kill_between_the_two_renames_is_undone_by_the_lock_and_by_a_reader(loaded_run, tmp_path):
    """publish() renames the folder away, then the new one in: a kill between the two once left
    neither (the displaced ``.convert.old-*`` was then removed as stale)."""
    import shutil

    from desivoids.outputs import stage_lock
    from desivoids.params import verify_reads

    d = tmp_path / "run"
    for sub in ("convert", "load", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    before = _folder(d / "convert")
    (d / "convert").rename(d / ".convert.old-0123abcd")  # the first rename, and then the kill
    verify_reads("load", d)  # a reader of convert puts it back (under convert's lock)
    assert _folder(d / "convert") == before and not list(d.glob(".convert.*"))

    (d / "convert").rename(d / ".convert.old-4567cdef")
    with stage_lock(d, "convert"):  # the next run of convert does too
        assert _folder(d / "convert") == before
    assert not list(d.glob(".convert.*"))


def _record_read(db):
    from desivoids import publication

    return publication.recorded(f"sqlite:///{db}", "density")


def _query_read(db):
    from sqlalchemy import text

    from desivoids.load.queries import engine

    with engine(f"sqlite:///{db}").connect() as con:
        row = con.execute(text("SELECT staging, manifest FROM stage_publications")).first()
    dispose_engines()
    return tuple(row)


@pytest.mark.parametrize("read", [_record_read, _query_read], ids=["record", "query"])
def test_a_reader_waits_for_another_connection_committing(tmp_path, read):
    """`desivoids run --jobs` runs a stage that reads the database (systematics reading its
    producers' records, integrity querying the load's tables) beside one committing its tables:
    the read waits for the write lock instead of failing with "database is locked" after
    pysqlite's 5 s."""
    import threading
    import time

    from desivoids import publication

    db = tmp_path / "desivoids.sqlite"
    con = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    con.execute(publication._DDL)
    con.execute(f"INSERT INTO {publication.TABLE} VALUES ('density', '.density.tmp-x', 'ab')")
    con.execute("BEGIN EXCLUSIVE")  # a commit in progress: readers are locked out

    def commit_later():
        time.sleep(6.0)
        con.execute("COMMIT")

    writer = threading.Thread(target=commit_later)
    writer.start()
    try:
        t0 = time.monotonic()
        assert read(db) == (".density.tmp-x", "ab")
        assert time.monotonic() - t0 >= 5.5  # it did wait for the commit
    finally:
        writer.join()
        con.close()


def _loaded_db(tmp_path: Path) -> tuple[str, Path]:
    """A SQLite database with load's table (made by sqlite3, not by the load stage)."""
    path = tmp_path / "database" / "desivoids.sqlite"
    path.parent.mkdir(parents=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE galaxies (targetid INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    return f"sqlite:///{path}", path


def _rows(n: int, shift: int = 0) -> pa.Table:
    k = pa.array(range(n), pa.int64())
    return pa.table({"k": k, "name": pa.array([f"row {i + shift:09d}" for i in range(n)]),
                     "value": pa.array([float(i + shift) for i in range(n)])})


def test_replacing_a_sqlite_table_does_not_journal_its_old_pages(tmp_path):
    """The old table is dropped after the new rows are written, not before: the rows then fill
    pages free before the transaction (or the file's end), which SQLite need not journal, not
    the old table's pages freed inside it (which it must; environment's 25.8M rows wrote a
    0.97 GB rollback journal)."""
    url, path = _loaded_db(tmp_path)
    empty = path.stat().st_size
    publish_table(url, "big", _rows(100_000), key=("k",))
    table_bytes = path.stat().st_size - empty
    assert table_bytes > 2_000_000
    journal = path.with_name(path.name + "-journal")
    with table_transaction(url) as db:
        db.publish("big", _rows(100_000, shift=1), key=("k",))
        db.prepare()
        journalled = journal.stat().st_size
    assert journalled < table_bytes / 20, (journalled, table_bytes)
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*), min(value), max(value) FROM big").fetchone() == \
        (100_000, 1.0, 100_000.0)
    con.close()


def test_a_replaced_sqlite_table_is_stored_as_a_new_one_with_its_indexes_and_views(tmp_path):
    url, path = _loaded_db(tmp_path)
    fresh_url, fresh = _loaded_db(tmp_path / "fresh")
    args = dict(key=("k",), indexes=(("value",), ("name", "value")))
    publish_table(fresh_url, "t", _rows(10, shift=5), **args)
    publish_table(url, "t", _rows(20), **args)
    con = sqlite3.connect(path)
    con.execute("CREATE VIEW t_view AS SELECT k, value FROM t WHERE k < 3")
    con.commit()
    con.close()
    publish_table(url, "t", _rows(10, shift=5), **args)

    def schema(p: Path) -> list[tuple]:
        con = sqlite3.connect(p)
        try:
            return con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE "
                               "tbl_name = 't' ORDER BY type, name").fetchall()
        finally:
            con.close()
    assert schema(path) == schema(fresh)  # the CREATE TABLE text and indexes as a fresh table's
    con = sqlite3.connect(path)
    assert con.execute("SELECT sql FROM sqlite_master WHERE name = 't_view'").fetchone()[0] == \
        "CREATE VIEW t_view AS SELECT k, value FROM t WHERE k < 3"
    assert con.execute("SELECT value FROM t_view ORDER BY k").fetchall() == [(5.0,), (6.0,), (7.0,)]
    assert con.execute("SELECT name FROM sqlite_master WHERE name LIKE '%previous%'").fetchall() == []
    assert con.execute("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl LIKE 't%' "
                       "ORDER BY idx").fetchall() == [("t", "ix_t_name_value", "10 1 1"),
                                                      ("t", "ix_t_value", "10 1"), ("t", "t", "10 1")]
    con.close()


def test_tables_wait_for_a_load_running_in_another_process(tmp_path):
    """A stage run while `desivoids load` runs in another terminal: its tables are published
    only once the load (another process holding the load's stage lock) has ended, into the
    database the load finished. Without a running load nothing waits."""
    import subprocess
    import sys
    import time

    data = tmp_path / "run"
    db = data / "database" / "desivoids.sqlite"
    db.parent.mkdir(parents=True)
    url = f"sqlite:///{db}"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time; from desivoids.outputs import stage_lock\n"
         "with stage_lock(sys.argv[1], 'load'):\n"
         "    print('locked', flush=True); time.sleep(3.0)\n"
         "    sqlite3.connect(sys.argv[2]).execute('CREATE TABLE galaxies (targetid INTEGER)')\n"
         "    print('loaded', flush=True)\n", str(data), str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        # before the load's end there is no galaxies table: without the wait this is refused
        with table_transaction(url, "the test's table", data) as tx:
            tx.publish("t", pa.table({"k": [1, 2]}), key=("k",))
        assert time.monotonic() - t0 > 2.0
        assert holder.stdout.readline().strip() == "loaded"
    finally:
        holder.wait(10)
    dispose_engines()
    assert outputs.wait_while_running(data, "load") == 0.0  # the lock file is gone: no wait
    with table_transaction(url, "the test's table", data) as tx:
        assert tx.publish("t", pa.table({"k": [3]}), key=("k",)) == 1
    dispose_engines()


def test_a_failure_whose_rollback_fails_too_rolls_back_and_is_the_error_raised(
        tmp_path, monkeypatch):
    """A full disk: SQLite has rolled back by itself, so the rollback fails as well; the
    error raised is the failure's, and nothing of the transaction stays."""
    db = tmp_path / "desivoids.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE galaxies (targetid INTEGER)").connection.close()
    url = f"sqlite:///{db}"
    with pytest.raises(OSError, match="disk is full"):
        with table_transaction(url, "the test's table") as tx:
            tx.publish("t", pa.table({"k": [1]}), key=("k",))
            monkeypatch.setattr(tx.target, "rollback",
                                lambda: (_ for _ in ()).throw(RuntimeError("no transaction")))
            raise OSError(28, "database or disk is full")
    dispose_engines()
    con = sqlite3.connect(db)
    assert not con.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchall()
    con.close()
