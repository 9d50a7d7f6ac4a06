"""Stage-1 checks of the tables themselves: every source row accounted for (convert's ledger
against the database), unique keys (Parquet and database), the documented column types, null
and non-finite rates of the critical columns, coordinate and redshift ranges."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import inspect, text

from .. import formats
from ..errors import LoadError
from ..load import schema as S
from ..load.inputs import check_schema
from ..load.queries import SQLITE_BUSY_PRAGMA, _Conn
from .checks import FAIL, Check, verdict
from ..stages import file_name

__all__ = ["CONVERT_TABLES", "reconciliation", "keys", "types", "nulls", "ranges"]

#: the convert stage's tables (galaxies is a folder of parts, the others one file each)
CONVERT_TABLES = ("galaxies", "voids", "holes", "zonevoid", "galzone", "rejects")
_LIMIT = 20  # offending values listed in the evidence


def parquet_path(convert_dir: Path, table: str) -> Path:
    return convert_dir / file_name("convert", table)


def read(convert_dir: Path, table: str, columns=None) -> pa.Table:
    return ds.dataset(parquet_path(convert_dir, table), format="parquet").to_table(columns=columns)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -------------------------------------------------------------------------- reconciliation
def _sqlite_file(conn) -> Path | None:
    """The database file of a SQLite connection, None for any other database."""
    url = conn.engine.url
    if conn.dialect.name != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return path if path.is_file() else None


def _rows_by_source_file(conn, table: str) -> dict[str, int]:
    """Rows of a database table per source_file. SQLite answers a GROUP BY by sorting every
    row (no hash aggregate): there the column is streamed as Arrow through ADBC and counted by
    hash instead (galaxies at DR1 scale, 6.4 million rows: 3.4 CPU s against 6.7, measured)."""
    path = _sqlite_file(conn)
    if path is not None:
        import adbc_driver_sqlite.dbapi as adbc

        counts: dict[str, int] = {}
        try:
            with adbc.connect(str(path)) as c, c.cursor() as cur:
                # a writer's commit is waited for (`desivoids run --jobs`)
                cur.execute(SQLITE_BUSY_PRAGMA)
                cur.execute(f"SELECT source_file FROM {_quote(table)}")
                for batch in cur.fetch_record_batch():
                    vc = pc.value_counts(batch.column(0))
                    for f, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                        counts[f] = counts.get(f, 0) + n
            return counts
        except adbc.Error:  # e.g. no such table: asked again through SQLAlchemy, whose error
            pass            # the stage reports as a database it cannot read
    return {f: int(n) for f, n in conn.execute(text(
        f"SELECT source_file, count(*) FROM {_quote(table)} GROUP BY source_file"))}


def reconciliation(convert_dir: Path, db) -> list[Check]:
    """Per table and source file: rows the ledger read = rows in the database table + rows in the
    database's rejects for that table."""
    ledger = json.loads((convert_dir / file_name("convert", "reconciliation")).read_text())
    out = [Check("reconciliation.ledger", "convert's ledger balances (rows in = out + rejected)",
                 verdict(not ledger["balanced"]),
                 {"unbalanced": [e for e in ledger["entries"] if not e["balanced"]][:_LIMIT]})]
    with _Conn(db) as conn:
        rejected = {(t, f): int(n) for t, f, n in conn.execute(text(
            'SELECT "table", source_file, count(*) FROM rejects GROUP BY "table", source_file'))}
        for table in CONVERT_TABLES[:-1]:
            read_in: dict[str, int] = {}
            for e in ledger["entries"]:
                if e["table"] == table:
                    read_in[e["source_file"]] = read_in.get(e["source_file"], 0) + e["rows_in"]
            stored = _rows_by_source_file(conn, table)
            rows = []
            for f in sorted(set(read_in) | set(stored)):
                n_in, n_db, n_rej = read_in.get(f, 0), stored.get(f, 0), rejected.get((table, f), 0)
                rows.append({"source_file": f, "rows_in": n_in, "in_database": n_db,
                             "rejected": n_rej, "balanced": n_in == n_db + n_rej})
            bad = [r for r in rows if not r["balanced"]]
            out.append(Check(f"reconciliation.{table}",
                             f"every source row of {table} is in the database or in its rejects",
                             verdict(bool(bad) or not rows and table == "galaxies"),
                             {"files": rows, "unbalanced": len(bad),
                              "rows_in": sum(r["rows_in"] for r in rows)}))
    return out


