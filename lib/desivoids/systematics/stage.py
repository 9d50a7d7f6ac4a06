"""The systematics stage: quenched fractions of void and wall galaxies, per algorithm, at fixed
stellar mass, with honest errors.

The sample is plausibility's (DESIVAST's tracers less FastSpecFit's failed fits) with the flags
of the environment stage: void = flag 1, wall = flag 0; edge (2) and outside (9) galaxies are
left out and counted, as are galaxies whose quenched state is undefined (a non-finite input).
For every algorithm, both void samples (all voids; interior voids only), every quenched
definition and every cap (NGC, SGC, both), :func:`.compare.compare_void_wall` gives one row:
mass-matched fractions, the risk difference with Newcombe's interval, the risk ratio, Cohen's h,
the logistic-regression odds ratio with errors clustered on equal-area HEALPix patches, and the
delete-one-patch jackknife errors beside the analytic ones. The patches are cut once, on the
whole sample, NGC and SGC separately.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits

from .. import compute, formats, idsets, paths
from ..errors import InputError
from ..outputs import jsonable, staged, write_json
from .compare import compare_void_wall
from .jackknife import healpix_patches
from .matching import binned_fractions, mass_bin_index
from .quenched import DEFINITIONS, DN4000_LIMIT, SSFR_LIMIT, UR_LIMIT, quenched
from ..params import checked
from ..stages import file_name

__all__ = ["run", "SystematicsResult", "VARIANTS", "result_paragraph", "surface_table"]

#: void samples: (name, the assignments column holding its flag); "surface as void" is
#: VoidFinder's other answer, its surface galaxies (environment's voidfinder_surface) counted as
#: void as VAST's rounding mostly does, beside the default that counts them as not void
VARIANTS = {"all voids": "flag", "interior voids": "flag_interior",
            "surface as void": "flag_surface"}
CAPS = (*formats.CAPS, "both")
SCHEMA_VERSION = 1


@dataclass
class SystematicsResult:
    out_dir: Path
    summary: pd.DataFrame
    binned: pd.DataFrame
    counts: pd.DataFrame
    report: dict

    def __str__(self) -> str:
        both = self.summary[(self.summary.cap == "both") & (self.summary["sample"] == "all voids")]
        lines = [f"systematics: {len(self.summary)} comparisons -> {paths.display(self.out_dir)}"]
        for _, r in both.iterrows():
            lines.append(f"  {r.algorithm:<10} {r.definition:<7} rd {r.rd:+.3f} "
                         f"[{r.rd_jk_lo:+.3f}, {r.rd_jk_hi:+.3f}] (jackknife), "
                         f"n void {r.n_void:,d}, n wall {r.n_wall:,d}")
        return "\n".join(lines)


def _read_sample(layout: paths.RunLayout) -> pd.DataFrame:
    path = paths.require(layout.file("plausibility", "sample"), "plausibility")
    cols = ["targetid", "cap", "ra", "dec", "z", "logmstar", "sfr", "dn4000", "absmag01_sdss_u",
            "absmag01_sdss_r"]
    # the cap as categories, not 700,000 Python strings; a block per column, not one copy
    return pq.read_table(path, columns=cols, read_dictionary=["cap"]).to_pandas(split_blocks=True)


def _rows_of(targetid: np.ndarray, ids: np.ndarray, order: np.ndarray):
    """(rows, positions): the rows of ``targetid`` (one row group of the assignments) whose
    TARGETID is among the sample's, and the position of each in the sample; ``ids`` the
    sample's TARGETIDs sorted, ``order`` their positions (its argsort).

    Why not Arrow's is_in and a filter: hashing 25.8 M TARGETIDs was half of the stage's reads
    at DR1 scale. A row group in TARGETID order (as environment writes them) is searched for
    the sample's TARGETIDs in its range (700,000 binary searches in all instead of 25.8 M); any
    other row group has each of its TARGETIDs searched among the sample's."""
    a = targetid
    if not a.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if np.all(a[1:] >= a[:-1]):
        lo, hi = np.searchsorted(ids, a[0]), np.searchsorted(ids, a[-1], side="right")
        left = np.searchsorted(a, ids[lo:hi])
        n = np.searchsorted(a, ids[lo:hi], side="right") - left
        first = np.repeat(left - (np.cumsum(n) - n), n)  # + k: row k of each id's run
        return first + np.arange(first.size), np.repeat(order[lo:hi], n)
    pos = idsets.positions(a, ids)
    hit = np.flatnonzero(pos >= 0)
    return hit, order[pos[hit]]


