"""Tile (or HEALPix) spectra to Parquet: one row per selected target, wavelength grids once.

Input: a DESI coadd file and its redrock file (HDUs selected by EXTNAME; the expected HDUs come
from :mod:`desivoids.formats`). Selection, in this order, every row of REDSHIFTS counted in
exactly one bucket: SPECTYPE in a list, then ZWARN == 0, then DELTACHI2 > a minimum (strictly
greater, as DESIVAST's ``DELTACHI2 > 40``); the rest is kept.

Output per coadd and selection: ``<selection>/<folder>/spectra-<rest of the coadd name>.parquet``
below the spectra folder, where ``<selection>`` names the selection (``GALAXY_zwarn0_deltachi2gt40``)
so that two selections never write, or record, over each other, and ``<folder>`` is the coadd's
place in DESI's layout (from its DESI name, or its relative folder), with the target's
REDSHIFTS row (COEFF as a fixed-size list), every coadd FIBERMAP column, and
per camera B/R/Z ``{CAM}_FLUX``, ``{CAM}_IVAR`` (float32) and ``{CAM}_MASK`` (int32) as
fixed-size lists. Strings are decoded and stripped of FITS padding. The wavelength grids are not
repeated per row or per file: each distinct grid is written once as
``wavelength/{CAM}-{sha256[:16]}.parquet`` and every spectra file names its grids in its
key-value metadata (``desivoids.wavelength.{CAM}``), with the source files, header keys and the
selection. A pair that keeps no target is recorded as ``empty`` (no file), not as an error.

Pairs come from the acquire manifest (fetched files), from folders (every coadd below them with
the redrock DESI names beside it) or from explicit coadd and redrock files; the manifest keeps
one conversion record per (coadd, output, selection).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .. import compute
from ..errors import FormatError, InputError
from ..paths import contained

CAMERAS = ("B", "R", "Z")
IMAGES = ("FLUX", "IVAR", "MASK")
REQUIRED_REDSHIFTS = ("TARGETID", "Z", "ZWARN", "SPECTYPE", "DELTACHI2")
META_PREFIX = "desivoids."
_wave_lock = threading.Lock()


class SpectraFormatError(FormatError):
    """A coadd/redrock file that does not have DESI's structure; names file, HDU and column."""


@dataclass(frozen=True)
class Selection:
    spectype: tuple[str, ...] = ("GALAXY",)  # empty: any type
    zwarn_zero: bool = True
    min_deltachi2: float | None = 40.0  # kept when DELTACHI2 > this; None: no cut

    def key(self) -> str:
        return json.dumps({"spectype": sorted(self.spectype), "zwarn_zero": self.zwarn_zero,
                           "min_deltachi2": self.min_deltachi2}, sort_keys=True)

    def slug(self) -> str:
        """A folder name for this selection's outputs, readable and one per distinct key."""
        types = "+".join(re.sub(r"[^A-Za-z0-9]+", "-", t.upper()) for t in sorted(self.spectype)) or "anytype"
        cut = "anydeltachi2" if self.min_deltachi2 is None else f"deltachi2gt{self.min_deltachi2:g}"
        return f"{types}_{'zwarn0' if self.zwarn_zero else 'anyzwarn'}_{cut}"


@dataclass(frozen=True)
class Pair:
    """A coadd and its redrock file: relative to the raw folder when fetched by acquire, else
    absolute; ``where`` is the folder of the output below the selection's folder."""

    coadd: str
    redrock: str
    where: str = ""

    @classmethod
    def of(cls, coadd: str, redrock: str) -> "Pair":
        return cls(coadd, redrock, desi_folder(coadd))


@dataclass
class PairResult:
    coadd: str
    redrock: str
    state: str  # done | empty
    output: str | None
    n_targets: int
    n_spectype: int  # dropped: SPECTYPE not in the list
    n_zwarn: int  # dropped: ZWARN != 0
    n_deltachi2: int  # dropped: DELTACHI2 <= minimum
    n_kept: int
    wavelength: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ reading
def _hdu(hdul, extname: str, path: Path):
    try:
        return hdul[extname]
    except KeyError:
        names = [h.name for h in hdul]
        raise SpectraFormatError(path, extname, None, f"no HDU with this EXTNAME (HDUs: {names})") from None


