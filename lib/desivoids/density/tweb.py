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

import os
from concurrent.futures import ThreadPoolExecutor
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
        """(flat index, inside the grid) of the cell holding each point (index 0 where not).

        An axis at a time: numpy's reductions over a row's three values (``all(axis=1)``) and
        ``ravel_multi_index`` of a transposed array took 3.5 s for DR1's 6.4 M galaxies. A NaN
        or infinite coordinate fails the bounds test, as it failed ``isfinite``."""
        ijk = np.floor((np.asarray(xyz, np.float64).reshape(-1, 3) - self.origin) / self.cell)
        ok = np.ones(len(ijk), bool)
        for a in range(3):
            ok &= ijk[:, a] >= 0
            ok &= ijk[:, a] < self.shape[a]
        flat = np.zeros(len(ijk), np.int64)
        i = ijk[ok].astype(np.int64)  # C order, as ravel_multi_index
        flat[ok] = (i[:, 0] * self.shape[1] + i[:, 1]) * self.shape[2] + i[:, 2]
        return flat, ok


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


#: cells per block of :func:`positive_count`: its float64 temporaries (a dozen) stay in the
#: CPU's cache, where over a slab's millions of cells every operation went to memory
COUNT_BLOCK = 1 << 14


def positive_count(t: dict[tuple[int, int], np.ndarray], shift: float,
                   block: int = COUNT_BLOCK) -> np.ndarray:
    """How many eigenvalues of each symmetric 3x3 tensor (components ``t[(i, j)]``, i <= j)
    exceed ``shift``: the positive roots of det(T - shift - x) = 0, by Descartes' rule of signs
    on the characteristic polynomial x^3 - c2 x^2 + c1 x - c0, exact since a symmetric matrix's
    roots are all real. Equal to counting numpy.linalg.eigvalsh's eigenvalues (tested), without
    a LAPACK call per cell (the 3x3 calls took 5 s of the tiny mock's 8 s).

    The coefficients are formed in float64, every product as first written and in the same
    order (the same bits), ``block`` cells at a time in a few reused arrays: a new array per
    product cost more than the arithmetic, and arrays of a whole slab, the memory traffic."""
    comps = np.broadcast_arrays(*(np.asarray(t[p]) for p in
                                  ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))))
    shape = comps[0].shape
    flat = [c.reshape(-1) for c in comps]
    n = flat[0].size
    out = np.empty(n, np.int8)
    m = max(1, min(int(block), n))
    xx, yy, zz, xy, xz, yz, c2, c1, c0, a, b = (np.empty(m) for _ in range(11))
    sg, last, nz = np.empty(m, np.int8), np.empty(m, np.int8), np.empty(m, bool)
    for s in range(0, n, m):
        e = min(s + m, n)
        k = e - s
        if k < m:  # the last block: views of its length
            xx, yy, zz, xy, xz, yz, c2, c1, c0, a, b = (v[:k] for v in
                                                        (xx, yy, zz, xy, xz, yz, c2, c1, c0,
                                                         a, b))
            sg, last, nz = sg[:k], last[:k], nz[:k]
        for buf, src in zip((xx, yy, zz, xy, xz, yz), flat):
            np.copyto(buf, src[s:e])  # float64, as np.asarray(v, np.float64)
        for d in (xx, yy, zz):
            np.subtract(d, shift, out=d)
        np.add(xx, yy, out=c2)
        c2 += zz
        np.multiply(xx, yy, out=c1)           # c1 = xx yy + xx zz + yy zz - xy^2 - xz^2 - yz^2
        for u, v, sub in ((xx, zz, False), (yy, zz, False), (xy, xy, True), (xz, xz, True),
                          (yz, yz, True)):
            np.multiply(u, v, out=a)
            (np.subtract if sub else np.add)(c1, a, out=c1)
        np.multiply(yy, zz, out=a)            # c0 = xx (yy zz - yz^2) - xy (xy zz - yz xz)
        np.subtract(a, np.multiply(yz, yz, out=b), out=a)  # + xz (xy yz - yy xz)
        np.multiply(xx, a, out=c0)
        np.multiply(xy, zz, out=a)
        np.subtract(a, np.multiply(yz, xz, out=b), out=a)
        np.multiply(xy, a, out=a)
        np.subtract(c0, a, out=c0)
        np.multiply(xy, yz, out=a)
        np.subtract(a, np.multiply(yy, xz, out=b), out=a)
        np.multiply(xz, a, out=a)
        np.add(c0, a, out=c0)
        # signs of 1, -c2, c1, -c0; a zero coefficient is skipped
        changes = out[s:e]
        changes[...] = 0
        last[...] = 1
        for c, flip in ((c2, True), (c1, False), (c0, True)):
            np.sign(c, out=a)
            np.copyto(sg, a, casting="unsafe")  # as astype(np.int8)
            if flip:
                np.negative(sg, out=sg)
            np.not_equal(sg, 0, out=nz)
            changes += nz & (sg != last)
            np.copyto(last, sg, where=nz)
    return out.reshape(shape)


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

    def over_k2(sl: slice) -> None:  # -phi_k, so that T_ij,k = k_i k_j (-phi_k)
        k2 = kx[sl] ** 2 + ky ** 2 + kz ** 2
        if sl.start == 0:
            k2[0, 0, 0] = 1.0  # the mean: no potential
        dk[sl] /= k2

    _each(over_k2, _slabs(shape[0], 8), workers)  # numpy's loops, a thread per slab
    return dk.astype(np.complex64, copy=False)


