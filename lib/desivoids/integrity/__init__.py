"""integrity (stage 1 validation): is what convert and load produced complete and consistent?

Every check has an id, a status (pass, warn, fail) and its evidence, in a JSON report whose
schema is documented and versioned (``report.schema.json``, validated on write):

- ``reconciliation.*``: every source row is in the database or in its rejects (convert's
  ledger against the database, per table and source file);
- ``keys.*``: primary keys unique, in Parquet and in the database; ``types.*``: column types
  as documented;
- ``nulls.galaxies.*``: null and non-finite rates of the critical columns below thresholds;
  ``range.*``: coordinates, redshifts, radii and the V2 tracers' distances in range;
- ``refs.*`` and ``tessellation.*``: the references between the DESIVAST tables and the
  galaxies (see :mod:`desivoids.integrity.references`).

A failed check stops the stage (and the pipeline run) naming it, after the report is written;
``demote`` turns named failures into warnings, which the report lists. The report names what it
checked (``inputs``: the sha256 of convert's and load's manifests, load's run id), so that the
release refuses a report older than the outputs it is packaged with (:func:`stale`).

The stage's entry point and result type are in :mod:`.stage`, as every stage's.
"""
from .stage import (DEFAULT_MAX_NULL_FRACTION, SCHEMA, IntegrityResult, check_all, checked_inputs, run,
                    stale)

__all__ = ["run", "IntegrityResult", "SCHEMA", "check_all", "checked_inputs", "stale",
           "DEFAULT_MAX_NULL_FRACTION"]