def _read_flags(layout: paths.RunLayout, targetids: np.ndarray) -> pd.DataFrame:
    """The flags of the sample's galaxies, one column per (flag column, algorithm), in the order
    of ``targetids`` (the index)."""
    path = paths.require(layout.file("environment", "assignments"),
                         "environment")
    targetids = np.asarray(targetids)
    order = np.argsort(targetids, kind="stable")
    ids = targetids[order]
    if np.any(ids[1:] == ids[:-1]):
        raise InputError(layout.file("plausibility", "sample"), None, "targetid",
                         "the sample's TARGETIDs repeat: rerun plausibility")
    columns = ["flag", "flag_interior"]
    names = list(formats.ALGORITHMS)  # then any other name the file holds, to be refused
    where, codes, values = [], [], {c: [] for c in columns}
    nulls = set()
    # the algorithm names as a dictionary (as Parquet stores them): 25.8 M strings at DR1 scale
    # were two thirds of the read
    f = pq.ParquetFile(path, read_dictionary=["algorithm"])
    for group in range(f.num_row_groups):  # one at a time: its memory reused for the next
        batch = f.read_row_group(group, columns=["targetid", "algorithm", *columns])
        nulls |= {c for c in batch.schema.names if batch.column(c).null_count}
        if nulls or not batch.num_rows:
            continue
        batch = batch.unify_dictionaries().combine_chunks()
        rows, w = _rows_of(batch.column("targetid").to_numpy(), ids, order)
        algorithm = batch.column("algorithm").chunk(0)
        local = algorithm.dictionary.to_pylist()
        names += [a for a in local if a not in names]
        codes.append(np.array([names.index(a) for a in local], np.int64)[
            algorithm.indices.to_numpy()[rows]])
        where.append(w)
        for c in columns:
            values[c].append(batch.column(c).to_numpy()[rows])
    if nulls:
        raise InputError(path, "galaxy_void_assignments", ", ".join(sorted(nulls)), "null values")
    where = np.concatenate(where) if where else np.zeros(0, np.int64)
    codes = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    present = [a for a, k in zip(names, np.bincount(codes, minlength=len(names))) if k]
    missing = sorted(set(present) ^ set(formats.ALGORITHMS))
    if missing:
        raise InputError(path, "galaxy_void_assignments", "algorithm",
                         f"the assignments lack or add algorithms {missing}")
    n = targetids.size
    absent = targetids[np.bincount(where, minlength=n) == 0]
    if len(absent):
        raise InputError(path, "galaxy_void_assignments", "targetid",
                         f"{len(absent)} sample galaxies have no membership (e.g. "
                         f"{absent[:5].tolist()}): rerun environment after plausibility")
    algorithms = list(formats.ALGORITHMS)
    slot = codes * n + where
    per_pair = np.bincount(slot, minlength=len(algorithms) * n).reshape(len(algorithms), n)
    if np.any(per_pair != 1):
        bad = [f"{a}: {int((c == 0).sum())} galaxies without a row, {int((c > 1).sum())} with "
               f"more than one" for a, c in zip(algorithms, per_pair) if np.any(c != 1)]
        raise InputError(path, "galaxy_void_assignments", "targetid",
                         "each sample galaxy needs one row per algorithm: " + "; ".join(bad))
    wide = {}
    for column in columns:
        v = np.concatenate(values[column])
        out = np.empty((len(algorithms), n), dtype=v.dtype)
        out.reshape(-1)[slot] = v
        wide.update({(column, a): out[k] for k, a in enumerate(algorithms)})
    wide = pd.DataFrame(wide, index=pd.Index(targetids, name="targetid"))
    surface = paths.require(layout.file("environment", "surface"),
                            "environment")
    ids = pq.read_table(surface, columns=["targetid"]).column("targetid").to_numpy()
    vf = wide[("flag", "VoidFinder")]
    wide[("flag_surface", "VoidFinder")] = vf.where(~vf.index.isin(ids), 1)
    return wide


def _left_out(flag: np.ndarray, defined: np.ndarray) -> dict:
    """Where the galaxies of one comparison went: compared (void, wall) or left out (edge,
    outside, or a void or wall galaxy whose quenched state is undefined)."""
    compared = (flag == 0) | (flag == 1)
    return {"void": int(((flag == 1) & defined).sum()), "wall": int(((flag == 0) & defined).sum()),
            "edge": int((flag == 2).sum()), "outside": int((flag == 9).sum()),
            "undefined": int((compared & ~defined).sum())}


