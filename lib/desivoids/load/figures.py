"""The load chapter's findings, tables and figures, from the stage's result and the database
(tested on a tiny run, so the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame; ``findings``
the chapter's opening sentences. (``desivoids.load.tables`` is the database's transaction
module, so the chapter's tables live here too.)
"""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sqlalchemy import text

from .. import paths
from ..errors import StageError
from . import report
from .queries import _Conn

__all__ = ["EXAMPLE_ALGORITHM", "database", "reconcile_table", "findings", "rows_figure",
           "provenance_table", "index_table", "largest_void", "example", "example_table",
           "example_figure", "sphere_table"]

#: the algorithm whose largest void the example queries use
EXAMPLE_ALGORITHM = "VoidFinder"
#: characters of a Parquet part's sha256 shown
SHA_SHOWN = 16
#: galaxies of the example sphere listed
SPHERE_SHOWN = 10
#: points of the drawn cone's circle
CIRCLE_POINTS = 200
#: the reconciliation's columns (:func:`desivoids.load.report.reconciled`)
RECONCILE_COLUMNS = ["table", "parquet_rows", "db_rows", "match"]


def database(data_dir: str, db_url: str = "") -> str:
    """The URL of the run's database (its SQLite file unless ``db_url`` names one)."""
    return paths.RunLayout.of(data_dir).db_url(db_url)


def reconcile_table(data_dir: str, db_url: str = "") -> pd.DataFrame:
    """Per table: rows in the Parquet footers, rows in the database, and whether they agree
    (``galaxy_positions`` must hold one row per galaxy): the reconciliation the stage published
    in its report. The stage counted the rows inside the transaction that loaded them, and its
    report and tables are committed as one unit (:mod:`desivoids.publication`), so these are
    the committed tables' counts; counting the multi-GB tables again costs the chapter seconds.
    (``db_url``: the database the stage loaded, kept for the notebook's call.)"""
    doc = json.loads(paths.RunLayout.of(data_dir).file("load", "report").read_text())
    return pd.DataFrame(doc["reconciliation"], columns=RECONCILE_COLUMNS)


def findings(result, rec: pd.DataFrame, ex: dict) -> list[str]:
    """What load did, in a few sentences computed from its result, the row counts and the
    example queries."""
    # (not which tables this call reloaded: a rerun reloads none, and the page must not change)
    out = [f"Load put {int(rec.db_rows.sum()):,d} rows in {len(rec):,d} tables of the run's "
           f"{result.dialect} database (cone index: {result.sky_index or 'none'}), in one "
           "transaction."]
    bad = rec[~rec.match]
    out.append(f"Every Parquet row is in the database: all {len(rec):,d} tables match their "
               "Parquet footers." if bad.empty else
               f"{len(bad):,d} tables do not match their Parquet footers: {', '.join(bad.table)}.")
    v = ex["void"]
    out.append(f"The example queries around the largest {v['algorithm']} void ({v['cap']} "
               f"{v['void']}, r_eff {ex['radius']:.1f} Mpc/h) find {len(ex['sphere']):,d} "
               f"galaxies in its sphere and {len(ex['cone']):,d} in its cone and redshift slice; "
               "every galaxy of the sphere is in the cone.")
    return out


def rows_figure(rec: pd.DataFrame, dialect: str) -> Figure:
    """Rows per table in the Parquet footers and in the database, side by side (log scale)."""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rec) + 1.2))
    y = np.arange(len(rec))
    ax.barh(y - 0.2, rec.parquet_rows.clip(lower=0.8), 0.4, label="Parquet footers", color="C0")
    ax.barh(y + 0.2, rec.db_rows.clip(lower=0.8), 0.4, label=f"database ({dialect})", color="C2")
    ax.set_yticks(y, rec.table)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="rows (log scale)", ylabel="table")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def provenance_table(url: str) -> pd.DataFrame:
    """Each Parquet part loaded, with its rows and the start of its sha256 (the digest that
    decides whether the next load can skip the table)."""
    prov = report.provenance(url)
    return prov.assign(sha256=prov["sha256"].str[:SHA_SHOWN] + "\u2026")