def _slabs(n: int, step: int) -> list[slice]:
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


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
    # x transforms of k_x^a phi_k (the products formed a slab per thread); the last one in
    # place of phi_k
    along_x = {}
    for a in (2, 1):
        f, prod = kx * kx if a == 2 else kx, np.empty_like(phi)
        _each(_product_into(phi, f, prod), _slabs(shape[0], 8), workers)
        along_x[a] = scipy.fft.ifft(prod, axis=0, workers=workers, overwrite_x=True)
        del prod
    along_x[0] = scipy.fft.ifft(phi, axis=0, workers=workers, overwrite_x=True)
    del phi
    pairs = [(i, j) for i in range(3) for j in range(i, 3)]
    factors = {}
    for p in pairs:  # k_y^b k_z^c as the whole-grid products k_i k_j were formed
        _, b, c = _exponents(*p)
        factors[p] = ((ky * ky if b == 2 else ky if b else np.float32(1))
                      * (kz * kz if c == 2 else kz if c else np.float32(1)))
    classes = np.full(shape, OUTSIDE_WEB, np.int8)
    # slabs in ``workers`` threads, a one-thread FFT each: the products, the selection and
    # the count are numpy's single-threaded loops (half the time), and they release the GIL;
    # ``slab_cells`` shared among the threads, so that as many cells are held as in one
    threads = _threads(workers)
    inner = 1 if threads > 1 else workers
    step = max(1, int(slab_cells) // threads // max(1, shape[1] * shape[2]))

    def slab(s: int) -> None:
        w = where[s:s + step]
        rows = np.flatnonzero(w.any(axis=(0, 2)))  # the y rows holding a survey cell
        if not len(rows):
            return
        if rows[-1] - rows[0] + 1 == len(rows):  # one run of rows (nearly always): a view
            rows = slice(rows[0], rows[-1] + 1)
        w_rows = w[:, rows]
        comp = {p: _irfft_yz(along_x[_exponents(*p)[0]][s:s + step] * factors[p], rows,
                             shape[2], inner, w_rows)
                for p in pairs}
        classes[s:s + step][w] = positive_count(comp, lambda_th)

    _each(slab, range(0, shape[0], step), workers)
    return classes


def _irfft_yz(x: np.ndarray, rows, n_last: int, workers: int,
              where: np.ndarray | None = None) -> np.ndarray:
    """``scipy.fft.irfftn(x, axes=(1, 2))[:, rows]`` (last axis ``n_last`` real points; ``rows``
    an index array or a slice), bit for bit, transforming along z only the y ``rows`` asked
    for; with ``where`` (a mask of that result's shape) only its cells, in C order. irfftn is
    pocketfft's complex transform along y, unnormalised, then its real one along z scaled by
    1 / (n_y n_z) (a float32 product of each output, as here); the rows of a slab outside the
    survey (40 % of them at DR1) are not transformed. ``x`` is overwritten."""
    y = scipy.fft.ifft(x, axis=1, norm="forward", overwrite_x=True, workers=workers)
    out = scipy.fft.irfft(y[:, rows], n=n_last, axis=2, norm="forward", workers=workers)
    if where is not None:
        out = out[where]
    # pocketfft's factor: 1 / N in long double, rounded to the transform's precision
    out *= out.dtype.type(np.longdouble(1) / np.longdouble(x.shape[1] * n_last))
    return out


#: points or cells per step of :class:`WebGrid`'s loops: temporaries of a chunk are reused by
#: malloc, where arrays of a whole grid or cap (above glibc's mmap threshold) were mapped
#: afresh for each and faulted in page by page (0.35 M page faults at DR1)
CHUNK = 1 << 20


@dataclass
class WebGrid:
    """One cap's web: the grid and the class of every cell (OUTSIDE_WEB outside the survey)."""

    cap: str
    box: Box
    classes: np.ndarray   # int8, box.shape
    inside: np.ndarray    # bool, box.shape: the cell's centre is in the survey

    def classify(self, xyz: np.ndarray, chunk: int = CHUNK) -> np.ndarray:
        """Class of the cell holding each point; OUTSIDE_WEB off the grid or outside.
        ``chunk`` points at a time (each point's class is its own)."""
        xyz = np.asarray(xyz, np.float64).reshape(-1, 3)
        out = np.full(len(xyz), OUTSIDE_WEB, np.int8)
        classes = self.classes.ravel()
        for s in range(0, len(xyz), chunk):
            flat, ok = self.box.cell_of(xyz[s:s + chunk])
            out[s:s + chunk][ok] = classes[flat[ok]]
        return out

    def counts(self, chunk: int = CHUNK) -> dict[str, int]:
        """Cells per class inside the survey. A count of each class where inside, without
        gathering the survey's cells (150 M at DR1) and widening them for a bincount (2 s),
        ``chunk`` cells at a time."""
        classes, inside = self.classes.ravel(), self.inside.ravel()
        n = np.zeros(len(WEB_CLASSES), np.int64)
        for s in range(0, len(classes), chunk):
            c, w = classes[s:s + chunk], inside[s:s + chunk]
            for i in range(len(WEB_CLASSES)):
                n[i] += np.count_nonzero((c == i) & w)
        return {name: int(n[i]) for i, name in enumerate(WEB_CLASSES)}


def survey_cells(box: Box, outside, shell: tuple[float, float] | None = None,
                 workers: int = -1, sky: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """Which cells of ``box`` have their centre in the survey (``outside(xyz) -> bool`` False).
    ``shell``: the survey's radial limits (r_min, r_max) when known: a centre outside them is
    outside without asking ``outside``, which then sees only the shell's cells (at DR1 most of
    the box is beyond the far limit or in the other hemisphere: asking for every cell took
    20 s of the NGC grid). ``sky``: the mask's (grid, cells per degree) in
    :func:`desivoids.environment.mask.cell_index`'s layout, when it has one: a centre more than
    a mask cell in RA and in Dec from every held cell is outside without asking either (half
    the shell's cells at DR1; ``outside`` decides every other). One x plane at a time: the
    grid's points are never all in memory; the planes shared among ``workers`` threads
    (scipy.fft's convention; numpy's ufuncs release the GIL), each plane's answer the same
    whichever thread computes it."""
    gx, gy, gz = (box.centres(a) for a in range(3))
    inside = np.zeros(box.shape, bool)
    r2_yz = gy[:, None] ** 2 + gz[None, :] ** 2
    window = None if sky is None else _sin_dec_window(*sky)

    def plane(i: int) -> None:
        x = gx[i]
        # the (x, y) columns that may hold a survey cell, the others' cells skipped (a third of
        # NGC's columns and half of SGC's at DR1: 3.0 -> 2.6 CPU s for both caps): those beyond
        # the far limit (a cell's x^2 + y^2 + z^2 is rounded from no less), and with a mask
        # grid those whose RA cell holds no Dec (every cell fails its window test)
        keep = np.ones(len(gy), bool)
        if shell is not None:
            keep &= gy ** 2 + x * x <= (shell[1] * (1 + 1e-9)) ** 2
        if window is not None:  # the RA cell of each (x, y) column and its Dec window
            n = sky[1]
            ra = np.mod(np.degrees(np.arctan2(gy, x)), 360.0)
            b = np.minimum((ra * n).astype(np.int64), 360 * n - 1)
            keep &= window[0][b] <= window[1][b]
        ys = np.flatnonzero(keep)
        if len(ys) == 0:
            return
        r2 = r2_yz[ys] + x * x
        if shell is None:
            cand = np.ones(r2.shape, bool)
        else:  # widened by 1e-9: ``outside`` alone decides at the limits
            cand = (r2 >= (shell[0] * (1 - 1e-9)) ** 2) & (r2 <= (shell[1] * (1 + 1e-9)) ** 2)
        if window is not None:
            b = b[ys]
            with np.errstate(invalid="ignore", divide="ignore"):
                s = gz[None, :] / np.sqrt(r2)  # sin(Dec); NaN at the origin: outside
            cand &= (s >= window[0][b, None]) & (s <= window[1][b, None])
        ky, jz = np.nonzero(cand)  # ky: a row of the kept columns, ys[ky] its y index
        if len(ky) == 0:
            return
        if window is not None and shell is not None:
            # surely inside: strictly between the limits, and the mask cell of its direction
            # and the eight around it all held (``outside``'s own rounding can move a
            # direction by a cell at most); ``outside`` decides the others
            dec = np.degrees(np.arcsin(np.clip(s[ky, jz], -1.0, 1.0)))
            row = np.clip(np.trunc(n * dec).astype(np.int64) + 90 * n, 0, 180 * n - 1)
            rr = r2[ky, jz]
            sure = (core[b[ky], row] & (rr > 0) & (rr > (shell[0] * (1 + 1e-9)) ** 2)
                    & (rr < (shell[1] * (1 - 1e-9)) ** 2))
            inside[i, ys[ky[sure]], jz[sure]] = True
            ky, jz = ky[~sure], jz[~sure]
        jy = ys[ky]
        px = np.column_stack([np.full(len(jy), x), gy[jy], gz[jz]])
        inside[i, jy, jz] = ~np.asarray(outside(px), bool)

    core = None if sky is None else _held_around(sky[0])
    _each(plane, range(len(gx)), workers)
    return inside


def _held_around(grid: np.ndarray) -> np.ndarray:
    """Cells of the mask ``grid`` (RA, Dec) held with their eight neighbours (RA wraps, the
    Dec rows end at the poles: a pole row's missing neighbours count as held there, where
    ``cell_index`` clips)."""
    g = np.asarray(grid, bool)
    out = g.copy()
    for da in (-1, 0, 1):
        shifted = np.roll(g, da, axis=0)
        for dd in (-1, 1):
            nb = np.empty_like(shifted)
            if dd == 1:
                nb[:, :-1], nb[:, -1] = shifted[:, 1:], shifted[:, -1]
            else:
                nb[:, 1:], nb[:, 0] = shifted[:, :-1], shifted[:, 0]
            out &= nb
        out &= shifted
    return out


def _sin_dec_window(grid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per RA cell of the mask ``grid`` (360 n, 180 n): the sines of the lowest and highest
    Dec held in it or its two neighbours, widened by a cell (lo > hi where none is held)."""
    rows = np.arange(grid.shape[1])
    first = np.where(grid, rows, grid.shape[1]).min(axis=1)
    last = np.where(grid, rows, -1).max(axis=1)
    first = np.minimum(np.minimum(first, np.roll(first, 1)), np.roll(first, -1))
    last = np.maximum(np.maximum(last, np.roll(last, 1)), np.roll(last, -1))
    m_lo, m_hi = first - 90 * n, last - 90 * n  # a row's Dec span as cell_index truncates
    dec_lo = np.where(m_lo > 0, m_lo, m_lo - 1) / n - 1.0 / n
    dec_hi = np.where(m_hi >= 0, m_hi + 1, m_hi) / n + 1.0 / n
    held = last >= 0
    lo = np.where(held, np.sin(np.radians(np.clip(dec_lo, -90, 90))), 2.0)
    hi = np.where(held, np.sin(np.radians(np.clip(dec_hi, -90, 90))), -2.0)
    return lo, hi


def _threads(workers: int) -> int:
    """Threads for ``workers`` as scipy.fft counts them (-1: every CPU, -2: all but one)."""
    return max(1, int(workers) if workers > 0 else (os.cpu_count() or 1) + 1 + int(workers))


def _product_into(a: np.ndarray, b: np.ndarray, out: np.ndarray):
    """A slab's ``out[sl] = a[sl] * b[sl]`` (b broadcast), for :func:`_each`."""
    return lambda sl: np.multiply(a[sl], b[sl], out=out[sl])


def _each(task, items, workers: int) -> None:
    """``task(item)`` for every item, in ``workers`` threads (the first error raised)."""
    n = _threads(workers)
    if n == 1:
        for it in items:
            task(it)
        return
    with ThreadPoolExecutor(n) as pool:
        for _ in pool.map(task, items):
            pass


def web_grid(cap: str, tracer_xyz: np.ndarray, outside, lo, hi, cell: float, smooth: float,
             lambda_th: float, workers: int = -1,
             shell: tuple[float, float] | None = None, slab_cells: int = SLAB_CELLS,
             sky: tuple[np.ndarray, int] | None = None) -> WebGrid:
    """The web of one cap: tracers at ``tracer_xyz``; ``outside(xyz) -> bool`` is the survey
    test (a Footprint's ``outside``); the survey lies within the corners ``lo``, ``hi`` and,
    when ``shell`` is given, between those comoving distances (:func:`survey_cells`)."""
    box = Box.around(lo, hi, cell, pad=3 * smooth + 2 * cell)
    inside = survey_cells(box, outside, shell, workers, sky)
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
