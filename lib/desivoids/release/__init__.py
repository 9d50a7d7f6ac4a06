"""release: the data product, documented, checksummed and checked for completeness.

``<data_dir>/release/<version>/`` holds:

- ``galaxies_core.parquet`` (the tracer sample with the analysis columns and the three quenched
  flags), ``voids_unified.parquet`` (every void of the four algorithms with its galaxy counts),
  ``galaxy_void_assignments.parquet`` (the tracer sample's membership under every algorithm),
  ``sample_10k.parquet`` (a reproducible random subset, its seed a parameter);
- ``reports/``: the integrity, plausibility and systematics reports of the run;
- ``data_dictionary.md`` and ``.json``, generated from the written files' schemas (column, type,
  unit, description, source column);
- ``figures/answer.png``: the result in one figure;
- ``provenance.json``: parameters, every input file with its sha256, package versions, the git
  commit and whether the tree was dirty, each stage's run time (when ``desivoids run`` ran it);
- ``CITATION.cff``, checked against the Citation File Format's schema;
- ``README.md``: what the release holds and, when it was released although the run's integrity
  stage failed (``allow_failed_integrity``), which checks failed;
- ``hats/galaxies`` (with its margin cache ``hats/galaxies_margin``) and ``hats/voids``: the
  same rows as HATS catalogues (HEALPix-partitioned Parquet) that LSDB opens, cone-searches and
  cross-matches (:mod:`.hats`);
- ``SHA256SUMS`` (``sha256sum -c`` format) and ``completeness.json``: every promised file
  exists, reads, matches its checksum and has its documented columns, and hats validates each
  HATS catalogue, every file of which matches its checksum. A missing or inconsistent
  artefact fails the stage, naming it, and the previous release is left as it was.
  ``completeness.json`` is written last and then listed in ``SHA256SUMS`` too.

A release is refused while the run's integrity report has a failed check, unless
``allow_failed_integrity`` is set; the README, provenance and CITATION then say so.

The stage's entry point and result type are in :mod:`.stage`, as every stage's.
"""
from .stage import PROMISED, ReleaseResult, check_completeness, run

__all__ = ["run", "ReleaseResult", "PROMISED", "check_completeness"]
