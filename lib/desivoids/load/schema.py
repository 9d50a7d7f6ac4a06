"""The SQL schema of the load stage, as SQLAlchemy Core tables.

Data tables are derived from the Arrow schema of the convert stage's Parquet output (so they
follow :mod:`desivoids.convert.columns` without a second copy of the column list), with the keys
declared here explicitly so the database enforces them:

==========  ==========================================  =======================================
table       primary key                                 notes
==========  ==========================================  =======================================
galaxies    targetid                                    + unit_x, unit_y, unit_z (load-derived);
                                                        SQLite: the rowid, see below
voids       algorithm, cap, void
holes       cap, hole_index                             VoidFinder only
zonevoid    algorithm, cap, zone                        one ZONEVOID per V2 file
galzone     algorithm, cap, gal
rejects     table, source_file, hdu, source_row, column a row may fail several checks
==========  ==========================================  =======================================

On SQLite, ``galaxies.targetid`` is declared ``INTEGER`` (``BIGINT`` on PostgreSQL, the same 64
bits): a single-column ``INTEGER`` primary key is SQLite's rowid itself, so the table is one
B-tree keyed by targetid, a lookup by targetid is one descent, and uniqueness is enforced by that
B-tree instead of a second one (``BIGINT`` made a separate ``sqlite_autoindex_galaxies_1``, every
row inserted into it in random targetid order). The loader writes the rows in targetid order, so
every insert appends at the B-tree's right edge (:mod:`.sqlite`); a scan of the table (no
index) therefore meets them in targetid order, not in the Parquet parts' order (no query of the
project relies on either: a query wanting an order says ``ORDER BY``).

Two derived tables index galaxy positions for the sphere and cone queries (both backends):

- ``galaxy_positions``: targetid, ra, dec, z, unit vector and comoving position of every galaxy,
  stored in the order of a space-filling (Morton) curve over comoving space; ``pos`` is the rank.
- ``galaxy_blocks``: one row per run of consecutive ``pos`` (a few dozen galaxies close in
  space) with its bounding box over (unit_x, unit_y, unit_z, z, comoving distance). On SQLite it
  is an R*Tree virtual table; on PostgreSQL a table with a GiST index on a ``cube``.
  This is an R-tree packed bottom-up: inserting millions of single points into an R*Tree costs
  15-30 us each (minutes at DR1 scale), packing costs seconds and answers queries as fast.

Provenance tables (``load_runs``, ``load_tables``, ``load_parts``, ``load_columns``) record
what was loaded from which Parquet part (sha256, rows), when, and per column the NULL and NaN
counts of the Parquet input (SQLite cannot store NaN: it stores NULL, so the loader sends NaN as
NULL to PostgreSQL too, and the counts are what a reconciliation needs).
"""
from __future__ import annotations

import pyarrow as pa
from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Double, Float, Index, Integer,
                        MetaData, PrimaryKeyConstraint, SmallInteger, Table, Text)

__all__ = [
    "DATA_TABLES", "KEYS", "DERIVED_GALAXY_COLUMNS", "POSITION_COLUMNS", "BLOCK_DIMS",
    "sql_type", "column_type", "ROWID_KEYS", "data_table", "positions_table", "blocks_table",
    "provenance_tables",
    "PROVENANCE_TABLES",
]

#: Tables loaded from Parquet, in load order.
DATA_TABLES = ("galaxies", "voids", "holes", "zonevoid", "galzone", "rejects")

#: Primary key of each data table (the database enforces these).
KEYS: dict[str, tuple[str, ...]] = {
    "galaxies": ("targetid",),
    "voids": ("algorithm", "cap", "void"),
    "holes": ("cap", "hole_index"),
    "zonevoid": ("algorithm", "cap", "zone"),
    "galzone": ("algorithm", "cap", "gal"),
    "rejects": ("table", "source_file", "hdu", "source_row", "column"),
}

#: B-tree indexes besides the keys: (table, columns).
BTREE_INDEXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "galaxies": (("z",),),
    "galzone": (("targetid",),),
}

#: Columns the loader adds to galaxies: the unit vector of (ra, dec), for cone queries that
#: are exact across RA = 0/360 and at the poles, computed once in float64 on the client so
#: both backends hold the same bits.
DERIVED_GALAXY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("unit_x", "cos(dec) cos(ra): unit vector towards (ra, dec)"),
    ("unit_y", "cos(dec) sin(ra)"),
    ("unit_z", "sin(dec)"),
)

POSITION_COLUMNS = ("targetid", "ra", "dec", "z", "unit_x", "unit_y", "unit_z",
                    "comoving_x", "comoving_y", "comoving_z")

