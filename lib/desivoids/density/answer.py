"""The answer as a function of the continuous environment, on plausibility's sample: the
quenched-fraction profiles against delta_k and r / R_eff, the T-Web void class as a labelling
beside DESIVAST's four, and the quenched fraction per web class. The statistics are
:mod:`desivoids.systematics`' (mass matching, jackknife over the same HEALPix patches); this
module only joins the tables and loops."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import formats, idsets, paths
from ..environment.flags import OUTSIDE
from ..errors import InputError
from ..systematics.compare import compare_void_wall
from ..systematics.jackknife import healpix_patches
from ..systematics.profiles import (fraction_by_class, label_agreement, profile,
                                    quantile_edges, web_as_flag)
from ..systematics.quenched import quenched
from .tweb import WEB_CLASSES

__all__ = ["answer", "WEB_LABEL"]

#: the T-Web void class's name as a labelling beside the DESIVAST algorithms
WEB_LABEL = "T-Web"
SAMPLE_COLUMNS = ["targetid", "cap", "ra", "dec", "z", "logmstar", "sfr", "sfr_zero",
                  "log_ssfr", "dn4000", "absmag01_sdss_u", "absmag01_sdss_r"]


def _sample(layout: paths.RunLayout, env: pa.Table) -> tuple[pd.DataFrame, np.ndarray]:
    """plausibility's sample joined with galaxy_environment on targetid (a left join: null
    where a sample galaxy has no row), and each sample galaxy's row of ``env`` (-1: none).

    ``env`` is ordered by targetid (the stage's table): its rows are found by a binary search
    and only the sample's are taken before pandas sees them. Converting all of it and merging
    took 10 s of the answer's 25 at DR1 (6.4 M rows for a 0.7 M sample)."""
    path = paths.require(layout.file("plausibility", "sample"), "plausibility")
    s = pq.read_table(path, columns=SAMPLE_COLUMNS).to_pandas()
    if not s.targetid.is_unique:
        dup = s.targetid[s.targetid.duplicated()].unique()[:5].tolist()
        raise InputError(path, "sample", "targetid", f"targetid repeated: {dup}")
    tid = env.column("targetid").to_numpy()
    if len(tid) > 1 and not np.all(tid[1:] > tid[:-1]):
        raise ValueError("galaxy_environment is not ordered by unique targetid")
    want = s.targetid.to_numpy()
    row = idsets.positions(want, tid)
    e = env.drop_columns(["targetid", "cap"]).take(pa.array(row, mask=row < 0)).to_pandas()
    return pd.concat([s, e.set_axis(s.index)], axis=1), row


def answer(layout: paths.RunLayout, env: pa.Table, assigned: dict, targetid: np.ndarray, *,
           definition: str, delta_bins: int, r_edges: list, mass_edges: list,
           n_patches: dict, alpha: float):
    """(profiles, comparison, web fractions, agreement) for the report and the book."""
    s, row = _sample(layout, env)
    q = quenched(s, definition)
    patch = healpix_patches(s.ra.to_numpy(), s.dec.to_numpy(), n_patches,
                            cap=s.cap.to_numpy()).patch
    s = s.assign(patch=patch)
    ok = q.defined
    logm = s.logmstar.to_numpy(np.float64)
    rows = []
    good = ok & np.isfinite(s.delta_k.to_numpy(np.float64, na_value=np.nan)) & ~s.edge_flag.fillna(
        True).to_numpy(bool)
    delta = s.delta_k.to_numpy(np.float64, na_value=np.nan)
    if good.any():
        edges = quantile_edges(delta[good], delta_bins)
        if len(edges) >= 2:
            rows.append(profile(q.quenched[good], delta[good], logm[good], patch[good], edges,
                                mass_edges, alpha, labels={"quantity": "delta_k",
                                                           "algorithm": ""}))
    for alg in formats.ALGORITHMS:
        from .stage import column_of

        r = s[column_of(alg)].to_numpy(np.float64, na_value=np.nan)
        use = ok & np.isfinite(r)
        if use.any():
            rows.append(profile(q.quenched[use], r[use], logm[use], patch[use], r_edges,
                                mass_edges, alpha, labels={"quantity": "r_over_reff",
                                                           "algorithm": alg}))
    profiles = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    # the T-Web void class beside the four labellings: the same comparison for each
    # env's rows are targetid's (the stage's order); a galaxy without one is outside
    flags = {}
    for alg in formats.ALGORITHMS:
        f = assigned[alg].flag.to_numpy()
        flags[alg] = np.where(row >= 0, f[np.maximum(row, 0)], OUTSIDE).astype(f.dtype)
    web = s.web_class.to_numpy(np.float64, na_value=-1).astype(np.int8)
    flags[WEB_LABEL] = web_as_flag(web)
    comparison = []
    for name, flag in flags.items():
        use = ok & np.isin(flag, (0, 1))
        d = pd.DataFrame({"quenched": q.quenched[use], "void": flag[use] == 1,
                          "logmstar": logm[use], "z": s.z.to_numpy()[use],
                          "patch": patch[use]})
        labels = {"labelling": name, "definition": definition}
        if d.void.any() and (~d.void).any():
            comparison.append(compare_void_wall(d, mass_edges, alpha=alpha, regression=False,
                                                labels=labels))
        else:
            comparison.append(pd.Series({**labels, "n_void": int(d.void.sum()),
                                         "n_wall": int((~d.void).sum())}))
    agreement = [{"a": WEB_LABEL, "b": alg, **label_agreement(flags[WEB_LABEL], flags[alg])}
                 for alg in formats.ALGORITHMS]
    fractions = fraction_by_class(q.quenched[ok], web[ok], WEB_CLASSES, alpha)
    return profiles, pd.DataFrame(comparison), fractions, agreement
