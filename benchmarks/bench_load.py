"""Benchmark of the load stage at DR1 scale: load throughput into SQLite and PostgreSQL, the
PostgreSQL COPY path against psql's own ``\\copy`` of the same rows as CSV, and the latency of
sphere and cone queries (p50, p95).

    .venv/bin/python benchmarks/bench_load.py            # DR1 scale: 6,445,927 galaxies
    .venv/bin/python benchmarks/bench_load.py --rows 300000 --queries 50   # a quick look

Input: synthetic Parquet in the convert contract (desivoids.convert.columns), every galaxy
column, with DR1's row counts (12 galaxy parts of the real per-file sizes, 10,754 voids,
101,863 holes, 3 x 3,519 zones, 3 x 694,642 GALZONE rows), written once under
data/bench/load/ (git-ignored). A throwaway PostgreSQL cluster is started on 127.0.0.1 by
tests/pg_server.sh and stopped at the end. Writes benchmarks/results/load.json and load.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from desivoids import cosmology, paths
from desivoids.convert import columns as C
from desivoids.load import cone, load, queries, sphere
from desivoids.load.pgcopy import BINARY_HEADER, BINARY_TRAILER, encode_binary, encode_csv
from desivoids.load.spatial import unit_vectors

DR1_ROWS = 6_445_927
INPUTS_VERSION = 2
HP_ROWS = (101838, 1017041, 1358627, 403581, 981600, 301057, 1347464, 673711, 81734, 66856,
           45570, 66848)
VOIDS = {"VoidFinder": (3241, 524), "REVOLVER": (1692, 300), "VIDE": (1258, 220),
         "ZOBOV": (2950, 569)}
HOLES = (89_003, 12_860)
GALZONE = (604_032, 90_610)
CORE = ("targetid", "ra", "dec", "z", "comoving_x", "comoving_y", "comoving_z")
PG_OPTS = ("-c shared_buffers=2GB -c max_wal_size=4GB -c checkpoint_timeout=30min "
           "-c wal_buffers=64MB")
RESULTS = paths.BENCHMARKS / "results"
SCRIPT = paths.ROOT / "tests" / "pg_server.sh"


# -- inputs --------------------------------------------------------------------------------
def _meta(table: str) -> dict:
    return {C.METADATA_KEY: json.dumps({"table": table, "omega_m": 0.315,
                                        "sources": {f"bench/{table}.fits": {}}}).encode()}


def _galaxy_chunk(n: int, tid0: int, rng) -> pa.Table:
    ngc = rng.random(n) < 0.75
    ra = np.where(ngc, rng.uniform(110, 260, n), np.mod(rng.uniform(-50, 50, n), 360))
    dec = np.where(ngc, np.degrees(np.arcsin(rng.uniform(-0.17, 0.94, n))),
                   np.degrees(np.arcsin(rng.uniform(-0.34, 0.57, n))))
    z = rng.gamma(4.0, 0.05, n)
    stars = rng.random(n) < 0.05  # stars at z ~ 0, half of them negative: no comoving position
    z[stars] = np.abs(rng.normal(0, 0.0005, stars.sum())) * np.where(rng.random(stars.sum())
                                                                      < 0.5, -1, 1)
    r = np.where(z >= 0, cosmology.comoving_distance(z), np.nan)
    x, y, zc = cosmology.radec_to_xyz(ra, dec, r)
    nan = np.isnan(r)
    cols = {}
    for f in C.GALAXIES:
        t = f.type
        if f.name == "targetid":
            cols[f.name] = pa.array(tid0 + np.arange(n, dtype=np.int64) * 13)
        elif f.name in ("ra", "dec", "z"):
            cols[f.name] = pa.array({"ra": ra, "dec": dec, "z": z}[f.name])
        elif f.name.startswith("comoving_") or f.name == "comoving_distance":
            v = {"comoving_x": x, "comoving_y": y, "comoving_z": zc,
                 "comoving_distance": r}[f.name]
            cols[f.name] = pa.array(v, mask=nan)
        elif pa.types.is_floating(t):
            cols[f.name] = pa.array(rng.normal(size=n).round(6))
        elif pa.types.is_integer(t):
            cols[f.name] = pa.array(rng.integers(0, 1 << 20, n), type=t)
        elif pa.types.is_boolean(t):
            cols[f.name] = pa.array(rng.random(n) < 0.3)
        else:
            words = {"survey": ["main"], "program": ["bright"],
                     "spectype": ["GALAXY", "GALAXY", "GALAXY", "QSO", "STAR"],
                     "source_file": ["dr1/vac/dr1/fastspecfit/iron/v3.0/catalogs/x.fits"]}
            w = np.array(words.get(f.name, ["x"]))
            cols[f.name] = pa.array(w[rng.integers(0, len(w), n)])
    return pa.table(cols, schema=C.GALAXIES)


def make_inputs(pdir: Path, rows: int, seed: int = 1) -> dict:
    """Write the synthetic DR1-scale Parquet input once (reused while the marker matches)."""
    marker = pdir / "bench.json"
    if marker.is_file() and json.loads(marker.read_text()).get("rows") == rows \
            and json.loads(marker.read_text()).get("version") == INPUTS_VERSION:
        return json.loads(marker.read_text())
    shutil.rmtree(pdir, ignore_errors=True)
    (pdir / "galaxies").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    scale = rows / DR1_ROWS
    sizes = np.diff(np.round(np.cumsum((0,) + HP_ROWS) * scale).astype(int))
    tid0 = 39_627_000_000_000_000
    sample = []
    for i, n in enumerate(sizes):
        writer = pq.ParquetWriter(pdir / "galaxies" / f"part-{i:03d}-00000.parquet",
                                  C.GALAXIES.with_metadata(_meta("galaxies")))
        for s in range(0, n, 500_000):
            k = min(500_000, n - s)
            t = _galaxy_chunk(k, tid0, rng)
            tid0 += 13 * k
            writer.write_table(t, row_group_size=200_000)
            pick = rng.choice(k, max(1, k // 200), replace=False)
            sample.append(t.select(["ra", "dec", "z", "comoving_x", "comoving_y",
                                    "comoving_z"]).take(pick))
        writer.close()
    smp = pa.concat_tables(sample).to_pandas().dropna()
    smp = smp[(smp["z"] > 0.03) & (smp["z"] < 0.24)]  # DESIVAST's volume: void centres there
    # voids at sampled galaxies; holes around VoidFinder voids; V2 zones and GALZONE tracers
    vrows = []
    for alg, per_cap in VOIDS.items():
        for cap, nv in zip(C.CAPS, per_cap):
            nv = max(1, int(round(nv * scale)))
            g = smp.sample(nv, random_state=int(rng.integers(1 << 30)), replace=True)
            for v, row in enumerate(g.itertuples()):
                vrows.append({"algorithm": alg, "cap": cap, "void": v, "x": row.comoving_x,
                              "y": row.comoving_y, "z": row.comoving_z, "ra": row.ra,
                              "dec": row.dec, "radius": float(rng.uniform(8, 25)),
                              "r_eff": float(rng.uniform(10, 30)),
                              "source_file": f"bench/{alg}_{cap}.fits", "source_row": v})
    voids = pa.Table.from_pylist(vrows)
    pq.write_table(_conform(voids, C.VOIDS), pdir / "voids.parquet")
    hrows = {k: [] for k in ("cap", "void", "hole_index", "x", "y", "z", "radius",
                             "source_file")}
    vf = [r for r in vrows if r["algorithm"] == "VoidFinder"]
    for cap, nh in zip(C.CAPS, HOLES):
        mine = [r for r in vf if r["cap"] == cap]
        nh = max(1, int(round(nh * scale)))
        owner = rng.integers(0, len(mine), nh)
        for i, o in enumerate(owner):
            r = mine[o]
            off = rng.normal(0, 6, 3)
            hrows["cap"].append(cap), hrows["void"].append(r["void"])
            hrows["hole_index"].append(i)
            hrows["x"].append(r["x"] + off[0]), hrows["y"].append(r["y"] + off[1])
            hrows["z"].append(r["z"] + off[2]), hrows["radius"].append(float(rng.uniform(5, 20)))
            hrows["source_file"].append(f"bench/VoidFinder_{cap}.fits")
    pq.write_table(_conform(pa.table(hrows), C.HOLES), pdir / "holes.parquet")
    zv, gz = [], {k: [] for k in ("algorithm", "cap", "gal", "targetid", "x", "y", "z", "zone",
                                  "source_row", "source_file")}
    for alg in ("REVOLVER", "VIDE", "ZOBOV"):
        for cap, ci in zip(C.CAPS, range(2)):
            nz = max(1, int(round(VOIDS["ZOBOV"][ci] * scale)))
            for zone in range(nz):
                zv.append({"algorithm": alg, "cap": cap, "zone": zone,
                           "void0": zone if zone % 7 else -1, "void1": zone if zone % 7 else -1,
                           "source_file": f"bench/{alg}_{cap}.fits", "source_row": zone})
            ng = max(1, int(round(GALZONE[ci] * scale)))
            gz["algorithm"] += [alg] * ng
            gz["cap"] += [cap] * ng
            gz["gal"] += list(range(ng))
            gz["targetid"] += list(39_627_000_000_000_000 + 13 * rng.integers(0, rows, ng))
            for c in ("x", "y", "z"):
                gz[c] += list(rng.normal(0, 300, ng))
            gz["zone"] += list(rng.integers(-1, nz, ng))
            gz["source_row"] += list(range(ng))
            gz["source_file"] += [f"bench/{alg}_{cap}.fits"] * ng
    pq.write_table(_conform(pa.Table.from_pylist(zv), C.ZONEVOID), pdir / "zonevoid.parquet")
    pq.write_table(_conform(pa.table(gz), C.GALZONE), pdir / "galzone.parquet")
    pq.write_table(C.REJECTS.empty_table(), pdir / "rejects.parquet")
    info = {"version": INPUTS_VERSION, "rows": rows, "voids": len(vrows), "holes": len(hrows["cap"]), "zonevoid": len(zv),
            "galzone": len(gz["cap"])}
    marker.write_text(json.dumps(info))
    return info


def _conform(t: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [t[f.name].cast(f.type) if f.name in t.column_names else pa.nulls(t.num_rows, f.type)
            for f in schema]
    return pa.table(cols, schema=schema)


# -- PostgreSQL ----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(url: str, *args: str, **kw) -> subprocess.CompletedProcess:
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(["psql", plain, "-v", "ON_ERROR_STOP=1", "-q", *args], check=True,
                          capture_output=True, text=True, **kw)


def _new_db(server: str, name: str) -> str:
    _psql(server, "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name


def _core_batches(pdir: Path, batch_rows: int = 100_000):
    """The core columns of every galaxy part plus the loader's unit vectors, as batches."""
    for part in sorted((pdir / "galaxies").glob("*.parquet")):
        for b in pq.ParquetFile(part).iter_batches(batch_size=batch_rows, columns=list(CORE)):
            ux, uy, uz = unit_vectors(b["ra"].to_numpy(), b["dec"].to_numpy())
            yield pa.RecordBatch.from_arrays(list(b.columns) + [pa.array(ux), pa.array(uy),
                                                               pa.array(uz)],
                                             names=list(CORE) + ["unit_x", "unit_y", "unit_z"])


