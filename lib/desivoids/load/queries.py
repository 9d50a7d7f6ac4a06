"""Spatial queries on the loaded database, identical on SQLite and PostgreSQL.

Each query is an index filter followed by an exact test in SQL on stored float64 columns, with
every constant computed once in Python and bound as a parameter. Both databases evaluate the
same IEEE-754 arithmetic in the same order on the same bits, so they accept exactly the same
rows, whatever index found the candidates. Results are ordered by targetid.

- :func:`sphere`: galaxies strictly inside a comoving sphere, |x - c|^2 < R^2 (VAST's "inside a
  hole" test). Filter: galaxy_blocks (R*Tree on SQLite, GiST on cube on PostgreSQL).
- :func:`cone`: galaxies within an angle of a sky position, |u - u0|^2 <= (2 sin(r/2))^2 on unit
  vectors, and zmin <= z <= zmax. Exact across RA = 0/360 and at the poles because it never
  compares RA values. Filter: q3c_radial_query on PostgreSQL when the Q3C index exists
  (radius padded; the exact test decides), else galaxy_blocks.

Void membership (which galaxies are in which void) is the environment stage's, not a query here.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from sqlalchemy import (Column, Double, Integer, MetaData, Table, and_, bindparam, func, select,
                        text, true)
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.engine import URL, Connection, Engine, create_engine, make_url

from . import schema as S
from .spatial import UNBOUNDED, chord2, cone_box, sphere_box, unit_vectors

__all__ = ["engine", "dispose_engines", "sphere", "cone", "sky_method", "normalise_url",
           "RESULT_COLUMNS"]

RESULT_COLUMNS = ("targetid", "ra", "dec", "z")
_MD = MetaData()
_POS = S.positions_table(_MD)
_BLK = S.blocks_table(_MD)
_GAL = Table("galaxies", _MD, Column("targetid", Integer), Column("ra", Double),
             Column("dec", Double), Column("z", Double), Column("unit_x", Double),
             Column("unit_y", Double), Column("unit_z", Double), extend_existing=True)
_Q3C_PAD_DEG = 1e-8


def normalise_url(url) -> URL:
    """A database URL as SQLAlchemy's URL object, PostgreSQL always through psycopg 3."""
    u = make_url(url)
    if u.get_backend_name() in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


_ENGINES: dict[str, Engine] = {}

#: How long a connection to a SQLite file waits for another's lock (``desivoids run --jobs``
#: runs a stage that reads the database beside one that writes its tables: the reader waits
#: for the writer's commit, the writer for the reader's query), instead of pysqlite's 5 s.
SQLITE_BUSY_SECONDS = 600
#: the same wait, for a SQLite connection opened outside SQLAlchemy (ADBC)
SQLITE_BUSY_PRAGMA = f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}"


def new_engine(url: URL) -> Engine:
    """A new SQLAlchemy engine for ``url``; on SQLite its connections wait
    :data:`SQLITE_BUSY_SECONDS` for another connection's lock."""
    if url.get_backend_name() == "sqlite":
        return create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    return create_engine(url)


def _engine_for(url: URL) -> Engine:
    key = url.render_as_string(hide_password=False)
    if key not in _ENGINES:
        _ENGINES[key] = new_engine(url)
    return _ENGINES[key]


def dispose_engines() -> None:
    """Close the pooled connections of the engines :func:`engine` created from URLs."""
    while _ENGINES:
        _ENGINES.popitem()[1].dispose()


def engine(db) -> Engine | Connection:
    """An SQLAlchemy engine for a URL (cached), or the engine/connection given."""
    if isinstance(db, (Engine, Connection)):
        return db
    return _engine_for(normalise_url(db))


class _Conn:
    """Use a given Connection as is, or borrow one from an Engine."""

    def __init__(self, db):
        self.db = engine(db)

    def __enter__(self) -> Connection:
        conn = self.db if isinstance(self.db, Connection) else self.db.connect()
        self._c = conn
        if conn.dialect.name == "postgresql":
            # The planner cannot estimate the exact tests, overrates the cost and then spends
            # 100-200 ms JIT-compiling a query that runs in 1 ms: no JIT here (this
            # transaction only).
            conn.exec_driver_sql("SET LOCAL jit = off")
        return conn

    def __exit__(self, *exc):
        if not isinstance(self.db, Connection):
            self._c.close()  # rolls back: SET LOCAL ends with it


def _frame(rows, columns=RESULT_COLUMNS) -> pd.DataFrame:
    """The result rows as a DataFrame [targetid (int64), float64 ...], built column by column:
    ``pd.DataFrame(rows)`` on SQLAlchemy Rows probes every Row for named-tuple attributes, each
    miss raising inside SQLAlchemy, which was 2/3 of a sphere query's time (profiled at DR1
    scale: 25 of 37 ms per query)."""
    cols = list(zip(*rows)) if rows else [()] * len(columns)
    return pd.DataFrame({c: np.array(v, dtype=np.int64 if c == "targetid" else np.float64)
                         for c, v in zip(columns, cols)})