def _check_hdus(hdul, kind: str, path: Path) -> None:
    from desivoids import formats

    have = {h.name for h in hdul}
    missing = [e for e in formats.expected_hdus(kind) if e not in have]
    if missing:
        raise SpectraFormatError(path, ",".join(missing), None,
                                 f"not a DESI {kind} file: missing HDUs {missing} "
                                 f"(HDUs present: {[h.name for h in hdul]})")


def _native(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind in "SU":
        return a
    return a.astype(a.dtype.newbyteorder("="), copy=False)


def _strings(a: np.ndarray) -> list[str]:
    a = np.asarray(a)
    if a.dtype.kind == "S":
        a = np.char.decode(a, "ascii", errors="replace")
    return [s.strip() for s in a.tolist()]


def _arrow_column(a: np.ndarray):
    import pyarrow as pa

    a = np.asarray(a)
    if a.dtype.kind in "SU":
        return pa.array(_strings(a), type=pa.string())
    a = _native(a)
    if a.ndim == 1:
        return pa.array(a)
    flat = np.ascontiguousarray(a).reshape(a.shape[0], -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])


def _wave_id(camera: str, wave: np.ndarray) -> str:
    return f"{camera}-{hashlib.sha256(np.ascontiguousarray(wave, dtype='<f8').tobytes()).hexdigest()[:16]}"