CORE_DDL = ("CREATE TABLE core (targetid bigint NOT NULL, ra double precision NOT NULL, "
            "dec double precision NOT NULL, z double precision NOT NULL, comoving_x double "
            "precision, comoving_y double precision, comoving_z double precision, unit_x "
            "double precision NOT NULL, unit_y double precision NOT NULL, unit_z double "
            "precision NOT NULL)")


def copy_core(url: str, pdir: Path, fmt: str) -> float:
    """Our COPY path (Parquet -> Arrow batches -> COPY FREEZE) into a fresh core table."""
    import psycopg
    from psycopg.copy import QueuedLibpqWriter

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        conn.execute("DROP TABLE IF EXISTS core")
        conn.commit()
        t0 = time.perf_counter()
        conn.execute(CORE_DDL)
        opts = "FORMAT BINARY, FREEZE" if fmt == "binary" else "FORMAT CSV, FREEZE"
        with conn.cursor() as cur, cur.copy(f"COPY core FROM STDIN ({opts})",
                                            writer=QueuedLibpqWriter(cur)) as cp:
            if fmt == "binary":
                cp.write(BINARY_HEADER)
            for b in _core_batches(pdir):
                cp.write(encode_binary(b) if fmt == "binary" else encode_csv(b))
            if fmt == "binary":
                cp.write(BINARY_TRAILER)
        conn.commit()
        return time.perf_counter() - t0


