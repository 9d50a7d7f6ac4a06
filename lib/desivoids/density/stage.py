"""The density stage: a continuous environment for every galaxy, and the quenched fraction as a
function of it.

For every galaxy of the converted catalogue, in the cap environment placed it in: the k-NN
density contrast delta_k of the volume-limited tracers with its edge fraction and flag
(:mod:`.knn`; the share of a fixed set of points filling the k-NN sphere that the survey's mask
and radial limits keep, counted only for spheres that cross the survey's edge), the T-Web
class of its cell (:mod:`.tweb`) and, per algorithm, its void-centric distance in effective
radii (:mod:`.voidcentric`). The k-NN queries run as Dask tasks over chunks of galaxies (the
local scheduler or the cluster of ``scheduler_address``), each cap's tracer tree, footprint and
unit-ball points sent to the workers once.

Then, on plausibility's sample, the quenched fraction at fixed stellar mass against delta_k
(quantile bins) and against r / R_eff per algorithm, with jackknife intervals
(:mod:`desivoids.systematics.profiles`); the void-minus-wall comparison with the T-Web void
class as a fifth labelling beside the four DESIVAST ones
(:func:`desivoids.systematics.compare_void_wall`), the agreement of T-Web voids with each
labelling, and the quenched fraction per web class.

Outputs in ``<data_dir>/density``: ``galaxy_environment.parquet`` (targetid, cap, r_k, delta_k,
edge_fraction, edge_flag, web_class, and per algorithm ``void_centric_<algorithm>`` and
``nearest_void_<algorithm>``, ordered by targetid) and the database table ``galaxy_environment``;
``web_counts.parquet`` (cells, volume and tracers per cap and class); ``profiles.parquet``,
``web_comparison.parquet``, ``web_fractions.parquet`` and ``report.json``.
"""
from __future__ import annotations

import contextvars
import ctypes
import ctypes.util
import json
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

from .. import compute, formats, idsets, paths
from ..environment.flags import NO_VOID
from ..environment.mask import Footprint, HealpixFootprint
from ..environment.membership import GALAXY_COLUMNS, _column, _galaxy_xyz, _void_table
from ..environment.stage import _tracer_mask, void_inputs
from ..errors import InputError
from ..load.tables import table_transaction
from ..outputs import jsonable, staged, write_json
from ..params import checked
from ..stages import file_name
from ..points import spatial_order
from .knn import CapDensity, ball_points, footprint_volume, local_density
from .tweb import OUTSIDE_WEB, WEB_CLASSES, web_grid
from .voidcentric import void_centric

__all__ = ["run", "DensityResult", "TABLE", "column_of", "ULLAH_2026"]

SCHEMA_VERSION = 2  # 2: parameters.edge_points for random_ratio, no caps[].randoms
TABLE = "galaxy_environment"
#: Ullah et al. 2026 (arXiv:2604.02463), DESI DR1 BGS at z ~ 0.2: red fraction (percent) and
#: its error per T-Web class, for orientation only (their tracers, smoothing and red cut differ)
ULLAH_2026 = {"void": (13.89, 5.76), "sheet": (6.13, 1.27), "filament": (9.24, 1.66),
              "knot": (6.12, 3.42)}


def column_of(algorithm: str, what: str = "void_centric") -> str:
    """The galaxy_environment column of one algorithm: ``void_centric`` (r / R_eff) or
    ``nearest_void`` (the void it is measured to)."""
    return f"{what}_{algorithm.lower()}"


@dataclass
class DensityResult:
    out_dir: Path
    report: dict
    profiles: pd.DataFrame
    comparison: pd.DataFrame
    web_fractions: pd.DataFrame

    def __str__(self) -> str:
        r = self.report
        lines = [f"density: {r['galaxies']:,d} galaxies, k = {r['parameters']['k']} -> "
                 f"{paths.display(self.out_dir)}"]
        for c in r["caps"]:
            lines.append(f"  {c['cap']}: {c['tracers']:,d} tracers in {c['volume']:.3g} "
                         f"(Mpc/h)^3, delta_k median {c['delta_k_median']:+.2f}, "
                         f"{c['edge_flagged']:,d} galaxies flagged at the edge; web cells "
                         + ", ".join(f"{k} {v:,d}" for k, v in c["web_cells"].items()))
        return "\n".join(lines)