def write_wavelength(out_root: Path, camera: str, wave: np.ndarray, bunit: str | None) -> str:
    """Write a wavelength grid once (content-addressed); returns its id."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    gid = _wave_id(camera, wave)
    path = out_root / "wavelength" / f"{gid}.parquet"
    with _wave_lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            t = pa.table({"WAVELENGTH": pa.array(np.asarray(wave, dtype="f8"))})
            t = t.replace_schema_metadata({"camera": camera, "unit": bunit or "", "grid": gid})
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            pq.write_table(t, tmp)
            os.replace(tmp, path)
    return gid


def select_and_build(coadd: str | Path, redrock: str | Path, selection: Selection):
    """Read a coadd + redrock pair, apply the selection; returns (arrow table or None, counts,
    {camera: (wavelength, BUNIT)}, metadata)."""
    import pyarrow as pa
    from astropy.io import fits

    coadd, redrock = Path(coadd), Path(redrock)
    with fits.open(redrock, memmap=True) as rr, fits.open(coadd, memmap=True) as co:
        _check_hdus(rr, "redrock", redrock)
        _check_hdus(co, "coadd", coadd)
        zs = _hdu(rr, "REDSHIFTS", redrock).data
        fm = _hdu(co, "FIBERMAP", coadd).data
        for c in REQUIRED_REDSHIFTS:
            if zs is None or c not in zs.columns.names:
                raise SpectraFormatError(redrock, "REDSHIFTS", c, "column missing")
        if fm is None or "TARGETID" not in fm.columns.names:
            raise SpectraFormatError(coadd, "FIBERMAP", "TARGETID", "column missing")
        n = len(zs)
        tid_rr = _native(zs["TARGETID"]).astype(np.int64)
        tid_fm = _native(fm["TARGETID"]).astype(np.int64)
        if len(tid_fm) != n or not np.array_equal(tid_rr, tid_fm):
            pos = {t: i for i, t in enumerate(tid_fm.tolist())}
            if len(pos) != len(tid_fm):
                raise SpectraFormatError(coadd, "FIBERMAP", "TARGETID", "duplicate values, and the "
                                         f"order differs from {redrock.name} REDSHIFTS")
            missing = [t for t in tid_rr.tolist() if t not in pos]
            if missing:
                raise SpectraFormatError(redrock, "REDSHIFTS", "TARGETID", f"{len(missing)} targets "
                                         f"absent from {coadd.name} FIBERMAP (e.g. {missing[:3]})")
            row_of = np.array([pos[t] for t in tid_rr.tolist()], dtype=np.int64)
        else:
            row_of = np.arange(n)

        spectype = np.array([s.upper() for s in _strings(zs["SPECTYPE"])])
        zwarn = _native(zs["ZWARN"])
        dchi2 = _native(zs["DELTACHI2"]).astype(float)
        alive = np.ones(n, bool)
        ok = np.isin(spectype, [s.upper() for s in selection.spectype]) if selection.spectype else alive
        n_spectype = int((alive & ~ok).sum())
        alive &= ok
        ok = zwarn == 0 if selection.zwarn_zero else np.ones(n, bool)
        n_zwarn = int((alive & ~ok).sum())
        alive &= ok
        ok = dchi2 > selection.min_deltachi2 if selection.min_deltachi2 is not None else np.ones(n, bool)
        n_deltachi2 = int((alive & ~ok).sum())
        alive &= ok
        keep = np.flatnonzero(alive)
        counts = dict(n_targets=n, n_spectype=n_spectype, n_zwarn=n_zwarn, n_deltachi2=n_deltachi2,
                      n_kept=int(len(keep)))
        assert n_spectype + n_zwarn + n_deltachi2 + len(keep) == n

        waves = {}
        for cam in CAMERAS:
            wh = _hdu(co, f"{cam}_WAVELENGTH", coadd)
            w = _native(wh.data).astype("f8")
            if w.ndim != 1:
                raise SpectraFormatError(coadd, f"{cam}_WAVELENGTH", None,
                                         f"image of shape {w.shape}, expected 1-D")
            waves[cam] = (w, wh.header.get("BUNIT"))
        hdr = co[0].header
        meta = {"coadd": coadd.name, "redrock": redrock.name, "selection": selection.key(),
                "header": json.dumps({k: hdr[k] for k in ("TILEID", "PETAL", "NIGHT", "SPGRP", "SPGRPVAL",
                                                           "SURVEY", "PROGRAM", "HPXPIXEL", "HPXNSIDE")
                                      if k in hdr}, sort_keys=True)}
        if not len(keep):
            return None, counts, waves, meta

        cols: dict[str, object] = {}
        for name in zs.columns.names:
            cols[name] = _arrow_column(zs[name][keep])
        fm_rows = row_of[keep]
        for name in fm.columns.names:
            if name == "TARGETID":
                continue
            cols[name if name not in cols else f"FIBERMAP_{name}"] = _arrow_column(fm[name][fm_rows])
        for cam in CAMERAS:
            nw = len(waves[cam][0])
            for what in IMAGES:
                h = _hdu(co, f"{cam}_{what}", coadd)
                if h.data is None or h.data.ndim != 2 or h.data.shape != (len(fm), nw):
                    shape = None if h.data is None else h.data.shape
                    raise SpectraFormatError(coadd, f"{cam}_{what}", None,
                                             f"image of shape {shape}, expected ({len(fm)}, {nw}) = "
                                             f"(FIBERMAP rows, len({cam}_WAVELENGTH))")
                cols[f"{cam}_{what}"] = _arrow_column(h.data[fm_rows])
        return pa.table(cols), counts, waves, meta


def convert_pair(coadd: str | Path, redrock: str | Path, output: str | Path, selection: Selection,
                 wave_root: str | Path) -> PairResult:
    """Convert one pair; the Parquet file appears atomically (temporary name, then rename)."""
    import pyarrow.parquet as pq

    output, wave_root = Path(output), Path(wave_root)
    table, counts, waves, meta = select_and_build(coadd, redrock, selection)
    grids = {cam: write_wavelength(wave_root, cam, w, unit) for cam, (w, unit) in waves.items()}
    if table is None:
        return PairResult(str(coadd), str(redrock), "empty", None, wavelength=grids, **counts)
    md = {f"{META_PREFIX}{k}": v for k, v in meta.items()}
    md.update({f"{META_PREFIX}wavelength.{cam}": g for cam, g in grids.items()})
    md[f"{META_PREFIX}counts"] = json.dumps(counts, sort_keys=True)
    table = table.replace_schema_metadata(md)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, output)
    return PairResult(str(coadd), str(redrock), "done", str(output), wavelength=grids, **counts)


def read_spectra(path: str | Path, wave_root: str | Path | None = None):
    """A spectra Parquet file and its wavelength grids: (pyarrow table, {camera: ndarray})."""
    import pyarrow.parquet as pq

    path = Path(path)
    t = pq.read_table(path)
    md = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
    root = Path(wave_root) if wave_root else _find_wave_root(path)
    waves = {}
    for cam in CAMERAS:
        gid = md.get(f"{META_PREFIX}wavelength.{cam}")
        if gid:
            waves[cam] = pq.read_table(root / "wavelength" / f"{gid}.parquet")["WAVELENGTH"].to_numpy()
    return t, waves


def _find_wave_root(path: Path) -> Path:
    for p in path.parents:
        if (p / "wavelength").is_dir():
            return p
    raise FileNotFoundError(f"{path}: no 'wavelength' folder in any parent directory")


_TILE_COADD = re.compile(r"coadd-(\d)-(\d+)-thru(\d{8})\.fits")
_HEALPIX_COADD = re.compile(r"coadd-([a-z0-9]+)-([a-z0-9]+)-(\d+)\.fits")


def desi_folder(coadd: str) -> str:
    """The coadd's folder in DESI's layout: from its DESI name (cumulative tile or HEALPix
    coadd), else its own folder when it is a relative path, else none."""
    from .filesets import healpix_dir, tile_dir

    name = coadd.rsplit("/", 1)[-1]
    if m := _TILE_COADD.fullmatch(name):
        return tile_dir(int(m.group(2)), int(m.group(3)))
    if m := _HEALPIX_COADD.fullmatch(name):
        return healpix_dir(m.group(1), m.group(2), int(m.group(3)))
    return coadd.rsplit("/", 1)[0] if "/" in coadd and not coadd.startswith("/") else ""


def output_for(coadd: str | Pair, selection: Selection = Selection()) -> str:
    """Output path of a coadd's Parquet file for one selection, relative to the spectra folder."""
    pair = coadd if isinstance(coadd, Pair) else Pair.of(coadd, "")
    name = pair.coadd.rsplit("/", 1)[-1]
    stem = name[len("coadd-"):] if name.startswith("coadd-") else name
    out = f"spectra-{stem[:-5] if stem.endswith('.fits') else stem}.parquet"
    return "/".join(p for p in (selection.slug(), pair.where, out) if p)


