"""Small Parquet inputs in the convert stage's contract (desivoids.convert.columns), written by
the tests themselves so the load tests do not depend on the convert stage.

The sky is built to exercise the awkward cases: galaxies crowded around RA = 0/360 and both
poles, galaxies with Z < 0 (no comoving position, as convert writes them), NaN in source
columns, nulls in derived ones, text with commas, quotes and non-ASCII characters.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from desivoids import cosmology
from desivoids.convert import columns as C

OMEGA_M = 0.315


def _fill(schema: pa.Schema, n: int, rng, given: dict) -> pa.Table:
    cols = {}
    for f in schema:
        if f.name in given:
            cols[f.name] = pa.array(given[f.name], type=f.type)
            continue
        t = f.type
        if pa.types.is_floating(t):
            v = rng.normal(size=n)
            mask = (rng.random(n) < 0.05) if f.nullable else None
            cols[f.name] = pa.array(v, type=t, mask=mask)
        elif pa.types.is_integer(t):
            cols[f.name] = pa.array(rng.integers(0, 1000, n), type=t)
        elif pa.types.is_boolean(t):
            cols[f.name] = pa.array(rng.random(n) < 0.5)
        else:
            words = np.array(["main", "bright", "GALAXY", "a,b", 'q"uote', "ünïcode", ""])
            cols[f.name] = pa.array(words[rng.integers(0, len(words), n)], type=t)
    return pa.table(cols, schema=schema)


def _meta(table: str, extra: dict | None = None) -> dict:
    meta = {"table": table, "omega_m": OMEGA_M,
            "sources": {f"dr1/mock/{table}.fits": {"PRIMARY": {"OMEGAM": OMEGA_M}}}}
    meta.update(extra or {})
    return meta


def _write(table: pa.Table, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    md = dict(table.schema.metadata or {})
    md[C.METADATA_KEY] = json.dumps(meta).encode()
    pq.write_table(table.replace_schema_metadata(md), path)


def sky(n: int, rng) -> dict[str, np.ndarray]:
    """Positions: a uniform sky plus crowds at RA 0/360 and at both poles, z in (-0.002, 0.3)."""
    k = n // 5
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra[:k] = np.mod(rng.normal(0.0, 1.0, k), 360.0)          # straddling RA = 0/360
    dec[:k] = rng.normal(10.0, 1.0, k)
    ra[k:2 * k] = rng.uniform(0, 360, k)                     # north pole cap
    dec[k:2 * k] = 90.0 - np.abs(rng.normal(0, 1.0, k))
    ra[2 * k:3 * k] = rng.uniform(0, 360, k)                 # south pole cap
    dec[2 * k:3 * k] = -90.0 + np.abs(rng.normal(0, 1.0, k))
    z = rng.uniform(0.005, 0.3, n)
    z[rng.random(n) < 0.02] = -0.001                         # stars: no comoving position
    return {"ra": ra, "dec": np.clip(dec, -90, 90), "z": z}


def galaxies_table(n: int, rng, tid0: int = 39627000000000000) -> pa.Table:
    s = sky(n, rng)
    tid = tid0 + rng.choice(50 * n, n, replace=False).astype(np.int64) * 7
    r = np.where(s["z"] >= 0, cosmology.comoving_distance(s["z"], OMEGA_M), np.nan)
    x, y, zc = cosmology.radec_to_xyz(s["ra"], s["dec"], r)
    nan = np.isnan(r)
    given = {"targetid": tid, "ra": s["ra"], "dec": s["dec"], "z": s["z"],
             "comoving_distance": pa.array(r, mask=nan), "comoving_x": pa.array(x, mask=nan),
             "comoving_y": pa.array(y, mask=nan), "comoving_z": pa.array(zc, mask=nan),
             "source_file": np.array(["dr1/fastspec-hp00.fits"] * n),
             "source_row": np.arange(n)}
    logm = rng.normal(10, 1, n)
    logm[rng.random(n) < 0.03] = np.nan                      # source NaN stays NaN
    given["logmstar"] = logm
    return _fill(C.GALAXIES, n, rng, given)


def write_inputs(out: Path, *, n_galaxies: int = 3000, parts: int = 3, seed: int = 7
                 ) -> dict[str, pa.Table]:
    """Write a full Parquet input set under ``out`` (the RunLayout.parquet layout); return the
    tables written."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    gal = galaxies_table(n_galaxies, rng)
    bounds = np.linspace(0, n_galaxies, parts + 1).astype(int)
    for i in range(parts):
        _write(gal.slice(bounds[i], bounds[i + 1] - bounds[i]),
               out / "galaxies" / f"part-{i:03d}-00000.parquet", _meta("galaxies"))

    # voids: VoidFinder around random galaxies, V2 voids with zones
    has = np.isfinite(gal["comoving_x"].to_numpy(zero_copy_only=False))
    cx = gal["comoving_x"].to_numpy(zero_copy_only=False)
    cy = gal["comoving_y"].to_numpy(zero_copy_only=False)
    cz = gal["comoving_z"].to_numpy(zero_copy_only=False)
    centres = rng.choice(np.flatnonzero(has), 20, replace=False)
    void_rows, hole_rows = [], []
    for cap in C.CAPS:
        for v in range(10):
            j = centres[v + (10 if cap == "SGC" else 0)]
            c = np.array([cx[j], cy[j], cz[j]])
            void_rows.append({"algorithm": "VoidFinder", "cap": cap, "void": v, "x": c[0],
                              "y": c[1], "z": c[2], "radius": 40.0, "edge": v % 3})
            far = 5000.0 if (cap, v) == ("SGC", 9) else 0.0  # a void holding no galaxy
            for _k in range(3):  # overlapping holes: first-hole rule matters
                o = c + rng.normal(0, 15, 3) + far
                hole_rows.append({"cap": cap, "void": v, "x": o[0], "y": o[1], "z": o[2],
                                  "radius": float(rng.uniform(20, 50))})
    v2_zones = []
    # REVOLVER and VIDE keep fewer voids than ZOBOV while sharing its ZONEVOID (as DESIVAST)
    for alg, n_keep in (("REVOLVER", 4), ("VIDE", 5), ("ZOBOV", 6)):
        for cap in C.CAPS:
            for v in range(n_keep):
                void_rows.append({"algorithm": alg, "cap": cap, "void": v, "x": 1.0, "y": 2.0,
                                  "z": 3.0, "radius": 30.0, "tot_area": 10.0,
                                  "edge_area": float(v)})
    n_v = len(void_rows)
    vcols = {k: [r.get(k) for r in void_rows] for k in ("algorithm", "cap", "void", "x", "y",
                                                         "z", "radius", "edge", "tot_area",
                                                         "edge_area")}
    vcols["source_file"] = ["dr1/vac/desivast.fits"] * n_v
    vcols["source_row"] = list(range(n_v))
    voids = _fill(C.VOIDS, n_v, rng, {**vcols, "is_edge": [False] * n_v})
    _write(voids, out / "voids.parquet", _meta("voids"))

    hcols = {k: [r[k] for r in hole_rows] for k in ("cap", "void", "x", "y", "z", "radius")}
    hcols["hole_index"] = [i for cap in C.CAPS for i in range(30)]
    hcols["source_file"] = ["dr1/vac/vf.fits"] * len(hole_rows)
    holes = _fill(C.HOLES, len(hole_rows), rng, hcols)
    _write(holes, out / "holes.parquet", _meta("holes"))

    # V2: 12 zones per cap; zones 0..9 map to voids 0..5 (void0), 10, 11 in no void
    zv, gz = [], []
    tids = gal["targetid"].to_numpy()
    for alg in ("REVOLVER", "VIDE", "ZOBOV"):
        for cap in C.CAPS:
            for zone in range(12):
                zv.append({"algorithm": alg, "cap": cap, "zone": zone,
                           "void0": zone % 6 if zone < 10 else -1,
                           "void1": zone % 6 if zone < 10 else -1, "source_row": zone})
            picks = rng.choice(len(tids), min(200, len(tids)), replace=False)
            for gal_i, t in enumerate(picks):
                gz.append({"algorithm": alg, "cap": cap, "gal": gal_i, "targetid": int(tids[t]),
                           "x": 0.0, "y": 0.0, "z": 0.0, "zone": int(rng.integers(-1, 12)),
                           "source_row": gal_i})
            v2_zones.append((alg, cap))
    zonevoid = _fill(C.ZONEVOID, len(zv), rng, {k: [r[k] for r in zv] for k in zv[0]})
    _write(zonevoid, out / "zonevoid.parquet", _meta("zonevoid"))
    galzone = _fill(C.GALZONE, len(gz), rng, {k: [r[k] for r in gz] for k in gz[0]})
    _write(galzone, out / "galzone.parquet", _meta("galzone"))

    rej = {"table": ["galaxies", "galaxies", "holes"],
           "source_file": ["dr1/fastspec-hp00.fits"] * 2 + ["dr1/vac/vf.fits"],
           "hdu": ["METADATA", "METADATA", "HOLES"], "source_row": [5, 5, 2],
           "key": [1, 1, 3], "column": ["RA", "Z", "X"],
           "reason": ["nonfinite", "nonfinite", "nonfinite"]}
    rejects = _fill(C.REJECTS, 3, rng, rej)
    _write(rejects, out / "rejects.parquet", _meta("rejects"))
    return {"galaxies": gal, "voids": voids, "holes": holes, "zonevoid": zonevoid,
            "galzone": galzone, "rejects": rejects}


def parquet_dir(tmp_path):
    """A pytest fixture body (``pdir = pytest.fixture(parquet_dir)``): 1,500 galaxies in three
    Parquet parts under ``tmp_path/parquet``; the SQLite engines the test opened are disposed."""
    from desivoids.load import queries

    p = tmp_path / "parquet"
    write_inputs(p, n_galaxies=1500, parts=3)
    yield p
    queries.dispose_engines()
