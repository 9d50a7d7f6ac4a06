"""The three quenched definitions of science.md, on the convert stage's ``galaxies`` columns.

Every row ends in exactly one of four states, and each is counted:

- ``failed_fit``: FastSpecFit's fit failed (LOGMSTAR == 0 and SFR == 0 together: every template
  coefficient was zero and the physical quantities were never computed). Cut from every
  definition, never quenched.
- ``undefined``: an input of the definition is non-finite (NaN, inf, null) or, for sSFR, SFR < 0.
  Neither quenched nor star-forming: dropped from the fraction and counted.
- ``quenched`` / not quenched: the definition's verdict.

Definitions (units: sSFR in 1/yr, h = 1, Chabrier IMF):

- ``ssfr``: log10(SFR / 10^LOGMSTAR) < -11. SFR == 0 is quenched (its sSFR is 0, below any
  threshold); it is neither missing nor log10(1e-15).
- ``dn4000``: DN4000 > 1.6.
- ``ur``: ABSMAG01_SDSS_U - ABSMAG01_SDSS_R >= 2.22.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SSFR_LIMIT = -11.0    # log10(1/yr): quenched when log sSFR < SSFR_LIMIT
DN4000_LIMIT = 1.6    # quenched when DN4000 > DN4000_LIMIT
UR_LIMIT = 2.22       # mag: quenched when u - r >= UR_LIMIT

#: definition name -> (input columns, one-line rule)
DEFINITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ssfr": (("logmstar", "sfr"), "log10(SFR/10^LOGMSTAR) < -11 (SFR == 0 quenched)"),
    "dn4000": (("dn4000",), "DN4000 > 1.6"),
    "ur": (("absmag01_sdss_u", "absmag01_sdss_r"), "ABSMAG01_SDSS_U - ABSMAG01_SDSS_R >= 2.22"),
}


def _column(galaxies, name: str) -> np.ndarray:
    """A column as float64 with NaN for null (pandas NA, None, pyarrow null)."""
    try:
        values = galaxies[name]
    except (KeyError, IndexError, ValueError) as exc:
        raise KeyError(f"galaxies table has no column {name!r}") from exc
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def failed_fit(galaxies) -> np.ndarray:
    """Rows whose FastSpecFit fit failed: LOGMSTAR == 0 and SFR == 0 exactly (science.md).

    Why: a failed fit leaves the physical quantities at 0, and SFR == 0 would otherwise make it a
    quenched galaxy.
    """
    return (_column(galaxies, "logmstar") == 0.0) & (_column(galaxies, "sfr") == 0.0)


@dataclass(frozen=True)
class Quenched:
    """One definition's verdict: the four states are disjoint and cover every row.

    ``quenched`` is False wherever ``defined`` is False; use ``defined`` as the row mask of any
    fraction (``quenched[defined]``).
    """

    definition: str
    quenched: np.ndarray    # bool, True only where defined
    defined: np.ndarray     # bool: not a failed fit and the inputs are finite
    failed_fit: np.ndarray  # bool
    undefined: np.ndarray   # bool: not a failed fit, but an input is non-finite (or SFR < 0)

    def counts(self) -> dict[str, int]:
        """n_rows = n_failed_fit + n_undefined + n_quenched + n_not_quenched."""
        q = int(self.quenched.sum())
        d = int(self.defined.sum())
        return {"definition": self.definition, "n_rows": int(self.defined.size),
                "n_failed_fit": int(self.failed_fit.sum()),
                "n_undefined": int(self.undefined.sum()),
                "n_defined": d, "n_quenched": q, "n_not_quenched": d - q}

    def as_series(self, index=None) -> pd.Series:
        """Nullable boolean (pandas "boolean"): NA for failed fits and undefined rows."""
        arr = pd.array(self.quenched, dtype="boolean")
        arr[~self.defined] = pd.NA
        return pd.Series(arr, index=index, name=f"quenched_{self.definition}")


def quenched(galaxies, definition: str) -> Quenched:
    """Apply one definition (``"ssfr"``, ``"dn4000"`` or ``"ur"``) to a table of galaxies.

    ``galaxies``: a DataFrame (or mapping of arrays) with the convert stage's lower-case columns;
    ``logmstar`` and ``sfr`` are always read, to cut failed fits.
    """
    if definition not in DEFINITIONS:
        raise ValueError(f"unknown quenched definition {definition!r}; "
                         f"expected one of {sorted(DEFINITIONS)}")
    failed = failed_fit(galaxies)
    with np.errstate(divide="ignore", invalid="ignore"):
        if definition == "ssfr":
            logm = _column(galaxies, "logmstar")
            sfr = _column(galaxies, "sfr")
            finite = np.isfinite(logm) & np.isfinite(sfr) & (sfr >= 0)
            positive = finite & (sfr > 0)
            log_ssfr = np.where(positive, np.log10(np.where(positive, sfr, 1.0)) - logm, np.nan)
            # SFR == 0: sSFR is 0 (log sSFR is -inf), below the threshold: quenched.
            verdict = (finite & (sfr == 0)) | (positive & (log_ssfr < SSFR_LIMIT))
        elif definition == "dn4000":
            d4 = _column(galaxies, "dn4000")
            finite = np.isfinite(d4)
            verdict = finite & (d4 > DN4000_LIMIT)
        else:
            ur = _column(galaxies, "absmag01_sdss_u") - _column(galaxies, "absmag01_sdss_r")
            finite = np.isfinite(ur)
            verdict = finite & (ur >= UR_LIMIT)
    defined = finite & ~failed
    return Quenched(definition=definition, quenched=verdict & defined, defined=defined,
                    failed_fit=failed, undefined=~failed & ~finite)


def quenched_flags(galaxies, definitions=tuple(DEFINITIONS)) -> pd.DataFrame:
    """One nullable-boolean column ``quenched_<definition>`` per definition (NA: not usable)."""
    index = galaxies.index if isinstance(galaxies, pd.DataFrame) else None
    return pd.concat([quenched(galaxies, d).as_series(index) for d in definitions], axis=1)


def quenched_summary(galaxies, definitions=tuple(DEFINITIONS)) -> pd.DataFrame:
    """Counts per definition (failed fits, undefined, quenched, not quenched): the row ledger."""
    return pd.DataFrame([quenched(galaxies, d).counts() for d in definitions])
