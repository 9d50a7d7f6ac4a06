"""The density stage: a continuous environment for every galaxy, and the quenched fraction as a
function of it.

For every galaxy of the converted catalogue, in the cap environment placed it in: the k-NN
density contrast delta_k of the volume-limited tracers with its edge fraction and flag
(:mod:`.knn`; random points uniform in the survey volume, as environment draws them), the T-Web
class of its cell (:mod:`.tweb`) and, per algorithm, its void-centric distance in effective
radii (:mod:`.voidcentric`). The k-NN queries run as Dask tasks over chunks of galaxies (the
local scheduler or the cluster of ``scheduler_address``), each cap's trees sent to the workers
once.

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

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.spatial import cKDTree

from .. import compute, formats, paths
from ..environment.flags import NO_VOID
from ..environment.membership import (_galaxy_xyz, _void_table)
from ..environment.stage import _tracer_mask, void_inputs
from ..environment.summary import footprint_randoms
from ..errors import InputError
from ..load.tables import table_transaction
from ..outputs import jsonable, staged, write_json
from ..params import checked
from ..stages import file_name
from .knn import CapDensity, footprint_volume, local_density
from .tweb import OUTSIDE_WEB, WEB_CLASSES, web_grid
from .voidcentric import void_centric

__all__ = ["run", "DensityResult", "TABLE", "column_of", "ULLAH_2026"]

SCHEMA_VERSION = 1
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


def _assignments(layout: paths.RunLayout, targetid: np.ndarray) -> dict[str, pd.DataFrame]:
    """environment's flag, void and cap of every galaxy per algorithm, in ``targetid``'s order
    (sorted); an InputError when a galaxy or an algorithm is missing."""
    path = paths.require(layout.file("environment", "assignments"),
                         "environment")
    out, problems = {}, []
    for alg in formats.ALGORITHMS:
        # one algorithm's rows at a time (25.8 M rows in all at DR1: reading them at once,
        # strings as Python objects, held 3 GB)
        a = pq.read_table(path, columns=["targetid", "cap", "flag", "void"],
                          filters=[("algorithm", "=", alg)], read_dictionary=["cap"]
                          ).to_pandas().sort_values("targetid", kind="stable")
        if not np.array_equal(a.targetid.to_numpy(), targetid):
            problems.append(InputError(path, "galaxy_void_assignments", "targetid",
                                       f"{alg}: the assignments list {len(a):,d} galaxies, the "
                                       f"converted catalogue {len(targetid):,d} (or other ids): "
                                       "rerun environment"))
            continue
        out[alg] = pd.DataFrame({"cap": a.cap.to_numpy(), "flag": a.flag.to_numpy(np.int8),
                                 "void": a.void.fillna(NO_VOID).to_numpy(np.int64)})
    if problems:
        raise InputError.all(problems)
    return out


def _cap_density(cap: str, fp, tracer_xyz: np.ndarray, omega_m: float, ratio: int,
                 rng: np.random.Generator) -> tuple[CapDensity, dict]:
    """The cap's tracer and random trees, mean density and volume."""
    inside = ~fp.outside(tracer_xyz)
    volume = footprint_volume(fp)
    n_random = max(1000, ratio * len(tracer_xyz))
    pts = footprint_randoms(fp, n_random, omega_m, rng)
    rxyz = np.column_stack([pts[f"comoving_{a}"] for a in "xyz"])
    cd = CapDensity(cap, cKDTree(tracer_xyz), cKDTree(rxyz),
                    mean_density=int(inside.sum()) / volume, random_density=len(rxyz) / volume,
                    footprint=fp)
    return cd, {"volume": volume, "tracers": int(len(tracer_xyz)),
                "tracers_inside": int(inside.sum()), "randoms": int(len(rxyz)),
                "lo": np.min(rxyz, 0), "hi": np.max(rxyz, 0)}


