"""Benchmark of the density stage at DR1 scale: the continuous environment of every galaxy
(k-NN density with its edge fraction, the T-Web grid, the void-centric distance per algorithm)
beside a single cKDTree query of every galaxy in the same run, and the whole `desivoids
density` stage.

    .venv/bin/python benchmarks/bench_density.py [--data-dir data/bench/dr1]

Input: the DR1-scale mock run (6,445,927 galaxies; generated, converted, selected and
environment run first when missing). ``--data-dir`` may name any finished run through
environment (a tiny one, to try the benchmark out).

1. **Core** (in a fresh process): per cap, the k-NN radii and edge fractions of every galaxy
   (the stage's :func:`desivoids.density.local_density` on one chunk, every core), the T-Web
   grid and the galaxies' classes, and the void-centric distances of every algorithm; the
   tables are read first and timed apart.
2. **Reference**: in the same kind of process, one cKDTree over each cap's tracers and one
   query of every galaxy that gets a density (inside the survey's mask and radial limits; the
   others get none since e5f801c, and their searches, hundreds of Mpc/h to the tracers, took
   90 % of a query of all) for its k + 1 nearest (every core): the least a k-NN density can
   cost.
3. **The stage**: ``desivoids density`` as a subprocess (Dask, the profiles, Parquet and the
   database included), wall and peak RSS; target under 60 s and 4 GiB.

Writes benchmarks/results/density.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import measure

import numpy as np

from desivoids import formats, paths

TARGET_SECONDS, TARGET_RSS_GIB = 60.0, 4.0
K = 5
EDGE_POINTS = 64  # the stage's default edge_points


def _inputs(data_dir: Path):
    """What the stage reads: per cap the galaxies' positions, the tracer flags, the footprint,
    environment's flags and voids (as the stage reads them)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from desivoids.density.stage import _assignments
    from desivoids.environment.membership import (GALAXY_COLUMNS, build_catalogues,
                                                  header_limits)
    from desivoids.environment.stage import (_galaxy_omega_m, _tracer_mask, read_tables,
                                             survey_masks)

    layout = paths.RunLayout.of(data_dir)
    t0 = time.perf_counter()
    tables = read_tables(layout.convert)
    limits = header_limits(layout.convert / "voids.parquet")
    cats = build_catalogues(tables["voids"], tables["holes"], tables["zonevoid"],
                            tables["galzone"], limits, survey_masks=survey_masks(layout.convert))
    dataset = ds.dataset(layout.convert / "galaxies", format="parquet")
    galaxies = dataset.to_table(columns=list(GALAXY_COLUMNS))
    tid = galaxies.column("targetid").to_numpy()
    order = np.argsort(tid, kind="stable")
    galaxies, tid = galaxies.take(pa.array(order)), tid[order]
    tracer = _tracer_mask(tid, layout.stage("plausibility") / "selection.parquet")
    assigned = _assignments(layout, tid)
    return (tables, cats, limits, galaxies, _galaxy_omega_m(dataset), tracer, assigned,
            time.perf_counter() - t0)


def core_worker(data_dir: Path, out: Path) -> None:
    from desivoids.density.stage import _cap_density
    from desivoids.density.knn import local_density
    from desivoids.density.tweb import web_grid
    from desivoids.density.voidcentric import void_centric
    from desivoids.environment.membership import _galaxy_xyz, _void_table

    tables, cats, limits, galaxies, om, tracer, assigned, read_s = _inputs(data_dir)
    cap_of = assigned[formats.ALGORITHMS[0]].cap.array
    t = {"knn_s": 0.0, "web_s": 0.0, "voidcentric_s": 0.0}
    for cap, cat in cats.items():
        fp = cat.members["VoidFinder"].footprint
        own = np.flatnonzero(cap_of == cap)
        xyz = _galaxy_xyz(galaxies, own, limits[("VoidFinder", cap)].omega_m, om)
        t0 = time.perf_counter()
        cd, info = _cap_density(cap, fp, xyz[tracer[own]], EDGE_POINTS, 20251202)
        local_density(cd, xyz, tracer[own], K, workers=-1)
        t1 = time.perf_counter()
        web = web_grid(cap, xyz[tracer[own]], fp.outside, info["lo"], info["hi"], 2.0, 4.0, 0.2)
        web.classify(xyz)
        t2 = time.perf_counter()
        for alg in formats.ALGORITHMS:
            a = assigned[alg]
            void_centric(_void_table(tables["voids"], alg, cap), xyz,
                         a.flag.to_numpy()[own], a.void.to_numpy()[own], workers=-1)
        t3 = time.perf_counter()
        t["knn_s"] += t1 - t0
        t["web_s"] += t2 - t1
        t["voidcentric_s"] += t3 - t2
    out.write_text(json.dumps({**t, "read_s": read_s, "galaxies": galaxies.num_rows,
                               "tracers": int(tracer.sum()),
                               "peak_rss_bytes": measure.peak_rss_self()}))