def _assignments(layout: paths.RunLayout, targetid: np.ndarray,
                 read: tuple[Path, dict] | None = None) -> dict[str, pd.DataFrame]:
    """environment's flag, void and cap (categorical) of every galaxy per algorithm, in
    ``targetid``'s order (sorted); an InputError when a galaxy or an algorithm is missing.
    ``read``: :func:`_read_assignments`' result when the file was read beforehand."""
    path, parts = _read_assignments(layout) if read is None else read
    out, problems = {}, []
    for alg, chunks in parts.items():
        a = (pa.concat_tables(chunks).unify_dictionaries().combine_chunks() if chunks else
             pa.table({"targetid": pa.array([], pa.int64()),
                       "cap": pa.array([], pa.dictionary(pa.int32(), pa.string())),
                       "flag": pa.array([], pa.int8()), "void": pa.array([], pa.int64())}))
        tid = a.column("targetid").to_numpy()
        if len(tid) > 1 and not np.all(tid[1:] >= tid[:-1]):  # documented sorted; do not rely
            order = np.argsort(tid, kind="stable")
            a, tid = a.take(pa.array(order)), tid[order]
        if not np.array_equal(tid, targetid):
            problems.append(InputError(path, "galaxy_void_assignments", "targetid",
                                       f"{alg}: the assignments list {len(tid):,d} galaxies, the "
                                       f"converted catalogue {len(targetid):,d} (or other ids): "
                                       "rerun environment"))
            continue
        cap = a.column("cap").combine_chunks()
        out[alg] = pd.DataFrame({  # the arrays as they are: a copy of each cost 3 s at DR1
            "cap": pd.Categorical.from_codes(cap.indices.to_numpy(zero_copy_only=False),
                                             cap.dictionary.to_pylist()),
            "flag": a.column("flag").to_numpy().astype(np.int8, copy=False),
            "void": pc.fill_null(a.column("void"), NO_VOID).to_numpy().astype(np.int64,
                                                                               copy=False)},
            copy=False)
    if problems:
        raise InputError.all(problems)
    return out


def _read_assignments(layout: paths.RunLayout) -> tuple[Path, dict[str, list]]:
    """galaxy_void_assignments' path and its rows per algorithm (Arrow tables).

    The file (25.8 M rows at DR1) is read once, a row group at a time, algorithm and cap as
    dictionary codes: a read per algorithm (``filters=``) decoded every row group four times,
    and cap as Python strings, 15 s of CPU (half of it system time) and a 48 s wait at DR1."""
    path = paths.require(layout.file("environment", "assignments"), "environment")
    cols = ["targetid", "algorithm", "cap", "flag", "void"]
    pf = pq.ParquetFile(path, read_dictionary=["algorithm", "cap"])
    parts: dict[str, list] = {alg: [] for alg in formats.ALGORITHMS}
    for i in range(pf.num_row_groups):
        t = pf.read_row_group(i, columns=cols)
        alg = t.column("algorithm").combine_chunks()
        code = alg.indices.to_numpy(zero_copy_only=False)
        for c, name in enumerate(alg.dictionary.to_pylist()):
            if name in parts:
                parts[name].append(t.drop_columns(["algorithm"]).take(
                    pa.array(np.flatnonzero(code == c))))
    return path, parts


def release_freed_memory() -> None:
    """Give memory freed by Arrow's pool and by glibc's malloc arenas back to the system.
    Both keep what they free for reuse: at DR1 the k-NN tasks' temporaries (in the Dask
    threads' arenas) and the tables read stayed resident under the T-Web grid, whose ~2 GiB
    then took the stage past 4 GiB in one run of two alike."""
    pa.default_memory_pool().release_unused()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)  # glibc only: every arena's free pages back to the system
    except (OSError, AttributeError):  # another libc: nothing to trim
        pass