# -------------------------------------------------------------------------- keys
def sorted_key(t: pa.Table, key: tuple[str, ...]) -> np.ndarray | None:
    """A one-column integer key without nulls, sorted (None for any other key): the galaxies'
    TARGETIDs, sorted once for their uniqueness and for the references to them."""
    if len(key) == 1 and pa.types.is_integer(t.schema.field(key[0]).type) \
            and t.column(key[0]).null_count == 0:
        return np.sort(t.column(key[0]).to_numpy())
    return None


def packed_key(t: pa.Table, key: tuple[str, ...]) -> np.ndarray | None:
    """A composite key of string and integer columns packed into one int64 per row, sorted:
    each string column by its dictionary code, each integer column less its minimum, as the
    digits of a mixed-radix number, so that two rows have the same number exactly when they
    have the same key. None when a value is null, a column has another type, or the numbers
    would not fit in 62 bits."""
    packed, span = np.zeros(t.num_rows, np.int64), 1
    for name in key:
        col = t.column(name)
        if col.null_count:
            return None
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            codes = pc.dictionary_encode(col.combine_chunks())
            digit, n = codes.indices.to_numpy().astype(np.int64), len(codes.dictionary)
        elif pa.types.is_integer(col.type) and not pa.types.is_uint64(col.type):
            digit = col.to_numpy().astype(np.int64)
            lo, hi = (int(digit.min()), int(digit.max())) if len(digit) else (0, 0)
            if hi - lo >= 2**62:
                return None
            digit -= lo
            n = hi - lo + 1
        else:
            return None
        span *= max(n, 1)
        if span >= 2**62:
            return None
        packed = packed * n + digit
    packed.sort()
    return packed


def _duplicates(t: pa.Table, key: tuple[str, ...], v: np.ndarray | None = None
                ) -> tuple[int, list]:
    """Duplicated keys of ``t``; ``v``: :func:`sorted_key` of it, when already computed."""
    if t.num_rows == 0:
        return 0, []
    v = sorted_key(t, key) if v is None else v
    if v is None:  # a composite key (GALZONE's 2 million rows: 1.6 CPU s by group_by)
        v = packed_key(t, key)
    if v is not None:
        # the common case, no duplicate, settled by one sort (Arrow's hash group_by of 6.4
        # million TARGETIDs costs several times more); the evidence comes from the group_by
        if not (v[1:] == v[:-1]).any():
            return 0, []
    counts = t.group_by(list(key)).aggregate([([], "count_all")])
    dup = counts.filter(pc.greater(counts["count_all"], 1))
    return dup.num_rows, dup.slice(0, _LIMIT).to_pylist()


def _parquet_keys(convert_dir: Path, galaxies: tuple[pa.Table, np.ndarray | None] | None = None
                  ) -> list[Check]:
    """``galaxies``: the galaxies' key columns as read and :func:`sorted_key` of them."""
    out = []
    for table in CONVERT_TABLES:
        key = S.KEYS[table]
        if table == "galaxies" and galaxies is not None:
            n, examples = _duplicates(galaxies[0], key, galaxies[1])
        else:
            n, examples = _duplicates(read(convert_dir, table, list(key)), key)
        out.append(Check(f"keys.parquet.{table}", f"({', '.join(key)}) unique in Parquet",
                         verdict(n > 0), {"key": list(key), "duplicates": n,
                                          "examples": examples}))
    return out


