"""The data of the book's interactive figure: a cube of comoving space in one cap, with its
tracers (their flag under every algorithm) and every algorithm's voids as spheres.

The figure itself is ``book/_static/slab.js``, served from the built book (no CDN): the reader
turns a slab through the cube and sees, in the slab's mid plane, the circles where each
algorithm's spheres cut it, as layers around the galaxies. VoidFinder's spheres are its holes,
so its circles are exact cuts of its voids; a V2 void is a union of Voronoi cells, drawn as its
effective sphere (the volume-equivalent sphere at its centre) and, exactly, by the flags of its
galaxies.

Readers without JavaScript see :func:`slab_preview`, the figure's start view drawn by
matplotlib and embedded in the page as a PNG (the script replaces it with the canvas).
"""
from __future__ import annotations

import base64
import html
import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from .. import formats, lookup, paths
from ..runinfo import mark_mock, run_info

__all__ = ["VIEW", "cube", "flag_rows", "slab_data", "slab_preview", "slab_html"]

#: the figure's start view, shared by the script (data["view"]) and the static preview:
#: the slab's normal (azimuth, elevation, degrees), its offset and thickness (Mpc/h) and the
#: algorithm whose flags colour the galaxies and whose voids are drawn
VIEW = {"azimuth": 0, "elevation": 90, "offset": 0, "thickness": 20, "algorithm": "VoidFinder"}
#: colours of the flags and of each algorithm's void layer, as book/_static/slab.js draws them
FLAG_COLOURS = {"0": "#555555", "1": "#1f77b4", "2": "#ff7f0e", "9": "#bbbbbb"}
FLAG_NAMES = {"0": "wall", "1": "void", "2": "edge", "9": "outside"}
LAYER_COLOURS = {"VoidFinder": "#1f77b4", "REVOLVER": "#2ca02c", "VIDE": "#9467bd",
                 "ZOBOV": "#d62728"}


def _cube_centre(tracers: pd.DataFrame) -> np.ndarray:
    # the median tracer: inside the survey, where voids of every algorithm are found
    return np.median(tracers[["comoving_x", "comoving_y", "comoving_z"]].to_numpy(), axis=0)


