"""The environment stage rebuilds galaxy_void_assignments in the database while membership still
runs and writes it to Parquet once membership has finished
(desivoids.environment.stage.AssignmentsPublication, issue 25): the database's insert in a
thread of its own, fed each chunk's rows as soon as that chunk is assigned, the Parquet file
written by another thread while the summary is computed. File and table must hold exactly the
rows that a direct construction gives (Assignment.to_arrow, sorted by the key), whatever the
batching and the order in which chunks arrive; a failure on either side, or of membership or of
the summary, must stop both threads and leave the previous table and folder."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from desivoids import environment, formats
from desivoids.environment import stage
from desivoids.environment.flags import EDGE_VOID, INTERIOR, NO_VOID, UNKNOWN, Assignment
from desivoids.load.queries import dispose_engines
from desivoids.load.tables import table_transaction

pytestmark = pytest.mark.timeout(300)  # a thread left waiting would hang the test, not fail it

KEY = ["targetid", "algorithm", "cap"]


def _result(n: int, seed: int = 3) -> tuple[np.ndarray, dict[str, Assignment]]:
    """Assignments of n galaxies with every sentinel (no void, NaN distance, unknown interior),
    galaxies in shuffled targetid order."""
    rng = np.random.default_rng(seed)
    targetid = rng.permutation(np.arange(10**15, 10**15 + 7 * n, 7, dtype=np.int64))
    out = {}
    for alg in formats.ALGORITHMS:
        flag = rng.choice(np.array([0, 1, 2, 9], np.int8), n)
        void = np.where(flag == 1, rng.integers(0, 50, n), NO_VOID).astype(np.int64)
        dist = np.where(flag == 1, rng.uniform(0, 2, n), np.nan)
        dist[rng.random(n) < 0.1] = np.nan
        interior = np.where(flag == 1, rng.choice(np.array([INTERIOR, EDGE_VOID, UNKNOWN],
                                                           np.int8), n), UNKNOWN).astype(np.int8)
        out[alg] = Assignment(alg, rng.integers(0, 2, n).astype(np.int8), flag, void, dist,
                              interior)
    return targetid, out


def _expected(targetid, result) -> pd.DataFrame:
    """The rows built independently of the batching: one to_arrow table per algorithm."""
    t = pa.concat_tables([r.to_arrow(targetid) for r in result.values()])
    return t.to_pandas().sort_values(KEY, ignore_index=True)


def _db_table(d: Path, name: str) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{d / 'database' / 'desivoids.sqlite'}?mode=ro", uri=True)
    try:  # in the table's own (key) order
        return pd.read_sql(f'SELECT * FROM "{name}"', con)
    finally:
        con.close()


def _published(d: Path) -> tuple[dict, pd.DataFrame]:
    """Run environment once; its folder's files and its database table as published."""
    environment.run(data_dir=str(d), randoms=2_000)
    dispose_engines()
    return ({p.name: p.read_bytes() for p in (d / "environment").iterdir()},
            _db_table(d, "galaxy_void_assignments"))


def _unchanged(d: Path, folder: dict, table: pd.DataFrame) -> None:
    """A failed run left environment's folder and table as :func:`_published` found them."""
    dispose_engines()
    assert {p.name: p.read_bytes() for p in (d / "environment").iterdir()} == folder
    pd.testing.assert_frame_equal(_db_table(d, "galaxy_void_assignments"), table)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.astype({"flag": "int64", "flag_interior": "int64"})
    want = want.astype({"flag": "int64", "flag_interior": "int64"})
    for c in ("void", "interior"):  # SQLite gives numbers (NULL: NaN / None) for both
        got[c] = got[c].astype("float64")
        want[c] = want[c].astype("float64")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


def _url(d: Path) -> str:
    return f"sqlite:///{d / 'database' / 'desivoids.sqlite'}"


