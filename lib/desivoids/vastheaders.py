"""The DESIVAST files' primary header keys (OMEGAM, ZLIMU, DLIML, DLIMU, MAGLIM, ...), as the
convert stage keeps them in its Parquet tables' schema metadata (key ``b"desivoids"``:
``{"sources": {file: {"PRIMARY": {...}, ...}}}``), read from the files and never hard-coded.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from . import formats
from .errors import InputError

__all__ = ["primary_headers", "common_value", "caps_present", "agreed_value", "header_float"]

METADATA_KEY = b"desivoids"


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
            c = formats.catalogue_of(path)
            if c is not None and "PRIMARY" in hdus:
                out[(c.algorithm, c.cap)] = {"file": path, **hdus["PRIMARY"]}
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


def caps_present(headers: dict[tuple[str, str], dict], caps=None) -> tuple[str, ...]:
    """The caps (in formats.CAPS order) whose DESIVAST files are present, i.e. that have a file
    of every algorithm; ``caps`` (a parameter) selects among them. An InputError naming the
    files when a cap has only some of its files, or when a selected cap has none."""
    have = {cap: sorted(a for a, c in headers if c == cap) for cap in formats.CAPS}
    partial = [InputError(", ".join(headers[(a, cap)]["file"] for a in algs), "PRIMARY", None,
                          f"{cap}: only {algs} of {list(formats.ALGORITHMS)} are present")
               for cap, algs in have.items() if algs and len(algs) < len(formats.ALGORITHMS)]
    if partial:
        raise InputError.all(partial)
    present = tuple(c for c in formats.CAPS if have[c])
    if caps is None or not len(caps):
        return present
    missing = [c for c in caps if c not in present]
    if missing:
        raise InputError(None, "PRIMARY", None, f"caps {missing} selected but no DESIVAST file "
                         f"of them was converted (present: {list(present)})")
    return tuple(c for c in present if c in caps)


def header_float(h: dict, key: str):
    """A header value as float; None for a key absent or written without a value (VAST writes
    MAGLIM so when no magnitude cut was made); an InputError naming the file, HDU and key for a
    value that is not a number."""
    v = h.get(key)
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputError(h.get("file"), "PRIMARY", key, f"{v!r} is not a number") from None


def agreed_value(headers: dict[tuple[str, str], dict], key: str, tolerance: float = 0.0):
    """(value, agreement) of header ``key`` over the DESIVAST files: the VoidFinder files' value
    when every file is within ``tolerance`` of it (VAST's two finders round ZLIMU and DLIMU
    differently: formats.HEADER_TOLERANCES), else an InputError naming the files. Files that
    carry the key without a value count as no value; None when no file has one."""
    values = {h["file"]: header_float(h, key) for h in headers.values() if key in h}
    given = {f: v for f, v in values.items() if v is not None}
    if not given:
        return None, {"values": values, "tolerance": tolerance}
    vf = sorted({v for (a, _), h in headers.items() if formats.family(a).reference_limits
                 for v in [header_float(h, key)] if v is not None})
    chosen = vf[0] if vf else sorted(given.values())[0]
    spread = max(abs(v - chosen) for v in given.values())
    if len(vf) > 1 and max(vf) - min(vf) > tolerance or spread > tolerance:
        raise InputError(", ".join(sorted(given)), "PRIMARY", key,
                         f"the DESIVAST files disagree beyond {tolerance:g}: {given}")
    return chosen, {"values": values, "tolerance": tolerance, "max_difference": spread,
                    "from": "VoidFinder" if vf else "V2"}