def _key(path: Path, raw_root: Path) -> str:
    """How a record names an input file: relative to the raw folder when inside it."""
    try:
        return path.relative_to(raw_root).as_posix()
    except ValueError:
        return str(path)


def _kind(path: Path) -> str | None:
    """coadd or redrock: by DESI's name, else by the HDUs the file holds (headers only)."""
    if path.name.startswith(("coadd-", "redrock-")):
        return path.name.split("-", 1)[0]
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            names = {h.name for h in hdul}
    except (OSError, ValueError):
        return None
    return "redrock" if "REDSHIFTS" in names else "coadd" if "B_FLUX" in names else None


def find_pairs(inputs: Sequence[str | Path], raw_root: str | Path) -> tuple[list[Pair], list[tuple[str, str]]]:
    """Coadd + redrock pairs of folders (every ``coadd-*.fits`` below them, with the redrock of
    the same DESI name beside it) and of explicit files (a coadd with its redrock given or
    beside it; one coadd and one redrock of other names, told apart by their HDUs, are paired
    as given). Returns the pairs
    and the coadds found below a folder without their redrock, as (coadd, why); raises
    InputError for inputs that do not exist or yield no pair, every one at once."""
    raw_root = Path(raw_root).resolve()
    pairs: dict[str, Pair] = {}
    unpaired: list[tuple[str, str]] = []
    errors: list[InputError] = []
    files = []
    for item in inputs:
        p = Path(item).expanduser().resolve()
        if p.is_dir():
            found = 0
            for c in sorted(p.rglob("coadd-*.fits")):
                r = c.with_name("redrock-" + c.name[len("coadd-"):])
                if not r.is_file():
                    unpaired.append((_key(c, raw_root), f"no {r.name} beside it"))
                    continue
                rel = c.parent.relative_to(p).as_posix()
                where = desi_folder(c.name) or ("" if rel == "." else rel)
                pairs.setdefault(_key(c, raw_root), Pair(_key(c, raw_root), _key(r, raw_root), where))
                found += 1
            if not found:
                errors.append(InputError(p, None, None, "no coadd-*.fits with its redrock-*.fits below this folder"))
        elif p.is_file():
            files.append(p)
        else:
            errors.append(InputError(p, None, None, "no such file or folder"))
    kinds = {f: _kind(f) for f in files}
    coadds = [f for f in files if kinds[f] == "coadd"]
    redrocks = {f.name: f for f in files if kinds[f] == "redrock"}
    errors += [InputError(f, None, None, "neither a coadd nor a redrock file (by name, or by its HDUs: no "
                          "B_FLUX, no REDSHIFTS)") for f in files if kinds[f] is None]
    lone = []
    for c in coadds:
        rname = "redrock-" + c.name[len("coadd-"):]
        r = redrocks.pop(rname, None) or (c.with_name(rname) if c.with_name(rname).is_file() else None)
        if r is None:
            lone.append(c)
            continue
        pairs.setdefault(_key(c, raw_root), Pair(_key(c, raw_root), _key(r, raw_root), desi_folder(c.name)))
    if len(lone) == 1 and len(redrocks) == 1:  # one coadd and one redrock, named otherwise: as given
        (r,) = redrocks.values()
        pairs.setdefault(_key(lone[0], raw_root), Pair(_key(lone[0], raw_root), _key(r, raw_root),
                                                       desi_folder(lone[0].name)))
        lone, redrocks = [], {}
    errors += [InputError(c, None, None, f"coadd without its redrock: give {'redrock-' + c.name[6:]} too")
               for c in lone]
    errors += [InputError(r, None, None, "redrock without its coadd: give the coadd too") for r in redrocks.values()]
    if errors:
        raise InputError.all(errors)
    return list(pairs.values()), unpaired


