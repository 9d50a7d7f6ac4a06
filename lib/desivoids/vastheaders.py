"""The DESIVAST files' primary header keys (OMEGAM, ZLIMU, DLIML, DLIMU, MAGLIM, ...), as the
convert stage keeps them in its Parquet tables' schema metadata (key ``b"desivoids"``:
``{"sources": {file: {"PRIMARY": {...}, ...}}}``), read from the files and never hard-coded.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq

from .errors import InputError

__all__ = ["primary_headers", "common_value"]

METADATA_KEY = b"desivoids"
_FILE_RE = re.compile(r"DESIVAST_BGS_VOLLIM_(?:V2_)?(VoidFinder|REVOLVER|VIDE|ZOBOV)_(NGC|SGC)"
                      r"\.fits$")


def primary_headers(*sources) -> dict[tuple[str, str], dict]:
    """(algorithm, cap) -> {"file": source file, KEY: value, ...} from Parquet files (paths),
    pyarrow tables or schemas written by the convert stage."""
    out: dict[tuple[str, str], dict] = {}
    for src in sources:
        if isinstance(src, (str, Path)):
            schema = pq.read_schema(src)
        else:
            schema = src.schema if hasattr(src, "schema") else src
        meta = schema.metadata or {}
        if METADATA_KEY not in meta:
            continue
        for path, hdus in json.loads(meta[METADATA_KEY]).get("sources", {}).items():
            m = _FILE_RE.search(str(path).replace("\\", "/").rsplit("/", 1)[-1])
            if m and "PRIMARY" in hdus:
                out[(m.group(1), m.group(2))] = {"file": path, **hdus["PRIMARY"]}
    return out


def common_value(headers: dict[tuple[str, str], dict], key: str) -> float:
    """The value of header ``key`` that every DESIVAST file carries; an InputError naming the
    files when they disagree or none carries it."""
    values = {h["file"]: h[key] for h in headers.values() if key in h}
    if not values:
        raise InputError(None, "PRIMARY", key, "no DESIVAST file carries this header key")
    distinct = sorted({float(v) for v in values.values()})
    if len(distinct) > 1:
        raise InputError(", ".join(sorted(values)), "PRIMARY", key,
                         f"the DESIVAST files disagree: {values}")
    return distinct[0]
