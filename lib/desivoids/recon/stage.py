"""recon: an inventory of every FITS file in the input folder.

For each file: size, sha256 (and whether it matches a published ``.sha256sum`` beside it), the
kind of DESI file its name says it is, and each HDU with EXTNAME, rows, columns (name, FITS
format, TZERO, unit) and selected header keys. A file of a known kind is judged by
desivoids.formats.check_file, the judgement convert makes of it: a file that is not FITS, is
truncated, lacks an HDU or a column its kind must have, stores a column in an encoding that is
not the documented value, or has HDUs that are not row-matched is recorded with its faults (every
one); what convert accepts but a reader should know (an absent visualisation HDU, absent
optional columns, ZWARN stored as a logical) is recorded as notes. ``strict=True`` turns any
fault into an error that names the file. Reading touches headers only, so a 26 GB catalogue
costs one hashing pass; what only the data can show (duplicate TARGETIDs, shuffled rows) is
convert's to find.
"""
from __future__ import annotations

import gzip
import json
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from astropy.io import fits

from .. import formats
from ..checksums import published_sums
from ..directio import sha256_direct
from ..errors import InputError
from ..fitscheck import hdus_end, incompleteness
from ..outputs import staged
from ..paths import RunLayout, display, resolve
from ..progress import bar
from ..params import checked
from ..stages import file_name

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


class ReconError(InputError):
    """strict mode: at least one file has a fault (every faulty file is named)."""