def _chunks(targetid, result, size: int, seed: int = 1):
    """The rows of chunks of ``size`` galaxies, chunks in shuffled order (as membership's
    chunks finish), each chunk's rows in key order: what the stage gives the insert."""
    starts = np.random.default_rng(seed).permutation(np.arange(0, len(targetid), size))
    for s in starts:
        rows = slice(s, s + size)
        yield from stage.assignment_batches(targetid[rows],
                                            {a: r.take(np.arange(len(targetid))[rows])
                                             for a, r in result.items()}, rows_per_batch=41)


def test_many_batches_give_the_file_and_the_table_the_rows_built_directly(selected_copy,
                                                                         tmp_path):
    d = selected_copy
    targetid, result = _result(1_003)
    want = _expected(targetid, result)
    path = tmp_path / "a.parquet"
    with table_transaction(_url(d)) as db:
        pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA, name="unit_assignments")
        for batch in _chunks(targetid, result, 97):
            pub.put(batch)
        pub.end()
        pub.write(path, stage.assignment_batches(targetid, result, rows_per_batch=41))
        pub.result()
    dispose_engines()
    f = pq.ParquetFile(path)
    assert f.schema_arrow == stage.ASSIGNMENT_SCHEMA
    got = f.read().to_pandas()
    _same(got, want)  # in key order, not merely the same rows
    _same(_db_table(d, "unit_assignments"), want)  # chunks inserted out of key order
    # the stage's file writer gives the same file content
    stage.write_assignments(tmp_path / "b.parquet", targetid, result, rows_per_group=97)
    assert pq.read_table(tmp_path / "b.parquet").equals(f.read())


def _previous(d: Path) -> pd.DataFrame:
    with table_transaction(_url(d)) as db:
        db.publish("unit_assignments", pa.table({"targetid": [1, 2]}), key=("targetid",))
    dispose_engines()
    return _db_table(d, "unit_assignments")


def test_a_failure_of_the_file_stops_the_insert_and_the_table_stays(selected_copy, tmp_path):
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)

    def failing():
        for i, b in enumerate(stage.assignment_batches(targetid, result, rows_per_batch=40)):
            if i == 3:
                raise OSError(28, "No space left on device (injected)")
            yield b

    with pytest.raises(OSError, match="injected"):
        with table_transaction(_url(d)) as db:
            pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA,
                                               name="unit_assignments")
            for batch in _chunks(targetid, result, 50):
                pub.put(batch)
            pub.write(tmp_path / "a.parquet", failing())
            pub.result()
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_a_failure_of_the_insert_is_raised_by_the_next_put(selected_copy, tmp_path):
    """A refused insert stops membership's feeding at once (put raises the database's error),
    not after every chunk has been assigned; the previous table stays."""
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)
    targetid[1] = targetid[0]  # a duplicate key: the database refuses the insert
    for r in result.values():
        r.cap_code[1] = r.cap_code[0]

    put = 0
    with pytest.raises(Exception, match="(?i)unique|constraint"):
        with table_transaction(_url(d)) as db:
            pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA,
                                               name="unit_assignments")
            try:
                for _ in range(10_000):  # the same rows again and again: only an error ends it
                    for batch in stage.assignment_batches(targetid, result, rows_per_batch=40):
                        pub.put(batch)
                        put += 1
            except BaseException:
                pub.cancel()
                raise
    assert put < 10_000 * 50
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_a_failure_of_the_insert_at_its_end_is_raised_by_result(selected_copy, tmp_path):
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)
    targetid[-1] = targetid[0]
    for r in result.values():
        r.cap_code[-1] = r.cap_code[0]

    with pytest.raises(Exception, match="(?i)unique|constraint"):
        with table_transaction(_url(d)) as db:
            pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA,
                                               name="unit_assignments")
            for batch in stage.assignment_batches(targetid, result, rows_per_batch=40):
                pub.put(batch)
            pub.write(tmp_path / "a.parquet",
                      stage.assignment_batches(targetid, result, rows_per_batch=40))
            pub.result()
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_a_failure_of_the_summary_cancels_the_insert_and_leaves_tables_and_folder(
        selected_copy, monkeypatch):
    d = selected_copy
    folder, table = _published(d)

    def summarise(*args, **kwargs):
        raise RuntimeError("the summary failed (injected)")
    monkeypatch.setattr(stage, "summarise", summarise)
    with pytest.raises(RuntimeError, match="injected"):
        environment.run(data_dir=str(d), randoms=2_000, seed=5)
    _unchanged(d, folder, table)
    # and the published pair agrees: the table holds the file's rows, in key order
    got = pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas()
    _same(table, got)