def survey_box(fp: Footprint) -> tuple[np.ndarray, np.ndarray]:
    """Comoving bounding box (lo, hi) of the survey volume: the corners of every mask cell held,
    at DLIML and DLIMU, widened by DLIMU (1 - cos(cell diagonal)), the most a coordinate can
    exceed its corners' inside one cell. A HEALPix mask: the sphere of DLIMU."""
    if isinstance(fp, HealpixFootprint) or not fp.grid.any():
        return np.full(3, -fp.dlimu), np.full(3, fp.dlimu)
    n = fp.n
    i, j = np.nonzero(fp.grid)
    m = j - 90 * n  # a cell's Dec span as footprint_volume lays it out (row 90 N: +-1/N)
    dec_lo = np.clip(np.where(m > 0, m, m - 1) / n, -90, 90)
    dec_hi = np.clip(np.where(m >= 0, m + 1, m) / n, -90, 90)
    ra = np.radians(np.concatenate([i, i, i + 1, i + 1]) / n)
    dec = np.radians(np.concatenate([dec_lo, dec_hi, dec_lo, dec_hi]))
    d = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    pts = np.concatenate([d * fp.dliml, d * fp.dlimu])
    pad = fp.dlimu * (1 - np.cos(np.radians(2.0 / n) * np.sqrt(2))) + 1e-6
    return pts.min(0) - pad, pts.max(0) + pad


def _cap_density(cap: str, fp, tracer_xyz: np.ndarray, edge_points: int, seed: int
                 ) -> tuple[CapDensity, dict]:
    """The cap's tracer tree, mean density, volume, the unit-ball points of the edge fraction
    and the survey's bounding box."""
    inside = ~fp.outside(tracer_xyz)
    volume = footprint_volume(fp)
    tree = cKDTree(tracer_xyz[spatial_order(tracer_xyz)])  # neighbours near in memory too
    cd = CapDensity(cap, tree, mean_density=int(inside.sum()) / volume,
                    footprint=fp, points=ball_points(edge_points, seed))
    lo, hi = survey_box(fp)
    return cd, {"volume": volume, "tracers": int(len(tracer_xyz)),
                "tracers_inside": int(inside.sum()), "lo": lo, "hi": hi}


