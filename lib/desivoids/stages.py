"""The stage registry: every stage of the pipeline, in run order, with what it owns.

A stage has one name everywhere: notebook ``notebooks/NN_<name>.py``, library package
``desivoids.<name>`` exporting its entry point ``desivoids.<name>.run`` (what
:meth:`Stage.entry` returns and the notebook calls; every stage defines ``run`` and its result
type in ``desivoids/<name>/stage.py`` and re-exports them from its ``__init__``),
command-line verb ``desivoids <name>``, book chapter ``book/executed/NN_<name>``, params section
``stages.<name>``, output folder ``<data_dir>/<name>/`` and the files of it declared in
``produces``.

The contract (tested in tests/test_stage_contract.py):

- ``produces``: the files (or folders) of the stage's own folder that other code may open, by
  key: ``layout.file("environment", "assignments")`` (:meth:`desivoids.paths.RunLayout.file`)
  is the one way to reach them, and :func:`file_name` the way the stage itself names them in
  its staging folder; a declared name is typed here only (tests/test_stage_contract.py scans
  lib/ for it). A stage opens another stage's file only if it declares that stage in ``reads``:
  :meth:`RunLayout.file` refuses it while the stage's ``run`` runs, and the contract test scans
  each stage's package for it.
- ``outputs``: the paths below ``data_dir`` that the stage writes, and the only ones. They are
  disjoint between stages. A stage publishes them atomically, sealed by a manifest of their
  sha256 (see :mod:`desivoids.outputs`), and reads another stage's outputs only through
  :class:`desivoids.paths.RunLayout`, after checking the folders of ``reads`` against their
  manifests (:func:`desivoids.params.checked`).
- ``tables``: the tables it writes into the run's database, which all stages share (a SQLite file
  at ``RunLayout.database`` or the PostgreSQL server of ``db_url``). A table has one owner. A
  stage commits them with its sealed folder's record, then renames the folder into place
  (:mod:`desivoids.publication`).
- The notebook's parameters cell declares the stage's parameters once (name, type, default,
  comment); the params file section, ``desivoids <name>`` and ``desivoids.<name>.run`` accept
  exactly those names with the same defaults.

CONTRIBUTING.md says how to add a stage.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import paths

#: Written by the runner (not by a stage) for mock profiles: the mock sky that acquire fetches.
MOCK_OUTPUT = "mirror"
#: The run's shared SQLite database folder (each stage owns its tables, not the folder).
DATABASE_OUTPUT = "database"
#: Written by the runner (`desivoids run`): the parameters as run, each stage's time and memory.
RUN_OUTPUT = "run"


@dataclass(frozen=True)
class Stage:
    name: str
    number: int
    summary: str
    outputs: tuple[str, ...]
    tables: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()  # stages whose outputs this one reads
    #: key -> path relative to the stage's folder (``<data_dir>/<name>/``) of each file it publishes
    produces: dict[str, str] = field(default_factory=dict, compare=False)
    #: extra verbs below ``desivoids <name>``: word -> "module:function(argv) -> exit status"
    subcommands: dict[str, str] = field(default_factory=dict, compare=False)
    directory: Path = field(default=paths.NOTEBOOKS, compare=False)

    @property
    def stem(self) -> str:
        return f"{self.number:02d}_{self.name}"

    @property
    def source(self) -> Path:
        """The jupytext py:percent notebook: the source of truth."""
        return self.directory / f"{self.stem}.py"

    @property
    def paired(self) -> Path:
        return self.directory / f"{self.stem}.ipynb"

    @property
    def executed(self) -> Path:
        """Where the runner writes the executed notebook that the book renders."""
        return paths.EXECUTED / f"{self.stem}.ipynb"

    @property
    def chapter(self) -> str:
        """The book's table-of-contents entry of this stage."""
        return f"book/executed/{self.stem}"

    @property
    def module(self) -> str:
        return f"desivoids.{self.name}"

    def entry(self) -> Callable:
        """The library entry point ``desivoids.<name>.run``."""
        return importlib.import_module(self.module).run


