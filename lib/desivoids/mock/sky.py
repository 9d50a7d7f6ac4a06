"""The physical mock sky: footprints, planted voids, and galaxy positions and luminosities.

Comoving coordinates in Mpc/h (flat LCDM, Omega_m = 0.315, h = 1, via desivoids.cosmology).
Each cap has a contiguous footprint polygon in (RA, Dec). Voids are planted first as unions of
spheres (a largest sphere plus overlapping smaller ones, VoidFinder-style); galaxies are then
drawn from a clustered + uniform point process in which points inside a void sphere survive only
with a small probability, so voids are underdense, most strongly in the bright tracer sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as MplPath

from .. import cosmology, formats

OMEGA_M = cosmology.OMEGA_M_DEFAULT
ZLIML, ZLIMU = 0.0, 0.24
MAGLIM = -20.0
DLIML = float(cosmology.comoving_distance(ZLIML, OMEGA_M))
DLIMU = float(cosmology.comoving_distance(ZLIMU, OMEGA_M))
FLUX_LIMIT_R = 19.5  # BGS bright apparent r limit

#: footprint polygons (RA, Dec) in degrees; SGC RAs run through 0 and are given in (-180, 180]
FOOTPRINTS = {
    "tiny": {
        "NGC": [(159.0, 3.0), (166.0, 2.0), (171.5, 3.5), (172.0, 9.0), (170.5, 13.5),
                (164.0, 14.0), (158.5, 12.0), (160.0, 7.5)],
        "SGC": [(-3.0, -2.0), (3.0, -2.3), (3.6, 1.5), (2.0, 3.2), (-2.5, 2.6)],
    },
    "small": {
        "NGC": [(140.0, 0.0), (175.0, -3.0), (205.0, 0.0), (207.0, 25.0), (200.0, 45.0),
                (170.0, 50.0), (145.0, 44.0), (137.0, 20.0)],
        "SGC": [(-20.0, -8.0), (10.0, -10.0), (15.0, 5.0), (5.0, 14.0), (-18.0, 10.0)],
    },
    "dr1": {
        "NGC": [(110.0, -8.0), (140.0, -12.0), (200.0, -10.0), (235.0, -8.0), (264.0, -5.0),
                (268.0, 20.0), (286.0, 38.0), (292.0, 58.0), (275.0, 74.0), (210.0, 80.0),
                (140.0, 78.0), (100.0, 68.0), (88.0, 62.0), (95.0, 45.0), (112.0, 32.0),
                (106.0, 10.0)],
        "SGC": [(-45.0, -15.0), (-10.0, -20.0), (30.0, -18.0), (48.0, -5.0), (50.0, 10.0),
                (40.0, 32.0), (10.0, 34.0), (-25.0, 30.0), (-48.0, 10.0)],
    },
}


def _wrap_sgc(ra):
    ra = np.asarray(ra, dtype=float) % 360.0
    return np.where(ra > 180.0, ra - 360.0, ra)


@dataclass
class Footprint:
    """A contiguous angular region of one cap."""

    cap: str
    vertices: np.ndarray

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, dtype=float)
        self.path = MplPath(self.vertices)
        self.ra_lo, self.dec_lo = self.vertices.min(axis=0)
        self.ra_hi, self.dec_hi = self.vertices.max(axis=0)

    def contains(self, ra, dec) -> np.ndarray:
        ra = np.asarray(ra, dtype=float)
        ra = _wrap_sgc(ra) if self.cap == "SGC" else ra % 360.0
        pts = np.column_stack([ra, np.asarray(dec, dtype=float)])
        return self.path.contains_points(pts)

    def sample(self, rng, n: int):
        """n points uniform on the sphere inside the polygon: (ra in [0, 360), dec)."""
        out_ra, out_dec, have = [], [], 0
        s0, s1 = np.sin(np.radians(self.dec_lo)), np.sin(np.radians(self.dec_hi))
        while have < n:
            m = int((n - have) * 1.5) + 64
            ra = rng.uniform(self.ra_lo, self.ra_hi, m)
            dec = np.degrees(np.arcsin(rng.uniform(s0, s1, m)))
            ok = self.path.contains_points(np.column_stack([ra, dec]))
            out_ra.append(ra[ok] % 360.0)
            out_dec.append(dec[ok])
            have += int(ok.sum())
        return np.concatenate(out_ra)[:n], np.concatenate(out_dec)[:n]

    def area_deg2(self, rng=None, n=400_000) -> float:
        rng = rng or np.random.default_rng(0)
        s0, s1 = np.sin(np.radians(self.dec_lo)), np.sin(np.radians(self.dec_hi))
        ra = rng.uniform(self.ra_lo, self.ra_hi, n)
        dec = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
        frac = self.path.contains_points(np.column_stack([ra, dec])).mean()
        box = np.radians(self.ra_hi - self.ra_lo) * (s1 - s0)
        return float(frac * box * (180.0 / np.pi) ** 2)


def footprints(name: str) -> dict[str, Footprint]:
    return {cap: Footprint(cap, v) for cap, v in FOOTPRINTS[name].items()}


def sample_volume(rng, fp: Footprint, n: int, r_lo: float, r_hi: float,
                  radial_weight=None) -> np.ndarray:
    """n points uniform in comoving volume inside the footprint between r_lo and r_hi, or with
    density proportional to ``radial_weight(r)`` if given."""
    ra, dec = fp.sample(rng, n)
    u = rng.random(n)
    if radial_weight is None:
        r = np.cbrt(r_lo ** 3 + u * (r_hi ** 3 - r_lo ** 3))
    else:
        grid = np.linspace(r_lo, r_hi, 2049)
        pdf = grid ** 2 * radial_weight(grid)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]))])
        r = np.interp(u * cdf[-1], cdf, grid)
    return np.column_stack(cosmology.radec_to_xyz(ra, dec, r))


def xyz_in_volume(fp: Footprint, xyz: np.ndarray, r_lo: float, r_hi: float) -> np.ndarray:
    ra, dec, r = cosmology.xyz_to_radec_r(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    return (r > r_lo) & (r <= r_hi) & fp.contains(ra, dec)


# ------------------------------------------------------------------------------------------
# Voids
# ------------------------------------------------------------------------------------------


@dataclass
class Voids:
    """VoidFinder-style voids of one cap: holes in file order (grouped by void, largest first)."""

    centres: np.ndarray  # (n_voids, 3) centre of the largest sphere
    radius: np.ndarray  # (n_voids,) radius of the largest sphere
    hole_xyz: np.ndarray  # (n_holes, 3)
    hole_r: np.ndarray  # (n_holes,)
    hole_void: np.ndarray  # (n_holes,) void index

    @property
    def n(self) -> int:
        return len(self.radius)


def place_voids(rng, fp: Footprint, n_voids: int, n_holes: int, radius_range) -> Voids:
    """Random sequential placement of non-overlapping voids (largest first), then their holes."""
    if n_holes < n_voids:
        raise ValueError("need at least one hole per void")
    rmin, rmax = radius_range
    radii = np.sort(rmin + (rmax - rmin) * rng.beta(1.6, 3.2, n_voids))[::-1].copy()
    centres = np.empty((n_voids, 3))
    placed = 0
    pool = np.empty((0, 3))
    while placed < n_voids:
        R = radii[placed]
        if len(pool) == 0:
            pool = sample_volume(rng, fp, 4096, max(DLIML, 0.4 * R), DLIMU - 0.3 * R)
        cand, pool = pool[0], pool[1:]
        if placed:
            d = np.linalg.norm(centres[:placed] - cand, axis=1)
            if np.any(d < 0.95 * (radii[:placed] + R)):
                radii[placed:] *= 0.9995  # very crowded: let the remaining voids shrink slowly
                continue
        centres[placed] = cand
        placed += 1
    # holes: the largest sphere first, then smaller overlapping spheres (more for bigger voids)
    extra = rng.multinomial(n_holes - n_voids, radii ** 3 / np.sum(radii ** 3))
    hx, hr, hv = [], [], []
    for v in range(n_voids):
        k = extra[v]
        hx.append(centres[v][None, :])
        hr.append([radii[v]])
        hv.append([v])
        if k:
            direc = rng.normal(size=(k, 3))
            direc /= np.linalg.norm(direc, axis=1)[:, None]
            off = radii[v] * rng.uniform(0.25, 0.7, k)
            rr = np.sort(radii[v] * rng.uniform(0.35, 0.8, k))[::-1]
            hx.append(centres[v] + direc * off[:, None])
            hr.append(rr)
            hv.append(np.full(k, v))
    return Voids(centres, radii, np.concatenate(hx), np.concatenate(hr).astype(float),
                 np.concatenate(hv).astype(np.int64))


def in_holes_fast(voids: Voids, xyz: np.ndarray) -> np.ndarray:
    """True where a point is inside any hole (used to thin the point process)."""
    from .truth import first_containing_hole

    return first_containing_hole(xyz, voids.hole_xyz, voids.hole_r) >= 0


# ------------------------------------------------------------------------------------------
# Structured positions
# ------------------------------------------------------------------------------------------


@dataclass
class CapSky:
    """Everything needed to draw structured positions in one cap."""

    cap: str
    fp: Footprint
    voids: Voids
    clusters: np.ndarray
    cluster_sigma: float = 2.5
    cluster_fraction: float = 0.45


def make_clusters(rng, fp: Footprint, voids: Voids, n: int) -> np.ndarray:
    pts = sample_volume(rng, fp, 3 * n + 100, DLIML, DLIMU)
    pts = pts[~in_holes_fast(voids, pts)]
    return pts[:n]


def sample_structured(rng, sky: CapSky, n: int, keep_in_hole: float,
                      r_lo: float = DLIML, r_hi: float = DLIMU, radial_weight=None) -> np.ndarray:
    """Exactly n comoving positions: clustered + uniform, thinned inside void holes.

    ``radial_weight(r)`` (<= 1) modulates the radial density (a flux-limited population)."""
    out, have = [], 0
    if radial_weight is None:
        cw = None
    else:
        cw = radial_weight(np.linalg.norm(sky.clusters, axis=1))
        cw = cw / cw.sum()
    while have < n:
        m = int((n - have) * 1.4) + 256
        k = rng.binomial(m, sky.cluster_fraction)
        uni = sample_volume(rng, sky.fp, m - k, r_lo, r_hi, radial_weight)
        c = sky.clusters[rng.choice(len(sky.clusters), k, p=cw)]
        cl = c + rng.normal(0.0, sky.cluster_sigma, (k, 3))
        pts = np.concatenate([uni, cl])
        ok = xyz_in_volume(sky.fp, pts, r_lo, r_hi)
        pts = pts[ok]
        inh = in_holes_fast(sky.voids, pts)
        keep = ~inh | (rng.random(len(pts)) < keep_in_hole)
        pts = pts[keep]
        pts = pts[rng.permutation(len(pts))]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


# ------------------------------------------------------------------------------------------
# Luminosities
# ------------------------------------------------------------------------------------------

M_STAR, ALPHA = -20.7, -1.2
_MGRID = np.linspace(-23.5, -15.0, 4001)


def _schechter_cdf():
    x = 10 ** (0.4 * (M_STAR - _MGRID))
    phi = x ** (ALPHA + 1) * np.exp(-x)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (phi[1:] + phi[:-1]) * np.diff(_MGRID))])
    return cdf / cdf[-1]


_CDF = _schechter_cdf()


def lf_fraction(m_lo, m_hi):
    """Fraction of the luminosity function between magnitudes m_lo < m_hi."""
    return np.clip(np.interp(m_hi, _MGRID, _CDF) - np.interp(m_lo, _MGRID, _CDF), 0.0, 1.0)


def sample_mag(rng, m_lo, m_hi):
    """Absolute magnitudes from the LF truncated to [m_lo, m_hi] (arrays broadcast)."""
    m_lo, m_hi = np.broadcast_arrays(np.asarray(m_lo, float), np.asarray(m_hi, float))
    c0, c1 = np.interp(m_lo, _MGRID, _CDF), np.interp(m_hi, _MGRID, _CDF)
    u = c0 + rng.random(m_lo.shape) * (c1 - c0)
    return np.interp(u, _CDF, _MGRID)


def mag_limit(z):
    """Faintest absolute magnitude (h=1, k-corrected to z=0.1-ish) seen at r < 19.5."""
    z = np.asarray(z, dtype=float)
    dl = np.maximum(cosmology.comoving_distance(np.maximum(z, 1e-5), OMEGA_M) * (1 + z), 1e-3)
    return FLUX_LIMIT_R - (5 * np.log10(dl) + 25) - 1.2 * z


def nudge_away(x, edge, eps):
    """Move values within eps of ``edge`` to edge +- eps (keeps cuts unambiguous in float32)."""
    x = np.array(x, dtype=float)
    close = np.abs(x - edge) < eps
    x[close] = edge + np.where(x[close] >= edge, eps, -eps)
    return x


def radec_z(xyz: np.ndarray):
    ra, dec, r = cosmology.xyz_to_radec_r(xyz[:, 0], xyz[:, 1], xyz[:, 2])
    z = cosmology.z_at_distance(r, OMEGA_M)
    return ra, dec, z


def cap_of(ra):
    return formats.cap_of_ra(ra)
