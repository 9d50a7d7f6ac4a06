"""The environment chapter's tables and figures, from the stage's outputs (tested on a tiny run,
so the notebook only calls them).

Every figure function returns a matplotlib Figure; every table function a DataFrame.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.collections import EllipseCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .. import formats, paths
from .flags import EDGE, OUTSIDE, VOID, WALL
from .summary import DR7_REFERENCE

__all__ = ["FLAG_NAMES", "WIDTH", "EXPLORER_CAP", "inputs", "slab_of", "opening", "flag_table", "fractions_table",
           "fractions_figure", "sky_figure", "slab_figure", "sizes_figure", "counts_table",
           "agreement_table", "surface_table", "field_table"]

FLAG_NAMES = {WALL: "wall", VOID: "void", EDGE: "edge", OUTSIDE: "outside"}
#: colours of the flags in the slab: wall grey, void blue, edge orange, outside red
FLAG_COLOURS = {WALL: "0.4", VOID: "C0", EDGE: "C1", OUTSIDE: "C3"}
#: half thickness of the comoving slab [Mpc/h]
SLAB_HALF_THICKNESS = 10.0
#: RA above this is drawn as RA - 360, so the SGC is one piece on the sky figure [deg]
RA_WRAP = 300.0
#: widest figure [inches]: the book's column at 100 dpi, where the default 10-point text reads
WIDTH = 7.0


#: the cap of the chapter's interactive slab (desivoids.environment.explorer)
EXPLORER_CAP = "NGC"


def inputs(data_dir: str) -> dict:
    """What the chapter draws: convert's voids and holes, plausibility's sample positions and the
    environment stage's void counts, and its assignments of the galaxies that the slab figure
    draws (the slab of every cap), through the run layout; and the interactive slab's data
    (``explorer``, :func:`desivoids.environment.explorer.slab_data` of EXPLORER_CAP). The sample
    and the assignments are read once for both figures: the assignments' rows of the
    galaxies either draws (each read of the file decodes its 25.8M targetids at DR1 scale)."""
    from . import explorer

    layout = paths.RunLayout.of(data_dir)
    sample = pq.read_table(layout.file("plausibility", "sample"),
                           columns=["targetid", "cap", "ra", "dec", "comoving_x", "comoving_y",
                                    "comoving_z"]).to_pandas()
    slabs = np.concatenate([slab_of(sample, cap)[1].targetid.to_numpy() for cap in formats.CAPS])
    own = sample[sample.cap == EXPLORER_CAP]
    cubed = own.targetid.to_numpy()[explorer.cube(own)[2]] if len(own) else np.zeros(0, np.int64)
    rows = explorer.flag_rows(layout, np.concatenate([slabs, cubed]))
    return {
        "voids": pq.read_table(layout.file("convert", "voids")).to_pandas(),
        "holes": pq.read_table(layout.file("convert", "holes")).to_pandas(),
        "sample": sample,
        # algorithm as a categorical: 25.8M strings at DR1 scale cost 1.1 CPU s more
        "assign": rows.filter(pc.is_in(rows["targetid"], value_set=pa.array(slabs, pa.int64())))
        .select(["targetid", "algorithm", "flag"]).to_pandas(),
        "counts": pq.read_table(layout.file("environment", "void_counts")).to_pandas(),
        "explorer": explorer.slab_data(data_dir, EXPLORER_CAP, sample=own, assign=rows),
    }


def slab_of(sample: pd.DataFrame, cap: str) -> tuple[float, pd.DataFrame]:
    """The slab figure's mid plane z0 (the median comoving z of ``cap``'s tracers) and its
    tracers, |z - z0| < SLAB_HALF_THICKNESS."""
    own = sample[sample.cap == cap]
    z0 = float(np.median(own.comoving_z)) if len(own) else 0.0
    return z0, own[np.abs(own.comoving_z - z0) < SLAB_HALF_THICKNESS]


def flag_table(report: dict) -> pd.DataFrame:
    """Galaxies and tracers per flag (rows, by name) and algorithm (columns)."""
    fc = pd.DataFrame(report["flag_counts"])
    return fc.assign(flag=fc.flag.map(FLAG_NAMES)).pivot_table(
        index="flag", columns="algorithm", values=["galaxies", "tracers"], fill_value=0).astype(
        int).reindex([n for n in FLAG_NAMES.values() if n in set(fc.flag.map(FLAG_NAMES))])


def opening(result) -> list[str]:
    """The chapter's first lines: galaxies placed, each algorithm's share of tracers in voids
    (beside VAST's SDSS DR7 value where there is one), and how far VoidFinder and the V2
    prunings agree."""
    r = result.report
    fr = fractions_table(result.fractions)
    shares = ", ".join(f"{a} {v:.1f}%" for a, v in fr["tracers (%)"].items())
    lines = [f"{int(r['galaxies']):,d} galaxies ({int(r['tracers']):,d} of them tracers) placed by "
             f"{len(fr)} void catalogues in {len(r.get('caps', []))} cap(s), each by its own "
             "algorithm's rules.",
             f"Of the tracers in voids or walls, the share in voids is {shares}."]
    ref = [f"{a} {ref:.1f}%" for a, ref in fr["tracers, DR7 (%)"].items() if pd.notna(ref)]
    if ref:
        lines.append(f"VAST's analysis of SDSS DR7 found {', '.join(ref)}.")
    a = result.agreement
    for hole in [x for x in formats.ALGORITHMS if formats.family(x).holes]:
        other = a[(a.a == hole) & (a.b != hole)]
        if len(other):
            lines.append(f"{hole} and the other catalogues give a tracer the same void-or-wall "
                         f"label {100 * other.same_label.min():.0f}% to "
                         f"{100 * other.same_label.max():.0f}% of the time (Cohen's kappa "
                         f"{other.kappa.min():.2f} to {other.kappa.max():.2f}).")
    return lines


def _dr7(algorithm: str, of: str):
    return DR7_REFERENCE.get(algorithm, {}).get("galaxies" if of == "tracers" else "volume")


def fractions_table(fractions: pd.DataFrame) -> pd.DataFrame:
    """Percent of tracers and of volume in voids (void / (void + wall)), both caps, beside VAST's
    SDSS DR7 reference."""
    both = fractions[fractions.cap == "both"]
    table = both.pivot_table(index="algorithm", columns="of", values="void_of_void_and_wall",
                             sort=False) * 100
    for of in ("tracers", "volume"):
        table[f"{of}, DR7 (%)"] = [_dr7(a, of) for a in table.index]
    return table.rename(columns={"tracers": "tracers (%)", "volume": "volume (%)"}).round(1)


def fractions_figure(fractions: pd.DataFrame) -> Figure:
    """Bars: percent of tracers and of volume in voids per algorithm; ticks: SDSS DR7 (VAST)."""
    both = fractions[fractions.cap == "both"]
    fig, ax = plt.subplots(figsize=(WIDTH, 3.5), layout="constrained")
    algs = [a for a in formats.ALGORITHMS if a in set(both.algorithm)]
    x = np.arange(len(algs))
    for k, (of, colour) in enumerate((("tracers", "C0"), ("volume", "C2"))):
        shift = 0.2 * (2 * k - 1)
        vals = [100 * both[(both.algorithm == a) & (both["of"] == of)].void_of_void_and_wall.iloc[0]
                for a in algs]
        ax.bar(x + shift, vals, 0.4, color=colour, label=f"{of} in voids (this run)")
        ref = [(xx + shift, _dr7(a, of)) for xx, a in zip(x, algs) if _dr7(a, of) is not None]
        if ref:
            ax.scatter(*zip(*ref), marker="_", s=400, color="k",
                       label="SDSS DR7 (VAST)" if k == 0 else None)
    ax.set_xticks(x, algs)
    ax.set(ylabel="% in voids: void / (void + wall)", ylim=(0, 105))
    ax.legend(loc="lower right")
    return fig


def _wrapped_ra(ra) -> np.ndarray:
    ra = np.asarray(ra, dtype=float)
    return np.where(ra > RA_WRAP, ra - 360.0, ra)


def sky_figure(sample: pd.DataFrame, voids: pd.DataFrame) -> Figure:
    """The tracers (grey, galaxies per cell on a log scale, with its colour bar) and each
    algorithm's voids, drawn at their effective radius projected at their distance as ellipses
    1/cos(Dec) wide in RA (orange: edge voids), one panel per algorithm."""
    fig, axes = plt.subplots(len(formats.ALGORITHMS), 1, figsize=(WIDTH, 2.6 * len(
        formats.ALGORITHMS) + 0.6), sharex=True, sharey=True, layout="constrained")
    for ax, alg in zip(np.atleast_1d(axes), formats.ALGORITHMS):
        cells = ax.hexbin(_wrapped_ra(sample.ra), sample.dec, gridsize=(90, 30), bins="log",
                          cmap="Greys", mincnt=1)
        v = voids[voids.algorithm == alg]
        theta = np.degrees(v.r_eff / np.sqrt(v.x ** 2 + v.y ** 2 + v.z ** 2)).to_numpy()
        ax.add_collection(EllipseCollection(
            2 * theta / np.cos(np.radians(v.dec.to_numpy())), 2 * theta, np.zeros(len(v)),
            units="xy", offsets=np.column_stack([_wrapped_ra(v.ra), v.dec]),
            offset_transform=ax.transData, facecolors="none", lw=0.6,
            edgecolors=np.where(v.is_edge.fillna(True), "C1", "C0")))
        ax.set(title=f"{alg}: {len(v):,d} voids (blue: interior, orange: edge)",
               ylabel="Dec [deg]")
        fig.colorbar(cells, ax=ax, label="tracers per cell", pad=0.01)
    ax.set_xlabel(f"RA [deg] (RA > {RA_WRAP:g} drawn as RA − 360)")
    ax.invert_xaxis()
    return fig


def slab_circles(x, y, z, radius, z0: float) -> list[tuple[float, float, float]]:
    """(x, y, r) of the circles where spheres cut the plane z = z0 (those that reach it)."""
    x, y, z, radius = (np.asarray(a, dtype=float) for a in (x, y, z, radius))
    cut = np.abs(z - z0) < radius
    r = np.sqrt(radius[cut] ** 2 - (z[cut] - z0) ** 2)
    return list(zip(x[cut].tolist(), y[cut].tolist(), r.tolist()))


def slab_figure(sample: pd.DataFrame, assign: pd.DataFrame, holes: pd.DataFrame,
                voids: pd.DataFrame, cap: str = "NGC") -> Figure:
    """A comoving slab through the middle of ``cap``: its tracers coloured by flag, and where each
    algorithm's voids cut the mid plane (a hole family: its holes; the others: each void's
    effective sphere)."""
    z0, slab = slab_of(sample, cap)
    span = np.ptp(slab[["comoving_x", "comoving_y"]].to_numpy(), axis=0) if len(slab) else (1, 1)
    aspect = float(np.clip(span[1] / max(span[0], 1e-9), 0.3, 1.5))  # of the slab's own extent
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, WIDTH * aspect + 1.6), sharex=True,
                             sharey=True, layout="constrained")
    # the slab's rows only, before the merges: selecting and merging every galaxy's rows per
    # algorithm took ~10 CPU s at DR1 scale (25.8M rows)
    assign = assign[assign.targetid.isin(slab.targetid.to_numpy())]
    for ax, alg in zip(axes.flat, formats.ALGORITHMS):
        f = slab.merge(assign[assign.algorithm == alg], on="targetid", how="left")
        for flag, colour in FLAG_COLOURS.items():
            g = f[f.flag == flag]
            ax.scatter(g.comoving_x, g.comoving_y, s=2, color=colour, label=FLAG_NAMES[flag])
        if formats.family(alg).holes:
            s = holes[holes.cap == cap]
            circles = slab_circles(s.x, s.y, s.z, s.radius, z0)
        else:
            s = voids[(voids.algorithm == alg) & (voids.cap == cap)]
            circles = slab_circles(s.x, s.y, s.z, s.r_eff, z0)
        _circles(ax, circles, lw=0.5, color="C0")
        ax.set(title=alg, xlabel="x [Mpc/h]", ylabel="y [Mpc/h]")
        ax.set_aspect("equal")
    fig.suptitle(f"{cap}: the slab |z − {z0:.0f}| < {SLAB_HALF_THICKNESS:g} Mpc/h")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=4,
               markerscale=4)
    return fig


def _circles(ax, circles: list[tuple[float, float, float]], **style) -> None:
    """Unfilled circles (x, y, r) as one collection, and the data limits they add: what
    ``add_patch`` of each circle draws, without one artist per circle (6,600 circles in the DR1
    slab figure cost 2 CPU s to lay out and draw as patches)."""
    if not circles:
        return
    x, y, r = (np.asarray(c, float) for c in zip(*circles))
    ax.add_collection(PatchCollection([Circle((a, b), c) for a, b, c in zip(x, y, r)],
                                      facecolors="none", edgecolors=style.pop("color"),
                                      linewidths=style.pop("lw"), **style), autolim=False)
    ax.update_datalim(np.column_stack([np.r_[x - r, x + r], np.r_[y - r, y + r]]))


def sizes_figure(voids: pd.DataFrame) -> Figure:
    """Histograms of the effective radius per algorithm."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8), layout="constrained")
    for alg in formats.ALGORITHMS:
        mine = voids.algorithm == alg
        ax.hist(voids.r_eff[mine].dropna(), bins=40, histtype="step", lw=1.5,
                label=f"{alg} ({int(mine.sum()):,d})")
    ax.set(xlabel="effective radius [Mpc/h]", ylabel="voids")
    ax.legend(title="algorithm (voids)")
    return fig


