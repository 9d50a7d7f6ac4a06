"""recon: an inventory of every FITS file in the input folder.

For each file: size, sha256 (and whether it matches a published ``.sha256sum`` beside it), the
kind of DESI file its name says it is, and each HDU with EXTNAME, rows, columns (name, FITS
format, unit) and selected header keys. A file that is not FITS, is truncated, or lacks an HDU
its kind must have is recorded with its fault; ``strict=True`` turns any fault into an error that
names the file. Reading touches headers only, so a 26 GB catalogue costs one hashing pass.
"""
from __future__ import annotations

import gzip
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from astropy.io import fits
from tqdm import tqdm

from . import formats
from .checksums import published_sums, sha256_file

FITS_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fz")
BLOCK = 2880
_WARNINGS_LOCK = threading.Lock()
#: Header keys worth showing: DESIVAST (VAST) primary and extension keys, FastSpecFit and
#: spectra provenance. Whatever is present is recorded; nothing here is required.
HEADER_KEYS = (
    "OMEGAM", "HP", "ZLIML", "ZLIMU", "DLIML", "DLIMU", "MAGLIM", "VOLUME", "GALAXY", "WALLNUM",
    "FIELDNUM", "DENSITY", "AVSEP", "VOID", "HOLE", "SPECPROD", "COADDTYP", "NSIDE", "NEST",
    "SURVEY", "PROGRAM", "TILEID", "PETAL", "HPXPIXEL", "HPXNSIDE",
)


class ReconError(RuntimeError):
    """strict mode: at least one file has a fault."""


@dataclass
class ColumnInfo:
    name: str
    format: str
    unit: str | None


@dataclass
class HduInfo:
    index: int
    extname: str
    kind: str  # PRIMARY, IMAGE, BINTABLE, ...
    rows: int | None
    shape: list[int] | None
    columns: list[ColumnInfo] = field(default_factory=list)
    header: dict = field(default_factory=dict)


@dataclass
class FileInfo:
    path: str  # relative to the input folder
    size: int
    sha256: str | None
    published_sha256: str | None
    kind: str | None
    hdus: list[HduInfo] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults


def find_fits(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES))