def _comparison(sample: pd.DataFrame, q, flag: np.ndarray, incap: np.ndarray, labels: dict,
                mass_edges, regression: bool, spline_df: int, alpha: float):
    """One comparison (an algorithm, void sample, definition and cap; ``incap`` the rows in
    the cap): (what was left out, the summary row, the binned fractions of both caps together
    or None)."""
    cap = labels["cap"]
    counts = {**labels, **_left_out(flag[incap], q.defined[incap])}
    use = incap & q.defined & ((flag == 0) | (flag == 1))
    d = pd.DataFrame({"quenched": q.quenched[use], "void": flag[use] == 1,
                      "logmstar": sample.logmstar.to_numpy()[use],
                      "z": sample.z.to_numpy()[use], "patch": sample.patch.to_numpy()[use]})
    if d.void.sum() == 0 or (~d.void).sum() == 0:
        return counts, pd.Series({**labels, "n_void": int(d.void.sum()),
                                  "n_wall": int((~d.void).sum()),
                                  "jk_reason": "no void or no wall galaxies"}), None
    mass_bin = sample.mass_bin.to_numpy()[use]
    row = compare_void_wall(d, mass_edges, alpha=alpha, spline_df=spline_df,
                            regression=regression, labels=labels, mass_bin=mass_bin)
    binned = None
    if cap == "both":
        binned = binned_fractions(d.quenched.to_numpy(), d.void.to_numpy(),
                                  d.logmstar.to_numpy(), mass_edges, alpha,
                                  bin_index=mass_bin).assign(**labels)
    return counts, row, binned


def _comparisons(sample: pd.DataFrame, qs, flag: np.ndarray, incap: np.ndarray, labels: list,
                 mass_edges, regression: bool, spline_df: int, alpha: float) -> list:
    """:func:`_comparison` under each quenched definition (``qs`` and ``labels`` one per
    definition), in turn in one thread, so that the fits of the same rows share a design."""
    return [_comparison(sample, q, flag, incap, lab, mass_edges, regression, spline_df, alpha)
            for q, lab in zip(qs, labels)]


def _patches(sample: pd.DataFrame, n_patches):
    """The jackknife patches of the whole sample, NGC and SGC cut separately."""
    return healpix_patches(sample.ra.to_numpy(), sample.dec.to_numpy(), n_patches,
                           cap=sample.cap.to_numpy())


def run_comparisons(sample: pd.DataFrame, wide: pd.DataFrame, mass_edges, n_patches,
                    regression: bool, spline_df: int, alpha: float, *,
                    scheduler_address: str = "", num_workers: int = 0, caps=CAPS,
                    patches=None):
    """Every comparison: (summary rows, binned fractions, counts of what was left out).

    The comparisons are independent tasks (a regression and a jackknife each), computed by Dask
    on the local threads or on the cluster of ``scheduler_address``, the sample sent to it once;
    the results come back in the order of the loops below, whatever ran them. ``patches``: the
    sample's :func:`_patches`, when the caller has cut them."""
    import dask

    if patches is None:
        patches = _patches(sample, n_patches)
    # the sample's mass bins once, not twice per comparison (700,000 binary searches each)
    sample = sample.assign(patch=patches.patch, mass_bin=mass_bin_index(
        pd.to_numeric(sample.logmstar).to_numpy(np.float64, na_value=np.nan), mass_edges))
    # computed once, not per comparison: the caps' rows (the cap column is Arrow strings, slow
    # to compare) and the flags in the sample's order
    cap_of = sample.cap.to_numpy()
    aligned = wide.reindex(sample.targetid)
    with compute.client(scheduler_address) as c:
        shared = compute.scatter(c, sample) if c is not None else dask.delayed(sample)
        incaps = {cap: dask.delayed(np.ones(len(sample), bool) if cap == "both" else
                                    cap_of == cap) for cap in caps}
        qs = [dask.delayed(quenched(sample, definition)) for definition in DEFINITIONS]
        # one task per (algorithm, sample, cap) computes its comparison under every quenched
        # definition in turn: they fit the same rows (only the outcome differs), so the
        # regression's design is built once per task (regression._design); the results are put
        # back in the order of the loops over definition, algorithm, sample and cap
        tasks, where = [], {}
        for algorithm in formats.ALGORITHMS:
            for variant, column in VARIANTS.items():
                if (column, algorithm) not in wide.columns:
                    continue
                flag = dask.delayed(aligned[(column, algorithm)].to_numpy())
                for cap in caps:  # the caps whose void catalogues are present, and both
                    labels = [{"algorithm": algorithm, "sample": variant,
                               "definition": definition, "cap": cap}
                              for definition in DEFINITIONS]
                    for i, definition in enumerate(DEFINITIONS):
                        where[definition, algorithm, variant, cap] = (len(tasks), i)
                    tasks.append(dask.delayed(_comparisons, pure=True)(
                        shared, qs, flag, incaps[cap], labels, list(mass_edges), regression,
                        spline_df, alpha))
        # one BLAS thread per task: the local scheduler already runs a task per core, and
        # OpenBLAS's own threads on these small (n x 9) regressions doubled the CPU time
        # (measured: NOTE-25 / benchmarks/REPORT.md); a cluster's workers default to one
        with threadpool_limits(limits=1, user_api="blas"):
            results = compute.compute(tasks, c, num_workers=num_workers or None)
    done = [results[t][i] for (t, i) in (where[definition, algorithm, variant, cap]
                                         for definition in DEFINITIONS
                                         for algorithm in formats.ALGORITHMS
                                         for variant in VARIANTS for cap in caps
                                         if (definition, algorithm, variant, cap) in where)]
    counts = [r[0] for r in done]
    rows = [r[1] for r in done]
    binned = [r[2] for r in done if r[2] is not None]
    return (pd.DataFrame(rows), pd.concat(binned, ignore_index=True) if binned else
            pd.DataFrame(), pd.DataFrame(counts), patches)


