"""systematics: the statistics that compare void (flag 1) and wall (flag 0) galaxies.

Pure functions on numpy/pandas inputs, no I/O, and the stage (:mod:`.stage`, ``run``) that
calls them once per algorithm, sample (all / interior voids), quenched definition and cap (NGC,
SGC, both).

- :mod:`.quenched`   the three quenched definitions of science.md, with failed fits and undefined
  rows as separate, counted states.
- :mod:`.intervals`  Wilson (1927) intervals, Newcombe (1998, method 10) risk difference, score
  intervals for the risk and odds ratios, Cohen's (1988) h, Kish's (1965) effective sample size.
- :mod:`.matching`   wall weights that reproduce the void stellar-mass histogram; quenched
  fractions in stellar-mass bins.
- :mod:`.regression` quenched ~ void + bs(log M*) + z, logistic, cluster-robust errors.
- :mod:`.jackknife`  equal-area HEALPix patches per cap and the delete-one-patch jackknife.
- :mod:`.compare`    one tidy row per comparison, analytic and jackknife intervals side by side.
- :mod:`.expected`   on a mock run, each estimate beside the answer the mock planted.
"""
import importlib
import importlib.util

# quenched and jackknife name both a module and its function: imported here, so that the name is
# the function whichever is imported first. The rest load on first use (PEP 562): the chapters
# that need only the quenched thresholds (convert, plausibility) do not import statsmodels and
# the jackknife's HEALPix for them (about 1 CPU s per notebook kernel).
from .jackknife import JackknifeResult, Patches, healpix_patches, jackknife
from .quenched import (DEFINITIONS, Quenched, failed_fit, quenched, quenched_flags,
                       quenched_summary)

_LAZY = {
    "compare_void_wall": "compare",
    **dict.fromkeys(["beside_expected", "expected_of", "read_expected"], "expected"),
    **dict.fromkeys(["TwoProportions", "WeightedProportion", "cohens_h", "kish_neff",
                     "two_proportions", "two_proportions_weighted", "weighted_proportion",
                     "wilson"], "intervals"),
    **dict.fromkeys(["MassWeights", "binned_fractions", "mass_bin_index", "mass_weights"],
                    "matching"),
    **dict.fromkeys(["VoidEffect", "logit_void_effect"], "regression"),
    **dict.fromkeys(["SystematicsResult", "result_paragraph", "run", "surface_table"], "stage"),
}


def __getattr__(name: str):
    """A lazy name, or a submodule (``systematics.expected``), imported on first use: the
    package once imported every module, so a submodule was always an attribute."""
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFINITIONS", "Quenched", "failed_fit", "quenched", "quenched_flags", "quenched_summary",
    "wilson", "kish_neff", "weighted_proportion", "WeightedProportion", "cohens_h",
    "two_proportions", "two_proportions_weighted", "TwoProportions",
    "mass_bin_index", "mass_weights", "MassWeights", "binned_fractions",
    "logit_void_effect", "VoidEffect",
    "healpix_patches", "Patches", "jackknife", "JackknifeResult",
    "compare_void_wall", "run", "SystematicsResult", "result_paragraph", "surface_table",
    "read_expected", "beside_expected", "expected_of",
]
