"""Write the whole mock sky: DESIVAST, FastSpecFit, checksums, truth and (optionally) tile spectra."""
from __future__ import annotations

from ..checksums import sha256_file

import datetime
import inspect
import json
import time
from pathlib import Path

import numpy as np

from .. import cosmology, formats
from . import desivast, population as pop, scales, sky, truth
from . import fastspecfit as fsf

#: default planted environment effect: the quenched probability of the tracers in VoidFinder
#: voids minus that in walls, at any mass (generate's ``planted_offset``; 0.0 gives a null mock),
#: planted as a profile in r / R_eff (:func:`planted_shape`)
PLANTED_OFFSET = -0.10
#: r / R_eff from which the planted shift is zero
PLANT_ZERO = 1.5
MASS_BINS = (9.0, 9.5, 10.0, 10.5, 11.0, 11.5, 12.5)
#: the systematics stage's default stellar-mass matching bins (notebooks/09_systematics.py
#: mass_edges): the expected answers of truth.json are weighted on them
MATCH_EDGES = (9.5, 10.0, 10.25, 10.5, 10.75, 11.0, 11.25, 11.5, 12.0)
#: the density stage's default r / R_eff bins (notebooks/08_density.py r_edges): truth.json's
#: expected profile is binned on them
R_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)


def quenched_probability(logm):
    """Quenched probability at stellar mass logm far from any void (the planted shift,
    :func:`planted_shape`, is added to it)."""
    return 0.12 + 0.76 / (1.0 + np.exp(-(np.asarray(logm, float) - 10.55) / 0.25))


def planted_shape(x):
    """The planted quenching's profile in x = r / R_eff (the galaxy's distance to the centre of
    its VoidFinder void, or of the nearest one, in that void's effective radii;
    truth.void_centric): 1 at the centre, falling as a raised cosine, (1 + cos(pi x / x0)) / 2,
    flat at both ends, to 0 at x0 = PLANT_ZERO, 0 beyond and where x is undefined (outside
    the survey). The shift of the quenched probability is the amplitude times this."""
    x = np.nan_to_num(np.asarray(x, float), nan=PLANT_ZERO)
    return 0.5 * (1.0 + np.cos(np.pi * np.clip(x / PLANT_ZERO, 0.0, 1.0)))


def planted_amplitude(offset: float, shape, flag) -> float:
    """The shift at a void's centre for which the mean shift (before the clip to [0, 1]) of
    VoidFinder void (flag 1) minus wall (flag 0) galaxies is ``offset``: so the void-minus-wall
    answer keeps the size a step of ``offset`` on membership had. ``offset`` itself when either
    group is empty."""
    shape, flag = np.asarray(shape, float), np.asarray(flag)
    v, w = flag == truth.VOID, flag == truth.WALL
    if offset == 0 or not v.any() or not w.any():
        return float(offset)
    contrast = shape[v].mean() - shape[w].mean()
    if contrast <= 0:
        raise AssertionError(f"mock: void galaxies are no nearer their void centres than wall "
                             f"galaxies (contrast {contrast:.3f}); cannot plant a profile")
    return float(offset / contrast)


def _rng_factory(seed: int):
    def make(step: str, k: int = 0) -> np.random.Generator:
        return np.random.default_rng([int(seed), int.from_bytes(step.encode()[:8].ljust(8, b"\0"),
                                                                 "little"), int(k)])
    return make


def write_checksums(folder: Path, reldir: str, names) -> Path:
    """A DESI-style sha256sum file (``<hex>  <name>``, names relative to the folder)."""
    path = folder / formats.checksum_filename(reldir)
    lines = [f"{sha256_file(folder / n)}  {n}\n" for n in sorted(names)]
    path.write_text("".join(lines))
    return path