#: the quenched definitions in words, as a sentence names them
DEFINITION_WORDS = {"ssfr": f"by specific star-formation rate, sSFR < {10 ** SSFR_LIMIT:g} /yr",
                    "dn4000": f"by the 4000 Å break, Dn4000 > {DN4000_LIMIT:g}",
                    "ur": f"by colour, u - r ≥ {UR_LIMIT:g}"}


def _points(rd: float, lo: float, hi: float) -> tuple[str, str]:
    """(how much more or less often, its 95% interval) in percentage points, in words."""
    if not np.isfinite(rd):
        return "not measured", "no estimate"
    width = (hi - lo) * 100 if np.isfinite(lo) and np.isfinite(hi) else 0.0
    digits = 0 if width >= 3 else 1

    def pp(x):
        return f"{abs(x) * 100:.{digits}f}"

    def bound(x):  # one end of a interval that holds zero, with its direction
        return "0" if float(pp(x)) == 0 else f"{pp(x)} {'less' if x < 0 else 'more'}"

    if float(pp(rd)) == 0:
        how = "equally often"
    else:
        unit = "percentage point" if pp(rd) in ("1", "1.0") else "percentage points"
        how = f"{pp(rd)} {unit} {'less' if rd < 0 else 'more'} often"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return how, "no jackknife interval"
    if hi < 0:
        return how, f"95% interval {pp(hi)} to {pp(lo)} less"
    if lo > 0:
        return how, f"95% interval {pp(lo)} to {pp(hi)} more"
    return how, f"95% interval {bound(lo)} to {bound(hi)}, which includes no difference"