def test_the_insert_starts_while_membership_still_runs(selected_copy, monkeypatch):
    """Issue 25: the database's insert, the stage's longest step, overlaps membership: the
    table receives its first rows before the last chunk of galaxies is assigned (not once
    every chunk is done). Every chunk but the first waits (up to 20 s) for the insert to have
    taken rows, so the order is decided, not left to thread timing; the published table and
    file still hold the same rows."""
    import threading
    import time

    from desivoids.load.sqlite import SqliteTarget

    d = selected_copy
    events: list[tuple[str, float]] = []
    lock = threading.Lock()
    inserted = threading.Event()
    calls = [0]
    assign_chunk, write = stage.assign_chunk, SqliteTarget.write

    def chunk(*args, **kwargs):
        with lock:
            k, calls[0] = calls[0], calls[0] + 1
        if k:
            inserted.wait(20)
        out = assign_chunk(*args, **kwargs)
        with lock:
            events.append(("chunk", time.monotonic()))
        return out

    def counted(self, table, batches, label):
        def each():
            for b in batches:
                if table.name == stage.ASSIGNMENTS:
                    with lock:
                        events.append(("insert", time.monotonic()))
                    inserted.set()
                yield b
        return write(self, table, each(), label)

    monkeypatch.setattr(stage, "assign_chunk", chunk)
    monkeypatch.setattr(SqliteTarget, "write", counted)
    environment.run(data_dir=str(d), randoms=2_000, chunk_rows=1_000, num_workers=2)
    dispose_engines()
    chunks = [t for e, t in events if e == "chunk"]
    inserts = [t for e, t in events if e == "insert"]
    assert len(chunks) >= 3 and inserts
    assert min(inserts) < max(chunks)
    table = _db_table(d, "galaxy_void_assignments")
    _same(table, pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas())


def test_a_failure_of_membership_cancels_the_insert_and_leaves_tables_and_folder(
        selected_copy, monkeypatch):
    d = selected_copy
    folder, table = _published(d)
    calls = [0]
    assign_chunk = stage.assign_chunk

    def chunk(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:  # after the first chunks' rows went to the insert
            raise MemoryError("membership failed (injected)")
        return assign_chunk(*args, **kwargs)
    monkeypatch.setattr(stage, "assign_chunk", chunk)
    with pytest.raises(MemoryError, match="injected"):
        environment.run(data_dir=str(d), randoms=2_000, seed=5, chunk_rows=1_000,
                        num_workers=1)
    _unchanged(d, folder, table)


def test_rows_put_later_give_the_table_the_rows_built_directly(selected_copy):
    """put_later takes lazy iterators of rows without waiting; the feeder thread builds them
    as the insert takes them: the same table as the rows built directly."""
    d = selected_copy
    targetid, result = _result(1_003)
    with table_transaction(_url(d)) as db:
        pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA, name="unit_assignments")
        for s in np.random.default_rng(2).permutation(np.arange(0, len(targetid), 97)):
            rows = slice(s, s + 97)
            pub.put_later(stage.assignment_batches(
                targetid[rows], {a: r.take(rows) for a, r in result.items()}, rows_per_batch=41))
        pub.end()
        pub.result()
    dispose_engines()
    _same(_db_table(d, "unit_assignments"), _expected(targetid, result))


def test_a_failure_building_rows_put_later_is_raised_and_the_table_stays(selected_copy):
    d = selected_copy
    before = _previous(d)
    targetid, result = _result(500)

    def failing():
        yield from stage.assignment_batches(targetid, result, rows_per_batch=40)
        raise MemoryError("building the rows failed (injected)")

    with pytest.raises(MemoryError, match="injected"):
        with table_transaction(_url(d)) as db:
            pub = stage.AssignmentsPublication(db, stage.ASSIGNMENT_SCHEMA,
                                               name="unit_assignments")
            pub.put_later(failing())
            pub.result()
    dispose_engines()
    pd.testing.assert_frame_equal(_db_table(d, "unit_assignments"), before)