def _bound(v):
    return v if isinstance(v, BindParameter) else float(v)


def _block_filter(dialect: str, box: dict[str, tuple], blk=_BLK):
    """Overlap of galaxy_blocks boxes with ``box`` (per dimension (lo, hi): floats, or bound
    parameters, which are taken as bounded)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import array

        def param(v, name):
            return v if isinstance(v, BindParameter) else bindparam(name, float(v), type_=Double)

        mine = func.cube(array([blk.c[f"{d}_min"] for d in S.BLOCK_DIMS]),
                         array([blk.c[f"{d}_max"] for d in S.BLOCK_DIMS]))
        query = func.cube(array([param(box[d][0], f"lo_{i}") for i, d in
                                 enumerate(S.BLOCK_DIMS)]),
                          array([param(box[d][1], f"hi_{i}") for i, d in
                                 enumerate(S.BLOCK_DIMS)]))
        return mine.op("&&")(query)
    conds = []
    for d in S.BLOCK_DIMS:
        lo, hi = box[d]
        if isinstance(lo, BindParameter) or lo > -UNBOUNDED:
            conds.append(blk.c[f"{d}_max"] >= _bound(lo))
        if isinstance(hi, BindParameter) or hi < UNBOUNDED:
            conds.append(blk.c[f"{d}_min"] <= _bound(hi))
    return and_(*conds)


def _blocks_select(dialect: str, box, exact):
    """Galaxies of the blocks overlapping ``box`` that pass ``exact`` (an expression on
    galaxy_positions columns), ordered by targetid.

    PostgreSQL reads each block's position range through a LATERAL subquery, so the plan is
    always "GiST on blocks, then a primary-key range scan per block" (a plain join lets the
    planner misjudge the exact test's selectivity and scan the whole table). SQLite has no
    LATERAL and needs none: its planner walks the R*Tree, then the rowid range."""
    cols = [_POS.c[c] for c in RESULT_COLUMNS]
    if dialect == "postgresql":
        inner = (select(*cols).where(_POS.c.pos.between(_BLK.c.pos_lo, _BLK.c.pos_hi), exact)
                 .offset(0).lateral("p"))  # OFFSET 0: PostgreSQL must not flatten it
        return (select(*(inner.c[c] for c in RESULT_COLUMNS))
                .select_from(_BLK.join(inner, true()))
                .where(_block_filter(dialect, box)).order_by(inner.c.targetid))
    join = _BLK.join(_POS, _POS.c.pos.between(_BLK.c.pos_lo, _BLK.c.pos_hi))
    return (select(*cols).select_from(join)
            .where(_block_filter(dialect, box), exact).order_by(_POS.c.targetid))


def _sq(col, v):
    d = col - (v if isinstance(v, BindParameter) else float(v))
    return d * d


#: the sphere box's bounded dimensions (its redshift side is always unbounded, see sphere_box)
_SPHERE_DIMS = ("unit_x", "unit_y", "unit_z", "r")


@functools.lru_cache(maxsize=None)
def _sphere_stmt(dialect: str):
    """The sphere query with every constant a bound parameter, built once per dialect: building
    and compiling the expression per call cost ~3 ms, as much as SQLite's own work on a typical
    void."""
    p = _POS.c
    exact = (_sq(p.comoving_x, bindparam("cx", type_=Double))
             + _sq(p.comoving_y, bindparam("cy", type_=Double))
             + _sq(p.comoving_z, bindparam("cz", type_=Double))
             < bindparam("r2", type_=Double))
    box = {d: (bindparam(f"{d}_lo", type_=Double), bindparam(f"{d}_hi", type_=Double))
           for d in _SPHERE_DIMS}
    box["z"] = (-UNBOUNDED, UNBOUNDED)
    return _blocks_select(dialect, box, exact)


#: a row of :func:`_pg_sphere_sql`'s result: int8send(targetid) || float8send(ra, dec, z)
_PG_ROW = np.dtype([("targetid", ">i8"), ("ra", ">f8"), ("dec", ">f8"), ("z", ">f8")])


@functools.lru_cache(maxsize=None)
def _pg_sphere_sql():
    """(SQL, compiled) of the sphere query on PostgreSQL with its rows packed by the server
    into one bytea, each row the columns' binary send format (big-endian int8 and float8: the
    stored bits), unordered. Fetched in binary, it is the result's arrays in one numpy view,
    sorted by targetid there: no Python object per row, and no sort in the server (a sixth of
    its CPU for a large sphere). Receiving the rows as tuples and framing them was half the CPU
    of a large sphere query, server and client together (DR1 scale, 200 void spheres: p95
    10.3 -> 6.5 CPU ms)."""
    from sqlalchemy.dialects.postgresql.psycopg import dialect

    s = _sphere_stmt("postgresql").order_by(None).subquery("s")
    row = func.int8send(s.c.targetid)
    for c in RESULT_COLUMNS[1:]:
        row = row.op("||")(func.float8send(s.c[c]))
    compiled = select(func.string_agg(row, text("''::bytea"))).compile(dialect=dialect())
    return str(compiled), compiled


def sphere(db, x: float, y: float, z: float, radius: float) -> pd.DataFrame:
    """Galaxies strictly inside the comoving sphere of ``radius`` (Mpc/h) around (x, y, z):
    DataFrame [targetid, ra, dec, z] ordered by targetid."""
    if not radius > 0:
        raise ValueError("radius must be positive")
    box = sphere_box(x, y, z, radius)
    params = {"cx": float(x), "cy": float(y), "cz": float(z),
              "r2": float(radius) * float(radius)}
    for d in _SPHERE_DIMS:
        params[f"{d}_lo"], params[f"{d}_hi"] = float(box[d][0]), float(box[d][1])
    with _Conn(db) as conn:
        if conn.dialect.name != "postgresql":
            return _frame(_rows(conn.execute(_sphere_stmt(conn.dialect.name), params)))
        sql, compiled = _pg_sphere_sql()
        raw = conn.connection.driver_connection  # psycopg, in the connection's transaction
        (packed,) = raw.execute(sql, compiled.construct_params(params), binary=True).fetchone()
    rows = np.frombuffer(packed or b"", dtype=_PG_ROW)  # NULL: no galaxy in the sphere
    targetid = rows["targetid"].astype(np.int64)
    order = np.argsort(targetid, kind="stable")
    return pd.DataFrame({c: targetid[order] if c == "targetid" else
                         rows[c][order].astype(np.float64) for c in RESULT_COLUMNS})


def _rows(result) -> list[tuple]:
    """The rows of a result as the driver's tuples (SQLAlchemy's Row objects cost ~2 us each,
    a third of a large sphere query)."""
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def sky_method(db) -> str:
    """How :func:`cone` filters on this database: ``q3c`` or ``blocks``."""
    with _Conn(db) as conn:
        if conn.dialect.name != "postgresql":
            return "blocks"
        found = conn.execute(text(
            "SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'galaxies' AND indexname = 'ix_galaxies_q3c'")).first()
        return "q3c" if found else "blocks"


def cone(db, ra: float, dec: float, radius_deg: float, zmin: float = -np.inf,
         zmax: float = np.inf, *, method: str = "auto") -> pd.DataFrame:
    """Galaxies within ``radius_deg`` of (ra, dec) with zmin <= z <= zmax: DataFrame
    [targetid, ra, dec, z] ordered by targetid. ``method``: auto, q3c (PostgreSQL) or blocks."""
    if not 0 <= radius_deg <= 180:
        raise ValueError("radius_deg must be within [0, 180]")
    if not dec >= -90 or not dec <= 90:
        raise ValueError("dec must be within [-90, 90]")
    zmin = -UNBOUNDED if zmin == -np.inf else float(zmin)
    zmax = UNBOUNDED if zmax == np.inf else float(zmax)
    u = [float(v) for v in unit_vectors(ra, dec)]
    c2 = chord2(radius_deg)
    with _Conn(db) as conn:
        if method == "auto":
            method = sky_method(conn)
        if method == "q3c":
            if conn.dialect.name != "postgresql":
                raise ValueError("method 'q3c' needs PostgreSQL with the Q3C index")
            g = _GAL.c
            exact = and_(_sq(g.unit_x, u[0]) + _sq(g.unit_y, u[1]) + _sq(g.unit_z, u[2]) <= c2,
                         g.z >= zmin, g.z <= zmax)
            near = func.q3c_radial_query(g.ra, g.dec, float(ra) % 360.0, float(dec),
                                         min(float(radius_deg) * (1 + 1e-6) + _Q3C_PAD_DEG,
                                             180.0))
            stmt = (select(*(g[c] for c in RESULT_COLUMNS)).where(near, exact)
                    .order_by(g.targetid))
        elif method == "blocks":
            p = _POS.c
            exact = and_(_sq(p.unit_x, u[0]) + _sq(p.unit_y, u[1]) + _sq(p.unit_z, u[2]) <= c2,
                         p.z >= zmin, p.z <= zmax)
            stmt = _blocks_select(conn.dialect.name, cone_box(ra, dec, radius_deg, zmin, zmax),
                                  exact)
        else:
            raise ValueError("method must be 'auto', 'q3c' or 'blocks'")
        return _frame(_rows(conn.execute(stmt)))
