"""Benchmark of the environment stage at DR1 scale: the void membership of every galaxy for all
four algorithms and both caps, beside the same rules applied galaxy by galaxy in a Python loop
(as VAST's calculate_vflag does), and the whole `desivoids environment` stage.

    .venv/bin/python benchmarks/bench_environment.py [--data-dir data/bench/dr1] [--subset 20000]

Input: the DR1-scale mock run (6,445,927 galaxies, 101,863 holes, 2 x 3 x 694,642 GALZONE
tracers; generated, converted and selected first when missing).

1. **Membership** (target: under 10 s wall and 3 GB peak RSS): in a fresh process, read the
   convert stage's tables, then time ``build_catalogues`` (masks, hole arrays, tracer trees)
   and ``assign_chunk`` over every galaxy in chunks of the stage's ``chunk_rows``: the whole
   membership, mask and edge tests included, without the Parquet read (timed apart) and without
   Dask or writing. Best of ``--repeats``; peak RSS of that process (tables included).
2. **Reference**: the same rules, written plainly below, galaxy by galaxy: VoidFinder tests
   every hole of the galaxy's cap for |x - c| < r (numpy over the holes, as VAST does), else
   the mask and the six-point edge test; REVOLVER, VIDE and ZOBOV query a KD-tree of their own
   file's tracers for the galaxy's nearest one (VAST builds one per catalogue), then the mask
   and edge test. Timed on a random ``--subset`` of the galaxies and scaled to all of them;
   its flags are compared with the membership's, galaxy by galaxy.
3. **The stage**: ``desivoids environment`` as a subprocess (Dask, the randoms, the
   assignments written to Parquet and to the run's SQLite database), wall and peak RSS beside
   the cold read of the galaxy columns it reads. Target (issue 25): the whole stage within
   ``STAGE_TO_CORE`` (3) times the best membership run of (1), measured in the same run.
4. **The database insert alone**: the stage's galaxy_void_assignments rows (25.8M at DR1
   scale), already in memory, inserted by the same code (``desivoids.load.sqlite``: ADBC, one
   transaction, the table WITHOUT ROWID in key order) into a new SQLite file, beside the core:
   the stage's longest step, which it runs in a thread of its own from the first assigned
   chunk on, beside membership (so on one core, not after the core).
5. **What precedes the insert**: in a fresh process, as the stage does them, the imports, the
   check of the folders it reads against their manifests, the read of its inputs (tables,
   catalogues, galaxies, put in targetid order) and the first chunk's membership: the insert
   cannot start before.
   With (4), the stage's critical path, which no overlap shortens (the report's floor).

Writes benchmarks/results/environment.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import measure

import numpy as np

from desivoids import formats, paths
from desivoids.environment.flags import NOT_SURFACE

TARGET_SECONDS, TARGET_RSS_GIB = 10.0, 3.0
#: issue 25: the whole stage within this many times its membership core
STAGE_TO_CORE = 3.0
DEFAULT_SUBSET = 20_000


# -- the workers (each in its own process, so peak RSS is its own) ---------------------------
def _inputs(convert_dir: Path):
    import pyarrow.dataset as ds

    from desivoids.environment.membership import GALAXY_COLUMNS, header_limits
    from desivoids.environment.stage import _galaxy_omega_m, read_tables

    t0 = time.perf_counter()
    tables = read_tables(convert_dir)
    dataset = ds.dataset(convert_dir / "galaxies", format="parquet")
    galaxies = dataset.to_table(columns=list(GALAXY_COLUMNS))
    limits = header_limits(convert_dir / "voids.parquet")
    return tables, galaxies, limits, _galaxy_omega_m(dataset), time.perf_counter() - t0


def membership_worker(convert_dir: Path, chunk_rows: int, subset: np.ndarray, out: Path) -> None:
    from desivoids.environment.flags import Assignment
    from desivoids.environment.membership import assign_chunk, build_catalogues

    tables, galaxies, limits, om, read_s = _inputs(convert_dir)
    t0 = time.perf_counter()
    cats = build_catalogues(tables["voids"], tables["holes"], tables["zonevoid"],
                            tables["galzone"], limits)
    t1 = time.perf_counter()
    parts = [assign_chunk(galaxies.slice(s, chunk_rows), cats, om)
             for s in range(0, galaxies.num_rows, chunk_rows)]
    result = {a: Assignment.concat([p[a] for p in parts]) for a in formats.ALGORITHMS}
    t2 = time.perf_counter()
    np.savez(out.with_suffix(".npz"), **{a: r.flag[subset] for a, r in result.items()},
             **{f"{a}_surface": r.surface[subset] for a, r in result.items()})
    counts = {a: {str(int(f)): int(n) for f, n in zip(*np.unique(r.flag, return_counts=True))}
              for a, r in result.items()}
    out.write_text(json.dumps({"read_s": read_s, "build_s": t1 - t0, "assign_s": t2 - t1,
                               "galaxies": galaxies.num_rows, "holes": tables["holes"].num_rows,
                               "galzone": tables["galzone"].num_rows, "flag_counts": counts,
                               "peak_rss_bytes": measure.peak_rss_self()}))


def not_in_mask(x: float, y: float, z: float, grid: np.ndarray, n: int, dliml: float,
                dlimu: float) -> bool:
    """VAST's test for one point: outside the radial range, or its RA-Dec cell of the mask is
    empty (cell (int(N ra), int(N dec) + 90 N), as desivoids.environment.mask defines it)."""
    r = math.sqrt(x * x + y * y + z * z)
    if not r > 0 or r < dliml or r > dlimu:
        return True
    ra = math.degrees(math.atan2(y, x))
    if ra < 0:
        ra += 360.0
    if ra >= 360.0:
        ra = 0.0
    dec = math.degrees(math.asin(min(1.0, max(-1.0, z / r))))
    i = min(max(int(n * ra), 0), 360 * n - 1)
    j = min(max(int(n * dec) + 90 * n, 0), 180 * n - 1)
    return not grid[i, j]


def near_edge(x: float, y: float, z: float, *mask) -> bool:
    """Any of the six points 10 Mpc/h away along +-x, +-y, +-z outside the mask."""
    for dx, dy, dz in ((10, 0, 0), (-10, 0, 0), (0, 10, 0), (0, -10, 0), (0, 0, 10),
                       (0, 0, -10)):
        if not_in_mask(x + dx, y + dy, z + dz, *mask):
            return True
    return False


def voidfinder_flag(x, y, z, holes, mask) -> int:
    """One galaxy against VoidFinder: every hole of its cap, then the mask, then the edge."""
    hx, hy, hz, hr = holes
    d = np.sqrt((hx - x) ** 2 + (hy - y) ** 2 + (hz - z) ** 2)
    if np.any(d < hr):
        return 1
    if not_in_mask(x, y, z, *mask):
        return 9
    return 2 if near_edge(x, y, z, *mask) else 0


def v2_flag(x, y, z, tree, zone, zone_void, mask) -> int:
    """One galaxy against a V2 catalogue: the mask, the zone of its nearest tracer, the edge."""
    if not_in_mask(x, y, z, *mask):
        return 9
    _, k = tree.query((x, y, z), k=1)
    void = zone_void.get(int(zone[k]), -1) if zone[k] >= 0 else -1
    if void != -1:
        return 1
    return 2 if near_edge(x, y, z, *mask) else 0


def loop_worker(convert_dir: Path, subset: np.ndarray, out: Path) -> None:
    import pyarrow.compute as pc
    from scipy.spatial import cKDTree

    from desivoids.environment.membership import build_catalogues

    tables, galaxies, limits, om, _ = _inputs(convert_dir)
    t0 = time.perf_counter()
    cats = build_catalogues(tables["voids"], tables["holes"], tables["zonevoid"],
                            tables["galzone"], limits)  # the masks: the same as membership's
    zonevoid = tables["zonevoid"].to_pandas()
    galzone = tables["galzone"]
    setup = {}  # (algorithm, cap) -> what the loop needs, one KD-tree per catalogue file
    for cap, cat in cats.items():
        for alg, m in cat.members.items():
            fp = m.footprint
            mask = (fp.grid, fp.n, fp.dliml, fp.dlimu)
            if alg == "VoidFinder":
                h = m.holes
                setup[(alg, cap)] = ((h.centre[:, 0].copy(), h.centre[:, 1].copy(),
                                      h.centre[:, 2].copy(), h.radius), mask, m.zlimu)
            else:
                sel = pc.and_(pc.equal(galzone["algorithm"], alg), pc.equal(galzone["cap"], cap))
                g = galzone.filter(sel)
                order = np.argsort(g["source_row"].to_numpy(), kind="stable")
                xyz = np.column_stack([g[c].to_numpy()[order] for c in "xyz"])
                zv = zonevoid[(zonevoid.algorithm == alg) & (zonevoid.cap == cap)]
                setup[(alg, cap)] = (cKDTree(xyz), g["zone"].to_numpy()[order],
                                     dict(zip(zv.zone.astype(int), zv.void0.astype(int))),
                                     mask, m.zlimu)
    setup_s = time.perf_counter() - t0
    sub = galaxies.take(subset)
    ra, zred = sub["ra"].to_numpy(), sub["z"].to_numpy()
    xyz = np.column_stack([sub[f"comoving_{a}"].to_numpy(zero_copy_only=False) for a in "xyz"])
    cap_of = formats.cap_of_ra(ra)
    flags, seconds = {}, {}
    for alg in formats.ALGORITHMS:
        f = np.empty(len(subset), np.int8)
        t = time.perf_counter()
        for k in range(len(subset)):  # galaxy by galaxy, by the catalogue of its own cap
            s = setup[(alg, cap_of[k])]
            zlimu = s[-1]
            if not 0 < zred[k] <= zlimu:
                f[k] = 9
                continue
            x, y, z = float(xyz[k, 0]), float(xyz[k, 1]), float(xyz[k, 2])
            if alg == "VoidFinder":
                f[k] = voidfinder_flag(x, y, z, s[0], s[1])
            else:
                f[k] = v2_flag(x, y, z, s[0], s[1], s[2], s[3])
        seconds[alg] = time.perf_counter() - t
        flags[alg] = f
    np.savez(out.with_suffix(".npz"), **flags)
    out.write_text(json.dumps({"setup_s": setup_s, "loop_s": seconds,
                               "subset": int(len(subset)), "galaxies": galaxies.num_rows,
                               "omega_m_of_galaxies": om}))


def insert_worker(assignments: Path, out: Path) -> None:
    """The stage's assignment rows, read first, then inserted and committed into a new SQLite
    file exactly as the stage's transaction does (desivoids.load.sqlite), timed."""
    import pyarrow.parquet as pq

    from desivoids.environment.stage import ASSIGNMENT_KEY
    from desivoids.load.sqlite import SqliteTarget

    t = pq.read_table(assignments)
    with tempfile.TemporaryDirectory(prefix="bench_env_db_", dir=out.parent) as tmp:
        target = SqliteTarget(f"sqlite:///{Path(tmp) / 'insert.sqlite'}")
        cpu0, t0 = time.process_time(), time.perf_counter()
        table = target.new_table("galaxy_void_assignments", t.schema.remove_metadata(),
                                 key=ASSIGNMENT_KEY, clustered=True)
        target.create_table(table)
        target.write(table, t.to_batches(max_chunksize=2_000_000), table.name)
        target.finish_table(table)
        t1 = time.perf_counter()
        target.analyze([table.name])
        target.commit()
        t2 = time.perf_counter()
        cpu = time.process_time() - cpu0
        rows = target.count(table.name)
        target.close()
    out.write_text(json.dumps({"rows": rows, "insert_s": t1 - t0, "analyze_commit_s": t2 - t1,
                               "cpu_s": cpu}))