@checked("density")
def run(data_dir: str = "data/mock", db_url: str = "", scheduler_address: str = "",
        k: int = 5, edge_points: int = 64, cell: float = 2.0, smooth: float = 4.0,
        lambda_th: float = 0.2, chunk_rows: int = 1_000_000, num_workers: int = 0,
        seed: int = 20251202, definition: str = "ssfr", delta_bins: int = 5,
        r_edges: list = (0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0),
        mass_edges: list = (9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0),
        n_patches: dict = {"NGC": 32, "SGC": 12},  # noqa: B006 - the notebook's default; never mutated
        alpha: float = 0.05, caps: list = ()) -> DensityResult:
    """The density stage (parameters as the notebook declares them)."""
    layout = paths.RunLayout.of(data_dir)
    # environment's assignments read (Arrow's C++) while the catalogues are built (numpy), in
    # this run's context (its reads are checked); its errors after void_inputs', as before
    reader = ThreadPoolExecutor(1)
    reading = reader.submit(contextvars.copy_context().run, _read_assignments, layout)
    reader.shutdown(wait=False)
    try:
        inputs = void_inputs(layout, caps)  # the void centres: no surface rule is involved
    except BaseException:
        reading.cancel()
        wait([reading])
        raise
    selection, tables, limits = inputs.selection, inputs.tables, inputs.limits
    catalogues, galaxies, om = inputs.catalogues, inputs.galaxies, inputs.om
    del inputs  # its galaxies, in file order, are not held beside the sorted copy below
    targetid = galaxies.column("targetid").to_numpy()
    order = idsets.stable_order(targetid)
    sorted_id = targetid[order]
    # selection lists the galaxies in the file's order: joined before sorting, not by search
    tracer = _tracer_mask(targetid, selection)[order]
    # the positions' columns as float64 arrays (null: NaN) in targetid's order: a numpy gather
    # per column, where taking the Arrow table's rows cost 4 s at DR1; only those the positions
    # are computed from (0.3 CPU s and 150 MB for RA, Dec and Z, unused at DR1)
    galaxies = {c: _column(galaxies, c, np.float64)[order] for c in _position_columns(limits, om)}
    targetid = sorted_id
    assigned = _assignments(layout, targetid, reading.result())
    del reading
    release_freed_memory()  # the assignments' Arrow buffers
    cap_of = assigned[formats.ALGORITHMS[0]].cap.array  # categorical: compared by code
    n = len(targetid)
    cols = {"r_k": np.full(n, np.nan), "edge_fraction": np.full(n, np.nan),
            "delta_k": np.full(n, np.nan), "edge_flag": np.ones(n, bool),
            "web_class": np.full(n, OUTSIDE_WEB, np.int8)}
    cap_rows, webs = [], {}
    import dask

    step = max(1, int(chunk_rows))
    with compute.client(scheduler_address) as c:
        for cap, cat in catalogues.items():
            fp = cat.members["VoidFinder"].footprint
            lim = limits[("VoidFinder", cap)]
            own = np.flatnonzero(cap_of == cap)
            xyz = _galaxy_xyz(galaxies, own, lim.omega_m, om)
            is_tracer = tracer[own]
            cd, info = _cap_density(cap, fp, xyz[is_tracer], edge_points, seed)
            shared = compute.scatter(c, cd)
            tasks = [dask.delayed(local_density, pure=False)(shared, xyz[s:s + step],
                                                             is_tracer[s:s + step], k)
                     for s in range(0, len(own), step)]
            parts = compute.compute(tasks, c, num_workers=num_workers or None)
            for name in ("r_k", "edge_fraction", "delta_k", "edge_flag"):
                if parts:
                    cols[name][own] = np.concatenate([p[name] for p in parts])
            # the tree is not held beside the grid, nor what the tasks freed
            del cd, shared, tasks, parts
            release_freed_memory()
            web = web_grid(cap, xyz[is_tracer], fp.outside, info["lo"], info["hi"], cell,
                           smooth, lambda_th, shell=(fp.dliml, fp.dlimu),
                           sky=None if isinstance(fp, HealpixFootprint) else (fp.grid, fp.n))
            webs[cap] = web
            web_class = web.classify(xyz)  # the tracers' classes are their rows of it
            cols["web_class"][own] = web_class
            d = cols["delta_k"][own]
            cap_rows.append({"cap": cap, **{k_: v for k_, v in info.items()
                                            if k_ not in ("lo", "hi")},
                             "delta_k_median": float(np.nanmedian(d)) if np.isfinite(d).any()
                             else float("nan"),
                             "edge_flagged": int(cols["edge_flag"][own].sum()),
                             "web_cells": web.counts(),
                             "web_tracers": _class_counts(web_class[is_tracer])})
            for alg, (dist, void) in _void_centric(tables["voids"], limits, assigned, cap,
                                                   galaxies, own, om, xyz, lim.omega_m):
                _column_of(cols, column_of(alg), n, np.nan)[own] = dist
                _column_of(cols, column_of(alg, "nearest_void"), n, NO_VOID)[own] = void
    for alg in formats.ALGORITHMS:
        _column_of(cols, column_of(alg), n, np.nan)
        _column_of(cols, column_of(alg, "nearest_void"), n, NO_VOID)
    env = _table(targetid, cap_of, cols)
    del cols  # copied into env (0.6 GB at DR1), not held beside the answer and the writer
    release_freed_memory()
    from .answer import answer

    url = layout.db_url(db_url)
    out = layout.stage("density")
    # table and folder as one unit: the commit, recording the sealed folder, precedes its rename
    with table_transaction(url, "the density stage's table", layout.data_dir) as db, \
            staged(out, commit=db.committing("density")) as tmp:
        path = tmp / file_name("density", "environment")
        # galaxy_environment's Parquet file and database table (Arrow's and SQLite's C code,
        # which release the GIL: 10 s of CPU at DR1) are written while the answer is computed,
        # each in its own thread: one after the other they outlasted the answer
        with ThreadPoolExecutor(2) as pool:  # leaving waits for the writers, even on an error
            written = [pool.submit(db.publish, TABLE, env, key=("targetid",)),
                       pool.submit(pq.write_table, env, path, compression="zstd",
                                   use_dictionary=_dictionary_columns(env.schema))]
            profiles, comparison, web_fractions, agreement = answer(
                layout, env, assigned, targetid, definition=definition, delta_bins=delta_bins,
                r_edges=list(r_edges), mass_edges=list(mass_edges), n_patches=dict(n_patches),
                alpha=alpha)
        for w in written:
            w.result()  # a writer's error, if any
        counts = pd.DataFrame([{"cap": r["cap"], "web_class": name,
                                "cells": r["web_cells"][name],
                                "volume": r["web_cells"][name] * cell ** 3,
                                "tracers": r["web_tracers"][name]}
                               for r in cap_rows for name in WEB_CLASSES])
        report = {"schema": "desivoids.density", "schema_version": SCHEMA_VERSION,
                  "galaxies": int(n), "tracers": int(tracer.sum()),
                  "parameters": {"k": k, "edge_points": edge_points, "cell": cell,
                                 "smooth": smooth, "lambda_th": lambda_th, "seed": seed,
                                 "definition": definition, "delta_bins": delta_bins,
                                 "r_edges": list(r_edges), "mass_edges": list(mass_edges),
                                 "n_patches": dict(n_patches), "alpha": alpha,
                                 "caps": list(caps)},
                  "caps": cap_rows, "web_agreement": agreement,
                  "ullah_2026": {k_: {"red_percent": v[0], "error": v[1]}
                                 for k_, v in ULLAH_2026.items()}}
        counts.to_parquet(tmp / file_name("density", "web_counts"), index=False)
        profiles.to_parquet(tmp / file_name("density", "profiles"), index=False)
        comparison.to_parquet(tmp / file_name("density", "web_comparison"), index=False)
        web_fractions.to_parquet(tmp / file_name("density", "web_fractions"), index=False)
        np.savez_compressed(tmp / file_name("density", "web_slices"), **_slices(webs))
        write_json(tmp / file_name("density", "report"), report)
        db.prepare()  # what can fail happens before the commit
    return DensityResult(out, jsonable(report), profiles, comparison, web_fractions)


