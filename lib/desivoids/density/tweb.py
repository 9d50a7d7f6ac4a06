"""The cosmic web from the tidal tensor of the tracer density (T-Web, Forero-Romero et al. 2009).

The tracers are deposited on a comoving grid over the cap's volume by cloud-in-cell, as the
density contrast delta = rho / rho_bar - 1 with rho_bar the tracers over the cells inside the
survey; the cells outside the survey (mask or radial limits, by their centre) are set to the
mean (delta = 0), and the box is padded with mean cells so that the FFT's periodic images do not
reach the survey. The field is smoothed with a Gaussian, the potential solves
nabla^2 phi = delta by FFT, and the tidal tensor T_ij = d_i d_j phi, in Fourier space
k_i k_j delta_k / k^2, is diagonalised per cell. The number of eigenvalues above ``lambda_th``
gives the class: 0 void, 1 sheet, 2 filament, 3 knot.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage

__all__ = ["WEB_CLASSES", "OUTSIDE_WEB", "SLAB_CELLS", "WebGrid", "Box", "cic_density",
           "tidal_classes", "potential", "potential_classes", "positive_count", "survey_cells",
           "web_grid"]

WEB_CLASSES = ("void", "sheet", "filament", "knot")
#: class of a point outside the grid or in a cell outside the survey
OUTSIDE_WEB = -1


@dataclass(frozen=True)
class Box:
    """A cubic-cell grid: the corner of cell (0, 0, 0), the cell size and the shape."""

    origin: np.ndarray
    cell: float
    shape: tuple[int, int, int]

    @classmethod
    def around(cls, lo, hi, cell: float, pad: float) -> "Box":
        lo = np.asarray(lo, np.float64) - pad
        hi = np.asarray(hi, np.float64) + pad
        # sizes FFT-friendly (2, 3, 5 ... factors): a prime side makes the FFT 5x slower
        shape = tuple(scipy.fft.next_fast_len(int(n), real=True)
                      for n in np.maximum(np.ceil((hi - lo) / cell), 1).astype(int))
        return cls(lo, float(cell), shape)

    def centres(self, axis: int) -> np.ndarray:
        return self.origin[axis] + (np.arange(self.shape[axis]) + 0.5) * self.cell

    def cell_of(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat index, inside the grid) of the cell holding each point."""
        ijk = np.floor((np.asarray(xyz, np.float64).reshape(-1, 3) - self.origin) / self.cell)
        ok = np.all(np.isfinite(ijk), axis=1) & np.all((ijk >= 0) & (ijk < self.shape), axis=1)
        ijk = np.where(ok[:, None], ijk, 0).astype(np.int64)
        return np.ravel_multi_index(ijk.T, self.shape), ok


def cic_density(xyz: np.ndarray, box: Box, chunk: int = 1 << 20) -> np.ndarray:
    """Cloud-in-cell counts on ``box`` (float32; mass of points out of the grid is dropped):
    each point shares its unit mass among the 8 cells whose centres surround it, linearly.
    Accumulated in place (``np.add.at``), a chunk of points at a time: no float64 grid (1.2 GB
    at DR1's 150 M cells) and no per-corner index lists of every point."""
    xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
    shape = np.asarray(box.shape)
    out = np.zeros(int(np.prod(shape)), np.float32)
    for s in range(0, len(xyz), chunk):
        u = (xyz[s:s + chunk] - box.origin) / box.cell - 0.5
        base = np.floor(u).astype(np.int64)
        frac = u - base
        for corner in np.ndindex(2, 2, 2):
            c = np.asarray(corner)
            idx = base + c
            w = np.prod(np.where(c == 1, frac, 1.0 - frac), axis=1)
            ok = np.all((idx >= 0) & (idx < shape), axis=1)
            np.add.at(out, np.ravel_multi_index(idx[ok].T, box.shape), w[ok].astype(np.float32))
    return out.reshape(box.shape)


def positive_count(t: dict[tuple[int, int], np.ndarray], shift: float) -> np.ndarray:
    """How many eigenvalues of each symmetric 3x3 tensor (components ``t[(i, j)]``, i <= j)
    exceed ``shift``: the positive roots of det(T - shift - x) = 0, by Descartes' rule of signs
    on the characteristic polynomial x^3 - c2 x^2 + c1 x - c0, exact since a symmetric matrix's
    roots are all real. Equal to counting numpy.linalg.eigvalsh's eigenvalues (tested), without
    a LAPACK call per cell (the 3x3 calls took 5 s of the tiny mock's 8 s)."""
    a = {p: v.astype(np.float64) - (shift if p[0] == p[1] else 0.0) for p, v in t.items()}
    xx, yy, zz, xy, xz, yz = (a[(0, 0)], a[(1, 1)], a[(2, 2)], a[(0, 1)], a[(0, 2)], a[(1, 2)])
    c2 = xx + yy + zz
    c1 = xx * yy + xx * zz + yy * zz - xy ** 2 - xz ** 2 - yz ** 2
    c0 = xx * (yy * zz - yz ** 2) - xy * (xy * zz - yz * xz) + xz * (xy * yz - yy * xz)
    signs = [np.ones_like(c2), -np.sign(c2), np.sign(c1), -np.sign(c0)]
    changes = np.zeros(c2.shape, np.int8)
    last = signs[0]
    for s in signs[1:]:  # zero coefficients are skipped
        changes += ((s != 0) & (s != last)).astype(np.int8)
        last = np.where(s != 0, s, last)
    return changes


