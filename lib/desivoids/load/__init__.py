"""The load stage: the convert stage's Parquet tables into a SQL database (SQLite file by
default, PostgreSQL by URL), transactionally and idempotently, with spatial indexes and the
queries later stages use (sphere, cone, counts per void)."""
from ..errors import LoadError
from .loader import LoadResult, TableResult, load, run
from .queries import cone, counts_per_void, engine, sky_method, sphere

__all__ = ["run", "load", "LoadResult", "TableResult", "LoadError", "sphere", "cone",
           "counts_per_void", "engine", "sky_method"]