def test_membership_never_waits_for_the_insert(selected_copy, monkeypatch):
    """Issue 25: the insert, the stage's longest step, must not hold membership back (it did
    through a queue of two batches: every chunk after the third waited for the insert, and with
    it the Parquet file and the summary, which need every chunk). Here the insert takes no row
    until membership has returned (up to 30 s): membership must return first, and the table
    and file still hold the same rows."""
    import threading

    from desivoids.load.sqlite import SqliteTarget

    d = selected_copy
    done = threading.Event()
    waited: list[bool] = []
    membership, write = stage._membership, SqliteTarget.write

    def assigned(*args, **kwargs):
        try:
            return membership(*args, **kwargs)
        finally:
            done.set()

    def slow(self, table, batches, label):
        if table.name == stage.ASSIGNMENTS:
            waited.append(done.wait(30))
        return write(self, table, batches, label)

    monkeypatch.setattr(stage, "_membership", assigned)
    monkeypatch.setattr(SqliteTarget, "write", slow)
    environment.run(data_dir=str(d), randoms=2_000, chunk_rows=300, num_workers=1)
    dispose_engines()
    assert waited == [True]
    table = _db_table(d, "galaxy_void_assignments")
    assert len(table) > 4 * 300 * 4  # more chunks than the old queue (two batches) held
    _same(table, pq.read_table(d / "environment" / "galaxy_void_assignments.parquet").to_pandas())


def test_rows_streamed_by_chunk_in_key_order_give_the_file_of_the_whole_result(tmp_path):
    """Issue 25 (speed only): the stage holds its galaxies in targetid order and hands the
    rows of each run of assigned chunks (chunks finishing in any order) to one stream that
    feeds both the insert and the file; the file, regrouped by ParquetBatches, must be byte
    for byte the file that write_assignments writes from the whole result in the catalogue's
    own (shuffled) order, the way the stage wrote it before."""
    targetid, result = _result(1_003)
    want = stage.write_assignments(tmp_path / "want.parquet", targetid, result,
                                   rows_per_group=120)
    order = np.argsort(targetid)
    tid, res = targetid[order], {a: r.take(order) for a, r in result.items()}
    pieces: list[pa.RecordBatch] = []
    stream = stage.KeyOrderBatches(tid, res, lambda batches: pieces.extend(batches),
                                   rows_per_batch=120)  # 30 galaxies per batch
    starts = np.arange(0, len(tid), 97)  # chunks not aligned with the batches
    shuffled = np.random.default_rng(4).permutation(starts[1:])
    stream.done(slice(0, 97))
    assert pieces and sum(p.num_rows for p in pieces) == 97 * 4  # streamed, not held back
    for s in shuffled:
        stream.done(slice(int(s), int(s) + 97))
    stream.end()
    assert sum(p.num_rows for p in pieces) == 4 * len(tid)
    with stage.ParquetBatches(tmp_path / "got.parquet", rows_per_batch=120,
                              plain=stage.PLAIN_COLUMNS) as sink:
        for p in pieces:
            sink.write(p)
    assert (tmp_path / "got.parquet").read_bytes() == want.read_bytes()
    # and no galaxy is left out: a chunk never reported fails the stream's end
    short = stage.KeyOrderBatches(tid, res, lambda batches: None, rows_per_batch=120)
    short.done(slice(0, 97))
    with pytest.raises(stage.StageError, match="never assigned"):
        short.end()