#: cells per slab of x planes whose six tidal components are held at once (float64
#: temporaries of the Descartes count included, about 100 bytes a cell)
SLAB_CELLS = 1 << 20


def _exponents(i: int, j: int) -> tuple[int, int, int]:
    """Powers of (k_x, k_y, k_z) in the Fourier factor k_i k_j of the component T_ij."""
    e = [0, 0, 0]
    e[i] += 1
    e[j] += 1
    return tuple(e)


def tidal_classes(delta: np.ndarray, cell: float, smooth: float, lambda_th: float,
                  workers: int = -1, where: np.ndarray | None = None,
                  slab_cells: int = SLAB_CELLS) -> np.ndarray:
    """Class per cell (int8 0..3: the number of tidal eigenvalues above ``lambda_th``) of the
    tidal tensor of ``delta`` smoothed by a Gaussian of ``smooth`` (Mpc/h; 0: no smoothing).
    ``where``: the cells to classify (the others get OUTSIDE_WEB).
    :func:`potential` then :func:`potential_classes`."""
    return potential_classes(potential(delta, cell, smooth, workers), cell, lambda_th,
                             workers, where, slab_cells, n_last=np.shape(delta)[-1])


def potential(delta: np.ndarray, cell: float, smooth: float, workers: int = -1) -> np.ndarray:
    """-phi_k (complex64 half-spectrum, ``delta.shape[-1]`` real points along the last axis):
    the smoothed contrast's spectrum over k^2, in place once transformed (one spectrum held)."""
    shape = delta.shape
    dk = scipy.fft.rfftn(np.asarray(delta, np.float32), workers=workers)
    if smooth > 0:  # in place: the C filter writes each element where it reads it
        ndimage.fourier_gaussian(dk, sigma=smooth / cell, n=shape[-1], axis=-1, output=dk)
    kx, ky, kz = _wavenumbers(shape, cell)
    k2 = kx ** 2 + ky ** 2 + kz ** 2
    k2[0, 0, 0] = 1.0  # the mean: no potential
    dk /= k2  # -phi_k, so that T_ij,k = k_i k_j (-phi_k)
    return dk.astype(np.complex64, copy=False)


def _wavenumbers(shape, cell: float):
    ks = [2 * np.pi * scipy.fft.fftfreq(n, d=cell) for n in shape[:2]]
    ks.append(2 * np.pi * scipy.fft.rfftfreq(shape[2], d=cell))
    return tuple(k.astype(np.float32) for k in np.meshgrid(*ks, indexing="ij", sparse=True))