def _position_columns(limits: dict, galaxy_omega_m: float | None) -> list[str]:
    """The galaxies' columns that :func:`_galaxy_xyz` reads for the catalogues of ``limits``:
    the comoving positions, and RA, Dec and Z only when a catalogue's Omega_m differs from the
    galaxies' (its rule: then the positions are recomputed)."""
    recompute = galaxy_omega_m is not None and any(
        abs(galaxy_omega_m - lim.omega_m) > 1e-12 for lim in limits.values())
    return [c for c in GALAXY_COLUMNS
            if c.startswith("comoving_") or (recompute and c in ("ra", "dec", "z"))]


def _void_centric(voids, limits, assigned, cap, galaxies, own, om, xyz, xyz_omega_m):
    """(algorithm, void_centric's (r / R_eff, void)) of the cap's galaxies ``own`` for each
    algorithm, in two threads (numpy and cKDTree release the GIL; one algorithm after the other
    left a core idle half the time); ``xyz``: their positions at ``xyz_omega_m``, reused by the
    algorithms of that Omega_m."""
    def one(alg):
        a = assigned[alg]
        omega_m = limits[(alg, cap)].omega_m
        axyz = xyz if omega_m == xyz_omega_m else _galaxy_xyz(galaxies, own, omega_m, om)
        table, flag, void = _void_table(voids, alg, cap), a.flag.to_numpy()[own], \
            a.void.to_numpy()[own]
        dist, near = np.empty(len(own)), np.empty(len(own), np.int64)
        for s in range(0, len(own), VOID_CENTRIC_ROWS):  # each galaxy's answer is its own
            e = s + VOID_CENTRIC_ROWS
            dist[s:e], near[s:e] = void_centric(table, axyz[s:e], flag[s:e], void[s:e],
                                                workers=1)
        return alg, (dist, near)

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(one, formats.ALGORITHMS))


