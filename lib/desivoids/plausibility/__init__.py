"""plausibility (stage 2 validation): physical ranges, DESIVAST's tracer selection, a waterfall.

- Physical ranges are findings with counts (:mod:`.findings`), for the whole catalogue and for
  the selected sample; a value outside its expected range is reported, never cut.
- The tracer selection of science.md as ordered cuts (:mod:`.selection`), each threshold a
  parameter whose default is DESIVAST's (ZLIMU and MAGLIM read from the void files' headers),
  then FastSpecFit's failed fits as a cut of their own.
- Outputs in ``<data_dir>/plausibility``: ``selection.parquet`` (every galaxy: its cap, the cut
  that removed it, whether it is a tracer and in the sample), ``sample.parquet`` (the sample with
  the columns the analysis reads), ``report.json`` (thresholds, waterfall per cap, findings, the
  tracer reproduction check); and the database table ``selection``.
- The reproduction check compares the selected tracers with GALZONE's TARGETs per cap, the
  sample DESIVAST's V2 runs used: on the mock they must agree exactly, on real data this is the
  test that the selection reproduces DESIVAST's.

The stage's entry point and result type are in :mod:`.stage`, as every stage's.
"""
from .stage import SAMPLE_COLUMNS, PlausibilityResult, run

__all__ = ["run", "PlausibilityResult", "SAMPLE_COLUMNS"]