def chain_worker(data_dir: Path, chunk_rows: int, out: Path) -> None:
    """What the stage does before its insert can start, timed in a fresh process (the imports
    are the process's start-up: main() imports the stage): the manifest checks of what it
    reads, its inputs, the first chunk's membership."""
    from desivoids.environment import stage
    from desivoids.environment.membership import assign_chunk
    from desivoids.params import verify_reads

    t1 = time.perf_counter()
    verify_reads("environment", data_dir)
    t2 = time.perf_counter()
    inputs = stage.void_inputs(paths.RunLayout.of(data_dir), (), surface_tol=1e-3)
    inputs, _, _ = stage._in_key_order(inputs)  # the galaxies in targetid order, as the stage
    t3 = time.perf_counter()
    assign_chunk(inputs.galaxies.slice(0, chunk_rows), inputs.catalogues, inputs.om)
    t4 = time.perf_counter()
    out.write_text(json.dumps({"verify_s": t2 - t1, "inputs_s": t3 - t2,
                               "first_chunk_s": t4 - t3, "in_process_s": t4 - t1}))


# -- the benchmark ---------------------------------------------------------------------------
def _worker(mode: str, convert_dir: Path, args, subset_file: Path, out: Path) -> tuple:
    cmd = [sys.executable, __file__, "--worker", mode, "--convert-dir", str(convert_dir),
           "--subset-file", str(subset_file), "--out", str(out),
           "--chunk-rows", str(args.chunk_rows)]
    load = measure.load_average()[0]
    seconds, peak, rc, cpu, text = measure.run_polled(cmd)
    if rc:
        raise SystemExit(f"{mode} worker failed ({rc}):\n{text[-3000:]}")
    return json.loads(out.read_text()), seconds, peak, cpu, load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(measure.DR1_DIR))
    ap.add_argument("--subset", type=int, default=DEFAULT_SUBSET,
                    help="galaxies the Python loop is timed on (scaled to all)")
    ap.add_argument("--chunk-rows", type=int, default=None,
                    help="galaxies per assign_chunk call (default: the stage's chunk_rows)")
    ap.add_argument("--repeats", type=int, default=3, help="membership runs (the best is kept)")
    ap.add_argument("--stage-repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--worker", choices=["membership", "loop", "insert", "chain"],
                    help=argparse.SUPPRESS)
    ap.add_argument("--convert-dir", help=argparse.SUPPRESS)
    ap.add_argument("--subset-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import inspect

    from desivoids.environment import stage

    if args.chunk_rows is None:
        args.chunk_rows = inspect.signature(stage.run).parameters["chunk_rows"].default
    if args.worker == "insert":
        insert_worker(Path(args.convert_dir), Path(args.out))
        return 0
    if args.worker == "chain":  # --convert-dir carries the run folder here
        chain_worker(Path(args.convert_dir), args.chunk_rows, Path(args.out))
        return 0
    if args.worker:
        subset = np.load(args.subset_file)
        fn = membership_worker if args.worker == "membership" else loop_worker
        extra = (args.chunk_rows,) if args.worker == "membership" else ()
        fn(Path(args.convert_dir), *extra, subset, Path(args.out))
        return 0

    d = measure.dr1_run(paths.resolve(args.data_dir), "environment")
    layout = paths.RunLayout.of(d)
    start = measure.machine()
    import pyarrow.dataset as ds

    n = ds.dataset(layout.convert / "galaxies", format="parquet").count_rows()
    rng = np.random.default_rng(args.seed)
    subset = np.sort(rng.choice(n, min(args.subset, n), replace=False))
    with tempfile.TemporaryDirectory(prefix="bench_env_") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "subset.npy", subset)
        runs = []
        for i in range(args.repeats):
            r, wall, peak, cpu, load = _worker("membership", layout.convert, args,
                                               tmp / "subset.npy", tmp / f"m{i}.json")
            runs.append({"membership_s": round(r["build_s"] + r["assign_s"], 2),
                         "build_s": round(r["build_s"], 2), "assign_s": round(r["assign_s"], 2),
                         "read_s": round(r["read_s"], 2), "process_s": round(wall, 1),
                         "cpu_s": round(cpu, 1), "peak_rss_gib": round(peak / 2**30, 3),
                         "maxrss_gib": round(r["peak_rss_bytes"] / 2**30, 3),
                         "load_average_before": load, "flag_counts": r["flag_counts"],
                         "galaxies": r["galaxies"]})
            print("membership", runs[-1], flush=True)
        mflags = np.load(tmp / "m0.npz")
        ref, ref_wall, ref_peak, ref_cpu, ref_load = _worker(
            "loop", layout.convert, args, tmp / "subset.npy", tmp / "loop.json")
        lflags = np.load(tmp / "loop.npz")
        agree = {a: int((mflags[a] == lflags[a]).sum()) for a in formats.ALGORITHMS}
        # VoidFinder's surface galaxies (within SURFACE_TOL of a hole's surface) are wall by
        # the project's rule and void by VAST's strict |x - c| < r when rounding puts them
        # inside (science.md): counted apart, every other disagreement is a bug.
        surface = {a: mflags[f"{a}_surface"] != NOT_SURFACE for a in formats.ALGORITHMS}
        disagree, on_surface = {}, {}
        for a in formats.ALGORITHMS:
            for name, keep in (("disagree", ~surface[a]), ("surface", surface[a])):
                pairs = {f"{int(x)}->{int(y)}": int((keep & (mflags[a] == x) & (lflags[a] == y)).sum())
                         for x in (0, 1, 2, 9) for y in (0, 1, 2, 9) if x != y}
                (disagree if name == "disagree" else on_surface)[a] = {k: v for k, v in pairs.items()
                                                                      if v}
    print("loop", ref, agree, flush=True)
    best = min(runs, key=lambda r: r["membership_s"])
    scale = n / len(subset)
    loop_total = sum(ref["loop_s"].values())
    ref_dr1 = ref["setup_s"] + loop_total * scale
    from desivoids.environment.membership import GALAXY_COLUMNS

    st = measure.bench_stage("environment", d, list(GALAXY_COLUMNS), None,
                             repeats=args.stage_repeats)
    limit = round(STAGE_TO_CORE * best["membership_s"], 2)
    st_ratio = round(st["best"]["seconds"] / best["membership_s"], 2)
    with tempfile.TemporaryDirectory(prefix="bench_env_") as tmp:
        ins, ins_wall, ins_peak, ins_cpu, ins_load = _worker(
            "insert", layout.stage("environment") / "galaxy_void_assignments.parquet", args,
            Path(tmp) / "none.npy", Path(tmp) / "insert.json")
        chain, chain_wall, _, chain_cpu, chain_load = _worker(
            "chain", d, args, Path(tmp) / "none.npy", Path(tmp) / "chain.json")
    print("insert", ins, flush=True)
    print("before the insert", chain, flush=True)
    before = chain_wall  # the process's whole life: interpreter start-up included
    floor = before + ins["insert_s"] + ins["analyze_commit_s"]
    result = {
        "command": "python benchmarks/bench_environment.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "machine": start, "data_dir": paths.display(d), "galaxies": n, "chunk_rows": args.chunk_rows,
        "membership": {"runs": runs, "best": best,
                       "targets": {"seconds": TARGET_SECONDS, "rss_gib": TARGET_RSS_GIB},
                       "meets": {"seconds": best["membership_s"] < TARGET_SECONDS,
                                 "rss": max(r["peak_rss_gib"] for r in runs) < TARGET_RSS_GIB}},
        "loop": {"subset": len(subset), "seed": args.seed, "setup_s": round(ref["setup_s"], 2),
                 "loop_s": {a: round(v, 2) for a, v in ref["loop_s"].items()},
                 "per_galaxy_us": {a: round(1e6 * v / len(subset), 1)
                                   for a, v in ref["loop_s"].items()},
                 "scaled_to_dr1_s": round(ref_dr1, 1), "process_s": round(ref_wall, 1),
                 "load_average_before": ref_load, "agree": agree, "disagree": disagree,
                 "surface": {a: int(surface[a].sum()) for a in formats.ALGORITHMS},
                 "surface_disagree": on_surface},
        "ratio_loop_to_membership": round(ref_dr1 / best["membership_s"], 1),
        "stage": st,
        "stage_to_core": {"target_ratio": STAGE_TO_CORE, "core_s": best["membership_s"],
                          "limit_s": limit, "stage_s": st["best"]["seconds"],
                          "ratio": st_ratio, "meets": st["best"]["seconds"] <= limit},
        "insert": {"rows": ins["rows"], "insert_s": round(ins["insert_s"], 2),
                   "analyze_commit_s": round(ins["analyze_commit_s"], 2),
                   "cpu_s": round(ins["cpu_s"], 1), "process_s": round(ins_wall, 1),
                   "load_average_before": ins_load,
                   "ratio_to_core": round((ins["insert_s"] + ins["analyze_commit_s"])
                                          / best["membership_s"], 2)},
        "before_insert": {**{k: round(v, 2) for k, v in chain.items()},
                          "process_s": round(chain_wall, 2), "cpu_s": round(chain_cpu, 1),
                          "load_average_before": chain_load},
        "critical_path": {"seconds": round(floor, 2),
                          "ratio_to_core": round(floor / best["membership_s"], 2)},
    }
    measure.write("environment", result, render(result))
    print(render(result))
    return 0


