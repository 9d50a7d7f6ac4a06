"""A stage's database tables and its folder are published as one unit: the tables' transaction
commits only after the folder is swapped in (desivoids.load.tables.table_transaction). Issue
20: environment wrote its tables before its folder, so a failure at the last step left them
disagreeing."""
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
    def publish(tmp, target):
        raise OSError(28, "No space left on device (injected before the folder swap)")
    monkeypatch.setattr(outputs, "publish", publish)


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