def psql_copy(url: str, table_ddl: str, table: str, csv: Path, work: Path) -> float:
    """psql's own \\copy of a CSV file, into a table created in the same transaction."""
    script = work / f"copy_{table}.sql"
    script.write_text(f"BEGIN;\nDROP TABLE IF EXISTS {table};\n{table_ddl};\n"
                      f"\\copy {table} FROM '{csv}' WITH (FORMAT csv, FREEZE)\nCOMMIT;\n")
    t0 = time.perf_counter()
    _psql(url, "-f", str(script))
    return time.perf_counter() - t0


def _count(url: str, table: str) -> int:
    return int(_psql(url, "-At", "-c", f"SELECT count(*) FROM {table}").stdout.strip())


# -- queries -------------------------------------------------------------------------------
def time_queries(variants: dict, spheres, cones) -> dict:
    """Latency of each variant {label: (db, cone method)}, the variants interleaved query by
    query so that background work on the machine affects them alike."""
    calls = {}
    for label, (db, method) in variants.items():
        calls[(label, "sphere")] = lambda a, db=db: sphere(db, *a)
        calls[(label, "cone")] = lambda a, db=db, m=method: cone(db, *a, method=m)
    for (label, kind), fn in calls.items():  # warm-up
        for a in (spheres if kind == "sphere" else cones)[:10]:
            fn(a)
    lat = {k: [] for k in calls}
    rows = {k: [] for k in calls}
    for kind, cases in (("sphere", spheres), ("cone", cones)):
        for a in cases:
            for label in variants:
                t0 = time.perf_counter()
                r = calls[(label, kind)](a)
                lat[(label, kind)].append(time.perf_counter() - t0)
                rows[(label, kind)].append(len(r))
    out: dict = {label: {} for label in variants}
    for (label, kind), v in lat.items():
        ms = np.array(v) * 1e3
        out[label][kind] = {"p50_ms": round(float(np.percentile(ms, 50)), 2),
                            "p95_ms": round(float(np.percentile(ms, 95)), 2),
                            "max_ms": round(float(ms.max()), 2),
                            "mean_rows": round(float(np.mean(rows[(label, kind)])), 1),
                            "queries": len(ms)}
    return out


