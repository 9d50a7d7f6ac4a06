"""The common membership interface, and every galaxy assigned for every algorithm and cap.

One :class:`Membership` per (algorithm, cap), as VAST splits vast.voidfinder and vast.vsquared:
:class:`~desivoids.environment.voidfinder.VoidFinderMembership` (union of holes) and
:class:`~desivoids.environment.v2.V2Membership` (nearest-tracer zones). Both work on a
:class:`Positions` object that computes what several algorithms share only once per chunk of
galaxies: the footprint and edge tests per footprint, the nearest-tracer query per tessellation.

Work splits into chunks of galaxies: :func:`build_catalogues` makes the per-cap structures once
(plain arrays, grids and cKDTrees: picklable, so a Dask task can receive them) and
:func:`assign_chunk` assigns one chunk. :func:`assign_all` does both over whole tables.

Inputs are the convert stage's tables (desivoids.convert.columns) as pyarrow Tables, pandas
DataFrames or mappings of numpy arrays. The catalogue limits (DLIML, DLIMU, ZLIMU, OMEGAM of the
DESIVAST primary headers) are explicit arguments; :func:`header_limits` reads them from the
tables' schema metadata.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol

import numpy as np

from .. import cosmology, formats
from ..errors import InputError
from ..vastheaders import agreed_value, header_float, primary_headers
from .flags import Assignment
from .mask import Footprint, in_catalogue, mask_footprint
from .v2 import Tessellation, V2Membership, ZoneVoids
from .voidfinder import SURFACE_TOL, HoleSpheres, VoidFinderMembership
from .voids import VoidTable

__all__ = ["Limits", "header_limits", "Membership", "Positions", "CapCatalogue",
           "build_catalogues", "assign_cap", "assign_chunk", "assign_all", "GALAXY_COLUMNS",
           "TABLE_COLUMNS"]

#: columns of the galaxies table that membership reads (dec only if positions are recomputed;
#: targetid is not read, but a caller keeps it to label the rows)
GALAXY_COLUMNS = ("targetid", "ra", "dec", "z", "comoving_x", "comoving_y", "comoving_z")
#: columns each convert-stage table must have here (read only these: GALZONE is 2M rows)
TABLE_COLUMNS = {
    "galaxies": GALAXY_COLUMNS,
    "voids": ("algorithm", "cap", "void", "x", "y", "z", "r_eff", "edge", "edge_area_ratio"),
    "holes": ("cap", "void", "hole_index", "x", "y", "z", "radius"),
    "zonevoid": ("algorithm", "cap", "zone", "void0"),
    "galzone": ("algorithm", "cap", "x", "y", "z", "zone", "source_row"),
}


@dataclass(frozen=True)
class Limits:
    """The catalogue's limits from its primary header (Mpc/h, redshift, Omega_m)."""

    dliml: float
    dlimu: float
    zlimu: float
    omega_m: float


def header_limits(*tables) -> dict[tuple[str, str], Limits]:
    """(algorithm, cap) -> Limits from the PRIMARY headers kept in the schema metadata of the
    convert stage's tables (pyarrow tables, schemas or Parquet paths).

    VAST's two finders round the limits differently (DR7: ZLIMU 0.1026 and 0.103): within
    formats.HEADER_TOLERANCES of the cap's VoidFinder value, every algorithm of the cap takes
    the VoidFinder value, so all four classify the same galaxies; beyond it, an InputError."""
    headers = primary_headers(*tables)
    out, errors = {}, []
    for cap in sorted({c for _, c in headers}):
        of_cap = {k: h for k, h in headers.items() if k[1] == cap}
        agreed = {}
        for name in ("DLIML", "DLIMU", "ZLIMU"):
            try:
                agreed[name] = agreed_value(of_cap, name, formats.HEADER_TOLERANCES.get(name, 0.0))[0]
            except InputError as exc:
                errors.append(exc)
                continue
            if agreed[name] is None:  # absent, or present without a value, in every file
                errors.append(InputError(", ".join(sorted(h["file"] for h in of_cap.values())),
                                         "PRIMARY", name, "no value (the key is absent or has "
                                         "no value): the void membership needs this limit"))
        for key, h in of_cap.items():
            try:
                om = header_float(h, "OMEGAM")
            except InputError as exc:
                errors.append(exc)
                continue
            if om is None:
                errors.append(InputError(h["file"], "PRIMARY", "OMEGAM", "no value (the key is "
                                         "absent or has no value): the void membership needs it"))
            elif len(agreed) == 3 and None not in agreed.values():
                out[key] = Limits(agreed["DLIML"], agreed["DLIMU"], agreed["ZLIMU"], om)
    if errors:
        raise InputError.all(errors)
    return out


