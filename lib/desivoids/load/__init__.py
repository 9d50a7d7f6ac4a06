"""The load stage: the convert stage's Parquet tables into a SQL database (SQLite file by
default, PostgreSQL by URL), transactionally and idempotently, with spatial indexes and the
generic queries later stages use (sphere, cone)."""
from ..errors import LoadError
from .loader import load
from .queries import cone, engine, sky_method, sphere
from .stage import LoadResult, TableResult, run

__all__ = ["run", "load", "LoadResult", "TableResult", "LoadError", "sphere", "cone",
           "engine", "sky_method"]