# ------------------------------------------------------------------------------ many pairs
@dataclass
class SpectraSummary:
    pairs: int
    done: int
    empty: int
    failed: list[tuple[str, str]]
    skipped: int  # already converted with the same selection
    targets: int
    kept: int
    dropped_spectype: int
    dropped_zwarn: int
    dropped_deltachi2: int
    seconds: float = 0.0
    selection: str = ""  # the Selection's folder name (slug)
    records: list[dict] = field(default_factory=list)  # this call's (coadd, output, selection) records

    def rows(self) -> list[dict]:
        return [{"quantity": k, "value": v} for k, v in (
            ("selection", self.selection),
            ("coadd/redrock pairs", self.pairs), ("converted", self.done), ("empty (nothing kept)", self.empty),
            ("failed", len(self.failed)), ("already converted (skipped)", self.skipped),
            ("targets read", self.targets), ("dropped: SPECTYPE", self.dropped_spectype),
            ("dropped: ZWARN != 0", self.dropped_zwarn), ("dropped: DELTACHI2", self.dropped_deltachi2),
            ("kept", self.kept))]

    def __str__(self) -> str:
        lines = [f"spectra ({self.selection}): {self.pairs} pairs: {self.done} converted, {self.empty} empty, "
                 f"{len(self.failed)} failed, {self.skipped} already done; targets {self.targets} -> kept "
                 f"{self.kept} (dropped: SPECTYPE {self.dropped_spectype}, ZWARN {self.dropped_zwarn}, "
                 f"DELTACHI2 {self.dropped_deltachi2})"]
        lines += [f"  FAILED {c}: {e}" for c, e in self.failed]
        return "\n".join(lines)


def _convert_one(item, *, raw_root: Path, out_root: Path, selection: Selection) -> tuple:
    """One pair (a task: pure, picklable): ("failed", reason) or (state, row counts)."""
    pair, out_rel = item
    try:
        res = convert_pair(raw_root / pair.coadd, raw_root / pair.redrock,
                           contained(out_root, out_rel, source=str(raw_root / pair.coadd), key=out_rel),
                           selection, out_root)
    except (SpectraFormatError, OSError, ValueError) as exc:
        return "failed", f"{type(exc).__name__}: {exc}"
    if res.state == "empty":  # an output another coadd of the same name left must not outlive it
        (out_root / out_rel).unlink(missing_ok=True)
    return res.state, {k: getattr(res, k) for k in ("n_targets", "n_spectype", "n_zwarn",
                                                    "n_deltachi2", "n_kept")}