class Membership(Protocol):
    """What every algorithm family implements: flags of galaxies inside the catalogue's range."""

    algorithm: str
    cap: str
    footprint: Footprint
    zlimu: float
    omega_m: float

    def assign(self, positions: "Positions", rows: np.ndarray | None = None) -> Assignment:
        ...


class Positions:
    """Comoving positions of a chunk of galaxies, with the per-footprint and per-tessellation
    results that several algorithms share, computed once (keyed by object identity)."""

    def __init__(self, xyz: np.ndarray):
        self.xyz = np.ascontiguousarray(xyz, dtype=np.float64).reshape(-1, 3)
        self._out: dict[int, tuple[object, np.ndarray]] = {}
        self._near: dict[int, tuple[object, np.ndarray]] = {}
        self._zone: dict[tuple[int, int], tuple[object, object, np.ndarray]] = {}

    @staticmethod
    def _pick(a: np.ndarray, rows):
        return a if rows is None else a[rows]

    def outside(self, fp: Footprint, rows=None) -> np.ndarray:
        if id(fp) not in self._out:
            self._out[id(fp)] = (fp, fp.outside(self.xyz))
        return self._pick(self._out[id(fp)][1], rows)

    def near_edge(self, fp: Footprint, rows=None) -> np.ndarray:
        """Near the edge; computed for the points inside the footprint only (False outside)."""
        if id(fp) not in self._near:
            inside = np.flatnonzero(~self.outside(fp))
            near = np.zeros(len(self.xyz), dtype=bool)
            near[inside] = fp.near_edge(self.xyz[inside])
            self._near[id(fp)] = (fp, near)
        return self._pick(self._near[id(fp)][1], rows)

    def nearest_zone(self, tess: Tessellation, fp: Footprint, rows=None) -> np.ndarray:
        """Zone of the nearest tracer for points inside ``fp`` (-1 outside: they are 9)."""
        key = (id(tess), id(fp))
        if key not in self._zone:
            inside = np.flatnonzero(~self.outside(fp))
            zone = np.full(len(self.xyz), -1, dtype=np.int64)
            zone[inside] = tess.nearest_zone(self.xyz[inside])
            self._zone[key] = (tess, fp, zone)
        return self._pick(self._zone[key][2], rows)