def render(res: dict) -> str:
    m, lp, st = res["membership"], res["loop"], res["stage"]
    b, t = m["best"], m["targets"]
    n, k = res["galaxies"], lp["subset"]
    rows = "\n".join(f"| {i + 1} | {r['build_s']} | {r['assign_s']} | **{r['membership_s']}** | "
                     f"{r['read_s']} | {r['process_s']} | {r['peak_rss_gib']} | "
                     f"{r['load_average_before']} |" for i, r in enumerate(m["runs"]))
    loops = "\n".join(f"| {a} | {lp['loop_s'][a]} | {lp['per_galaxy_us'][a]} | "
                      f"{lp['loop_s'][a] * n / k:,.0f} | {lp['agree'][a]:,}/{k:,} |"
                      for a in formats.ALGORITHMS)
    dis = "; ".join(f"{a}: " + ", ".join(f"{v} galaxies {x} (membership->loop)"
                                         for x, v in d.items())
                    for a, d in lp["disagree"].items() if d) or "none"
    surf = "; ".join(f"{a}: " + ", ".join(f"{v} {x}" for x, v in d.items())
                     for a, d in lp.get("surface_disagree", {}).items() if d) or "none"
    nsurf = lp.get("surface", {}).get("VoidFinder")
    stage_md = measure.stage_markdown(
        st, "every galaxy, every algorithm, on Dask's local scheduler; the randoms, the "
        "summary, the Parquet output and the database tables included",
        "desivoids environment -p data_dir data/bench/dr1", heading="### The whole stage")
    fc = b["flag_counts"]
    flags = "; ".join(f"{a} " + ", ".join(f"{fc[a].get(f, 0):,} {name}" for f, name in
                                          (("1", "void"), ("0", "wall"), ("2", "edge"),
                                           ("9", "outside"))) for a in formats.ALGORITHMS)
    return f"""## environment

Command: `{res['command'].strip()}`. Input: the DR1-scale mock run ({n:,} galaxies,
101,863 holes, 2,083,926 GALZONE rows, 4 algorithms x 2 caps). Machine: {res['machine']['cores']}
cores, load average at the start {res['machine']['load_average'][0]}.

### Membership: every galaxy, four algorithms, both caps

`build_catalogues` (masks from the tracers, hole arrays, one KD-tree per distinct
tessellation) and `assign_chunk` over every galaxy in chunks of {res['chunk_rows']:,} (the
stage's default), in a fresh process, mask and edge tests included; the Parquet read is timed
apart, and Dask and the writing are left to the stage below. Peak RSS is the process's, tables
and galaxies in memory included.

| run | build s | assign s | membership s | read s (apart) | process s | peak RSS (GiB) | load avg before |
|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Flags: {flags}.

Reference: the same rules galaxy by galaxy in a Python loop (VAST's calculate_vflag:
VoidFinder tests every hole of the galaxy's cap with numpy, then the mask and the six-point
edge test; each V2 catalogue queries its own KD-tree of tracers once per galaxy), on {k:,}
random galaxies of the {n:,}, scaled to all of them; setup (masks and one tree per catalogue
file) {lp['setup_s']} s, once.

| algorithm | loop s ({k:,} galaxies) | us per galaxy | scaled to DR1, s | flags equal to membership's |
|---|---:|---:|---:|---:|
{loops}

Reference at DR1 scale: {lp['setup_s']} s + {sum(lp['loop_s'].values()):.1f} s x {n / k:,.1f} =
{lp['scaled_to_dr1_s']:,.0f} s. Membership: {b['membership_s']} s, **{res['ratio_loop_to_membership']:,}x
faster** than the loop. Disagreements off VoidFinder's hole surfaces: {dis}. On them
({nsurf if nsurf is not None else "not recorded"} of the {k:,} galaxies lie within the surface
tolerance of a hole, where the project calls a galaxy wall and VAST's strict |x - c| < r calls it
void when rounding puts it inside; the book's methods, "Galaxies on hole surfaces"): {surf}
(membership->loop). (The loop computes only the flag; membership also
gives each galaxy its void, its distance in effective radii and whether the void is interior.)

Targets: membership under {t['seconds']:g} s ({'met' if m['meets']['seconds'] else 'NOT met'}:
best {b['membership_s']} s) and {t['rss_gib']:g} GiB peak RSS in every run
({'met' if m['meets']['rss'] else 'NOT met'}: at most {max(r['peak_rss_gib'] for r in m['runs'])} GiB).

{stage_md.strip().replace("No target is set for this figure.", "").strip()}

{_core_md(res)}
"""