def convert_all(pairs: Sequence[Pair | tuple[str, str]], raw_root: str | Path, out_root: str | Path, manifest,
                selection: Selection = Selection(), *, workers: int = 2, redo: bool = False,
                progress: bool | None = None, unpaired: Sequence[tuple[str, str]] = (),
                scheduler_address: str = "") -> SpectraSummary:
    """Convert (coadd, redrock) pairs (paths relative to ``raw_root``, or absolute) into
    ``out_root``; resumable: a pair whose record for this output and selection is ``done``
    (output present) or ``empty`` is skipped. The totals cover every pair, skipped ones
    included, so the waterfall accounts for all rows; ``unpaired`` coadds count as failed.
    Pairs convert in ``workers`` local threads, or as tasks on the dask.distributed cluster of
    ``scheduler_address``; the manifest is written here, as each pair finishes."""
    from ..progress import bar

    raw_root, out_root = Path(raw_root), Path(out_root)
    pairs = [p if isinstance(p, Pair) else Pair.of(*p) for p in pairs]
    key = selection.key()
    batch = manifest.begin_batch("spectra", str(raw_root), {"selection": json.loads(key), "pairs": len(pairs)})
    t0 = time.perf_counter()
    todo, skipped = [], 0
    for pair in pairs:
        out_rel = output_for(pair, selection)
        prev = manifest.spectra_get(pair.coadd, out_rel, key)
        if (not redo and prev and prev["state"] in ("done", "empty")
                and (prev["state"] == "empty" or (out_root / out_rel).exists())):
            skipped += 1
            continue
        manifest.spectra_set(pair.coadd, out_rel, key, redrock=pair.redrock, state="planned", error=None,
                             batch=batch)
        todo.append((pair, out_rel))

    def record(item, outcome):
        pair, out_rel = item
        state, detail = outcome
        if state == "failed":
            manifest.spectra_set(pair.coadd, out_rel, key, redrock=pair.redrock, state="failed",
                                 error=detail, batch=batch)
            manifest.log(batch, pair.coadd, "failed", detail)
        else:
            manifest.spectra_set(pair.coadd, out_rel, key, redrock=pair.redrock, state=state,
                                 error=None, batch=batch, **detail)
            manifest.log(batch, pair.coadd, state, json.dumps(detail, sort_keys=True))
        return state

    states: dict[str, int] = {}
    task = functools.partial(_convert_one, raw_root=raw_root, out_root=out_root, selection=selection)
    with compute.client(scheduler_address) as c:
        done = compute.completed(task, todo, c, workers=workers)
        for item, outcome in bar(done, total=len(todo), desc="spectra", unit="pair", progress=progress):
            st = record(item, outcome)
            states[st] = states.get(st, 0) + 1
    rows = [manifest.spectra_get(p.coadd, output_for(p, selection), key) for p in pairs]
    rows = [r for r in rows if r is not None]
    ok = [r for r in rows if r["state"] in ("done", "empty")]
    tot = {k: sum(int(r[k] or 0) for r in ok) for k in ("n_targets", "n_spectype", "n_zwarn", "n_deltachi2", "n_kept")}
    seconds = time.perf_counter() - t0
    failed = [(r["coadd"], r["error"]) for r in rows if r["state"] == "failed"] + list(unpaired)
    for coadd, why in unpaired:
        manifest.log(batch, coadd, "failed", why)
    summary = SpectraSummary(
        pairs=len(pairs) + len(unpaired), done=sum(r["state"] == "done" for r in rows),
        empty=sum(r["state"] == "empty" for r in rows), failed=failed, skipped=skipped,
        targets=tot["n_targets"], kept=tot["n_kept"], dropped_spectype=tot["n_spectype"],
        dropped_zwarn=tot["n_zwarn"], dropped_deltachi2=tot["n_deltachi2"], seconds=seconds,
        selection=selection.slug(), records=rows)
    manifest.end_batch(batch, "done" if not summary.failed else "incomplete", files=len(todo),
                       verified=states.get("done", 0), empty=states.get("empty", 0),
                       failed=states.get("failed", 0) + len(unpaired), seconds=seconds)
    return summary


def pairs_from_manifest(manifest, filesets: Iterable[str] = ("tiles", "healpix")) -> list[Pair]:
    """Coadd + redrock pairs the transfer put in place (verified or complete)."""
    from .manifest import PRESENT
    from .plan import tile_pairs

    sets = set(filesets)
    rows = [r for r in manifest.files(PRESENT) if r.state != "empty" and (r.fileset in sets or r.fileset == "dir")]
    return [Pair.of(c, r) for c, r in tile_pairs(r.path for r in rows)]