def counts_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm: voids of the catalogue, void ids ZONEVOID names but VOIDS lacks, voids with
    galaxies, galaxies and tracers in voids, and the median tracers per void."""
    c = counts.assign(not_in=~counts.in_catalogue, occupied=counts.n_galaxies > 0)
    return c.groupby("algorithm", sort=False).agg(
        voids=("in_catalogue", "sum"), not_in_catalogue=("not_in", "sum"),
        voids_with_galaxies=("occupied", "sum"), galaxies=("n_galaxies", "sum"),
        tracers=("n_tracers", "sum"), median_tracers=("n_tracers", "median"),
    ).reindex(formats.ALGORITHMS).rename(columns=lambda c: c.replace("_", " "))


def agreement_table(agreement: pd.DataFrame, value: str = "same_label") -> pd.DataFrame:
    """Algorithm by algorithm: the share of tracers with the same label, or Cohen's kappa."""
    return agreement.pivot(index="a", columns="b", values=value).reindex(
        index=formats.ALGORITHMS, columns=formats.ALGORITHMS).round(3).rename_axis(
        index="algorithm", columns=None)


def surface_table(report: dict) -> pd.DataFrame:
    """Per cap: galaxies on VoidFinder's hole surfaces, how many VAST's strict rule calls void,
    and the tracers' share in voids with and without them (the environment report's counts)."""
    from .summary import surface_table as percent

    return percent(report).reset_index()


def field_table(report: dict) -> pd.DataFrame:
    """Per cap: VoidFinder's void galaxies that are its field galaxies, where the file carries
    VAST's FIELD HDU (an empty cell, a dash: the file has none)."""
    f = pd.DataFrame(report.get("voidfinder_field", []))
    keep = ["cap", "field_hdu", "field_galaxies", "void_galaxies", "void_tracers",
            "void_field_galaxies", "void_field_tracers"]
    return f[[c for c in keep if c in f]].rename(columns=lambda c: c.replace("_", " ")
                                                 .replace("hdu", "HDU"))