@dataclass
class ColumnInfo:
    name: str
    format: str
    unit: str | None
    tzero: int | float | None = None  # 'B' with TZERO -128 is int8; 'J' with 2**31 is uint32
    tscal: int | float | None = None


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
    #: accepted, but worth knowing (formats.check_file notes): not a fault, strict ignores them
    notes: list[str] = field(default_factory=list)

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
    # hashed around the page cache (directio): the raw files are read once here, and acquire
    # wrote them the same way, so a buffered read would be a cold one that costs kernel CPU
    info = FileInfo(rel, size, sha256_direct(path).hexdigest() if checksum else None,
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
                for i, hdu in enumerate(hdul):
                    info.hdus.append(_describe(i, hdu))
                end = hdus_end(hdul)
    except Exception as exc:  # astropy raises OSError/ValueError/TypeError for non-FITS or broken headers
        info.faults.append(f"not a readable FITS file: {type(exc).__name__}: {exc}")
        return info
    try:
        size = _fits_bytes(path, size)  # a .fits.gz is measured by its decompressed stream
    except (OSError, EOFError) as exc:
        info.faults.append(f"truncated: compressed stream ends early: {type(exc).__name__}: {exc}")
        return info
    problem = incompleteness(size, end)
    if problem:
        info.faults.append(problem)
    if info.kind is not None:
        _judge(info)
    return info


def _judge(info: FileInfo) -> None:
    """Faults and notes of a file of a known kind, from formats.check_file (convert's rules)."""
    found = {}
    for h in info.hdus[1:]:
        found.setdefault(h.extname, formats.HDUFacts(
            h.rows, {c.name: (c.format, c.tzero, c.tscal) for c in h.columns}))
    check = formats.check_file(info.kind, found)
    missing: dict[str, list[str]] = {}
    absent: dict[str, list[str]] = {}
    for f in check.faults:
        if f.code == "missing_hdu":
            info.faults.append(f"missing HDU {f.hdu} (a {info.kind} file has "
                               f"{formats.expected_hdus(info.kind)})")
        elif f.code == "missing_column":
            missing.setdefault(f.hdu, []).append(f.column)
        else:
            where = f"HDU {f.hdu}" + (f", column {f.column}" if f.column else "")
            info.faults.append(f"{where}: {f.message}")
    info.faults += [f"HDU {h}: required columns not found: {', '.join(cs)}"
                    for h, cs in missing.items()]
    for f in check.notes:
        if f.code == "absent_column":
            absent.setdefault(f.hdu, []).append(f.column)
        elif f.code == "absent_hdu":
            info.notes.append(f"HDU {f.hdu}: {f.message}")
        else:
            info.notes.append(f"HDU {f.hdu}, column {f.column}: {f.message}")
    info.notes += [f"HDU {h}: optional columns absent (convert writes nulls): {', '.join(cs)}"
                   for h, cs in absent.items()]


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
        columns = [ColumnInfo(c.name, str(c.format), c.unit or None, c.bzero, c.bscale)
                   for c in hdu.columns]
        shape = None
    else:
        shape = list(reversed(naxis)) or None  # numpy order: (rows, wavelengths)
    return HduInfo(index, str(extname).strip(), kind, rows, shape, columns, _header_keys(hdr))


def inventory(root: str | Path, *, checksum: bool = True, workers: int = 2,
              progress: bool | None = None) -> list[FileInfo]:
    """Inventory every FITS file under ``root`` (hashing in parallel threads)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(root, None, None, "recon input folder does not exist (run acquire, "
                         "or give input_dir)")
    files = find_fits(root)
    sums_by_dir: dict[Path, dict] = {}
    for p in files:
        if p.parent not in sums_by_dir:
            # DESI publishes a folder's sums beside the files or one level up (names keyed by
            # base name, so a list one level up that says catalogs/NAME still matches)
            sums_by_dir[p.parent] = {**published_sums(p.parent.parent), **published_sums(p.parent)}
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        # the largest first, so the threads finish hashing together; the inventory keeps path order
        jobs = {p: pool.submit(inspect_file, p, root, checksum=checksum, sums=sums_by_dir[p.parent])
                for p in sorted(files, key=lambda p: -p.stat().st_size)}
        done = (jobs[p].result() for p in files)
        return list(bar(done, total=len(files), desc="recon", unit="file", progress=progress))


def tables(files: list[FileInfo]) -> dict[str, pd.DataFrame]:
    """The inventory as three tables: files, hdus, columns."""
    frows, hrows, crows = [], [], []
    for f in files:
        frows.append({"path": f.path, "kind": f.kind, "size_bytes": f.size, "hdus": len(f.hdus),
                      "sha256": f.sha256, "published_sha256_match": None if not f.published_sha256
                      else f.published_sha256 == f.sha256, "fault": "; ".join(f.faults) or None,
                      "notes": "; ".join(f.notes) or None})
        for h in f.hdus:
            hrows.append({"path": f.path, "index": h.index, "extname": h.extname, "type": h.kind,
                          "rows": h.rows, "shape": None if h.shape is None else "x".join(map(str, h.shape)),
                          "columns": len(h.columns), "header": json.dumps(h.header, sort_keys=True)})
            for c in h.columns:
                crows.append({"path": f.path, "extname": h.extname, "column": c.name,
                              "format": c.format,
                              "tzero": None if c.tzero is None else float(c.tzero),
                              "unit": c.unit})
    return {"files": pd.DataFrame(frows, columns=["path", "kind", "size_bytes", "hdus", "sha256",
                                                  "published_sha256_match", "fault", "notes"]),
            "hdus": pd.DataFrame(hrows, columns=["path", "index", "extname", "type", "rows", "shape",
                                                 "columns", "header"]),
            "columns": pd.DataFrame(crows, columns=["path", "extname", "column", "format",
                                                    "tzero", "unit"])}


def write(files: list[FileInfo], out_dir: str | Path) -> Path:
    """Publish inventory.json (complete, nested) and files/hdus/columns as Parquet into
    ``out_dir``, atomically (the folder is replaced as a whole); return the JSON's path."""
    out_dir = Path(out_dir)
    with staged(out_dir) as tmp:
        doc = {"files": [asdict(f) | {"ok": f.ok} for f in files]}
        (tmp / file_name("recon", "inventory")).write_text(json.dumps(doc, indent=1, sort_keys=True))
        for name, df in tables(files).items():
            df.to_parquet(tmp / f"{name}.parquet", index=False)
    return out_dir / file_name("recon", "inventory")


@dataclass
class ReconResult:
    """What the recon stage found: one FileInfo per FITS file, and where the inventory is."""

    files: list[FileInfo]
    out_dir: Path

    def tables(self) -> dict[str, pd.DataFrame]:
        return tables(self.files)

    @property
    def faulty(self) -> list[FileInfo]:
        return [f for f in self.files if not f.ok]

    def __str__(self) -> str:
        noted = sum(1 for f in self.files if f.notes)
        lines = [f"recon: {len(self.files)} FITS files, {sum(len(f.hdus) for f in self.files)} HDUs, "
                 f"{len(self.faulty)} with faults, {noted} with notes -> "
                 f"{display(self.out_dir / file_name('recon', 'inventory'))}"]
        lines += [f"  FAULT {f.path}: {'; '.join(f.faults)}" for f in self.faulty]
        return "\n".join(lines)


@checked("recon")
def run(data_dir: str = "data/mock", input_dir: str = "", strict: bool = False,
        checksum: bool = True) -> ReconResult:
    """The recon stage: inventory ``input_dir`` (default: what acquire verified), publish it in
    ``<data_dir>/recon``; fail naming every file whose sha256 differs from its published
    checksum, and with ``strict`` every faulty file."""
    layout = RunLayout.of(data_dir)
    source = resolve(input_dir) if input_dir else layout.raw
    files = inventory(source, checksum=checksum)
    write(files, layout.recon)
    result = ReconResult(files, layout.recon)
    changed = [f for f in files if f.published_sha256 and f.sha256
               and f.published_sha256 != f.sha256]
    if changed:  # strict or not: a file that is not what DESI published stops the run
        raise ReconError.all([ReconError(f.path, None, None, "sha256 differs from the published "
                                         "checksum: the file changed after it was published or "
                                         "fetched; fetch it again (desivoids acquire -p rehash "
                                         "true)") for f in changed])
    if strict and result.faulty:
        raise ReconError.all([ReconError(f.path, None, None, "; ".join(f.faults))
                              for f in result.faulty])
    return result