#: Bounding-box dimensions of galaxy_blocks: (name, galaxy_positions expression). ``r`` is the
#: comoving distance, -1 for galaxies without a comoving position (Z < 0).
BLOCK_DIMS = ("unit_x", "unit_y", "unit_z", "z", "r")


def sql_type(t: pa.DataType, column: str = "?"):
    """The SQLAlchemy type for an Arrow type (TypeError naming the column when unsupported)."""
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return BigInteger()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return Integer()
    if pa.types.is_int16(t) or pa.types.is_int8(t) or pa.types.is_uint8(t):
        return SmallInteger()
    if pa.types.is_float64(t):
        return Double()
    if pa.types.is_float32(t):
        return Float(precision=24)
    if pa.types.is_boolean(t):
        return Boolean()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return Text()
    raise TypeError(f"column {column}: Arrow type {t} has no SQL mapping in the load stage")


#: Keys that are SQLite's rowid: (table, column). A single-column INTEGER primary key aliases
#: the rowid (see the module docstring); PostgreSQL keeps BIGINT.
ROWID_KEYS: dict[str, str] = {"galaxies": "targetid"}


def column_type(table: str, field: pa.Field):
    """The SQLAlchemy type of a Parquet column in ``table``: :func:`sql_type`, except a key in
    :data:`ROWID_KEYS`, INTEGER on SQLite (the rowid) and BIGINT elsewhere."""
    t = sql_type(field.type, f"{table}.{field.name}")
    if ROWID_KEYS.get(table) == field.name and isinstance(t, BigInteger):
        return BigInteger().with_variant(Integer(), "sqlite")
    return t


def _comment(field: pa.Field) -> str | None:
    meta = field.metadata or {}
    desc = meta.get(b"description", b"").decode()
    unit = meta.get(b"unit", b"").decode()
    src = meta.get(b"source", b"").decode()
    parts = [desc] + ([f"unit: {unit}"] if unit else []) + ([f"source: {src}"] if src else [])
    text = "; ".join(p for p in parts if p)
    return text or None


def _keyed(table: Table, key: tuple[str, ...], with_key: bool) -> Table:
    """Declare the primary key now, or (``with_key=False``, for a bulk load that adds it after
    the data) only note it in ``table.info["key"]`` as (constraint name, columns)."""
    table.info["key"] = (f"pk_{table.name}", key)
    if with_key:
        table.append_constraint(PrimaryKeyConstraint(*key, name=f"pk_{table.name}"))
    return table


def data_table(name: str, schema: pa.Schema, metadata: MetaData, *,
               schema_name: str | None = None, with_key: bool = True,
               key: tuple[str, ...] | None = None,
               indexes: tuple[tuple[str, ...], ...] = (), clustered: bool = False) -> Table:
    """The SQL table for a Parquet table: its columns in Arrow order (NOT NULL where the Arrow
    field is not nullable or part of the key), its key (``KEYS[name]`` for the convert tables,
    else ``key``), and for galaxies the derived unit-vector columns. B-tree indexes are attached
    but created by the loader after the data. ``clustered``: on SQLite, a WITHOUT ROWID table
    stored in key order (a table written in key order then costs no second B-tree: 20% faster
    and half the size for the 25.8M rows of galaxy_void_assignments, measured)."""
    key = tuple(key) if key is not None else KEYS[name]
    missing = [k for k in key if k not in schema.names]
    if missing:
        raise KeyError(f"table {name}: key column(s) {missing} absent from the Parquet schema")
    cols = []
    for f in schema:
        cols.append(Column(f.name, column_type(name, f),
                           nullable=f.nullable and f.name not in key,
                           comment=_comment(f)))
    if name == "galaxies":
        for col, desc in DERIVED_GALAXY_COLUMNS:
            cols.append(Column(col, Double(), nullable=False, comment=f"load-derived: {desc}"))
    opts = {"sqlite_with_rowid": False} if clustered else {}
    table = _keyed(Table(name, metadata, *cols, schema=schema_name, **opts), key, with_key)
    for idx_cols in BTREE_INDEXES.get(name, ()) + tuple(indexes):
        Index(f"ix_{name}_{'_'.join(idx_cols)}", *(table.c[c] for c in idx_cols))
    return table