#: galaxies per call of :func:`.voidcentric.void_centric`: its dozen temporaries of a chunk
#: are reused by malloc, where those of a cap's 5 M galaxies (above glibc's 32 MB mmap
#: threshold) were mapped afresh and faulted in page by page: 0.6 M page faults at DR1
VOID_CENTRIC_ROWS = 1 << 19


def _column_of(cols: dict, name: str, n: int, fill) -> np.ndarray:
    """``cols[name]``, made ``n`` long filled with ``fill`` on its first use (a setdefault
    filled a 51 MB array on every call, 16 of them thrown away at DR1)."""
    if name not in cols:
        cols[name] = np.full(n, fill)
    return cols[name]


def _class_counts(classes: np.ndarray) -> dict[str, int]:
    c = classes[classes >= 0]
    n = np.bincount(c, minlength=len(WEB_CLASSES))
    return {name: int(n[i]) for i, name in enumerate(WEB_CLASSES)}


def _slices(webs: dict) -> dict[str, np.ndarray]:
    """The mid-height z slice of each cap's class grid and its extent, for the book's figure."""
    out = {}
    for cap, w in webs.items():
        mid = w.box.shape[2] // 2
        out[f"{cap}_classes"] = w.classes[:, :, mid]
        out[f"{cap}_extent"] = np.array([w.box.origin[0], w.box.origin[0] + w.box.shape[0] *
                                         w.box.cell, w.box.origin[1], w.box.origin[1] +
                                         w.box.shape[1] * w.box.cell,
                                         w.box.origin[2] + (mid + 0.5) * w.box.cell, w.box.cell])
    return out


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """galaxy_environment's columns worth Parquet's dictionary encoding: all but the floats.
    A float column's distinct values overflow the dictionary page within each row group, so
    the writer built a dictionary only to fall back to plain values: 2.9 -> 2.1 CPU s at DR1,
    and 197.0 -> 187.3 MB (the same rows)."""
    return [f.name for f in schema if not pa.types.is_floating(f.type)]


def _table(targetid: np.ndarray, cap: np.ndarray, cols: dict) -> pa.Table:
    """galaxy_environment: one row per galaxy, ordered by targetid; nulls where undefined."""
    def num(a):
        a = np.asarray(a, np.float64)
        return pa.array(a, mask=~np.isfinite(a))

    cap = pa.array(cap)  # a categorical's codes, or strings
    if pa.types.is_dictionary(cap.type):
        cap = cap.cast(pa.string())
    fields = {"targetid": pa.array(targetid), "cap": cap,
              "r_k": num(cols["r_k"]), "delta_k": num(cols["delta_k"]),
              "edge_fraction": num(cols["edge_fraction"]),
              "edge_flag": pa.array(np.asarray(cols["edge_flag"], bool)),
              "web_class": pa.array(np.asarray(cols["web_class"], np.int8),
                                    mask=np.asarray(cols["web_class"]) < 0)}
    for alg in formats.ALGORITHMS:
        fields[column_of(alg)] = num(cols[column_of(alg)])
        v = np.asarray(cols[column_of(alg, "nearest_void")], np.int64)
        fields[column_of(alg, "nearest_void")] = pa.array(v, mask=v == NO_VOID)
    meta = {b"desivoids": json.dumps({"web_classes": list(WEB_CLASSES)}).encode()}
    return pa.table(fields).replace_schema_metadata(meta)