def _header_keys(header: fits.Header) -> dict:
    out = {}
    for key in HEADER_KEYS:
        if key in header:
            value = header[key]
            out[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def inspect_file(path: Path, root: Path, *, checksum: bool = True, sums: dict | None = None) -> FileInfo:
    """Inventory one file; never raises for a bad file, records the fault instead."""
    rel = path.relative_to(root).as_posix()
    size = path.stat().st_size
    info = FileInfo(rel, size, sha256_file(path) if checksum else None,
                    (sums or {}).get(path.name), formats.classify(path.name))
    if info.sha256 and info.published_sha256 and info.sha256 != info.published_sha256:
        info.faults.append("sha256 differs from the published checksum")
    try:
        # catch_warnings swaps the process-wide filter list: with inventory()'s threads it must
        # not interleave, or one thread restores filters under another (warnings leak to stderr,
        # or "ignore" stays set for the rest of the process). Hashing above stays parallel.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns on truncation; we measure it below
            with fits.open(path, memmap=False, lazy_load_hdus=False, ignore_missing_simple=False) as hdul:
                end = 0
                for i, hdu in enumerate(hdul):
                    info.hdus.append(_describe(i, hdu))
                    fi = hdu.fileinfo()
                    end = max(end, fi["datLoc"] + fi["datSpan"])
    except Exception as exc:  # astropy raises OSError/ValueError/TypeError for non-FITS or broken headers
        info.faults.append(f"not a readable FITS file: {type(exc).__name__}: {exc}")
        return info
    try:
        size = _fits_bytes(path, size)  # a .fits.gz is measured by its decompressed stream
    except (OSError, EOFError) as exc:
        info.faults.append(f"truncated: compressed stream ends early: {type(exc).__name__}: {exc}")
        return info
    if size < end:
        info.faults.append(f"truncated: {size} bytes on disk, the headers promise {end}")
    elif size > end:
        # astropy stops, with only a warning, at a trailing HDU whose header is cut short
        info.faults.append(f"truncated: {size - end} bytes after the last complete HDU (ends at byte "
                           f"{end}) do not form a complete HDU")
    if info.kind is not None:
        found = [h.extname for h in info.hdus]
        for ext in formats.expected_hdus(info.kind):
            if ext not in found:
                info.faults.append(f"missing HDU {ext} (a {info.kind} file has {formats.expected_hdus(info.kind)})")
    return info


def _fits_bytes(path: Path, size: int) -> int:
    """Length of the FITS byte stream: the file size, or for a gzip file (which astropy opens
    transparently, with HDU offsets in the decompressed stream) the decompressed length."""
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return size
    n = 0
    with gzip.open(path, "rb") as g:
        while block := g.read(8 << 20):
            n += len(block)
    return n


def _describe(index: int, hdu) -> HduInfo:
    hdr = hdu.header
    extname = hdr.get("EXTNAME", "PRIMARY" if index == 0 else "")
    kind = "PRIMARY" if index == 0 else str(hdr.get("XTENSION", "")).strip()
    naxis = [hdr.get(f"NAXIS{k}", 0) for k in range(1, hdr.get("NAXIS", 0) + 1)]
    columns, rows = [], None
    if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
        rows = int(hdr.get("NAXIS2", 0))
        columns = [ColumnInfo(c.name, str(c.format), c.unit or None) for c in hdu.columns]
        shape = None
    else:
        shape = list(reversed(naxis)) or None  # numpy order: (rows, wavelengths)
    return HduInfo(index, str(extname).strip(), kind, rows, shape, columns, _header_keys(hdr))


def inventory(root: str | Path, *, checksum: bool = True, workers: int = 2,
              progress: bool = False) -> list[FileInfo]:
    """Inventory every FITS file under ``root`` (hashing in parallel threads)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"recon input folder {root} does not exist")
    files = find_fits(root)
    sums_by_dir: dict[Path, dict] = {}
    for p in files:
        if p.parent not in sums_by_dir:
            # DESI publishes a folder's sums beside the files or one level up (names keyed by
            # base name, so a list one level up that says catalogs/NAME still matches)
            sums_by_dir[p.parent] = {**published_sums(p.parent.parent), **published_sums(p.parent)}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = pool.map(lambda p: inspect_file(p, root, checksum=checksum, sums=sums_by_dir[p.parent]), files)
        return list(tqdm(jobs, total=len(files), desc="recon", unit="file", disable=not progress))


def tables(files: list[FileInfo]) -> dict[str, pd.DataFrame]:
    """The inventory as three tables: files, hdus, columns."""
    frows, hrows, crows = [], [], []
    for f in files:
        frows.append({"path": f.path, "kind": f.kind, "size_bytes": f.size, "hdus": len(f.hdus),
                      "sha256": f.sha256, "published_sha256_match": None if not f.published_sha256
                      else f.published_sha256 == f.sha256, "fault": "; ".join(f.faults) or None})
        for h in f.hdus:
            hrows.append({"path": f.path, "index": h.index, "extname": h.extname, "type": h.kind,
                          "rows": h.rows, "shape": None if h.shape is None else "x".join(map(str, h.shape)),
                          "columns": len(h.columns), "header": json.dumps(h.header, sort_keys=True)})
            for c in h.columns:
                crows.append({"path": f.path, "extname": h.extname, "column": c.name,
                              "format": c.format, "unit": c.unit})
    return {"files": pd.DataFrame(frows, columns=["path", "kind", "size_bytes", "hdus", "sha256",
                                                  "published_sha256_match", "fault"]),
            "hdus": pd.DataFrame(hrows, columns=["path", "index", "extname", "type", "rows", "shape",
                                                 "columns", "header"]),
            "columns": pd.DataFrame(crows, columns=["path", "extname", "column", "format", "unit"])}


def write(files: list[FileInfo], out_dir: str | Path) -> Path:
    """Write inventory.json (complete, nested) and files/hdus/columns as Parquet; return the JSON."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"files": [asdict(f) | {"ok": f.ok} for f in files]}
    target = out_dir / "inventory.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(tmp, target)
    for name, df in tables(files).items():
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
    return target


def run(input_dir: str | Path, out_dir: str | Path, *, strict: bool = False, checksum: bool = True,
        workers: int = 2, progress: bool = False) -> list[FileInfo]:
    """The recon stage: inventory, write it, and in strict mode fail on any fault."""
    files = inventory(input_dir, checksum=checksum, workers=workers, progress=progress)
    write(files, out_dir)
    bad = [f for f in files if not f.ok]
    if strict and bad:
        raise ReconError("recon (strict): faulty files: " + "; ".join(f"{f.path}: {', '.join(f.faults)}" for f in bad))
    return files


def cli_main(argv: list[str] | None = None) -> int:
    import argparse

    from .paths import RunLayout

    ap = argparse.ArgumentParser(prog="desivoids recon", description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="data/mock", help="run folder; reads <data-dir>/raw")
    ap.add_argument("--input", help="folder to inventory (default: <data-dir>/raw)")
    ap.add_argument("--out", help="output folder (default: <data-dir>/recon)")
    ap.add_argument("--strict", action="store_true", help="fail if any file has a fault")
    ap.add_argument("--no-checksum", action="store_true", help="skip sha256 (headers only)")
    args = ap.parse_args(argv)
    layout = RunLayout.of(args.data_dir)
    try:
        files = run(args.input or layout.raw, args.out or layout.recon, strict=args.strict,
                    checksum=not args.no_checksum, progress=True)
    except (ReconError, FileNotFoundError) as exc:
        print(f"error: {exc}")
        return 1
    bad = sum(not f.ok for f in files)
    print(f"recon: {len(files)} FITS files, {sum(len(f.hdus) for f in files)} HDUs, {bad} with faults")
    return 0