def positions_table(metadata: MetaData, *, schema_name: str | None = None,
                    with_key: bool = True) -> Table:
    """galaxy_positions: every galaxy in space-filling-curve order (``pos``)."""
    cols = [Column("pos", BigInteger(), nullable=False, autoincrement=False),
            Column("targetid", BigInteger(), nullable=False),
            Column("ra", Double(), nullable=False), Column("dec", Double(), nullable=False),
            Column("z", Double(), nullable=False)]
    cols += [Column(c, Double(), nullable=False) for c in ("unit_x", "unit_y", "unit_z")]
    cols += [Column(c, Double(), nullable=True) for c in ("comoving_x", "comoving_y",
                                                          "comoving_z")]
    # sqlite: "INTEGER PRIMARY KEY" makes pos the rowid, so a block is a contiguous rowid range.
    cols[0].type = BigInteger().with_variant(Integer(), "sqlite")
    return _keyed(Table("galaxy_positions", metadata, *cols, schema=schema_name,
                        comment="load-derived spatial index data: galaxies in Morton order"),
                  ("pos",), with_key)


def blocks_table(metadata: MetaData, *, schema_name: str | None = None,
                 with_key: bool = True) -> Table:
    """galaxy_blocks: bounding boxes of runs of galaxy_positions (an R-tree's leaves).

    On SQLite the loader creates this as an R*Tree virtual table with the same column names
    (``block`` is the R*Tree id, ``pos_lo``/``pos_hi`` auxiliary columns); this Table object is
    then only used to build queries."""
    cols = [Column("block", BigInteger().with_variant(Integer(), "sqlite"), nullable=False,
                   autoincrement=False)]
    for d in BLOCK_DIMS:
        cols += [Column(f"{d}_min", Double(), nullable=False),
                 Column(f"{d}_max", Double(), nullable=False)]
    cols += [Column("pos_lo", BigInteger(), nullable=False),
             Column("pos_hi", BigInteger(), nullable=False)]
    return _keyed(Table("galaxy_blocks", metadata, *cols, schema=schema_name,
                        comment="load-derived: bounding boxes of runs of galaxy_positions"),
                  ("block",), with_key)


def provenance_tables(metadata: MetaData) -> dict[str, Table]:
    """What was loaded, from where, when: one row per run, table, Parquet part and column."""
    runs = Table(
        "load_runs", metadata,
        Column("run_id", Integer(), primary_key=True, autoincrement=False),
        Column("loaded_at", DateTime(timezone=True), nullable=False),
        Column("parquet_dir", Text(), nullable=False),
        Column("tables_loaded", Text(), nullable=False, comment="comma-separated"),
        Column("tables_unchanged", Text(), nullable=False, comment="comma-separated"),
        Column("rows_loaded", BigInteger(), nullable=False),
        Column("software", Text(), nullable=False),
        comment="one row per load run that committed",
    )
    tables = Table(
        "load_tables", metadata,
        Column("table_name", Text(), primary_key=True),
        Column("digest", Text(), nullable=False,
               comment="sha256 over the parts' sha256 and the load settings"),
        Column("rows", BigInteger(), nullable=False),
        Column("parts", Integer(), nullable=False),
        Column("run_id", Integer(), nullable=False),
        Column("loaded_at", DateTime(timezone=True), nullable=False),
        Column("settings", Text(), nullable=False, comment="JSON: load settings"),
        Column("parquet_metadata", Text(), nullable=True,
               comment="JSON stored by convert under the 'desivoids' schema metadata key"),
        comment="the Parquet input currently loaded into each table",
    )
    parts = Table(
        "load_parts", metadata,
        Column("table_name", Text(), nullable=False),
        Column("part", Text(), nullable=False, comment="relative to the Parquet directory"),
        Column("sha256", Text(), nullable=False),
        Column("rows", BigInteger(), nullable=False),
        Column("bytes", BigInteger(), nullable=False),
        Column("source_files", Text(), nullable=True,
               comment="JSON list of the source (FITS) files named in the part's metadata"),
        Column("run_id", Integer(), nullable=False),
        PrimaryKeyConstraint("table_name", "part", name="pk_load_parts"),
    )
    columns = Table(
        "load_columns", metadata,
        Column("table_name", Text(), nullable=False),
        Column("column_name", Text(), nullable=False),
        Column("position", Integer(), nullable=False),
        Column("sql_type", Text(), nullable=False),
        Column("nulls", BigInteger(), nullable=False, comment="NULLs in the Parquet input"),
        Column("nans", BigInteger(), nullable=False,
               comment="NaNs in the Parquet input (stored as NULL on both backends)"),
        PrimaryKeyConstraint("table_name", "column_name", name="pk_load_columns"),
    )
    return {"load_runs": runs, "load_tables": tables, "load_parts": parts,
            "load_columns": columns}


PROVENANCE_TABLES = ("load_runs", "load_tables", "load_parts", "load_columns")