@dataclass
class CapCatalogue:
    """Every algorithm's membership structures for one cap (picklable)."""

    cap: str
    members: dict[str, Membership]
    #: V2 algorithms grouped by identical GALZONE (one nearest-tracer query per group)
    tessellation_groups: list[tuple[str, ...]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# reading tables
# ---------------------------------------------------------------------------------------------


def _column(t, name: str, dtype=None) -> np.ndarray:
    """A column of a pyarrow Table, pandas DataFrame or mapping as numpy; null -> NaN for
    float dtypes."""
    col = t[name]
    if hasattr(col, "combine_chunks") or type(col).__module__.startswith("pyarrow"):
        import pyarrow as pa
        import pyarrow.compute as pc

        if dtype is not None and np.dtype(dtype).kind == "f":
            col = pc.cast(col, pa.float64())
        arr = col.to_numpy() if hasattr(col, "chunks") else col.to_numpy(zero_copy_only=False)
    elif hasattr(col, "to_numpy"):  # pandas
        if dtype is not None and np.dtype(dtype).kind == "f":
            arr = col.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = col.to_numpy()
    else:
        arr = np.asarray(col)
    return arr if dtype is None else np.asarray(arr, dtype=dtype)


def _equals(t, name: str, value: str) -> np.ndarray:
    col = t[name]
    if type(col).__module__.startswith("pyarrow"):
        import pyarrow.compute as pc

        return np.asarray(pc.fill_null(pc.equal(col, value), False))
    return np.asarray(col).astype(str) == value


def _rows(t, algorithm: str | None, cap: str) -> np.ndarray:
    """Boolean selection of one (algorithm, cap) of a convert-stage table."""
    sel = _equals(t, "cap", cap)
    if algorithm is not None:
        sel &= _equals(t, "algorithm", algorithm)
    return sel


def _select(t, algorithm: str | None, cap: str):
    """The rows of one (algorithm, cap), as the same kind of table."""
    sel = _rows(t, algorithm, cap)
    if hasattr(t, "filter") and type(t).__module__.startswith("pyarrow"):
        import pyarrow as pa

        return t.filter(pa.array(sel))
    if hasattr(t, "loc"):
        return t.loc[sel]
    return {k: np.asarray(v)[sel] for k, v in t.items()}


def _void_table(voids, algorithm: str, cap: str) -> VoidTable:
    t = _select(voids, algorithm, cap)

    def get(n):
        return _column(t, n, np.float64)

    return VoidTable.from_columns(algorithm, _column(t, "void", np.int64), get("x"), get("y"),
                                  get("z"), get("r_eff"), edge=get("edge"),
                                  edge_area_ratio=get("edge_area_ratio"))


def _tessellation(galzone, algorithm: str, cap: str) -> Tessellation:
    t = _select(galzone, algorithm, cap)
    order = np.argsort(_column(t, "source_row", np.int64), kind="stable")
    xyz = np.column_stack([_column(t, n, np.float64)[order] for n in "xyz"])
    return Tessellation(xyz, _column(t, "zone", np.int64)[order])


def build_catalogues(voids, holes, zonevoid, galzone, limits: Mapping[tuple[str, str], Limits],
                     algorithms=formats.ALGORITHMS, caps=formats.CAPS,
                     mask_tracers: Mapping[str, np.ndarray] | None = None,
                     surface_tol: float = SURFACE_TOL,
                     survey_masks: Mapping[tuple[str, str], tuple] | None = None
                     ) -> dict[str, CapCatalogue]:
    """Per-cap membership structures from the convert stage's tables.

    ``limits[(algorithm, cap)]`` gives DLIML, DLIMU, ZLIMU, OMEGAM. The footprint of a cap is
    rebuilt from its GALZONE positions: each V2 algorithm uses its own file's, VoidFinder the
    union of the cap's GALZONE positions (the same when the files agree, as in DESIVAST);
    ``mask_tracers[cap]`` (an (n, 3) array) replaces them for every algorithm of that cap.
    ``survey_masks[(algorithm, cap)]`` = (scheme, resolution, cells), a file's own MASK HDU
    (convert's survey_masks.parquet), is that algorithm's mask instead of a rebuilt one.
    Identical GALZONE tables share one Tessellation (compared, not assumed). ``surface_tol``
    (Mpc/h) is VoidFinder's surface tolerance (:mod:`.voidfinder`).
    """
    out = {}
    for cap in caps:
        members: dict[str, Membership] = {}
        tess: list[Tessellation] = []
        tess_of: dict[str, int] = {}
        groups: dict[int, list[str]] = {}
        for alg in algorithms:
            if not formats.family(alg).zones:
                continue
            t = _tessellation(galzone, alg, cap)
            k = next((i for i, u in enumerate(tess) if u.same_as(t)), None)
            if k is None:
                tess.append(t)
                k = len(tess) - 1
            tess_of[alg] = k
            groups.setdefault(k, []).append(alg)
        footprints: dict[tuple, Footprint] = {}

        def footprint(tess_ids: tuple[int, ...], lim: Limits) -> Footprint:
            key = (tess_ids, lim.dliml, lim.dlimu)
            if key not in footprints:
                if mask_tracers is not None and cap in mask_tracers:
                    xyz = np.asarray(mask_tracers[cap], np.float64).reshape(-1, 3)
                else:
                    if not tess_ids:
                        raise ValueError(f"{cap}: no GALZONE tracers to rebuild the footprint "
                                         "from (pass mask_tracers)")
                    xyz = np.concatenate([tess[i].xyz for i in tess_ids])
                footprints[key] = Footprint.from_tracers(xyz, lim.dliml, lim.dlimu)
            return footprints[key]

        own_masks: dict[str, Footprint] = {}

        def own_mask(alg: str, lim: Limits) -> Footprint | None:
            if not survey_masks or (alg, cap) not in survey_masks:
                return None
            scheme, res, cells = survey_masks[(alg, cap)]
            key = f"{scheme}:{res}:{hash(np.asarray(cells).tobytes())}"
            if key not in own_masks:  # the three V2 files carry the same map
                own_masks[key] = mask_footprint(scheme, int(res), cells, lim.dliml, lim.dlimu)
            return own_masks[key]

        for alg in algorithms:
            if (alg, cap) not in limits:
                raise KeyError(f"no header limits for {alg} {cap}")
            lim = limits[(alg, cap)]
            fp = own_mask(alg, lim)
            if formats.family(alg).holes:  # VoidFinder's family; the other one is V2's
                h = _select(holes, None, cap)
                hs = HoleSpheres.from_columns(
                    _column(h, "hole_index", np.int64),
                    *(_column(h, n, np.float64) for n in ("x", "y", "z", "radius")),
                    _column(h, "void", np.int64))
                ids = tuple(range(len(tess))) if mask_tracers is None or cap not in mask_tracers \
                    else ()
                members[alg] = VoidFinderMembership(cap, hs, _void_table(voids, alg, cap),
                                                    fp or footprint(ids, lim), lim.zlimu,
                                                    lim.omega_m, surface_tol=surface_tol)
            else:
                zt = _select(zonevoid, alg, cap)
                zv = ZoneVoids.from_columns(_column(zt, "zone", np.int64),
                                            _column(zt, "void0", np.int64))
                k = tess_of[alg]
                ids = (k,) if mask_tracers is None or cap not in mask_tracers else ()
                members[alg] = V2Membership(alg, cap, tess[k], zv, _void_table(voids, alg, cap),
                                            fp or footprint(ids, lim), lim.zlimu, lim.omega_m)
        for t in tess:
            t.build()
        out[cap] = CapCatalogue(cap, members, [tuple(g) for g in groups.values()])
    return out


# ---------------------------------------------------------------------------------------------
# assigning galaxies
# ---------------------------------------------------------------------------------------------


def _galaxy_xyz(galaxies, rows: np.ndarray, omega_m: float, galaxy_omega_m: float | None):
    """Comoving positions of ``rows``: the table's comoving_* columns, or recomputed from RA, Dec
    and Z when the table's Omega_m differs from the catalogue's."""
    if galaxy_omega_m is not None and abs(galaxy_omega_m - omega_m) > 1e-12:
        return np.column_stack(cosmology.radec_z_to_xyz(
            _column(galaxies, "ra", np.float64)[rows], _column(galaxies, "dec", np.float64)[rows],
            _column(galaxies, "z", np.float64)[rows], omega_m))
    return np.column_stack([_column(galaxies, f"comoving_{a}", np.float64)[rows] for a in "xyz"])


def _arrays(galaxies) -> dict[str, np.ndarray]:
    """The columns membership reads, as float64 numpy arrays (null -> NaN)."""
    return {c: _column(galaxies, c, np.float64) for c in GALAXY_COLUMNS
            if c != "targetid" and _has(galaxies, c)}


def _has(t, name: str) -> bool:
    if hasattr(t, "column_names"):
        return name in t.column_names
    if hasattr(t, "columns"):
        return name in t.columns
    return name in t


def _assign_rows(gal: dict, catalogue: CapCatalogue, own: np.ndarray,
                 galaxy_omega_m: float | None) -> dict[str, tuple[np.ndarray, Assignment]]:
    """algorithm -> (rows inside the catalogue's range, their Assignment)."""
    out = {}
    shared: dict[tuple, tuple[np.ndarray, Positions]] = {}
    for alg, member in catalogue.members.items():
        key = (member.zlimu, member.omega_m)
        if key not in shared:  # one Positions per range: caches shared across algorithms
            rows = np.flatnonzero(in_catalogue(gal["z"], gal["ra"], catalogue.cap,
                                               member.zlimu, own))
            shared[key] = (rows, Positions(_galaxy_xyz(gal, rows, member.omega_m,
                                                       galaxy_omega_m)))
        rows, pos = shared[key]
        out[alg] = (rows, member.assign(pos))
    return out


def assign_cap(galaxies, catalogue: CapCatalogue, galaxy_omega_m: float | None = None
               ) -> dict[str, Assignment]:
    """Every galaxy of ``galaxies`` against the catalogues of one cap: algorithm -> Assignment.

    A galaxy outside the catalogue's range (:func:`~desivoids.environment.mask.in_catalogue`:
    Z <= 0, Z > ZLIMU, or the other cap) is OUTSIDE (9) whatever its position.
    ``galaxy_omega_m`` is the Omega_m the comoving_* columns were computed with (None: trust
    them).
    """
    gal = _arrays(galaxies)
    own = formats.cap_of_ra(gal["ra"])
    result = {}
    for alg, (rows, res) in _assign_rows(gal, catalogue, own, galaxy_omega_m).items():
        full = Assignment.outside(alg, catalogue.cap, len(own))
        full.put(rows, res)
        result[alg] = full
    return result


def assign_chunk(galaxies, catalogues: Mapping[str, CapCatalogue],
                 galaxy_omega_m: float | None = None) -> dict[str, Assignment]:
    """One chunk of galaxies, each by the catalogue of its own cap (formats.cap_of_ra):
    algorithm -> Assignment whose cap is the galaxy's. A galaxy whose cap has no catalogue in
    ``catalogues`` is OUTSIDE. This is the unit of work of a Dask task: ``catalogues`` come
    from :func:`build_catalogues` (picklable), ``galaxies`` is any slice of the table."""
    gal = _arrays(galaxies)
    own = formats.cap_of_ra(gal["ra"])
    code = np.zeros(len(own), np.int8)
    for k, c in enumerate(formats.CAPS):
        code[own == c] = k
    algs = list(dict.fromkeys(a for c in catalogues.values() for a in c.members))
    result = {a: Assignment.outside(a, code, len(own)) for a in algs}
    for cat in catalogues.values():
        for alg, (rows, res) in _assign_rows(gal, cat, own, galaxy_omega_m).items():
            result[alg].put(rows, res)
    return result


def assign_all(galaxies, voids, holes, zonevoid, galzone,
               limits: Mapping[tuple[str, str], Limits], *, chunk_rows: int | None = 2_000_000,
               galaxy_omega_m: float | None = None, algorithms=formats.ALGORITHMS,
               surface_tol: float = SURFACE_TOL) -> dict[str, Assignment]:
    """Every galaxy, every algorithm, by its own cap's catalogue: algorithm -> Assignment
    (row-matched with ``galaxies``). ``chunk_rows`` bounds the galaxies handled at once (None:
    all at once); the answer does not depend on it. ``surface_tol``: VoidFinder's surface
    tolerance in Mpc/h."""
    cats = build_catalogues(voids, holes, zonevoid, galzone, limits, algorithms,
                            surface_tol=surface_tol)
    n = len(_column(galaxies, "ra"))
    step = n if not chunk_rows else int(chunk_rows)
    if n == 0 or step >= n:
        return assign_chunk(galaxies, cats, galaxy_omega_m)
    gal = _arrays(galaxies)
    parts = [assign_chunk({c: v[s:s + step] for c, v in gal.items()}, cats, galaxy_omega_m)
             for s in range(0, n, step)]
    return {a: Assignment.concat([p[a] for p in parts]) for a in parts[0]}


def beyond_far_limit_in_holes(galaxies, catalogue: CapCatalogue,
                              galaxy_omega_m: float | None = None,
                              cap_code: np.ndarray | None = None) -> np.ndarray:
    """Rows of galaxies of ``catalogue``'s cap with Z > ZLIMU that lie strictly inside a
    VoidFinder hole (holes near the far limit cross it). The rule here keeps them OUTSIDE (9),
    beyond the catalogue's range; VAST's own classification, which tests the holes before the
    distance limits, calls them void (1): these are the galaxies the two differ on.
    ``cap_code``: each galaxy's own cap as :func:`formats.cap_index_of_ra` gives it, if known
    (an Assignment's cap_code from :func:`assign_chunk`)."""
    member = catalogue.members.get("VoidFinder")
    if member is None:
        return np.zeros(0, np.int64)
    gal = _arrays(galaxies)
    if cap_code is None:  # cap_of_ra's rule as indices: no string per galaxy
        cap_code = formats.cap_index_of_ra(gal["ra"])
    own = cap_code == formats.CAPS.index(catalogue.cap)
    rows = np.flatnonzero(own & (gal["z"] > member.zlimu))
    xyz = _galaxy_xyz(gal, rows, member.omega_m, galaxy_omega_m)
    reach = member.footprint.dlimu + (member.holes.radius.max() if len(member.holes.radius)
                                      else 0.0)
    dist = np.sqrt((xyz ** 2).sum(axis=1))
    near = dist <= reach  # no hole reaches beyond
    hit = np.zeros(len(rows), dtype=bool)
    if near.any():
        # only the holes that reach out to the nearest of these galaxies can hold any of them
        # (|x - c| >= |x| - |c|; 1 Mpc/h to spare against rounding): a few of the cap's holes
        h = member.holes
        far = np.sqrt((h.centre ** 2).sum(axis=1)) + h.radius + member.surface_tol + 1.0
        k = far >= dist[near].min()
        few = HoleSpheres(h.centre[k], h.radius[k], h.void[k])
        hit[near] = few.first_containing(xyz[near], member.surface_tol) >= 0
    return rows[hit]