def _database_keys(db) -> list[Check]:
    out = []
    with _Conn(db) as conn:
        for table in CONVERT_TABLES:
            key = S.KEYS[table]
            cols = ", ".join(_quote(k) for k in key)
            rows = conn.execute(text(
                f"SELECT {cols}, count(*) FROM {_quote(table)} GROUP BY {cols} "
                f"HAVING count(*) > 1")).all()
            out.append(Check(f"keys.database.{table}", f"({', '.join(key)}) unique in the database",
                             verdict(bool(rows)), {"key": list(key), "duplicates": len(rows),
                                                   "examples": [list(r) for r in rows[:_LIMIT]]}))
    return out


def _interleaved(parquet: list[Check], database: list[Check]) -> list[Check]:
    """Each table's Parquet check, then its database check (the report's order)."""
    return [c for pair in zip(parquet, database) for c in pair]


def keys(convert_dir: Path, db) -> list[Check]:
    """Primary-key uniqueness of every convert table, in Parquet and in the database."""
    return _interleaved(_parquet_keys(convert_dir), _database_keys(db))


# -------------------------------------------------------------------------- types
def types(convert_dir: Path, db) -> list[Check]:
    """Column types as the convert contract documents them, in Parquet and in the database."""
    out = []
    with _Conn(db) as conn:
        dialect = conn.dialect
        ins = inspect(conn)
        for table in CONVERT_TABLES:
            path = parquet_path(convert_dir, table)
            files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
            problems = []
            for f in files:
                try:
                    check_schema(table, f, pq.read_schema(f))
                except LoadError as exc:
                    problems.append(str(exc))
            out.append(Check(f"types.parquet.{table}", f"{table}: Parquet columns and types as "
                             "documented (desivoids.convert.columns)", verdict(bool(problems)),
                             {"files": len(files), "problems": problems[:_LIMIT]}))
            want = pq.read_schema(files[0])
            got = {c["name"]: c["type"] for c in ins.get_columns(table)}
            wrong = []
            for f in want:
                expect = str(S.column_type(table, f).compile(dialect=dialect))
                # a database loaded before galaxies.targetid became SQLite's rowid declares it
                # BIGINT: the same 64-bit integers (load rebuilds it on its next run)
                also = str(S.sql_type(f.type, f.name).compile(dialect=dialect))
                have = str(got[f.name].compile(dialect=dialect)) if f.name in got else None
                if have not in (expect, also):
                    wrong.append({"column": f.name, "expected": expect, "found": have})
            out.append(Check(f"types.database.{table}", f"{table}: database column types match "
                             "the Parquet contract", verdict(bool(wrong)), {"wrong": wrong}))
    return out


# -------------------------------------------------------------------------- nulls
def nulls(convert_dir: Path, max_null_fraction: dict[str, float]) -> list[Check]:
    """Null and non-finite (NaN, inf) rates of the critical galaxy columns against thresholds.
    The columns are counted batch by batch in one pass over the parts (a pass per column
    opened and parsed every part's footer once per column)."""
    dataset = ds.dataset(parquet_path(convert_dir, "galaxies"), format="parquet")
    present = [c for c in max_null_fraction if c in set(dataset.schema.names)]
    counts = {c: [0, 0, 0] for c in present}  # rows, nulls, non-finite (nulls excepted)
    for batch in dataset.to_batches(columns=present):
        for c in present:
            col = batch.column(c)
            counts[c][0] += len(col)
            counts[c][1] += col.null_count
            if pa.types.is_floating(col.type):
                counts[c][2] += len(col) - col.null_count - pc.sum(pc.is_finite(col)).as_py() \
                    if len(col) > col.null_count else 0
    out = []
    for column, limit in max_null_fraction.items():
        if column not in counts:
            out.append(Check(f"nulls.galaxies.{column}", f"galaxies.{column}: null rate",
                             FAIL, {"problem": "column absent from the galaxies table"}))
            continue
        n, n_null, n_nonfinite = counts[column]
        frac = (n_null + n_nonfinite) / n if n else 0.0
        out.append(Check(f"nulls.galaxies.{column}",
                         f"galaxies.{column}: null or non-finite in at most {limit:.2%} of rows",
                         verdict(frac > limit), {"rows": n, "null": n_null,
                                                 "nonfinite": n_nonfinite,
                                                 "fraction": round(frac, 8), "limit": limit}))
    return out