def generate(out_dir, *, seed: int = 20251125, scale: str = "small", fastspec_version: str = "v3.0",
             tiles: int = 2, planted_offset: float = PLANTED_OFFSET,
             progress: bool | None = None) -> dict:
    """Write a mock sky in DESI's relative layout under ``out_dir`` and its truth in out_dir/truth.

    ``planted_offset``: quenched probability of the tracers in VoidFinder voids minus that of
    wall tracers at the same stellar mass (0.0: a null mock, no environment effect), planted as a
    smooth profile in r / R_eff (:func:`planted_shape`, :func:`planted_amplitude`).
    Returns a summary: files written (relative paths, rows per HDU), counts and timing.
    """
    t0 = time.perf_counter()
    sc = scales.get(scale)
    if fastspec_version not in ("v3.0", "v2.1"):
        raise ValueError(f"fastspec_version must be 'v3.0' or 'v2.1', got {fastspec_version!r}")
    progress = (scale == "dr1") if progress is None else progress
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rngf = _rng_factory(seed)
    fps = sky.footprints(sc.footprint)

    # 1. planted voids and the clustered structure, per cap
    capskies, vvoids = {}, {}
    for k, cap in enumerate(formats.CAPS):
        rng = rngf("voids", k)
        vv = sky.place_voids(rng, fps[cap], sc.vf_voids[cap], sc.vf_holes[cap], sc.radius)
        cl = sky.make_clusters(rngf("clusters", k), fps[cap], vv, max(20, sc.tracers[cap] // 25))
        capskies[cap] = sky.CapSky(cap, fps[cap], vv, cl)
        vvoids[cap] = vv

    # 2. the rows of the catalogue
    core = pop.build(rngf, sc, fps, capskies)
    n = len(core["COMP"])
    caps = np.where(formats.cap_of_ra(core["RA"]) == "NGC", "N", "S").astype("S1")
    r = cosmology.comoving_distance(core["Z"], sky.OMEGA_M)
    xyz = np.column_stack(cosmology.radec_to_xyz(core["RA"], core["DEC"], r))

    # 3. the tracer sample as written, and the DESIVAST tables per cap
    is_tracer = core["COMP"] == pop.TRACER
    desivast_files, dv_rows = {}, {}
    membership = {a: (np.full(n, truth.OUTSIDE, np.int8), np.full(n, -1, np.int32))
                  for a in formats.ALGORITHMS}
    vf_surface = np.zeros(n, dtype=bool)  # VoidFinder's surface galaxies (not void)
    vf_x = np.full(n, np.nan)  # r / R_eff to the VoidFinder void (own or nearest) planted on
    grids = {}
    vdir = out / formats.DESIVAST_DIR
    vdir.mkdir(parents=True, exist_ok=True)
    for k, cap in enumerate(formats.CAPS):
        incap = caps == cap[0].encode()
        tsel = np.flatnonzero(is_tracer & incap)
        tsel = tsel[np.argsort(core["TARGETID"][tsel], kind="stable")]
        txyz = xyz[tsel]
        grid = truth.footprint_grid(core["RA"][tsel], core["DEC"][tsel], sky.DLIMU)
        grids[cap] = grid
        maximals, holes, vf_hdr = desivast.voidfinder_tables(
            rngf("reff", k), vvoids[cap], grid, txyz, fps[cap].area_deg2())
        name = formats.voidfinder_filename(cap)
        desivast.write_voidfinder(vdir / name, maximals, holes, vf_hdr)
        desivast_files[name] = {"MAXIMALS": len(maximals["VOID"]), "HOLES": len(holes["VOID"])}
        v2 = desivast.v2_tables(rngf("v2", k), vvoids[cap], txyz, core["TARGETID"][tsel], grid,
                                sc.zones[cap], sc.revolver[cap], vf_hdr["VOLUME"])
        for alg in formats.V2_ALGORITHMS:
            name = formats.v2_filename(alg, cap)
            desivast.write_v2(vdir / name, alg, v2[alg])
            desivast_files[name] = {ext: len(next(iter(t.values()))) for ext, t in v2[alg].items()}
        # truth membership of every row of this cap (rows of the other cap stay 9)
        sel = np.flatnonzero(incap)
        del incap
        f, v, vf_surface[sel] = truth.voidfinder_flags(xyz[sel], core["Z"][sel], holes, grid,
                                                       sky.DLIML, sky.DLIMU, sky.ZLIMU)
        membership["VoidFinder"][0][sel], membership["VoidFinder"][1][sel] = f, v
        vf_x[sel] = truth.void_centric(xyz[sel], f, v, maximals["VOID"],
                                       np.column_stack([maximals[c] for c in "XYZ"]),
                                       maximals["R_EFF"])
        # one GALZONE (one nearest-tracer search), each algorithm by its own ZONEVOID
        gz, zv = v2["ZOBOV"]["GALZONE"], {a: v2[a]["ZONEVOID"] for a in formats.V2_ALGORITHMS}
        v2_flags = truth.v2_flags(xyz[sel], core["Z"][sel], gz, zv, grid, sky.DLIML, sky.DLIMU,
                                  sky.ZLIMU)
        for alg, (f, v) in v2_flags.items():
            membership[alg][0][sel], membership[alg][1][sel] = f, v
        del v2_flags
        dv_rows[cap] = {"tracers": int(len(tsel)), "voids": int(len(maximals["VOID"])),
                        "holes": int(len(holes["VOID"])), "zones": int(len(zv["ZOBOV"]["ZONE"])),
                        **{f"{a.lower()}_voids": int(len(v2[a]["VOIDS"]["VOID"]))
                           for a in formats.V2_ALGORITHMS}}
    write_checksums(vdir, formats.DESIVAST_DIR, desivast_files)
    del xyz, r, caps

    # 4. stellar mass and the planted quenching
    rng = rngf("mass", 0)
    logm = 10.45 - 0.42 * (core["MR"] + 21.0) + rng.normal(0, 0.13, n)
    star, qso = core["COMP"] == pop.STAR, core["COMP"] == pop.QSO
    logm[star] = rng.uniform(-3.0, 7.0, star.sum())
    logm[qso] = np.clip(rng.normal(11.6, 1.0, qso.sum()), 8.0, 15.6)
    for comp_mask, value in ((star, -12.0), (qso, 15.6)):  # the real extremes of LOGMSTAR
        idx = np.flatnonzero(comp_mask)
        if len(idx):
            logm[idx[0]] = value
    shape = planted_shape(vf_x)
    amplitude = planted_amplitude(float(planted_offset), shape[is_tracer],
                                  membership["VoidFinder"][0][is_tracer])
    p0 = quenched_probability(logm)
    p = np.clip(p0 + amplitude * shape, 0.0, 1.0)
    p0_tracer = p0[is_tracer]
    del shape, p0
    core["LOGM"] = logm.astype(np.float32)
    core["QUENCHED"] = rng.random(n) < p
    p_tracer = p[is_tracer]

    # 5. FastSpecFit files (streamed), recording the observed quenched definitions
    obs = {k: np.zeros(n, dtype=bool) for k in ("QUENCHED_SSFR", "QUENCHED_DN4000", "QUENCHED_COLOR")}
    written_absr = np.zeros(n, dtype=np.float32)
    failed_fit = np.zeros(n, dtype=bool)  # LOGMSTAR == 0 and SFR == 0 as written

    def record(hp, ci, rows, ph):
        d = truth.quenched_definitions(ph["LOGMSTAR"], ph["SFR"], ph["DN4000"],
                                       ph["ABSMAG01_SDSS_U"], ph["ABSMAG01_SDSS_R"])
        for key, val in d.items():
            obs[key][rows] = val
        written_absr[rows] = ph["ABSMAG01_SDSS_R"]  # noqa: F821 - bound above, deleted after use
        failed_fit[rows] = (ph["LOGMSTAR"] == 0) & (ph["SFR"] == 0)

    order_key = np.lexsort((core["TARGETID"], core["HEALPIX"], core["HP"]))
    hp_sorted = core["HP"][order_key]
    bounds = np.searchsorted(hp_sorted, np.arange(13))
    pieces = [(hp, order_key[bounds[hp]:bounds[hp + 1]]) for hp in range(12)]
    bar = None
    if progress:
        from tqdm.auto import tqdm
        n_hdu = 3 if fastspec_version == "v3.0" else 2
        bar = tqdm(total=n * n_hdu, unit="row", desc="FastSpecFit", mininterval=2.0)
    fs_files = {}
    if fastspec_version == "v3.0":
        fdir, freldir = out / formats.FASTSPEC_V3_DIR, formats.FASTSPEC_V3_DIR
        for hp, ix in pieces:
            name = formats.fastspec_v3_filename(hp)
            fsf.write_file(fdir / name, "v3.0", core, [(hp, ix)], seed, sc.lines, sc.chunk,
                           record, bar)
            fs_files[name] = len(ix)
    else:
        fdir, freldir = out / formats.FASTSPEC_V21_DIR, formats.FASTSPEC_V21_DIR
        name = formats.FASTSPEC_V21_FILENAME
        fsf.write_file(fdir / name, "v2.1", core, pieces, seed, sc.lines, sc.chunk, record, bar)
        fs_files[name] = n
    if bar is not None:
        bar.close()
    write_checksums(fdir, freldir, fs_files)

    # 6. the truth: first check that the selection of science.md, applied to the values as
    #    written, gives exactly the planted tracers (in chunks: string columns are large)
    quality = np.zeros(n, dtype=bool)
    for s in range(0, n, 1_000_000):
        sl = slice(s, s + 1_000_000)
        meta = {"SURVEY": np.asarray(pop.SURVEYS)[core["SURVEY"][sl]],
                "PROGRAM": np.asarray(pop.PROGRAMS)[core["PROGRAM"][sl]],
                "BGS_TARGET": core["BGS_TARGET"][sl],
                "SPECTYPE": np.asarray(pop.SPECTYPE_CODES)[core["SPECTYPE"][sl]],
                "ZWARN": core["ZWARN"][sl], "DELTACHI2": core["DELTACHI2"][sl], "Z": core["Z"][sl],
                "ABSMAG01_SDSS_R": written_absr[sl]}
        selected = truth.select_tracers(meta, sky.ZLIMU, sky.MAGLIM)
        if not np.array_equal(selected, is_tracer[sl]):
            bad = int(np.sum(selected != is_tracer[sl]))
            raise AssertionError(f"mock: tracer selection on written values differs for {bad} rows")
        meta["ABSMAG01_SDSS_R"] = np.full(len(selected), -99.0)
        quality[sl] = truth.select_tracers(meta, sky.ZLIMU, 0.0)
    del meta, written_absr
    tdir = out / "truth"
    expected = _expected_answers(core, membership, is_tracer, p_tracer, failed_fit)
    plant = _planted_profile(core, vf_x, is_tracer, p_tracer, p0_tracer, failed_fit, amplitude)
    summary_truth = _write_truth(tdir, core, membership, obs, is_tracer, quality, seed, sc,
                                 fastspec_version, float(planted_offset), expected, vf_surface,
                                 plant, p, vf_x)
    del p, vf_x

    # 7. tile spectra through the acquire engineer's writer, if present
    tile_info = _write_tiles(out, core, tiles, rngf("tiles", 0))

    files = {f"{formats.DESIVAST_DIR}/{k}": v for k, v in desivast_files.items()}
    files.update({f"{freldir}/{k}": v for k, v in fs_files.items()})
    summary = {
        "out_dir": str(out), "seed": int(seed), "scale": scale,
        "fastspec_version": fastspec_version, "rows": int(n),
        "tracers": {c: dv_rows[c]["tracers"] for c in formats.CAPS},
        "desivast": dv_rows, "files": files,
        "checksum_files": [formats.DESIVAST_CHECKSUM,
                           f"{freldir}/{formats.checksum_filename(freldir)}"],
        "truth": {"galaxies": "truth/galaxies.parquet", "json": "truth/truth.json",
                  "void_fraction": summary_truth["void_fraction"]},
        "tiles": tile_info, "seconds": round(time.perf_counter() - t0, 2),
    }
    return summary


def _expected_answers(core, membership, is_tracer, p_tracer, failed_fit) -> dict:
    """Per algorithm and cap (NGC, SGC, both): the expected answer of the systematics stage's
    headline statistic (mass-matched risk difference, all voids, the tracers less failed fits)
    from the latent quenched probabilities."""
    tr = np.flatnonzero(is_tracer)
    use = ~failed_fit[tr]
    logm = core["LOGM"][tr].astype(np.float64)
    cap = formats.cap_of_ra(core["RA"][tr])
    out = {}
    for alg in formats.ALGORITHMS:
        flag = membership[alg][0][tr]
        out[alg] = {c: truth.expected_matched_difference(
            logm[use & sel], p_tracer[use & sel], flag[use & sel], MATCH_EDGES)
            for c, sel in (("NGC", cap == "NGC"), ("SGC", cap == "SGC"),
                           ("both", np.ones(len(tr), bool)))}
    return out


def _planted_profile(core, vf_x, is_tracer, p_tracer, p0_tracer, failed_fit, amplitude
                     ) -> dict:
    """truth.json's planted profile: the shape, its amplitude, and the expected VoidFinder
    profile per R_EDGES bin over the density stage's sample (the tracers less failed fits, as
    for the expected answers) from the latent probabilities, beside the same without the plant."""
    tr = np.flatnonzero(is_tracer)
    use = ~failed_fit[tr]
    x, logm = vf_x[tr][use], core["LOGM"][tr][use].astype(np.float64)
    planted = truth.expected_profile(x, logm, p_tracer[use], R_EDGES, MATCH_EDGES)
    base = truth.expected_profile(x, logm, p0_tracer[use], R_EDGES, MATCH_EDGES)
    for b, b0 in zip(planted, base):
        b["without_plant"] = b0["expected"]
    return {
        "algorithm": "VoidFinder", "quantity": "r_over_reff",
        "x": ("|galaxy - centre| / R_EFF, the centre MAXIMALS X, Y, Z of the galaxy's VoidFinder "
              "void (flag 1) or the nearest such centre (flags 0, 2; that void's R_EFF); none "
              "outside (flag 9)"),
        "shift": ("amplitude * (1 + cos(pi * min(x, x_zero) / x_zero)) / 2 added to the "
                  "quenched probability at the galaxy's stellar mass, the sum clipped to [0, 1]; "
                  "0 where x is undefined"),
        "amplitude": amplitude, "x_zero": PLANT_ZERO,
        "calibration": ("amplitude = planted_offset / (mean shape over the VoidFinder void "
                        "tracers - mean shape over the wall tracers)"),
        "expected": {
            "definition": ("expected value of the density stage's profile (quenched fraction "
                           "standardised to the binned galaxies' stellar-mass histogram per x "
                           "bin) from the latent quenched probabilities; without_plant: the "
                           "same with no shift"),
            "sample": "tracers less failed fits", "r_edges": list(R_EDGES),
            "mass_edges": list(MATCH_EDGES), "bins": planted},
    }


def _write_truth(tdir: Path, core, membership, obs, is_tracer, quality, seed, sc, version,
                 planted_offset: float, expected: dict, vf_surface, plant: dict, p_latent,
                 vf_x) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tdir.mkdir(parents=True, exist_ok=True)
    cols = {"TARGETID": lambda i: core["TARGETID"][i], "HP": lambda i: core["HP"][i].astype(np.int16),
            "CAP": lambda i: formats.cap_of_ra(core["RA"][i]),
            "COMP": lambda i: np.asarray(pop.COMP_NAMES)[core["COMP"][i]],
            "IS_TRACER": lambda i: is_tracer[i], "IS_QUALITY": lambda i: quality[i],
            "LOGMSTAR_TRUE": lambda i: core["LOGM"][i], "QUENCHED": lambda i: core["QUENCHED"][i]}
    for alg in formats.ALGORITHMS:
        cols[f"FLAG_{alg.upper()}"] = (lambda a: lambda i: membership[a][0][i])(alg)
        cols[f"VOID_{alg.upper()}"] = (lambda a: lambda i: membership[a][1][i].astype(np.int64))(alg)
    cols["SURFACE_VOIDFINDER"] = lambda i: vf_surface[i]
    cols["R_OVER_REFF_VOIDFINDER"] = lambda i: vf_x[i].astype(np.float32)
    cols["P_QUENCHED"] = lambda i: p_latent[i].astype(np.float32)
    for key in obs:
        cols[key] = (lambda k: lambda i: obs[k][i])(key)
    order = np.argsort(core["TARGETID"], kind="stable")
    writer = None
    for s in range(0, len(order), 1_000_000):  # row groups: bounded memory at DR1 scale
        idx = order[s:s + 1_000_000]
        table = pa.table({k: f(idx) for k, f in cols.items()})
        if writer is None:
            writer = pq.ParquetWriter(tdir / "galaxies.parquet", table.schema, compression="zstd")
        writer.write_table(table)
    writer.close()
    del order

    gal = core["SPECTYPE"] == 0
    realised = {}
    for sample, mask in (("tracers", is_tracer), ("quality", quality & gal)):
        realised[sample] = {}
        for alg in formats.ALGORITHMS:
            flag = membership[alg][0]
            realised[sample][alg] = {
                key: truth.offsets_by_mass(core["LOGM"][mask], val[mask], flag[mask], MASS_BINS)
                for key, val in (("QUENCHED", core["QUENCHED"]), *obs.items())}
    void_fraction = {alg: float(np.mean(membership[alg][0][is_tracer] == truth.VOID))
                     for alg in formats.ALGORITHMS}
    doc = {
        "seed": int(seed), "scale": sc.name, "fastspec_version": version,
        "parameters": {"omega_m": sky.OMEGA_M, "zlimu": sky.ZLIMU, "zliml": sky.ZLIML,
                       "dlimu": sky.DLIMU, "dliml": sky.DLIML, "maglim": sky.MAGLIM,
                       "edge_buffer": truth.EDGE_BUFFER, "mass_bins": list(MASS_BINS),
                       "quenched_probability": "0.12 + 0.76 / (1 + exp(-(logM - 10.55) / 0.25))",
                       "tracers": sc.tracers, "vf_voids": sc.vf_voids, "vf_holes": sc.vf_holes,
                       "zones": sc.zones, "revolver": sc.revolver},
        "planted_offset": {"VoidFinder": planted_offset},
        "planted_note": (f"quenched probability at fixed stellar mass is shifted by "
                         f"{plant['amplitude']:+.3f} at a VoidFinder void's centre, the shift "
                         f"falling smoothly to 0 at {PLANT_ZERO} R_eff (planted_profile), scaled "
                         f"so that VoidFinder void (flag 1) minus wall tracers is "
                         f"{planted_offset:+.3f} on average; V2 membership is not used when "
                         "planting, so V2 offsets are whatever the overlap with VoidFinder "
                         "voids gives (recorded below)"),
        "planted_profile": plant,
        "void_fraction_tracers": void_fraction,
        "voidfinder_surface": _surface_counts(core, vf_surface, is_tracer),
        "counts": {"rows": int(len(core["COMP"])), "tracers": int(is_tracer.sum()),
                   "quality_galaxies": int((quality & gal).sum())},
        "realised_offsets": realised,
        "expected_answers": {
            "definition": ("expected void-minus-wall difference of the latent quenched "
                           "probability at fixed stellar mass (the systematics stage's "
                           "mass-matched risk difference: wall galaxies reweighted to the void "
                           "mass histogram), void = flag 1, wall = flag 0, all voids, over the "
                           "tracers less failed fits; each algorithm by its own membership"),
            "mass_edges": list(MATCH_EDGES), "statistic": "rd", "sample": "all voids",
            "by_algorithm": expected},
        "flags": {"0": "wall", "1": "void", "2": "edge", "9": "outside"},
    }
    (tdir / "truth.json").write_text(json.dumps(doc, indent=1, sort_keys=True))
    return {"void_fraction": void_fraction}


def _surface_counts(core, vf_surface, is_tracer) -> dict:
    """truth.json's VoidFinder surface galaxies: the tolerance and their counts per cap."""
    cap = formats.cap_of_ra(core["RA"])
    return {"surface_tol": truth.SURFACE_TOL,
            "note": "within surface_tol of a hole's surface and inside no hole by more: not void "
                    "(the mock's holes grow until they touch a wall tracer, as VoidFinder's do)",
            "galaxies": {c: int((vf_surface & (cap == c)).sum()) for c in formats.CAPS},
            "tracers": {c: int((vf_surface & is_tracer & (cap == c)).sum())
                        for c in formats.CAPS}}


def _write_tiles(out: Path, core, n_tiles: int, rng) -> list:
    """Call desivoids.mock.tiles.write_tile_pair for ``n_tiles`` tiles, if that module exists."""
    if n_tiles <= 0:
        return []
    try:
        from . import tiles as tiles_mod
        writer = tiles_mod.write_tile_pair
    except (ImportError, AttributeError):
        return []
    params = inspect.signature(writer).parameters
    info = []
    cand = np.flatnonzero((core["COMP"] != pop.HIGH) | (rng.random(len(core["COMP"])) < 0.2))
    for _ in range(n_tiles):
        k = int(min(len(cand), rng.integers(24, 48)))
        rows = np.sort(rng.choice(cand, k, replace=False))
        targets = {
            "TARGETID": core["TARGETID"][rows], "TARGET_RA": core["RA"][rows],
            "TARGET_DEC": core["DEC"][rows], "Z": core["Z"][rows],
            "SPECTYPE": np.asarray(pop.SPECTYPE_CODES)[core["SPECTYPE"][rows]],
            "ZWARN": core["ZWARN"][rows].astype(np.int64), "DELTACHI2": core["DELTACHI2"][rows],
        }
        tileid = int(1000 + rng.integers(0, 40000))
        petal = int(rng.integers(0, 10))
        day = datetime.date(2021, 5, 14) + datetime.timedelta(days=int(rng.integers(0, 400)))
        night = int(day.strftime("%Y%m%d"))
        kwargs = {"out_root": out, "tileid": tileid, "petal": petal, "night": night,
                  "targets": targets, "rng": rng}
        kwargs = {k: v for k, v in kwargs.items() if k in params}
        res = writer(**kwargs)
        info.append({"tileid": tileid, "petal": petal, "night": night, "n_targets": k,
                     "written": [str(x) for x in res] if isinstance(res, (list, tuple)) else
                     (str(res) if res is not None else None)})
    return info
