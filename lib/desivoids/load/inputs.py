"""The load stage's input: the convert stage's Parquet tables, checked against their contract.

Everything here happens before the database is touched, so a missing file, an unreadable part or
a schema that does not match :mod:`desivoids.convert.columns` fails with the file, table and
column named, and the database is never opened.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..checksums import sha256_file
from ..convert import columns as contract
from . import schema as S
from ..errors import LoadError

__all__ = ["Part", "TableInput", "check_schema", "discover", "sha256_file"]


@dataclass(frozen=True)
class Part:
    path: Path
    rel: str  # relative to the Parquet directory
    rows: int
    bytes: int
    sha256: str
    source_files: tuple[str, ...]


@dataclass
class TableInput:
    """One table's Parquet input: its parts (in name order) and their common Arrow schema."""

    name: str
    parts: list[Part]
    schema: pa.Schema
    metadata: dict | None = None
    nonnull: tuple[str, ...] = field(default=())

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    def digest(self, settings: dict) -> str:
        """Identifies this input and how it is loaded: same digest, same table content."""
        h = hashlib.sha256()
        for p in self.parts:
            h.update(f"{p.rel}\0{p.sha256}\0{p.rows}\n".encode())
        h.update(json.dumps(settings, sort_keys=True).encode())
        return h.hexdigest()


def _metadata(schema: pa.Schema) -> dict | None:
    raw = (schema.metadata or {}).get(contract.METADATA_KEY)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def check_schema(name: str, path: Path, got: pa.Schema) -> None:
    """LoadError naming the column where a Parquet schema breaks the convert contract."""
    want = contract.schema_of(name)
    for f in want:
        if f.name not in got.names:
            raise LoadError(path, name, f.name, "column missing from the Parquet file "
                            "(see desivoids.convert.columns)")
        t = got.field(f.name).type
        if t != f.type:
            raise LoadError(path, name, f.name, f"Arrow type {t}, expected {f.type}")
    if name != "galaxies":
        extra = [n for n in got.names if n not in want.names]
        if extra:
            raise LoadError(path, name, extra[0], "column not in the convert contract")
    for f in got:
        try:
            S.sql_type(f.type, f.name)
        except TypeError as exc:
            raise LoadError(path, name, f.name, str(exc)) from None
    if name == "galaxies":
        derived = [c for c, _ in S.DERIVED_GALAXY_COLUMNS if c in got.names]
        if derived:
            raise LoadError(path, name, derived[0], "column name reserved for a load-derived "
                            "column")


def _contract_nullability(name: str, schema: pa.Schema) -> pa.Schema:
    """NOT NULL where the contract says so or the column is part of the key, whatever the
    file declares (a writer may mark every field nullable)."""
    want = contract.schema_of(name)
    key = S.KEYS[name]
    fields = []
    for f in schema:
        required = f.name in key or (f.name in want.names and not want.field(f.name).nullable)
        fields.append(f.with_nullable(not required))
    return pa.schema(fields)


def _part(path: Path, base: Path, name: str, sha256: Future | str) -> tuple[Part, pa.Schema]:
    try:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        rows = pf.metadata.num_rows
    except Exception as exc:  # any reader error: name the file
        raise LoadError(path, name, None, f"unreadable Parquet file: {exc}") from None
    meta = _metadata(schema) or {}
    sources = tuple(sorted((meta.get("sources") or {}).keys()))
    digest = sha256 if isinstance(sha256, str) else sha256.result()
    part = Part(path=path, rel=path.relative_to(base).as_posix(), rows=rows,
                bytes=path.stat().st_size, sha256=digest, source_files=sources)
    return part, schema


def discover(parquet_dir: str | Path, tables: tuple[str, ...] = S.DATA_TABLES,
             sha256: dict[str, str] | None = None) -> dict[str, TableInput]:
    """Every table's input under ``parquet_dir`` (``galaxies/`` dataset or ``galaxies.parquet``;
    ``<table>.parquet`` for the others), with schemas checked against the convert contract.

    Each part's sha256 is hashed (on every core: hashlib releases the GIL), unless ``sha256``
    gives it by path relative to ``parquet_dir``: the stage passes the digests of convert's
    manifest, which it has just verified by hashing every file (the parts would otherwise be
    hashed twice, seconds at DR1 scale)."""
    base = Path(parquet_dir)
    if not base.is_dir():
        raise LoadError(base, None, None, "Parquet directory not found: run the convert stage")
    known = sha256 or {}
    with ThreadPoolExecutor(max(1, min(8, os.cpu_count() or 1))) as pool:
        hashes: dict[Path, Future | str] = {}

        def digest(path: Path) -> Future | str:
            rel = path.relative_to(base).as_posix()
            if rel in known:
                return known[rel]
            if path not in hashes:
                hashes[path] = pool.submit(sha256_file, path)
            return hashes[path]

        try:
            return _discover(base, tables, digest)
        finally:
            for f in hashes.values():
                if isinstance(f, Future):
                    f.cancel()


def _discover(base: Path, tables: tuple[str, ...], digest) -> dict[str, TableInput]:
    out: dict[str, TableInput] = {}
    listed: dict[str, list[Path]] = {}
    for name in tables:
        d, f = base / name, base / f"{name}.parquet"
        if d.is_dir():
            paths = sorted(d.glob("*.parquet"))
            if not paths:
                raise LoadError(d, name, None, "Parquet dataset directory holds no .parquet part")
        elif f.is_file():
            paths = [f]
        else:
            raise LoadError(f, name, None, "Parquet input missing: run the convert stage")
        listed[name] = paths
        for p in paths:
            digest(p)  # queued: hashed while the footers are checked
    for name, paths in listed.items():
        parts, schema0 = [], None
        for p in paths:
            part, schema = _part(p, base, name, digest(p))
            check_schema(name, p, schema)
            if schema0 is None:
                schema0 = schema
            elif [(f.name, f.type) for f in schema] != [(f.name, f.type) for f in schema0]:
                names0 = schema0.names
                first = next((a.name for a, b in zip(schema, schema0)
                              if a.name != b.name or a.type != b.type),
                             next((n for n in schema.names if n not in names0),
                                  next((n for n in names0 if n not in schema.names), None)))
                raise LoadError(p, name, first, f"columns differ from {paths[0].name}")
            parts.append(part)
        meta = _metadata(schema0)
        schema0 = _contract_nullability(name, schema0.remove_metadata())
        nonnull = tuple(f.name for f in schema0 if not f.nullable)
        out[name] = TableInput(name, parts, schema0, meta, nonnull)
    return out