def result_paragraph(summary: pd.DataFrame) -> str:
    """The result in words, one sentence per distinct result (algorithms whose void and wall
    samples and estimates are identical share one), every number from the run's summary (both
    caps, all voids, jackknife intervals)."""
    s = summary[(summary.cap == "both") & (summary["sample"] == "all voids")]
    groups: dict[tuple, list[str]] = {}
    unmeasured = []
    for algorithm in formats.ALGORITHMS:
        a = s[s.algorithm == algorithm]
        if a.empty:
            continue
        if "rd" not in a or a.rd.isna().all():
            unmeasured.append((algorithm, int(a.n_void.iloc[0]), int(a.n_wall.iloc[0])))
            continue
        key = (int(a.n_void.iloc[0]), int(a.n_wall.iloc[0]),
               tuple((r.definition, round(float(r.rd), 12), round(float(r.rd_jk_lo), 12),
                      round(float(r.rd_jk_hi), 12)) for r in a.itertuples()))
        groups.setdefault(key, []).append(algorithm)
    sentences = []
    for (n_void, n_wall, rows), algorithms in groups.items():
        names = (algorithms[0] if len(algorithms) == 1 else
                 ", ".join(algorithms[:-1]) + " and " + algorithms[-1])
        same = (", the same galaxies and estimates in each" if len(algorithms) > 1 else "")
        clauses = []
        for k, (definition, rd, lo, hi) in enumerate(rows):
            how, interval = _points(rd, lo, hi)
            words = DEFINITION_WORDS.get(definition, f"by {definition}")
            if k == 0:
                clauses.append(f"galaxies are quenched {how} than wall galaxies of the same "
                               f"stellar mass {words} ({interval})")
            else:
                clauses.append(f"{how} {words} ({interval})")
        body = clauses[0] if len(clauses) == 1 else \
            "; ".join(clauses[:-1]) + "; and " + clauses[-1]
        sentences.append(f"In {names} voids ({n_void:,d} void and {n_wall:,d} wall "
                         f"galaxies{same}), {body}.")
    for algorithm, n_void, n_wall in unmeasured:
        missing = "no wall galaxy" if n_wall == 0 else "no void galaxy" if n_void == 0 else \
            "no estimate"
        sentences.append(f"{algorithm} has no estimate: {n_void:,d} void and {n_wall:,d} wall "
                         f"galaxies, {missing} to compare with.")
    return " ".join(sentences)


def surface_table(summary: pd.DataFrame, cap: str = "both") -> pd.DataFrame:
    """VoidFinder's answer both ways: surface galaxies not void (the default, "all voids") and
    counted as void ("surface as void"), per quenched definition."""
    holes = [a for a in formats.ALGORITHMS if formats.family(a).holes]  # surfaces: hole voids
    s = summary[summary.algorithm.isin(holes) & (summary.cap == cap)
                & summary["sample"].isin(["all voids", "surface as void"])]
    cols = [c for c in ("n_void", "n_wall", "p_void", "p_wall", "rd", "rd_jk_lo", "rd_jk_hi",
                        "h") if c in s]
    return s.set_index(["definition", "sample"])[cols].sort_index()


@checked("systematics")
def run(data_dir: str = "data/mock", mass_edges: list = (9.5, 10.0, 10.25, 10.5, 10.75, 11.0,
                                                        11.25, 11.5, 12.0),
        n_patches: dict = {"NGC": 32, "SGC": 12},  # noqa: B006 - the notebook's default; never mutated
        regression: bool = True, spline_df: int = 4,
        alpha: float = 0.05, scheduler_address: str = "", num_workers: int = 0
        ) -> SystematicsResult:
    """The systematics stage (parameters as the notebook declares them)."""
    layout = paths.RunLayout.of(data_dir)
    sample = _read_sample(layout)
    with ThreadPoolExecutor(1) as pool:  # the patches cut while environment's flags are read
        cut = pool.submit(_patches, sample, dict(n_patches))
        wide = _read_flags(layout, sample.targetid.to_numpy())
        patches = cut.result()
    env_report = layout.file("environment", "report")
    env = json.loads(env_report.read_text()) if env_report.exists() else {}
    summary, binned, counts, patches = run_comparisons(
        sample, wide, list(mass_edges), dict(n_patches), regression, spline_df, alpha,
        scheduler_address=scheduler_address, num_workers=num_workers,
        caps=(*env.get("caps", formats.CAPS), "both"), patches=patches)
    agreement = env.get("agreement")
    report = {"schema": "desivoids.systematics", "schema_version": SCHEMA_VERSION,
              "parameters": {"mass_edges": list(mass_edges), "n_patches": dict(n_patches),
                             "regression": regression, "spline_df": spline_df, "alpha": alpha},
              "sample": {"galaxies": int(len(sample)),
                         "patches": patches.table.to_dict(orient="records")},
              "paragraph": result_paragraph(summary), "agreement": agreement}
    out = layout.stage("systematics")
    with staged(out) as tmp:
        summary.to_parquet(tmp / file_name("systematics", "summary"), index=False)
        summary.to_csv(tmp / file_name("systematics", "summary_csv"), index=False)
        binned.to_parquet(tmp / file_name("systematics", "binned"), index=False)
        counts.to_parquet(tmp / file_name("systematics", "counts"), index=False)
        write_json(tmp / file_name("systematics", "report"), report)
    return SystematicsResult(out, summary, binned, counts, jsonable(report))