def _core_md(res: dict) -> str:
    """The whole stage against its membership core (issue 25), and the database insert that
    bounds it from below."""
    sc, ins = res.get("stage_to_core"), res.get("insert")
    if not sc or not ins:
        return ""
    return f"""Target (issue 25): the whole stage within {sc['target_ratio']:g}x its membership core,
both measured in this run: {sc['target_ratio']:g} x {sc['core_s']} s = {sc['limit_s']} s. Best stage
run {sc['stage_s']} s = **{sc['ratio']}x the core** ({'met' if sc['meets'] else 'NOT met'}).

The database insert alone (the same {ins['rows']:,} rows, in memory, inserted by the stage's code
into a new SQLite file in one transaction, the table WITHOUT ROWID in key order; load average
{ins['load_average_before']} before): {ins['insert_s']} s, then ANALYZE and commit
{ins['analyze_commit_s']} s ({ins['cpu_s']} CPU s) = {ins['ratio_to_core']}x the core on one core.
The stage runs this insert in a thread of its own that takes the rows, in key order, as soon as
every chunk of galaxies they cover is assigned, beside membership (on every core but one) and
then beside the summary; the Parquet file is written from the same batches on their way to the
insert, and nothing waits for the insert but the commit.
{_chain_md(res)}"""


def _chain_md(res: dict) -> str:
    """The stage's critical path, part by part: why the stage cannot reach 3x its core."""
    b, cp = res.get("before_insert"), res.get("critical_path")
    if not b or not cp:
        return ""
    ins, core = res["insert"], res["stage_to_core"]["core_s"]
    start = round(b["process_s"] - b["in_process_s"], 2)
    target = res["stage_to_core"]["target_ratio"]
    others = "its other work (membership, the Parquet file, the randoms and the summary)"
    verdict = (f", so {target:g}x cannot be met while the stage rebuilds this table row by row\n"
               f"in SQLite; {others} runs beside the insert" if cp["ratio_to_core"] > target else
               f": within {target:g}x, so the rest of the stage's time is\n{others}, which runs "
               "beside the insert, competing with it for the cores (under the load average above)")
    return f"""
What precedes the insert, in a fresh process as the stage does it (load average
{b['load_average_before']} before): interpreter start-up and imports {start} s, the manifest
checks of the folders it reads {b['verify_s']} s, its inputs (tables, catalogues,
galaxies, in targetid order) {b['inputs_s']} s and the first chunk's membership {b['first_chunk_s']} s =
{b['process_s']} s. The insert cannot start earlier and cannot go faster (one SQLite
writer; its rows bound to SQLite one by one, {1e6 * ins['insert_s'] / ins['rows']:.2f} us each),
and ANALYZE and the commit follow its last row: the stage's critical path is at least {b['process_s']} +
{ins['insert_s']} + {ins['analyze_commit_s']} = **{cp['seconds']} s = {cp['ratio_to_core']}x the
core** ({core} s){verdict}."""


if __name__ == "__main__":
    raise SystemExit(main())
