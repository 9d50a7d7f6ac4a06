"""Equal-area HEALPix patches per cap, and the delete-one-patch jackknife.

Why: galaxies in one void, and voids in one region of sky, are correlated, so binomial errors
that treat galaxies as independent are too small. Deleting one patch of sky at a time, with
patches much larger than a void, keeps the correlated galaxies together and measures the
scatter that large-scale structure actually produces (Shao & Tu 1995 for the delete-a-group
jackknife; Norberg et al. 2009 for its use on sky patches).

Patches: the sky is pixelised with HEALPix at a fine ``nside`` (astropy_healpix; equal-area
pixels), and a cap's occupied pixels are cut into K groups of equal numbers of pixels (+-1), so
the patches have equal area up to one pixel and the partly filled pixels at the footprint's edge.
Two orders of the pixels before the cut:

- ``"stripes"`` (default): declination stripes (as many as makes the patches roughly square),
  each holding its share of pixels and sorted by RA. Patches are compact boxes.
- ``"nested"``: the nested pixel index. Runs of nested indices follow a Z-order curve inside each
  of the 12 base pixels but jump between base pixels, so a run can fall in two distant pieces of
  sky (tens of degrees apart on a mock cap): kept for comparison, not the default.

NGC and SGC are cut separately, with distinct patch ids (NGC first). Compute the patches once, on
the whole galaxy table, so every algorithm, sample and definition is jackknifed over the same
patches; for "both caps together" pass the pooled table, whose patches are then both caps'.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..formats import CAPS, cap_of_ra


@dataclass(frozen=True)
class Patches:
    patch: np.ndarray      # int64 patch id per input row
    cap: np.ndarray        # cap per input row
    table: pd.DataFrame    # patch, cap, n_pixels, area_deg2, n_objects
    nside: int
    scheme: str

    @property
    def pixel_area_deg2(self) -> float:
        import astropy.units as u
        from astropy_healpix import HEALPix

        return float(HEALPix(nside=self.nside, order="nested").pixel_area.to_value(u.deg ** 2))


def _stripe_order(hp, pixels: np.ndarray, k: int) -> list[tuple[np.ndarray, int]]:
    """Cut a cap's pixels into declination stripes, each sorted by RA, with a patch quota each.

    The number of stripes follows the cap's aspect ratio so that patches come out roughly
    square; stripe s receives k_s patches and k_s / k of the pixels (cut in order of dec), so
    every patch holds about len(pixels) / k pixels. RA is unwrapped about the cap's circular
    mean, so the SGC (which straddles RA = 0) is one continuous range.
    """
    import astropy.units as u

    lon, lat = hp.healpix_to_lonlat(pixels)
    lon = lon.to_value(u.rad)
    lat = lat.to_value(u.rad)
    lon0 = math.atan2(np.sin(lon).mean(), np.cos(lon).mean())
    x = (lon - lon0 + math.pi) % (2 * math.pi) - math.pi          # RA offset, in (-pi, pi]
    width = np.ptp(x) * math.cos(float(np.median(lat))) + 1e-12
    height = np.ptp(lat) + 1e-12
    n_stripes = int(np.clip(round(math.sqrt(k * height / width)), 1, k))
    quota = np.full(n_stripes, k // n_stripes)
    quota[: k % n_stripes] += 1
    by_dec = np.lexsort((x, lat))
    cuts = np.rint(np.cumsum(quota)[:-1] / k * pixels.size).astype(np.int64)
    out = []
    for stripe, k_s in zip(np.split(by_dec, cuts), quota):
        out.append((stripe[np.lexsort((lat[stripe], x[stripe]))], int(k_s)))
    return out


def healpix_patches(ra, dec, n_patches: int | Mapping[str, int], *, cap=None,
                    nside: int = 64, scheme: str = "stripes") -> Patches:
    """Assign each (ra, dec) in degrees to one of K equal-area patches of its cap.

    ``n_patches``: K for every cap, or a mapping cap -> K. ``cap``: per-row cap labels (default
    :func:`desivoids.formats.cap_of_ra`: NGC where 83 < RA < 304 deg). ``nside``: HEALPix
    resolution of the building blocks (64: 0.84 deg^2 pixels, fine enough for K ~ 100 per cap on
    DESI DR1's ~ 7,500 + 2,500 deg^2). ``scheme``: "stripes" or "nested" (module docstring).
    A cap with fewer occupied pixels than K is an error. "Occupied" means holding a row of the
    input, so pass the whole galaxy table (not one algorithm's void sample).
    """
    if scheme not in ("stripes", "nested"):
        raise ValueError(f"scheme must be 'stripes' or 'nested', not {scheme!r}")
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if ra.shape != dec.shape or ra.ndim != 1:
        raise ValueError("ra and dec must be 1-D arrays of the same length")
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise ValueError("ra and dec must be finite")
    if np.any(np.abs(dec) > 90):
        raise ValueError("dec must lie in [-90, 90] degrees")
    caps = cap_of_ra(ra) if cap is None else np.asarray(cap).astype(str)
    if caps.shape != ra.shape:
        raise ValueError("cap must have one label per row")
    import astropy.units as u  # here, not at the top: the quenched thresholds' importers skip it
    from astropy_healpix import HEALPix

    hp = HEALPix(nside=nside, order="nested")
    pix = np.asarray(hp.lonlat_to_healpix((ra % 360.0) * u.deg, dec * u.deg), dtype=np.int64)
    area = float(hp.pixel_area.to_value(u.deg ** 2))
    labels = set(np.unique(caps))  # once: a set of 700,000 strings per cap was 0.2 s
    present = [c for c in CAPS if c in labels] + sorted(labels - set(CAPS))
    patch = np.full(ra.size, -1, dtype=np.int64)
    rows = []
    offset = 0
    for c in present:
        k = int(n_patches[c] if isinstance(n_patches, Mapping) else n_patches)
        sel = caps == c
        occupied = np.unique(pix[sel])
        if k < 1 or occupied.size < k:
            raise ValueError(f"{c}: cannot cut {occupied.size} occupied nside={nside} pixels "
                             f"into {k} patches (raise nside or lower K)")
        blocks = (_stripe_order(hp, occupied, k) if scheme == "stripes"
                  else [(np.arange(occupied.size), k)])       # nested: sorted by pixel index
        run = np.empty(occupied.size, dtype=np.int64)
        j = 0
        for block, k_block in blocks:
            for part in np.array_split(block, k_block):
                run[part] = j
                rows.append({"patch": offset + j, "cap": c, "n_pixels": int(part.size),
                             "area_deg2": part.size * area})
                j += 1
        patch[sel] = offset + run[np.searchsorted(occupied, pix[sel])]
        offset += k
    table = pd.DataFrame(rows)
    table.insert(4, "n_objects", np.bincount(patch, minlength=offset)[table["patch"]])
    return Patches(patch=patch, cap=caps, table=table, nside=nside, scheme=scheme)


@dataclass(frozen=True)
class JackknifeResult:
    """Delete-one-patch jackknife. Scalar statistics give floats; a statistic returning a
    mapping or Series gives Series (estimate, se, lo, hi) and a DataFrame of replicates."""

    estimate: object       # the statistic on the full sample (not bias-corrected)
    se: object             # sqrt((K-1)/K * sum_i (theta_i - mean)^2)
    lo: object             # estimate - t se, t the (1 - alpha/2) quantile of t with ``dof`` dof
    hi: object
    bias: object           # (K-1) (mean - estimate): reported, not subtracted
    replicates: object     # theta_i, indexed by the deleted patch
    n_patches: int
    alpha: float
    reason: str            # "" when usable; else why se is NaN
    dof: float = math.nan  # degrees of freedom of the t quantile (K - 1 unless given)


def _as_values(x):
    if isinstance(x, (Mapping, pd.Series)):
        return pd.Series(x, dtype=np.float64)
    return float(x)


def jackknife(data: pd.DataFrame, statistic: Callable[[pd.DataFrame], object], *,
              patch: str = "patch", alpha: float = 0.05,
              dof: float | None = None) -> JackknifeResult:
    """Jackknife ``statistic(data)`` by deleting one patch at a time.

    ``statistic``: data frame -> float (or a mapping name -> float). Variance
    (K-1)/K sum_i (theta_i - theta_bar)^2 over the K patches present in ``data``; the interval
    is estimate +- t se, t the (1 - alpha/2) quantile of Student's t with K - 1 degrees of
    freedom, or ``dof`` when given (clipped to [1, K - 1]; e.g. :func:`satterthwaite_dof` when
    the patches carry very unequal shares of the information). A replicate that is not finite
    makes that statistic's se NaN, with the reason, instead of silently dropping the patch.
    """
    labels = data[patch]
    if labels.isna().any():
        raise ValueError(f"column {patch!r} has missing patch labels")
    codes, uniques = pd.factorize(labels, sort=True)
    estimate = _as_values(statistic(data))
    reps = [_as_values(statistic(data[codes != i])) for i in range(len(uniques))]
    index = pd.Index(uniques, name=patch)
    if isinstance(estimate, pd.Series):
        replicates = pd.DataFrame(reps, index=index).reindex(columns=estimate.index)
    else:
        replicates = pd.Series(reps, index=index, dtype=np.float64)
    return from_replicates(estimate, replicates, alpha=alpha, dof=dof)


def from_replicates(estimate, replicates, *, alpha: float = 0.05,
                    dof: float | None = None) -> JackknifeResult:
    """The jackknife of :func:`jackknife` from replicates computed by the caller.

    ``estimate``: float, or a Series (one value per statistic); ``replicates``: the
    delete-one-patch values, a Series (scalar) or a DataFrame with the estimate's index as
    columns, indexed by the deleted patch. Why: a statistic of additive per-patch sums (counts)
    gets every replicate at once as the total minus each patch's share, without recomputing it
    K times (:func:`desivoids.systematics.compare.compare_void_wall`).
    """
    k = len(replicates)
    # Student's t with K - 1 degrees of freedom: the jackknife variance has K - 1 (with the
    # normal quantile, 15 patches covered a null effect in 80% of 20 mock skies, not 95%)
    df = float(k - 1) if dof is None or not np.isfinite(dof) else float(min(dof, k - 1))
    df = max(df, 1.0)
    from scipy import stats

    z = float(stats.t.isf(alpha / 2, df=df))
    values = replicates.to_numpy()
    if not isinstance(estimate, pd.Series):
        values = values[:, None]
    reason = ""
    if k < 2:
        se = np.full(values.shape[1], np.nan)
        mean = se.copy()
        reason = f"{k} patch(es): the jackknife needs at least 2"
    else:
        with np.errstate(invalid="ignore"):  # an infinite replicate (log 0): se is NaN, said below
            mean = values.mean(axis=0)
            se = np.sqrt((k - 1) / k * ((values - mean) ** 2).sum(axis=0))
        bad = ~np.all(np.isfinite(values), axis=0)
        if bad.any():
            se[bad] = np.nan
            reason = f"non-finite replicates in {int(bad.sum())} statistic(s)"
    with np.errstate(invalid="ignore"):
        if isinstance(estimate, pd.Series):
            se = pd.Series(se, index=estimate.index)
            bias = pd.Series((k - 1) * (mean - estimate.to_numpy()), index=estimate.index)
        else:
            se = float(se[0])
            bias = float((k - 1) * (mean[0] - estimate)) if k >= 2 else math.nan
    return JackknifeResult(estimate=estimate, se=se, lo=estimate - z * se, hi=estimate + z * se,
                           bias=bias, replicates=replicates, n_patches=k, alpha=alpha,
                           reason=reason, dof=df)


def satterthwaite_dof(a) -> float:
    """Effective degrees of freedom of the delete-one-patch jackknife variance.

    ``a``: per patch, the variance that patch contributes to the statistic under a working model
    (independent galaxies). The jackknife variance is, to first order, the centred sum of
    squares of the K patch contributions U_i (Var U_i = a_i), a quadratic form U' M U with
    M = I - J/K; Satterthwaite's (1946) approximation gives it tr(MA)^2 / tr(MAMA) degrees of
    freedom (A = diag a), which is K - 1 for equal a and falls towards 1 as one patch dominates
    (Bell & McCaffrey 2002; Imbens & Kolesar 2016 for cluster-robust errors with few or
    unequal clusters). Why: when the void galaxies are few and sit in a few voids, most patches hold
    no void galaxy and one or two patches carry most of the variance; t with K - 1 dof then
    undercovers (interior voids on tiny null mocks: 69/80 instead of 76/80).
    Returns NaN when a is empty or all zero (the caller falls back to K - 1).
    """
    a = np.asarray(a, dtype=np.float64)
    k = a.size
    s1, s2 = float(a.sum()), float((a * a).sum())
    if k < 2 or not (s1 > 0 and np.isfinite(s1)):
        return math.nan
    tr = s1 * (1 - 1 / k)
    tr2 = s2 * (1 - 2 / k) + s1 * s1 / (k * k)
    return tr * tr / tr2 if tr2 > 0 else math.nan