def cube(sample: pd.DataFrame, half_width: float = 150.0, max_galaxies: int = 15000,
         seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The figure's cube in one cap's tracers ``sample`` (not empty): its centre, the tracers'
    positions relative to it, the rows of ``sample`` drawn (all those inside the cube, or a
    random ``max_galaxies`` of them, ascending) and how many are inside."""
    centre = _cube_centre(sample)
    xyz = sample[["comoving_x", "comoving_y", "comoving_z"]].to_numpy() - centre
    inside = np.all(np.abs(xyz) <= half_width, axis=1)
    idx = np.flatnonzero(inside)
    total = int(idx.size)
    if idx.size > max_galaxies:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_galaxies, replace=False))
    return centre, xyz, idx, total


def flag_rows(layout: paths.RunLayout, targetid: np.ndarray) -> pa.Table:
    """The environment's assignments of the galaxies ``targetid`` that the figures draw
    (targetid, algorithm, cap, flag), the strings dictionary-encoded: the rows are picked
    before the strings are decoded (decoding 25.8M of them and filtering on them cost 3.7 CPU s
    at DR1 scale)."""
    return lookup.rows_of(layout.file("environment", "assignments"),
                          np.asarray(targetid, dtype=np.int64),
                          ["targetid", "algorithm", "cap", "flag"],
                          dictionary=("algorithm", "cap"))


def slab_data(data_dir: str, cap: str = "NGC", half_width: float = 150.0,
              max_galaxies: int = 15000, seed: int = 1, *, sample: pd.DataFrame | None = None,
              assign: pa.Table | None = None) -> dict:
    """Everything the figure draws, as plain lists (coordinates relative to the cube's centre,
    in Mpc/h, rounded to 0.1): tracers of ``cap`` inside a cube of half width ``half_width``
    (a random ``max_galaxies`` of them when there are more), their flag per algorithm, and
    the spheres of every algorithm that reach into the cube.

    ``sample`` (the cap's tracers from plausibility's sample: targetid, cap, comoving_x/y/z)
    and ``assign`` (:func:`flag_rows`, holding those of the drawn galaxies) are read here
    when not given: the chapter reads
    each file once for all its figures (:func:`desivoids.environment.figures.inputs`)."""
    layout = paths.RunLayout.of(data_dir)
    common = {"cap": cap, "half_width": half_width, "algorithms": list(formats.ALGORITHMS),
              "view": dict(VIEW), "mock": run_info(data_dir).mock}
    if sample is None:
        sample = pq.read_table(layout.file("plausibility", "sample"),
                               columns=["targetid", "cap", "comoving_x", "comoving_y",
                                        "comoving_z"], filters=[("cap", "=", cap)]).to_pandas()
    if sample.empty:
        return {**common, "galaxies": {"n": 0}, "spheres": {}, "total_in_cube": 0}
    centre, xyz, idx, total = cube(sample, half_width, max_galaxies, seed)
    chosen = sample.iloc[idx]
    if assign is None:  # the chosen galaxies' rows first, then the cap's
        assign = flag_rows(layout, chosen.targetid.to_numpy())
    assign = assign.filter(pc.equal(assign["cap"].cast(pa.string()), cap))
    assign = pa.table({"targetid": assign["targetid"],
                       "algorithm": assign["algorithm"].cast(pa.string()),
                       "flag": assign["flag"]}).to_pandas()
    flags = assign.pivot(index="targetid", columns="algorithm", values="flag").reindex(
        chosen.targetid)
    galaxies = {"n": int(len(chosen)),
                **{axis: np.round(xyz[idx, k], 1).tolist() for k, axis in enumerate("xyz")},
                # one digit per galaxy (0 wall, 1 void, 2 edge, 9 outside; 9 where unassigned)
                "flags": {a: "".join(str(int(f)) for f in flags.get(a, pd.Series(
                    9, index=flags.index)).fillna(9)) for a in formats.ALGORITHMS}}

    def reaching(x, y, z, r):
        c = np.column_stack([x, y, z]) - centre
        keep = np.all(np.abs(c) <= half_width + np.asarray(r)[:, None], axis=1)
        return np.round(np.column_stack([c[keep], np.asarray(r)[keep]]), 1).tolist()

    holes = pq.read_table(layout.file("convert", "holes"), columns=["cap", "x", "y", "z", "radius"],
                          filters=[("cap", "=", cap)]).to_pandas()
    voids = pq.read_table(layout.file("convert", "voids"),
                          columns=["algorithm", "cap", "x", "y", "z", "r_eff"],
                          filters=[("cap", "=", cap)]).to_pandas().dropna()
    spheres = {}
    for a in formats.ALGORITHMS:  # a hole family draws its holes, the others r_eff spheres
        if formats.family(a).holes:
            h = holes[holes.algorithm == a] if "algorithm" in holes else holes
            spheres[a] = reaching(h.x, h.y, h.z, h.radius)
        else:
            v = voids[voids.algorithm == a]
            spheres[a] = reaching(v.x, v.y, v.z, v.r_eff)
    return {**common, "centre": np.round(centre, 1).tolist(), "total_in_cube": total,
            "galaxies": galaxies, "spheres": spheres}


def _basis(azimuth: float, elevation: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The slab's normal n and its in-plane axes u (across) and v (up), as slab.js builds them."""
    t, p = np.radians(azimuth), np.radians(elevation)
    n = np.array([np.cos(p) * np.cos(t), np.cos(p) * np.sin(t), np.sin(p)])
    u = np.array([-np.sin(t), np.cos(t), 0.0])
    return n, u, np.cross(n, u)


def axis_name(w: np.ndarray) -> str:
    """The comoving axis a unit vector runs along ("y", "\u2212x"), or "" for none."""
    k = int(np.argmax(np.abs(w)))
    return ("\u2212" if w[k] < 0 else "") + "xyz"[k] if abs(w[k]) > 0.999 else ""


def sampled_sentence(data: dict) -> str:
    """What the figure draws of the cube's tracers: all, or a random subsample of them."""
    n, total = data["galaxies"]["n"], data["total_in_cube"]
    if n < total:
        return (f"a random {n:,d} of the {total:,d} tracers in the cube (a subsample, so that "
                "the page stays light)")
    return f"all {n:,d} tracers in the cube"


def slab_preview(data: dict) -> Figure:
    """The figure's start view (:data:`VIEW`, or ``data["view"]``) as a matplotlib figure:
    the galaxies in the slab coloured by the flags of one algorithm, the circles where that
    algorithm's spheres cut the slab's mid plane, axes in Mpc/h from the cube's centre named
    after the comoving axes they run along, and a legend; a mock run's carries the MOCK mark."""
    view = {**VIEW, **(data.get("view") or {})}
    n, u, v = _basis(view["azimuth"], view["elevation"])
    half, d, w = data["half_width"], float(view["offset"]), float(view["thickness"]) / 2
    reach = half * np.sqrt(2)
    alg = view["algorithm"]
    fig = Figure(figsize=(6.4, 6.4), dpi=100)
    ax = fig.subplots()
    g = data["galaxies"]
    if g["n"]:
        xyz = np.column_stack([g["x"], g["y"], g["z"]])
        inside = np.abs(xyz @ n - d) <= w
        flags = np.array(list(g["flags"].get(alg, "9" * g["n"])))
        for flag, name in FLAG_NAMES.items():
            mine = inside & (flags == flag)
            ax.scatter(xyz[mine] @ u, xyz[mine] @ v, s=3, color=FLAG_COLOURS[flag], lw=0,
                       label=f"{name} galaxy ({int(mine.sum()):,d})")
    circles = 0
    for c in data["spheres"].get(alg, []):
        centre, r = np.asarray(c[:3]), c[3]
        h = centre @ n - d
        if abs(h) < r:
            # add_artist: the limits are set below, so add_patch's update of the data limits
            # per circle (most of the preview's 1.3 CPU s at DR1 scale) is not needed
            ax.add_artist(Circle((centre @ u, centre @ v), np.sqrt(r * r - h * h), fill=False,
                                 lw=0.7, alpha=0.75, color=LAYER_COLOURS.get(alg, "k")))
            circles += 1
    ax.plot([], [], ls="none", marker="o", mfc="none", color=LAYER_COLOURS.get(alg, "k"),
            label=f"{alg} voids, cut by the slab ({circles:,d})")
    across, up = axis_name(u), axis_name(v)
    ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal",
           xlabel=(f"comoving {across}" if across else "across the slab")
           + " [Mpc/h from the cube's centre]",
           ylabel=(f"comoving {up}" if up else "up the slab") + " [Mpc/h]",
           title=f"{data['cap']}: a slab {2 * w:g} Mpc/h thick"
           + (f", normal along {axis_name(n)}" if axis_name(n) else ""))
    ax.legend(loc="upper left", fontsize=8, markerscale=2, framealpha=0.9)
    fig.tight_layout()
    if data.get("mock"):
        mark_mock(fig)
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def slab_html(data: dict, script: str = "../../_static/slab.js") -> str:
    """The figure's HTML: a container holding the static preview (an image, for readers
    without JavaScript; the script replaces it with the interactive canvas), its data as JSON,
    and the script from the book's own static files (``script`` relative to the executed
    chapter's page)."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    view = {**VIEW, **(data.get("view") or {})}
    mock = "MOCK sky, not DESI data. " if data.get("mock") else ""
    alt = (f"{mock}Static preview of the slab explorer: the {data['cap']} tracers in a "
           f"{view['thickness']:g} Mpc/h slab through the middle of a {2 * data['half_width']:g} "
           f"Mpc/h cube, coloured by their {view['algorithm']} flag (wall, void, edge, outside), "
           f"with circles where {view['algorithm']}'s voids cut the slab.")
    preview = ""
    if data["galaxies"]["n"]:
        preview = (f'<img class="slab-preview" src="data:image/png;base64,{_png(slab_preview(data))}" '
                   f'alt="{html.escape(alt)}" width="640" height="640">')
    return (f'<div id="slab-explorer" data-cap="{html.escape(data["cap"])}">'
            f'<div class="slab-fallback">{preview}'
            f'<p>{html.escape(mock)}The start view of the interactive slab, which draws '
            f'{html.escape(sampled_sentence(data))}. Turning it needs the book\'s own JavaScript '
            '(<code>_static/slab.js</code>): open this chapter in a browser with JavaScript '
            'on.</p></div></div>\n'
            f'<script type="application/json" id="slab-data">{payload}</script>\n'
            f'<script src="{html.escape(script)}"></script>')