_REGISTRY = (
    Stage("acquire", 1, "resumable, verified download of DESI files; tile spectra to Parquet",
          outputs=("acquire",),
          produces={"raw": "raw", "manifest": "manifest.sqlite", "spectra": "spectra"},
          subcommands={"spectra": "desivoids.acquire.cli:spectra_main",
                       "status": "desivoids.acquire.cli:status_main"}),
    Stage("recon", 2, "an inventory of every FITS file: HDUs, columns, units, header keys, sha256",
          outputs=("recon",), reads=("acquire",), produces={"inventory": "inventory.json"}),
    Stage("convert", 3, "FITS catalogues to Parquet, with every source row accounted for",
          outputs=("convert",), reads=("acquire",),
          produces={"galaxies": "galaxies", "voids": "voids.parquet", "holes": "holes.parquet",
                    "zonevoid": "zonevoid.parquet", "galzone": "galzone.parquet",
                    "rejects": "rejects.parquet", "survey_masks": "survey_masks.parquet",
                    "reconciliation": "reconciliation.json"}),
    Stage("load", 4, "Parquet into SQLite or PostgreSQL, transactionally, with spatial indexes",
          outputs=("load",),
          tables=("galaxies", "voids", "holes", "zonevoid", "galzone", "rejects",
                  "galaxy_positions", "galaxy_blocks", "load_runs", "load_tables", "load_parts",
                  "load_columns"),
          reads=("convert",), produces={"report": "report.json"}),
    Stage("integrity", 5, "stage 1 validation: every row accounted for, keys, types, nulls, "
          "ranges, references", outputs=("integrity",), reads=("convert", "load"),
          produces={"report": "report.json"}),
    Stage("plausibility", 6, "stage 2 validation: physical ranges, DESIVAST's tracer selection, "
          "a retention waterfall", outputs=("plausibility",), tables=("selection",),
          reads=("convert",),
          produces={"selection": "selection.parquet", "sample": "sample.parquet",
                    "report": "report.json"}),
    Stage("environment", 7, "void membership of every galaxy under every algorithm, by VAST's "
          "rules", outputs=("environment",), tables=("galaxy_void_assignments", "void_counts"),
          reads=("acquire", "convert", "plausibility"),
          produces={"assignments": "galaxy_void_assignments.parquet",
                    "void_counts": "void_counts.parquet",
                    "surface": "voidfinder_surface.parquet", "report": "report.json"}),
    Stage("density", 8, "a continuous environment for every galaxy: k-NN density, void-centric "
          "distance, T-Web class; the quenched fraction against them", outputs=("density",),
          tables=("galaxy_environment",), reads=("convert", "plausibility", "environment"),
          produces={"environment": "galaxy_environment.parquet",
                    "web_counts": "web_counts.parquet", "profiles": "profiles.parquet",
                    "web_comparison": "web_comparison.parquet",
                    "web_fractions": "web_fractions.parquet", "web_slices": "web_slices.npz",
                    "report": "report.json"}),
    Stage("systematics", 9, "quenched fractions in voids and walls per algorithm, at fixed "
          "stellar mass, with honest errors", outputs=("systematics",),
          reads=("plausibility", "environment"),
          produces={"summary": "summary.parquet", "summary_csv": "summary.csv",
                    "binned": "binned.parquet", "counts": "counts.parquet",
                    "report": "report.json"}),
    Stage("release", 10, "the data product: tables, data dictionary, reports, provenance, "
          "citation, checksums", outputs=("release",),
          reads=("acquire", "recon", "convert", "load", "integrity", "plausibility",
                 "environment", "density", "systematics")),
)

#: What the runner (``desivoids run``) writes to ``<data_dir>/run/``, by key (as ``produces``).
RUN_FILES = {"params": "params.json", "report": "report.json", "report_md": "report.md"}

#: Stage names in run order.
ORDER: tuple[str, ...] = tuple(s.name for s in _REGISTRY)
STAGES: dict[str, Stage] = {s.name: s for s in _REGISTRY}


def select(names: list[str] | None) -> list[Stage]:
    """The stages to run, in pipeline order, whatever order ``names`` gives them in."""
    from .errors import UsageError

    if not names:
        return [STAGES[n] for n in ORDER]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UsageError(f"unknown stage(s) {unknown}; known stages: {list(ORDER)}")
    return [STAGES[n] for n in ORDER if n in names]


def file_name(stage: str, key: str) -> str:
    """The declared name (relative to the stage's folder) of the file ``key`` of ``stage``; a
    stage names the files it writes into its staging folder with it (``tmp / file_name(...)``)."""
    from .errors import UsageError

    if stage not in STAGES:
        raise UsageError(f"unknown stage {stage!r}; known stages: {list(ORDER)}")
    produces = STAGES[stage].produces
    if key not in produces:
        raise UsageError(f"the {stage} stage declares no file {key!r} (stages.py declares "
                         f"{sorted(produces)})")
    return produces[key]


_ACTIVE: ContextVar[str | None] = ContextVar("desivoids_active_stage", default=None)


def active_stage() -> str | None:
    """The stage whose ``run`` is running in this context (set by :func:`running`), else None."""
    return _ACTIVE.get()


@contextmanager
def running(stage: str) -> Iterator[None]:
    """Mark ``stage`` as the one running (``desivoids.params.checked`` wraps every ``run`` in
    it), so :meth:`desivoids.paths.RunLayout.file` can check its reads."""
    token = _ACTIVE.set(stage)
    try:
        yield
    finally:
        _ACTIVE.reset(token)
