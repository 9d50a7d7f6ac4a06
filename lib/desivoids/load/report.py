"""What a loaded database holds, for the notebook and later stages: row counts reconciled
against the Parquet input, the index list, and the provenance of each table (no timestamps,
so the output is the same on every run)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import inspect, text

from . import schema as S
from .queries import _Conn

__all__ = ["parquet_rows", "row_counts", "reconcile", "reconciled", "index_list", "provenance", "omega_m",
           "void_example"]

DERIVED_TABLES = ("galaxy_positions", "galaxy_blocks")


def parquet_rows(parquet_dir: str | Path) -> dict[str, int]:
    """Rows of each table's Parquet input, from the file footers."""
    base = Path(parquet_dir)
    out = {}
    for name in S.DATA_TABLES:
        d, f = base / name, base / f"{name}.parquet"
        files = sorted(d.glob("*.parquet")) if d.is_dir() else [f] if f.is_file() else []
        out[name] = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    return out


def row_counts(db) -> dict[str, int]:
    with _Conn(db) as conn:
        names = set(inspect(conn).get_table_names())
        return {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())
                for t in S.DATA_TABLES + DERIVED_TABLES if t in names}


def reconcile(parquet_dir: str | Path, db) -> pd.DataFrame:
    """Per table: Parquet rows, database rows, and whether they agree (galaxy_positions must
    hold one row per galaxy)."""
    return reconciled(parquet_rows(parquet_dir), row_counts(db))


def reconciled(pq_rows: dict[str, int], db_rows: dict[str, int]) -> pd.DataFrame:
    """:func:`reconcile` of row counts already taken (the load stage takes them inside its own
    open transaction, so that its report is published before the tables are committed)."""
    rows = [{"table": t, "parquet_rows": pq_rows[t], "db_rows": db_rows.get(t, 0)}
            for t in S.DATA_TABLES]
    rows.append({"table": "galaxy_positions", "parquet_rows": pq_rows["galaxies"],
                 "db_rows": db_rows.get("galaxy_positions", 0)})
    df = pd.DataFrame(rows)
    df["match"] = df["parquet_rows"] == df["db_rows"]
    return df


def index_list(db) -> pd.DataFrame:
    """Every index (and the R*Tree) on the load stage's tables: table, index, kind, columns."""
    rows = []
    with _Conn(db) as conn:
        ins = inspect(conn)
        names = set(ins.get_table_names())
        for t in S.DATA_TABLES + DERIVED_TABLES:
            if t not in names:
                continue
            pk = ins.get_pk_constraint(t)
            if pk.get("constrained_columns"):
                rows.append({"table": t, "index": pk.get("name") or f"pk_{t}",
                             "kind": "primary key (b-tree)",
                             "columns": ", ".join(pk["constrained_columns"])})
            for ix in ins.get_indexes(t):
                cols = ", ".join(ix.get("expressions") or []) or \
                    ", ".join(c for c in ix.get("column_names") or [] if c)
                rows.append({"table": t, "index": ix["name"], "kind": _kind(conn, ix["name"]),
                             "columns": cols})
        if conn.dialect.name == "sqlite":
            sql = conn.execute(text(
                "SELECT sql FROM sqlite_master WHERE name = 'galaxy_blocks'")).scalar()
            if sql and "rtree" in sql.lower():
                rows.append({"table": "galaxy_blocks", "index": "galaxy_blocks",
                             "kind": "R*Tree (virtual table)",
                             "columns": ", ".join(f"{d}_min..{d}_max" for d in S.BLOCK_DIMS)})
    return pd.DataFrame(rows, columns=["table", "index", "kind", "columns"]).sort_values(
        ["table", "index"], ignore_index=True)


def _kind(conn, name: str) -> str:
    if conn.dialect.name != "postgresql":
        return "b-tree"
    am = conn.execute(text(
        "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
        "WHERE c.relname = :n AND c.relnamespace = current_schema()::regnamespace"),
        {"n": name}).scalar()
    if name.endswith("_q3c"):
        return "q3c (b-tree on q3c_ang2ipix, z)"
    return {"btree": "b-tree", "gist": "GiST (cube)"}.get(am, am or "?")


def provenance(db) -> pd.DataFrame:
    """Per table: rows, parts, and the sha256 of each Parquet part (no timestamps)."""
    with _Conn(db) as conn:
        return pd.DataFrame(conn.execute(text(
            'SELECT p.table_name AS "table", p.part, p.rows, p.sha256 '
            "FROM load_parts p ORDER BY p.table_name, p.part")).all(),
            columns=["table", "part", "rows", "sha256"])


def omega_m(db, default: float = 0.315) -> float:
    """Omega_m of the loaded galaxies' comoving positions (from the convert metadata)."""
    with _Conn(db) as conn:
        meta = conn.execute(text(
            "SELECT parquet_metadata FROM load_tables WHERE table_name = 'galaxies'")).scalar()
    value = (json.loads(meta) or {}).get("omega_m") if meta else None
    return float(value) if value is not None else default


def void_example(db, algorithm: str, cap: str, void: int) -> dict:
    """A void, the galaxies inside the sphere of its effective radius, and the galaxies in the
    cone that sphere subtends and the redshift slice its depth spans. The sphere's galaxies are
    a subset of the cone's (checked by the tests and the notebook)."""
    from .. import cosmology
    from .queries import cone, sphere

    with _Conn(db) as conn:
        v = conn.execute(text(
            "SELECT algorithm, cap, void, x, y, z, ra, dec, r_eff FROM voids "
            "WHERE algorithm = :a AND cap = :c AND void = :v"),
            {"a": algorithm, "c": cap, "v": int(void)}).mappings().one()
    v = dict(v)
    om = omega_m(db)
    d = float(np.sqrt(v["x"] ** 2 + v["y"] ** 2 + v["z"] ** 2))
    radius = float(v["r_eff"])
    angle = float(np.degrees(np.arcsin(min(radius / d, 1.0))))
    zlo = float(cosmology.z_at_distance(max(d - radius, 0.0), om))
    zhi = float(cosmology.z_at_distance(d + radius, om))
    return {"void": v, "distance": d, "radius": radius, "angle_deg": angle, "zmin": zlo,
            "zmax": zhi, "sphere": sphere(db, v["x"], v["y"], v["z"], radius),
            "cone": cone(db, v["ra"], v["dec"], angle, zlo, zhi)}