def test_the_stage_file_is_the_whole_result_written_in_one_go(selected_copy, tmp_path,
                                                              monkeypatch):
    """The published file equals, byte for byte, write_assignments of membership's whole result
    in the catalogue's order (the stage's former way), with chunks finishing out of order and
    batches cut across chunks (ROWS_PER_BATCH made small)."""
    from desivoids import paths

    d = selected_copy
    monkeypatch.setattr(stage, "ROWS_PER_BATCH", 4 * 25)
    environment.run(data_dir=str(d), randoms=2_000, chunk_rows=37, num_workers=2)
    dispose_engines()
    inputs = stage.void_inputs(paths.RunLayout.of(d), surface_tol=1e-3)
    targetid = inputs.galaxies.column("targetid").to_numpy()
    assert np.any(np.diff(targetid) < 0)  # the catalogue's order is not the key's
    result = stage._membership(inputs, "", 10_000_000, 1)
    want = stage.write_assignments(tmp_path / "want.parquet", targetid, result,
                                   rows_per_group=4 * 25)
    got = d / "environment" / "galaxy_void_assignments.parquet"
    assert pq.ParquetFile(got).metadata.num_row_groups > 1
    assert got.read_bytes() == want.read_bytes()


def test_a_failure_writing_the_file_beside_the_insert_stops_both_and_leaves_table_and_folder(
        selected_copy, monkeypatch):
    """The file is written by the feeder from the batches on their way to the insert: a full
    disk there is raised by the stage, the insert stops, and the previous table and folder
    stay."""
    d = selected_copy
    folder, table = _published(d)
    calls = [0]
    write = stage.ParquetBatches._write

    def failing(self, batch):
        calls[0] += 1
        if calls[0] == 2:
            raise OSError(28, "No space left on device (injected)")
        return write(self, batch)
    monkeypatch.setattr(stage, "ROWS_PER_BATCH", 4 * 40)
    monkeypatch.setattr(stage.ParquetBatches, "_write", failing)
    with pytest.raises(OSError, match="injected"):
        environment.run(data_dir=str(d), randoms=2_000, seed=5, chunk_rows=100)
    assert calls[0] == 2
    _unchanged(d, folder, table)


@pytest.mark.parametrize("duplicated", [False, True])
def test_galaxies_put_in_targetid_order_keep_the_file_order_of_equal_targetids(tmp_path,
                                                                                duplicated):
    """_in_key_order sorts the galaxies by targetid (numpy's fast sort for distinct ones);
    galaxies sharing a targetid keep their order in the file, as a stable sort keeps them,
    and each keeps its own tracer flag."""
    rng = np.random.default_rng(11)
    targetid = rng.permutation(np.arange(1000, 1000 + 5000, dtype=np.int64))
    if duplicated:
        targetid[rng.choice(5000, 300, replace=False)] = 1500
    galaxies = pa.table({"targetid": targetid, "ra": np.arange(5000, dtype=np.float64)})
    selection = tmp_path / "selection.parquet"
    tracer = rng.random(5000) < 0.5
    pq.write_table(pa.table({"targetid": targetid, "tracer": tracer}), selection)
    inputs = stage.VoidInputs(tmp_path, selection, {}, {}, [], {}, {}, galaxies, None)
    got, ids, flags = stage._in_key_order(inputs)
    order = np.argsort(targetid, kind="stable")
    np.testing.assert_array_equal(ids, targetid[order])
    np.testing.assert_array_equal(got.galaxies.column("ra").to_numpy(), order.astype(float))
    np.testing.assert_array_equal(flags, tracer[order])


def test_assignments_file_keeps_targetid_and_distance_out_of_dictionaries(tmp_path):
    """galaxy_void_assignments.parquet: targetid and r_over_reff (nearly unique per row) are
    written as plain pages, not dictionary pages that overflow; the other columns keep
    pyarrow's default; the rows are those given."""
    targetid, result = _result(3_000)
    path = stage.write_assignments(tmp_path / "a.parquet", targetid, result)
    meta = pq.ParquetFile(path).metadata
    dictionary = {name: "RLE_DICTIONARY" in meta.row_group(0).column(i).encodings
                  for i, name in enumerate(meta.schema.names)}
    assert dictionary == {"targetid": False, "algorithm": True, "cap": True, "flag": True,
                          "void": True, "r_over_reff": False,
                          "interior": False,  # booleans: never a dictionary in pyarrow
                          "flag_interior": True}
    want = pa.Table.from_batches(list(stage.assignment_batches(targetid, result)))
    assert pq.read_table(path).equals(want)