def index_table(url: str) -> pd.DataFrame:
    """Every index on the stage's tables: table, index, kind and columns."""
    return report.index_list(url)


def largest_void(url: str, algorithm: str = EXAMPLE_ALGORITHM) -> tuple[str, int]:
    """(cap, void) of ``algorithm``'s largest void by effective radius (ties: cap, then id)."""
    with _Conn(url) as conn:
        row = conn.execute(text(
            "SELECT cap, void FROM voids WHERE algorithm = :a "
            "ORDER BY r_eff DESC, cap, void LIMIT 1"), {"a": algorithm}).first()
    if row is None:
        raise StageError(f"the voids table has no {algorithm} void for the example queries")
    return str(row[0]), int(row[1])


def example(url: str, algorithm: str = EXAMPLE_ALGORITHM) -> dict:
    """The example queries (:func:`desivoids.load.report.void_example`) on ``algorithm``'s
    largest void; fails if a galaxy of its sphere is missing from its cone."""
    cap, void = largest_void(url, algorithm)
    ex = report.void_example(url, algorithm, cap, void)
    missing = set(ex["sphere"]["targetid"]) - set(ex["cone"]["targetid"])
    if missing:
        raise StageError(f"{len(missing)} galaxies of the sphere of {algorithm} void {cap} "
                         f"{void} are not in its cone: the cone or sphere query is wrong")
    return ex


def example_table(ex: dict) -> pd.DataFrame:
    """The example void and what each query found."""
    shared = set(ex["sphere"]["targetid"]) & set(ex["cone"]["targetid"])
    return pd.DataFrame({
        "quantity": ["void (algorithm, cap, id)", "centre distance [Mpc/h]",
                     "effective radius [Mpc/h]", "galaxies in the sphere",
                     "cone half-angle [deg]", "redshift slice", "galaxies in the cone and slice",
                     "sphere galaxies also in the cone"],
        "value": [f"{ex['void']['algorithm']} {ex['void']['cap']} {ex['void']['void']}",
                  f"{ex['distance']:.1f}", f"{ex['radius']:.2f}", f"{len(ex['sphere']):,d}",
                  f"{ex['angle_deg']:.3f}", f"{ex['zmin']:.4f} to {ex['zmax']:.4f}",
                  f"{len(ex['cone']):,d}", f"{len(shared):,d} of {len(ex['sphere']):,d}"]})


def example_figure(ex: dict) -> Figure:
    """The two queries: on the sky, the galaxies of the cone and redshift slice and those of the
    sphere with the cone's circle (drawn with cos(Dec)); and their redshifts, with the slice."""
    cone, sph = ex["cone"], ex["sphere"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.scatter(cone.ra, cone.dec, s=6, color="0.6", label=f"cone and slice ({len(cone):,d})")
    a1.scatter(sph.ra, sph.dec, s=8, color="C0", label=f"sphere ({len(sph):,d})")
    ra0, dec0 = ex["void"]["ra"], ex["void"]["dec"]
    t = np.linspace(0, 2 * np.pi, CIRCLE_POINTS)
    a1.plot(ra0 + ex["angle_deg"] * np.cos(t) / np.cos(np.radians(dec0)),
            dec0 + ex["angle_deg"] * np.sin(t), color="k", lw=0.8, label="the cone")
    a1.set(xlabel="RA [deg]", ylabel="Dec [deg]", title="the cone around the void's centre")
    a1.invert_xaxis()
    a1.legend(loc="upper right")
    a2.hist([cone.z, sph.z], bins=30, color=["0.6", "C0"], label=["cone and slice", "sphere"])
    for zz in (ex["zmin"], ex["zmax"]):
        a2.axvline(zz, color="k", lw=0.8)
    a2.set(xlabel="redshift", ylabel="galaxies", title="the redshift slice the void spans")
    a2.legend()
    fig.tight_layout()
    return fig


def sphere_table(ex: dict, n: int = SPHERE_SHOWN) -> pd.DataFrame:
    """The first ``n`` galaxies of the example sphere."""
    return ex["sphere"].head(n).round(5)