def potential_classes(phi: np.ndarray, cell: float, lambda_th: float, workers: int = -1,
                      where: np.ndarray | None = None, slab_cells: int = SLAB_CELLS,
                      n_last: int | None = None) -> np.ndarray:
    """The classes of :func:`tidal_classes` from :func:`potential`'s spectrum ``phi``, which is
    overwritten (``n_last``: the real grid's last side, default even: 2 (m - 1)).

    The six components are never all in memory over the grid: the inverse FFT is split, first
    along x for the three x-factors k_x^a (phi_k), a = 0, 1, 2 (three half-spectra, the last
    in place of phi_k), then per slab of x planes along y and z with the factor k_y^b k_z^c, a
    slab's six components classified before the next slab. Peak memory is three half-spectra
    (three float32 grids) plus a slab, where holding the six components of the survey's cells
    cost six floats a cell on top of the transforms (3.6 GB at DR1's 150 M cells). The same
    classes as the whole-grid inverse FFT up to float32 rounding (the factors are applied in
    another order; tested)."""
    shape = (*phi.shape[:2], n_last if n_last is not None else 2 * (phi.shape[2] - 1))
    where = np.ones(shape, bool) if where is None else np.asarray(where, bool)
    kx, ky, kz = _wavenumbers(shape, cell)
    # x transforms of k_x^a phi_k; the last one in place of phi_k
    along_x = {a: scipy.fft.ifft(phi * (kx * kx if a == 2 else kx), axis=0, workers=workers,
                                 overwrite_x=True) for a in (2, 1)}
    along_x[0] = scipy.fft.ifft(phi, axis=0, workers=workers, overwrite_x=True)
    del phi
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    factors = {}
    for p in pairs:  # k_y^b k_z^c as the whole-grid products k_i k_j were formed
        _, b, c = _exponents(*p)
        factors[p] = ((ky * ky if b == 2 else ky if b else np.float32(1))
                      * (kz * kz if c == 2 else kz if c else np.float32(1)))
    classes = np.full(shape, OUTSIDE_WEB, np.int8)
    step = max(1, int(slab_cells) // max(1, shape[1] * shape[2]))
    for s in range(0, shape[0], step):
        w = where[s:s + step]
        if not w.any():
            continue
        comp = {p: scipy.fft.irfftn(along_x[_exponents(*p)[0]][s:s + step] * factors[p],
                                    s=shape[1:], axes=(1, 2), workers=workers)[w]
                for p in pairs}
        classes[s:s + step][w] = positive_count(comp, lambda_th)
    return classes


@dataclass
class WebGrid:
    """One cap's web: the grid and the class of every cell (OUTSIDE_WEB outside the survey)."""

    cap: str
    box: Box
    classes: np.ndarray   # int8, box.shape
    inside: np.ndarray    # bool, box.shape: the cell's centre is in the survey

    def classify(self, xyz: np.ndarray) -> np.ndarray:
        """Class of the cell holding each point; OUTSIDE_WEB off the grid or outside."""
        flat, ok = self.box.cell_of(xyz)
        out = np.full(len(flat), OUTSIDE_WEB, np.int8)
        out[ok] = self.classes.ravel()[flat[ok]]
        return out

    def counts(self) -> dict[str, int]:
        """Cells per class inside the survey."""
        n = np.bincount(self.classes[self.inside], minlength=4)
        return {name: int(n[i]) for i, name in enumerate(WEB_CLASSES)}


def survey_cells(box: Box, outside, shell: tuple[float, float] | None = None) -> np.ndarray:
    """Which cells of ``box`` have their centre in the survey (``outside(xyz) -> bool`` False).
    ``shell``: the survey's radial limits (r_min, r_max) when known: a centre outside them is
    outside without asking ``outside``, which then sees only the shell's cells (at DR1 most of
    the box is beyond the far limit or in the other hemisphere: asking for every cell took
    20 s of the NGC grid). One x plane at a time: the grid's points are never all in memory."""
    gx, gy, gz = (box.centres(a) for a in range(3))
    inside = np.zeros(box.shape, bool)
    r2_yz = gy[:, None] ** 2 + gz[None, :] ** 2
    for i, x in enumerate(gx):
        if shell is None:
            cand = np.ones(r2_yz.shape, bool)
        else:
            r2 = r2_yz + x * x  # widened by 1e-9: ``outside`` alone decides at the limits
            cand = (r2 >= (shell[0] * (1 - 1e-9)) ** 2) & (r2 <= (shell[1] * (1 + 1e-9)) ** 2)
        jy, jz = np.nonzero(cand)
        if len(jy) == 0:
            continue
        px = np.column_stack([np.full(len(jy), x), gy[jy], gz[jz]])
        inside[i, jy, jz] = ~np.asarray(outside(px), bool)
    return inside


def web_grid(cap: str, tracer_xyz: np.ndarray, outside, lo, hi, cell: float, smooth: float,
             lambda_th: float, workers: int = -1,
             shell: tuple[float, float] | None = None, slab_cells: int = SLAB_CELLS) -> WebGrid:
    """The web of one cap: tracers at ``tracer_xyz``; ``outside(xyz) -> bool`` is the survey
    test (a Footprint's ``outside``); the survey lies within the corners ``lo``, ``hi`` and,
    when ``shell`` is given, between those comoving distances (:func:`survey_cells`)."""
    box = Box.around(lo, hi, cell, pad=3 * smooth + 2 * cell)
    inside = survey_cells(box, outside, shell)
    # the contrast is a temporary of potential's call: freed once transformed
    phi = potential(_contrast(cic_density(tracer_xyz, box), inside), cell, smooth, workers)
    classes = potential_classes(phi, cell, lambda_th, workers, where=inside,
                                slab_cells=slab_cells, n_last=box.shape[2])
    del phi
    return WebGrid(cap, box, classes, inside)


def _contrast(counts: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """delta = counts / mean - 1 in the survey's cells (their mean), 0 (the mean) elsewhere;
    in place of ``counts`` (float32), so that the grid is held once."""
    n_in = int(inside.sum())
    mean = float(np.sum(counts, where=inside, dtype=np.float64)) / n_in if n_in else 0.0
    delta = np.asarray(counts, np.float32)
    if mean > 0:
        delta /= np.float32(mean)
        delta -= np.float32(1.0)
        np.multiply(delta, inside, out=delta)
    else:
        delta[...] = 0.0
    return delta
