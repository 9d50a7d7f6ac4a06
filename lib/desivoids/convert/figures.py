"""The convert chapter's findings, tables and figures, from the stage's result and its Parquet
output (tested on a tiny run, so the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame; ``findings``
the chapter's opening sentences.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.figure import Figure

from .. import formats
from ..stages import file_name
from ..systematics.quenched import SSFR_LIMIT
from .columns import column_dictionary

__all__ = ["findings", "totals_table", "entries_table", "skipped_table", "settings_table",
           "absent_table", "notes_table", "rejects_table", "dictionary_table", "voids_table",
           "first_look_figure", "REJECTS_SHOWN"]

#: rejected rows shown in the chapter (all of them are in convert/rejects.parquet)
REJECTS_SHOWN = 20
#: the stellar masses and log sSFRs the first look draws [log Msun], [log 1/yr]
MASS_RANGE = (6.0, 13.0)
SSFR_RANGE = (-15.0, -7.0)
#: redshifts above this are drawn at it (DESI's few high-redshift rows)
Z_CLIP = 1.0


def _name(s: pd.Series) -> pd.Series:
    return s.astype(str).str.split("/").str[-1]


def totals_table(rec: dict) -> pd.DataFrame:
    """One row per output table: rows read, written and rejected, rejects by reason."""
    return pd.DataFrame([{"table": t, "rows read": v["rows_in"], "rows written": v["rows_out"],
                          "rows rejected": sum(v["rejected"].values()),
                          "rejected by reason": ", ".join(f"{k}={n:,d}" for k, n in
                                                          sorted(v["rejected"].items())) or None}
                         for t, v in sorted(rec["totals"].items())],
                        columns=["table", "rows read", "rows written", "rows rejected",
                                 "rejected by reason"])


def findings(result) -> list[str]:
    """What convert did, in a few sentences computed from its reconciliation."""
    rec = result.reconciliation
    t = rec["totals"]
    gal = t.get("galaxies", {"rows_in": 0, "rows_out": 0, "rejected": {}})
    rejected = sum(sum(v["rejected"].values()) for v in t.values())
    n_read = sum(v["rows_in"] for v in t.values())
    voids = pq.read_table(Path(result.out_dir) / file_name("convert", "voids"), columns=["algorithm"]).to_pandas()
    per = voids.algorithm.value_counts().reindex(formats.ALGORITHMS).fillna(0).astype(int)
    out = [f"Convert read {n_read:,d} rows from {len(rec['entries']):,d} file HDUs into "
           f"{len(t):,d} Parquet tables, and every row is accounted for: "
           f"{rejected:,d} rejected" + (" (listed below)." if rejected else ", none dropped."),
           f"The galaxies table holds {gal['rows_out']:,d} FastSpecFit galaxies "
           f"({', '.join(rec['fastspec_versions']) or 'no FastSpecFit file'}).",
           "The voids table holds " + ", ".join(f"{n:,d} {a}" for a, n in per.items())
           + " voids, both caps.",
           f"Distances use Omega_m = {rec['omega_m']:g} ({rec['omega_m_source']})."]
    absent = rec.get("absent_columns", {})
    if absent:
        out.append(f"{len(absent):,d} source files lack optional columns (null in the output).")
    return out


def entries_table(result) -> pd.DataFrame:
    """The reconciliation, one row per output table, source file and HDU."""
    t = result.table()
    return t.rename(columns={"source_file": "source file", "hdu": "HDU", "rows_in": "rows read",
                             "rows_out": "rows written", "rows_rejected": "rows rejected",
                             "rejected_by_reason": "rejected by reason"}).replace({"": None})


def skipped_table(rec: dict) -> pd.DataFrame:
    """HDUs deliberately not converted (the V2 visualisation HDUs), with why."""
    s = pd.DataFrame(rec["skipped_hdus"], columns=["source_file", "hdu", "rows", "why"])
    return s.assign(source_file=_name(s.source_file)).rename(
        columns={"source_file": "source file", "hdu": "HDU"})


def settings_table(rec: dict) -> pd.DataFrame:
    """The cosmology used for distances, the FastSpecFit version, and what was kept apart."""
    return pd.DataFrame({"quantity": [
        "Omega_m", "Omega_m from", "FastSpecFit version", "FastSpecFit files with no rows",
        "voids with non-finite values", "extra columns"], "value": [
        f"{rec['omega_m']:g}", rec["omega_m_source"], ", ".join(rec["fastspec_versions"]) or None,
        f"{len(rec.get('empty_files', [])):,d}",
        f"{sum(rec.get('voids_with_nonfinite_values', {}).values()):,d}",
        ", ".join(rec["extra_columns"]) or None]})


def absent_table(rec: dict) -> pd.DataFrame:
    """Per source file: the output columns it lacks (null in the output)."""
    return pd.DataFrame([{"source file": f.split("/")[-1], "absent": len(cs),
                          "columns": ", ".join(cs)}
                         for f, cs in rec.get("absent_columns", {}).items()],
                        columns=["source file", "absent", "columns"])


def notes_table(rec: dict) -> pd.DataFrame:
    """Per source file: what was accepted but should be known."""
    return pd.DataFrame([{"source file": f.split("/")[-1], "note": n}
                         for f, notes in rec.get("file_notes", {}).items() for n in notes],
                        columns=["source file", "note"])


def rejects_table(out_dir: str | Path, n: int = REJECTS_SHOWN) -> pd.DataFrame:
    """The first ``n`` rejected rows with their file, HDU, row, key and reason."""
    r = pq.read_table(Path(out_dir) / file_name("convert", "rejects")).to_pandas()
    return r.assign(source_file=_name(r.source_file)).head(n)


def dictionary_table() -> pd.DataFrame:
    """Every output column: table, type, source, whether a file must have it, unit, meaning."""
    return column_dictionary()


def voids_table(out_dir: str | Path) -> pd.DataFrame:
    """Per algorithm and cap: voids, edge voids and the median effective radius [Mpc/h]."""
    v = pq.read_table(Path(out_dir) / file_name("convert", "voids"),
                      columns=["algorithm", "cap", "void", "is_edge", "r_eff"]).to_pandas()
    v = v.assign(edge=v.is_edge.eq(True))
    t = v.groupby(["algorithm", "cap"]).agg(voids=("void", "size"), edge_voids=("edge", "sum"),
                                            median_r_eff=("r_eff", "median")).round(2)
    t = t.rename(columns={"edge_voids": "edge voids", "median_r_eff": "median r_eff [Mpc/h]"})
    return t.reindex(formats.ALGORITHMS, level="algorithm")


def first_look_figure(out_dir: str | Path) -> Figure:
    """Three panels: the galaxies' redshifts, log sSFR against stellar mass (SFR = 0 counted
    apart, the sSFR quenching threshold drawn) and each algorithm's void effective radii."""
    out_dir = Path(out_dir)
    # numpy arrays, not pandas: 6.4 M rows of masks and selections cost seconds as Series
    gal = pq.read_table(out_dir / "galaxies", columns=["z", "logmstar", "log_ssfr", "sfr_zero"])
    z, mstar, ssfr = (gal[c].to_numpy() for c in ("z", "logmstar", "log_ssfr"))  # nulls: NaN
    voids = pq.read_table(out_dir / file_name("convert", "voids"), columns=["algorithm", "r_eff"]).to_pandas()
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    ax[0].hist(np.minimum(z, Z_CLIP), bins=100, color="0.3")
    ax[0].set(xlabel=f"redshift Z (clipped to {Z_CLIP:g})", ylabel="galaxies", yscale="log")
    ok = ~np.isnan(ssfr) & (mstar >= MASS_RANGE[0]) & (mstar <= MASS_RANGE[1])
    ax[1].hexbin(mstar[ok], ssfr[ok], gridsize=60, bins="log", cmap="Greys",
                 extent=(*MASS_RANGE, *SSFR_RANGE))
    threshold = SSFR_LIMIT  # the sSFR definition's own threshold
    ax[1].axhline(threshold, color="C3", lw=1, label=f"quenched below log sSFR = {threshold:g}")
    sfr_zero = pc.sum(gal["sfr_zero"]).as_py() or 0  # nulls skipped, as pandas' sum skips them
    ax[1].set(xlabel="log M* [Msun]", ylabel="log sSFR [1/yr]",
              title=f"SFR = 0: {int(sfr_zero):,d} of {gal.num_rows:,d} galaxies")
    ax[1].legend(loc="lower left")
    for alg in formats.ALGORITHMS:
        ax[2].hist(voids.r_eff[voids.algorithm == alg].dropna(), bins=40, histtype="step",
                   label=alg)
    ax[2].set(xlabel="effective radius r_eff [Mpc/h]", ylabel="voids")
    ax[2].legend()
    fig.tight_layout()
    return fig