def reference_worker(data_dir: Path, out: Path) -> None:
    from scipy.spatial import cKDTree

    from desivoids.environment.membership import _galaxy_xyz

    _, cats, limits, galaxies, om, tracer, assigned, read_s = _inputs(data_dir)
    cap_of = assigned[formats.ALGORITHMS[0]].cap.array
    t0 = time.perf_counter()
    for cap, cat in cats.items():
        own = np.flatnonzero(cap_of == cap)
        xyz = _galaxy_xyz(galaxies, own, limits[("VoidFinder", cap)].omega_m, om)
        ok = ~cat.members["VoidFinder"].footprint.outside(xyz)  # NaN positions: outside
        cKDTree(xyz[tracer[own]]).query(xyz[ok], k=K + 1, workers=-1)
    out.write_text(json.dumps({"query_s": time.perf_counter() - t0, "read_s": read_s,
                               "peak_rss_bytes": measure.peak_rss_self()}))


def _worker(mode: str, data_dir: Path, out: Path) -> tuple:
    cmd = [sys.executable, __file__, "--worker", mode, "--data-dir", str(data_dir),
           "--out", str(out)]
    seconds, peak, rc, cpu, text = measure.run_polled(cmd)
    if rc:
        raise SystemExit(f"{mode} worker failed ({rc}):\n{text[-3000:]}")
    return json.loads(out.read_text()), seconds, peak


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(measure.DR1_DIR))
    ap.add_argument("--stage-repeats", type=int, default=2)
    ap.add_argument("--worker", choices=["core", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        fn = core_worker if args.worker == "core" else reference_worker
        fn(paths.resolve(args.data_dir), Path(args.out))
        return 0
    d = measure.dr1_run(paths.resolve(args.data_dir), "density")
    with tempfile.TemporaryDirectory(prefix="bench_density_") as tmp:
        core, core_wall, core_peak = _worker("core", d, Path(tmp) / "core.json")
        ref, ref_wall, ref_peak = _worker("reference", d, Path(tmp) / "ref.json")
    from desivoids.environment.membership import GALAXY_COLUMNS

    st = measure.bench_stage("density", d, list(GALAXY_COLUMNS),
                             {"seconds": TARGET_SECONDS, "rss_gib": TARGET_RSS_GIB},
                             repeats=args.stage_repeats)
    core_s = core["knn_s"] + core["web_s"] + core["voidcentric_s"]
    result = {
        "command": "python benchmarks/bench_density.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "data_dir": paths.display(d), "galaxies": core["galaxies"], "tracers": core["tracers"],
        "k": K,
        "core": {**{k: round(v, 2) for k, v in core.items() if k.endswith("_s")},
                 "total_s": round(core_s, 2), "process_s": round(core_wall, 1),
                 "peak_rss_gib": round(core_peak / 2**30, 3)},
        "reference": {"query_s": round(ref["query_s"], 2), "read_s": round(ref["read_s"], 2),
                      "process_s": round(ref_wall, 1),
                      "peak_rss_gib": round(ref_peak / 2**30, 3)},
        "ratio_core_to_query": round(core_s / max(ref["query_s"], 1e-9), 1),
        "ratio_stage_to_query": round(st["best"]["seconds"] / max(ref["query_s"], 1e-9), 1),
        "stage": st,
    }
    measure.write("density", result, render(result))
    print(render(result))
    return 0


def render(res: dict) -> str:
    c, r = res["core"], res["reference"]
    stage_md = measure.stage_markdown(
        res["stage"], "every galaxy's k-NN density, web class and void-centric distances, the "
        "profiles and comparisons, the Parquet output and the database table",
        "desivoids density -p data_dir data/bench/dr1", heading="### The whole stage")
    return f"""## density

Command: `{res['command'].strip()}`. Input: `{res['data_dir']}` ({res['galaxies']:,} galaxies,
{res['tracers']:,} tracers), k = {res['k']}.

### Core: every galaxy's continuous environment

| part | seconds |
|---|---:|
| k-NN radius and edge fraction ({EDGE_POINTS} points per sphere crossing the edge) | {c['knn_s']} |
| T-Web grid (2 Mpc/h cells, 4 Mpc/h smoothing) and the galaxies' classes | {c['web_s']} |
| void-centric distance, four algorithms | {c['voidcentric_s']} |
| **total** (tables read apart: {c['read_s']} s) | **{c['total_s']}** |

Process {c['process_s']} s, peak RSS {c['peak_rss_gib']} GiB.

Reference: one cKDTree over each cap's tracers and a single query of every galaxy inside the
survey (those that get a density) for its {res['k'] + 1} nearest tracers: {r['query_s']} s
(process {r['process_s']} s, peak RSS {r['peak_rss_gib']} GiB). The core takes
{res['ratio_core_to_query']}x the single query, the whole stage
{res.get('ratio_stage_to_query', '–')}x; targets: the stage under {TARGET_SECONDS:g} s and
{TARGET_RSS_GIB:g} GiB peak RSS.

{stage_md.strip()}
"""


if __name__ == "__main__":
    raise SystemExit(main())