@checked("density")
def run(data_dir: str = "data/mock", db_url: str = "", scheduler_address: str = "",
        k: int = 5, random_ratio: int = 20, cell: float = 2.0, smooth: float = 4.0,
        lambda_th: float = 0.2, chunk_rows: int = 1_000_000, num_workers: int = 0,
        seed: int = 20251202, definition: str = "ssfr", delta_bins: int = 5,
        r_edges: list = (0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0),
        mass_edges: list = (9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0),
        n_patches: dict = {"NGC": 32, "SGC": 12},  # noqa: B006 - the notebook's default; never mutated
        alpha: float = 0.05, caps: list = ()) -> DensityResult:
    """The density stage (parameters as the notebook declares them)."""
    layout = paths.RunLayout.of(data_dir)
    inputs = void_inputs(layout, caps)  # the void centres: no surface rule is involved
    selection, tables, limits = inputs.selection, inputs.tables, inputs.limits
    catalogues, galaxies, om = inputs.catalogues, inputs.galaxies, inputs.om
    del inputs  # its galaxies, in file order, are not held beside the sorted copy below
    targetid = galaxies.column("targetid").to_numpy()
    order = np.argsort(targetid, kind="stable")
    galaxies, targetid = galaxies.take(pa.array(order)), targetid[order]
    tracer = _tracer_mask(targetid, selection)
    assigned = _assignments(layout, targetid)
    cap_of = assigned[formats.ALGORITHMS[0]].cap.to_numpy()
    n = len(targetid)
    cols = {"r_k": np.full(n, np.nan), "edge_fraction": np.full(n, np.nan),
            "delta_k": np.full(n, np.nan), "edge_flag": np.ones(n, bool),
            "web_class": np.full(n, OUTSIDE_WEB, np.int8)}
    rng = np.random.default_rng(seed)
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
            cd, info = _cap_density(cap, fp, xyz[is_tracer], lim.omega_m, random_ratio, rng)
            shared = compute.scatter(c, cd)
            tasks = [dask.delayed(local_density, pure=False)(shared, xyz[s:s + step],
                                                             is_tracer[s:s + step], k)
                     for s in range(0, len(own), step)]
            parts = compute.compute(tasks, c, num_workers=num_workers or None)
            for name in ("r_k", "edge_fraction", "delta_k", "edge_flag"):
                if parts:
                    cols[name][own] = np.concatenate([p[name] for p in parts])
            # the trees (randoms: 20 per tracer, 1.5 GB at DR1) are not held beside the grid
            del cd, shared, tasks, parts
            web = web_grid(cap, xyz[is_tracer], fp.outside, info["lo"], info["hi"], cell,
                           smooth, lambda_th, shell=(fp.dliml, fp.dlimu))
            webs[cap] = web
            cols["web_class"][own] = web.classify(xyz)
            d = cols["delta_k"][own]
            cap_rows.append({"cap": cap, **{k_: v for k_, v in info.items()
                                            if k_ not in ("lo", "hi")},
                             "delta_k_median": float(np.nanmedian(d)) if np.isfinite(d).any()
                             else float("nan"),
                             "edge_flagged": int(cols["edge_flag"][own].sum()),
                             "web_cells": web.counts(),
                             "web_tracers": _class_counts(web.classify(xyz[is_tracer]))})
            for alg in formats.ALGORITHMS:
                a = assigned[alg]
                table = _void_table(tables["voids"], alg, cap)
                axyz = _galaxy_xyz(galaxies, own, limits[(alg, cap)].omega_m, om)
                dist, void = void_centric(table, axyz, a.flag.to_numpy()[own],
                                          a.void.to_numpy()[own], workers=-1)
                cols.setdefault(column_of(alg), np.full(n, np.nan))[own] = dist
                cols.setdefault(column_of(alg, "nearest_void"), np.full(n, NO_VOID))[own] = void
    for alg in formats.ALGORITHMS:
        cols.setdefault(column_of(alg), np.full(n, np.nan))
        cols.setdefault(column_of(alg, "nearest_void"), np.full(n, NO_VOID))
    env = _table(targetid, cap_of, cols)
    from .answer import answer

    profiles, comparison, web_fractions, agreement = answer(
        layout, env, assigned, targetid, definition=definition, delta_bins=delta_bins,
        r_edges=list(r_edges), mass_edges=list(mass_edges), n_patches=dict(n_patches),
        alpha=alpha)
    counts = pd.DataFrame([{"cap": r["cap"], "web_class": name, "cells": r["web_cells"][name],
                            "volume": r["web_cells"][name] * cell ** 3,
                            "tracers": r["web_tracers"][name]}
                           for r in cap_rows for name in WEB_CLASSES])
    report = {"schema": "desivoids.density", "schema_version": SCHEMA_VERSION,
              "galaxies": int(n), "tracers": int(tracer.sum()),
              "parameters": {"k": k, "random_ratio": random_ratio, "cell": cell,
                             "smooth": smooth, "lambda_th": lambda_th, "seed": seed,
                             "definition": definition, "delta_bins": delta_bins,
                             "r_edges": list(r_edges), "mass_edges": list(mass_edges),
                             "n_patches": dict(n_patches), "alpha": alpha, "caps": list(caps)},
              "caps": cap_rows, "web_agreement": agreement,
              "ullah_2026": {k_: {"red_percent": v[0], "error": v[1]}
                             for k_, v in ULLAH_2026.items()}}
    url = layout.db_url(db_url)
    out = layout.stage("density")
    # table and folder as one unit: the commit, recording the sealed folder, precedes its rename
    with table_transaction(url, "the density stage's table") as db, \
            staged(out, commit=db.committing("density")) as tmp:
        path = tmp / file_name("density", "environment")
        pq.write_table(env, path, compression="zstd")
        counts.to_parquet(tmp / file_name("density", "web_counts"), index=False)
        profiles.to_parquet(tmp / file_name("density", "profiles"), index=False)
        comparison.to_parquet(tmp / file_name("density", "web_comparison"), index=False)
        web_fractions.to_parquet(tmp / file_name("density", "web_fractions"), index=False)
        np.savez_compressed(tmp / file_name("density", "web_slices"), **_slices(webs))
        db.publish(TABLE, path, key=("targetid",))
        write_json(tmp / file_name("density", "report"), report)
        db.prepare()  # what can fail happens before the commit
    return DensityResult(out, jsonable(report), profiles, comparison, web_fractions)


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


def _table(targetid: np.ndarray, cap: np.ndarray, cols: dict) -> pa.Table:
    """galaxy_environment: one row per galaxy, ordered by targetid; nulls where undefined."""
    def num(a):
        a = np.asarray(a, np.float64)
        return pa.array(a, mask=~np.isfinite(a))

    fields = {"targetid": pa.array(targetid), "cap": pa.array(cap.astype(str)),
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
