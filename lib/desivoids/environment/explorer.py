"""The data of the book's interactive figure: a cube of comoving space in one cap, with its
tracers (their flag under every algorithm) and every algorithm's voids as spheres.

The figure itself is ``book/_static/slab.js``, served from the built book (no CDN): the reader
turns a slab through the cube and sees, in the slab's mid plane, the circles where each
algorithm's spheres cut it, as layers around the galaxies. VoidFinder's spheres are its holes,
so its circles are exact cuts of its voids; a V2 void is a union of Voronoi cells, drawn as its
effective sphere (the volume-equivalent sphere at its centre) and, exactly, by the flags of its
galaxies.
"""
from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import formats, paths

__all__ = ["slab_data", "slab_html"]


def _cube_centre(tracers: pd.DataFrame) -> np.ndarray:
    # the median tracer: inside the survey, where voids of every algorithm are found
    return np.median(tracers[["comoving_x", "comoving_y", "comoving_z"]].to_numpy(), axis=0)


def slab_data(data_dir: str, cap: str = "NGC", half_width: float = 150.0,
              max_galaxies: int = 15000, seed: int = 1) -> dict:
    """Everything the figure draws, as plain lists (coordinates relative to the cube's centre,
    in Mpc/h, rounded to 0.1): tracers of ``cap`` inside a cube of half width ``half_width``
    (a random ``max_galaxies`` of them when there are more), their flag per algorithm, and
    the spheres of every algorithm that reach into the cube."""
    layout = paths.RunLayout.of(data_dir)
    sample = pq.read_table(layout.file("plausibility", "sample"),
                           columns=["targetid", "cap", "comoving_x", "comoving_y", "comoving_z"],
                           filters=[("cap", "=", cap)]).to_pandas()
    if sample.empty:
        return {"cap": cap, "half_width": half_width, "galaxies": {"n": 0}, "spheres": {},
                "algorithms": list(formats.ALGORITHMS), "total_in_cube": 0}
    centre = _cube_centre(sample)
    xyz = sample[["comoving_x", "comoving_y", "comoving_z"]].to_numpy() - centre
    inside = np.all(np.abs(xyz) <= half_width, axis=1)
    idx = np.flatnonzero(inside)
    total = int(idx.size)
    if idx.size > max_galaxies:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_galaxies, replace=False))
    chosen = sample.iloc[idx]
    assign = pq.read_table(layout.file("environment", "assignments"),
                           columns=["targetid", "algorithm", "flag"],
                           filters=[("cap", "=", cap)])
    wanted = pa.array(np.unique(np.asarray(chosen.targetid, dtype=np.int64)))
    assign = assign.filter(pc.is_in(assign["targetid"], value_set=wanted)).to_pandas()
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
    return {"cap": cap, "half_width": half_width, "centre": np.round(centre, 1).tolist(),
            "total_in_cube": total, "algorithms": list(formats.ALGORITHMS),
            "galaxies": galaxies, "spheres": spheres}


def slab_html(data: dict, script: str = "../../_static/slab.js") -> str:
    """The figure's HTML: a container, its data as JSON, and the script from the book's own
    static files (``script`` relative to the executed chapter's page)."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (f'<div id="slab-explorer" data-cap="{html.escape(data["cap"])}">'
            '<p class="slab-fallback">The interactive slab is drawn by the built book\'s own '
            'JavaScript (<code>_static/slab.js</code>); open this chapter in the book to turn '
            'it.</p></div>\n'
            f'<script type="application/json" id="slab-data">{payload}</script>\n'
            f'<script src="{html.escape(script)}"></script>')