# -------------------------------------------------------------------------- ranges
def _range_check(cid: str, title: str, values: np.ndarray, lo: float, hi: float,
                 closed_hi: bool = True) -> Check:
    v = values[np.isfinite(values)]
    bad = (v < lo) | ((v > hi) if closed_hi else (v >= hi))
    ev = {"rows": int(len(values)), "outside": int(bad.sum()), "range": [lo, hi],
          "min": float(v.min()) if len(v) else None, "max": float(v.max()) if len(v) else None}
    return Check(cid, title, verdict(bool(bad.any())), ev)


def ranges(convert_dir: Path, z_range: list[float], dlimu: dict[str, float]) -> list[Check]:
    """Coordinates within the sphere, redshifts within ``z_range``, radii positive, V2 tracers
    within the catalogue's radial limit DLIMU (per cap, from the headers)."""
    g = read(convert_dir, "galaxies", ["ra", "dec", "z"])
    arr = {c: g.column(c).to_numpy(zero_copy_only=False).astype(float) for c in ("ra", "dec", "z")}
    out = [_range_check("range.galaxies.ra", "galaxy RA in [0, 360) deg", arr["ra"], 0.0, 360.0,
                        closed_hi=False),
           _range_check("range.galaxies.dec", "galaxy Dec in [-90, 90] deg", arr["dec"], -90, 90),
           _range_check("range.galaxies.z", f"galaxy Z in [{z_range[0]}, {z_range[1]}]", arr["z"],
                        float(z_range[0]), float(z_range[1]))]
    v = read(convert_dir, "voids", ["ra", "dec", "r_eff"])
    out += [_range_check("range.voids.ra", "void RA in [0, 360) deg",
                         v.column("ra").to_numpy(zero_copy_only=False).astype(float), 0.0, 360.0,
                         closed_hi=False),
            _range_check("range.voids.dec", "void Dec in [-90, 90] deg",
                         v.column("dec").to_numpy(zero_copy_only=False).astype(float), -90, 90),
            _range_check("range.voids.r_eff", "void effective radius in (0, 1000] Mpc/h",
                         v.column("r_eff").to_numpy(zero_copy_only=False).astype(float), 1e-9,
                         1000.0)]
    h = read(convert_dir, "holes", ["radius"])
    out.append(_range_check("range.holes.radius", "hole radius in (0, 1000] Mpc/h",
                            h.column("radius").to_numpy().astype(float), 1e-9, 1000.0))
    gz = read(convert_dir, "galzone", ["cap", "x", "y", "z", "out"])
    caps = gz.column("cap").to_numpy(zero_copy_only=False)
    r = np.sqrt(sum(gz.column(c).to_numpy() ** 2 for c in ("x", "y", "z")))
    # VAST lists every input galaxy in GALZONE, those outside the mask or the distance limits
    # with OUT = 1 (formats.GALZONE_OUT): allowed beyond DLIMU, counted
    flagged = np.asarray(pc.fill_null(pc.equal(gz.column("out"), formats.GALZONE_OUT), False))
    for cap, limit in sorted(dlimu.items()):
        c = _range_check(f"range.galzone.{cap}", f"{cap} V2 tracers within DLIMU = "
                         f"{limit:.2f} Mpc/h of the observer (rows with OUT = 1 excepted)",
                         r[(caps == cap) & ~flagged], 0.0, limit * (1 + 1e-6))
        c.evidence["out_rows"] = int((flagged & (caps == cap)).sum())
        c.evidence["out_rows_beyond_dlimu"] = int((flagged & (caps == cap)
                                                   & (r > limit * (1 + 1e-6))).sum())
        out.append(c)
    return out