def settle(url: str) -> None:
    """After a load and before timing queries: flush and vacuum, so the queries do not share
    the machine with the checkpoint and autovacuum that a fresh multi-GB load triggers."""
    _psql(url, "-c", "CHECKPOINT", "-c", "VACUUM (ANALYZE)")
    subprocess.run(["sync"], check=False)


def query_cases(pdir: Path, n: int, seed: int = 5):
    rng = np.random.default_rng(seed)
    v = pq.read_table(pdir / "voids.parquet").to_pandas().dropna(subset=["x"])
    v = v.sample(n, random_state=seed, replace=len(v) < n)
    spheres = [(r.x, r.y, r.z, r.r_eff) for r in v.itertuples()]
    part = sorted((pdir / "galaxies").glob("*.parquet"))[1]
    g = pq.read_table(part, columns=["ra", "dec", "z"]).to_pandas()
    g = g[g["z"] > 0.01].sample(n, random_state=seed)
    cones = [(r.ra, r.dec, float(rng.uniform(0.05, 1.0)), r.z - 0.01, r.z + 0.01)
             for r in g.itertuples()]
    return spheres, cones


# -- report --------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DR1_ROWS)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--work", default=str(paths.DATA / "bench" / "load"))
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--skip-full-csv", action="store_true",
                    help="skip the \\copy of the full galaxies table (a multi-GB CSV)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results/load.md from results/load.json, measuring nothing")
    args = ap.parse_args(argv)
    if args.render_only:
        (RESULTS / "load.md").write_text(render(json.loads((RESULTS / "load.json").read_text())))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pdir = work / "parquet"
    res: dict = {"command": "python benchmarks/bench_load.py " + " ".join(argv or sys.argv[1:]),
                 "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                             "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}}
    t0 = time.perf_counter()
    res["inputs"] = make_inputs(pdir, args.rows)
    print(f"inputs ready ({time.perf_counter() - t0:.0f} s): {res['inputs']}", flush=True)
    rows = args.rows
    spheres, cones = query_cases(pdir, args.queries)

    if not args.skip_sqlite:
        db = work / "bench.sqlite"
        for suffix in ("", "-journal", "-wal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        t0 = time.perf_counter()
        r = load(parquet_dir=pdir, db_url=f"sqlite:///{db}")
        dt = time.perf_counter() - t0
        res["sqlite"] = {"load_s": round(dt, 1), "galaxy_rows": rows,
                         "rows_per_s_all_tables": round(r.rows_loaded / dt),
                         "galaxies_rows_per_s_copy_phase": round(rows / r.seconds["galaxies:copy"]),
                         "phases_s": {k: round(v, 1) for k, v in r.seconds.items()},
                         "file_gb": round(db.stat().st_size / 1e9, 2)}
        print("sqlite", res["sqlite"], flush=True)
        subprocess.run(["sync"], check=False)
        res["sqlite"]["queries"] = time_queries({"sqlite": (f"sqlite:///{db}", "auto")},
                                                spheres, cones)["sqlite"]
        print("sqlite queries", res["sqlite"]["queries"], flush=True)
        queries.dispose_engines()
        db.unlink()  # disk: the PostgreSQL part needs the room

    pgdir = work / "pg"
    subprocess.run(["bash", str(SCRIPT), "stop", str(pgdir)], capture_output=True)
    shutil.rmtree(pgdir, ignore_errors=True)
    env = dict(os.environ, PG_SERVER_OPTS=PG_OPTS)
    server = subprocess.run(["bash", str(SCRIPT), "start", str(pgdir), str(_free_port())],
                            check=True, capture_output=True, text=True, env=env
                            ).stdout.strip().splitlines()[-1]
    try:
        res["postgres"] = pg = {"server_settings": PG_OPTS}
        url = _new_db(server, "bench")
        t0 = time.perf_counter()
        r = load(parquet_dir=pdir, db_url=url)
        dt = time.perf_counter() - t0
        pg["load"] = {"load_s": round(dt, 1), "sky_index": r.sky_index,
                      "rows_per_s_all_tables": round(r.rows_loaded / dt),
                      "galaxies_rows_per_s_copy_phase": round(rows / r.seconds["galaxies:copy"]),
                      "phases_s": {k: round(v, 1) for k, v in r.seconds.items()}}
        print("postgres", pg["load"], flush=True)
        settle(url)
        q = time_queries({"q3c": (url, "q3c"), "blocks": (url, "blocks")}, spheres, cones)
        pg["queries_q3c"], pg["queries_gist_blocks"] = q["q3c"], q["blocks"]
        print("postgres queries", pg["queries_q3c"], pg["queries_gist_blocks"], flush=True)
        queries.dispose_engines()

        # core columns: our COPY (binary and CSV) against psql \copy of the same rows as CSV
        core_url = _new_db(server, "core")
        csv = work / "core.csv"
        with open(csv, "wb") as f:
            for b in _core_batches(pdir):
                f.write(encode_csv(b))
        t_bin = copy_core(core_url, pdir, "binary")
        assert _count(core_url, "core") == rows
        t_csv = copy_core(core_url, pdir, "csv")
        t_psql = psql_copy(core_url, CORE_DDL, "core", csv, work)
        assert _count(core_url, "core") == rows
        pg["core_columns"] = {
            "columns": list(CORE) + ["unit_x", "unit_y", "unit_z"],
            "rows": rows, "csv_gb": round(csv.stat().st_size / 1e9, 2),
            "ours_binary_s": round(t_bin, 2), "ours_binary_rows_per_s": round(rows / t_bin),
            "ours_csv_s": round(t_csv, 2), "ours_csv_rows_per_s": round(rows / t_csv),
            "psql_copy_s": round(t_psql, 2), "psql_copy_rows_per_s": round(rows / t_psql),
            "ratio_ours_binary_to_psql": round(t_bin / t_psql, 3),
            "ratio_ours_csv_to_psql": round(t_csv / t_psql, 3)}
        csv.unlink()
        print("core", pg["core_columns"], flush=True)

        if not args.skip_full_csv:  # the whole galaxies table, as the load stage writes it
            full = work / "galaxies.csv"
            from desivoids.load.inputs import discover
            from desivoids.load.loader import _Stream

            inp = discover(pdir, ("galaxies",))["galaxies"]
            with open(full, "wb") as f:
                for b in _Stream(inp, 100_000, keep_positions=False).batches():
                    f.write(encode_csv(b))
            cols = _psql(url, "-At", "-c", "SELECT string_agg(quote_ident(column_name) || ' ' "
                         "|| format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) "
                         "FROM information_schema.columns c JOIN pg_attribute a ON "
                         "a.attrelid = 'galaxies'::regclass AND a.attname = c.column_name "
                         "WHERE c.table_name = 'galaxies' AND c.table_schema = 'public'"
                         ).stdout.strip()
            t_full = psql_copy(url, f"CREATE TABLE galaxies_copy ({cols})", "galaxies_copy",
                               full, work)
            assert _count(url, "galaxies_copy") == rows
            ours = r.seconds["galaxies:copy"]
            pg["galaxies_all_columns"] = {
                "columns": len(cols.split(", ")), "rows": rows,
                "csv_gb": round(full.stat().st_size / 1e9, 2),
                "ours_binary_copy_phase_s": round(ours, 1),
                "ours_rows_per_s": round(rows / ours),
                "psql_copy_s": round(t_full, 1), "psql_copy_rows_per_s": round(rows / t_full),
                "ratio_ours_to_psql": round(ours / t_full, 3)}
            full.unlink()
            print("full", pg["galaxies_all_columns"], flush=True)
    finally:
        queries.dispose_engines()
        subprocess.run(["bash", str(SCRIPT), "stop", str(pgdir)], capture_output=True)
    res["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "load.md").write_text(render(res))
    print(RESULTS / "load.md")
    return 0


def render(res: dict) -> str:
    pg = res.get("postgres", {})
    lines = ["## load", "", f"Command: `{res['command'].strip()}`", "",
             f"Input: {res['inputs']['rows']:,} galaxies (every column of the convert contract, "
             f"{len(C.GALAXIES)} columns + 3 load-derived), {res['inputs']['voids']:,} voids, "
             f"{res['inputs']['holes']:,} holes, {res['inputs']['galzone']:,} GALZONE rows, "
             "synthetic, in 12 Parquet parts of the real per-file sizes.", "",
             f"PostgreSQL 15 on 127.0.0.1, settings `{pg.get('server_settings', '')}`; "
             "SQLite through ADBC. Load average (1, 5, 15 min) at start "
             f"{res['machine']['load_average_at_start']}, at end "
             f"{res['machine'].get('load_average_at_end')} on "
             f"{res['machine']['cores']} cores (other jobs shared the machine when above ~0.5).",
             "", "### Load throughput", "",
             "| target | what | seconds | rows/s |", "|---|---|---:|---:|"]
    if "sqlite" in res:
        s = res["sqlite"]
        lines.append(f"| SQLite | whole load, all tables + R*Tree + indexes | {s['load_s']} | "
                     f"{s['rows_per_s_all_tables']:,} |")
        lines.append(f"| SQLite | galaxies insert phase (all columns) | "
                     f"{s['phases_s']['galaxies:copy']} | {s['galaxies_rows_per_s_copy_phase']:,} |")
    if "load" in pg:
        p = pg["load"]
        lines.append(f"| PostgreSQL | whole load, all tables + keys + Q3C + GiST | {p['load_s']} | "
                     f"{p['rows_per_s_all_tables']:,} |")
        lines.append(f"| PostgreSQL | galaxies COPY phase (all columns) | "
                     f"{p['phases_s']['galaxies:copy']} | {p['galaxies_rows_per_s_copy_phase']:,} |")
    if "core_columns" in pg:
        c = pg["core_columns"]
        lines += [f"| PostgreSQL | core columns, our binary COPY from Parquet | "
                  f"{c['ours_binary_s']} | {c['ours_binary_rows_per_s']:,} |",
                  f"| PostgreSQL | core columns, our CSV COPY from Parquet | {c['ours_csv_s']} | "
                  f"{c['ours_csv_rows_per_s']:,} |",
                  f"| PostgreSQL | core columns, psql `\\copy` of a CSV file | "
                  f"{c['psql_copy_s']} | {c['psql_copy_rows_per_s']:,} |"]
    if "galaxies_all_columns" in pg:
        f = pg["galaxies_all_columns"]
        lines.append(f"| PostgreSQL | all galaxy columns, psql `\\copy` of a CSV file "
                     f"({f['csv_gb']} GB) | {f['psql_copy_s']} | {f['psql_copy_rows_per_s']:,} |")
    lines.append("")
    if "core_columns" in pg:
        c = pg["core_columns"]
        lines.append(f"Core columns = {', '.join(c['columns'])}. Ratio of our time to `\\copy`: "
                     f"binary {c['ratio_ours_binary_to_psql']}, CSV {c['ratio_ours_csv_to_psql']} "
                     "(ours includes reading Parquet and computing the unit vectors; `\\copy` "
                     "reads a ready CSV file). Targets: >= 1,000,000 rows/s or <= 1.5x `\\copy`.")
    if "galaxies_all_columns" in pg:
        f = pg["galaxies_all_columns"]
        lines.append(f"All {f['columns']} galaxy columns: our COPY phase / `\\copy` = "
                     f"{f['ratio_ours_to_psql']}.")
    if "load" in pg:
        lines += ["", "Phases of the PostgreSQL load (s): " + ", ".join(
            f"{k} {v}" for k, v in pg["load"]["phases_s"].items()) + "."]
    if "sqlite" in res:
        lines += ["Phases of the SQLite load (s): " + ", ".join(
            f"{k} {v}" for k, v in res["sqlite"]["phases_s"].items()) + "."]
    lines += ["", "### Query latency (ms; 200 queries each after 10 warm-up; PostgreSQL after "
              "CHECKPOINT and VACUUM, its two index variants interleaved query by query)", "",
              "Spheres: centres and effective radii (10-30 Mpc/h) of random voids. Cones: random "
              "galaxy positions, radius 0.05-1 deg, redshift slice +-0.01. The synthetic sky is "
              "uniform (it has no voids), so a sphere holds more galaxies than a real void does: "
              "these latencies are pessimistic. Times are wall-clock in Python, from the call to "
              "the finished DataFrame.", "",
              "| database | query | p50 | p95 | max | mean rows |", "|---|---|---:|---:|---:|---:|"]
    for label, q in (("SQLite (R*Tree)", res.get("sqlite", {}).get("queries")),
                     ("PostgreSQL (Q3C cones, GiST spheres)", pg.get("queries_q3c")),
                     ("PostgreSQL (GiST only)", pg.get("queries_gist_blocks"))):
        if q:
            for name in ("sphere", "cone"):
                x = q[name]
                lines.append(f"| {label} | {name} | {x['p50_ms']} | {x['p95_ms']} | "
                             f"{x['max_ms']} | {x['mean_rows']} |")
    lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
