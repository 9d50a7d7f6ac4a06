"""Where a release comes from (provenance.json) and how to cite it (CITATION.cff).

Provenance: the parameters of every stage as they ran (from the run's params record when
``desivoids run`` ran the stages, else from each stage's own report), every input file with its
sha256 (recon's inventory, else acquire's manifest), the versions of the packages that computed
it, the git commit and whether the working tree was dirty, and each stage's run time as the
runner recorded it. No database password is ever written: URLs are stored masked.

The citation file follows the Citation File Format 1.2.0 and is checked against that format's
own JSON schema, as its validator (the PyPI package cffconvert) ships it, kept as package data.
"""
from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import subprocess
from pathlib import Path

import yaml

from .. import __version__, paths

__all__ = ["provenance", "citation", "release_date", "validate_citation", "cff_schema", "PACKAGES"]

PACKAGES = ("numpy", "scipy", "pandas", "pyarrow", "dask", "astropy", "astropy-healpix",
            "statsmodels", "patsy", "sqlalchemy", "psycopg", "matplotlib", "papermill",
            "jupytext", "jupyter-book", "hats", "hats-import", "lsdb")


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(paths.ROOT), *args], capture_output=True,
                           text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def _inputs(layout: paths.RunLayout) -> tuple[str, list[dict]]:
    inv = layout.file("recon", "inventory")
    if inv.exists():
        files = json.loads(inv.read_text())["files"]
        return paths.display(inv.relative_to(layout.data_dir)), [{"path": f["path"], "bytes": f["size"],
                                         "sha256": f["sha256"], "kind": f["kind"]}
                                        for f in files]
    if layout.manifest.exists():
        from ..acquire.steps import manifest_rows

        return paths.display(layout.manifest.relative_to(layout.data_dir)), [{"path": r["path"], "bytes": r["bytes"],
                                            "sha256": r["sha256"], "state": r["state"]}
                                           for r in manifest_rows(layout.manifest)]
    return "none (neither recon nor acquire ran in this folder)", []


def _stage_parameters(layout: paths.RunLayout) -> dict:
    record = layout.run_file("params")
    if record.exists():
        return json.loads(record.read_text())
    out = {}
    for stage in ("integrity", "plausibility", "environment", "systematics"):
        rep = layout.file(stage, "report")
        if rep.exists():
            doc = json.loads(rep.read_text())
            out[stage] = doc.get("parameters") or doc.get("thresholds")
    return {"source": "the stages' own reports (not run by desivoids run)", "stages": out}


def provenance(layout: paths.RunLayout, release_parameters: dict) -> dict:
    source, files = _inputs(layout)
    status = _git("status", "--porcelain", "--untracked-files=no")
    report = layout.run_file("report")
    stages = json.loads(report.read_text())["stages"] if report.exists() else None
    return {
        "software": {"desivoids": __version__,
                     **{p: _version(p) for p in PACKAGES}},
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty": None if status is None
                else bool(status)},
        "parameters": {"release": release_parameters, **_stage_parameters(layout)},
        "inputs": {"from": source, "files": files},
        "stage_run_times": stages if stages is not None else
        "not recorded: the stages were not run by `desivoids run`",
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def release_date(prov: dict) -> str:
    """The release's date, reproducible: ``SOURCE_DATE_EPOCH`` (UTC) where set, as reproducible
    builds use it; else the day the last stage before the release finished, from the runner's
    record, so that rerunning the release notebook (nbval, a reader in JupyterLab) on the same
    run gives the same CITATION.cff; else today."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).date().isoformat()
    runs = prov.get("stage_run_times")
    if isinstance(runs, list):
        done = [r["finished"][:10] for r in runs
                if r.get("stage") != "release" and r.get("finished")]
        if done:
            return max(done)
    return datetime.date.today().isoformat()


def citation(version: str, prov: dict, info=None) -> str:
    """CITATION.cff of a release: this data product, and what it is built from. ``info``
    (:class:`desivoids.runinfo.RunInfo`) gives the title: a mock run's says mock."""
    doc = {
        "cff-version": "1.2.0",
        "message": "If you use this data product, please cite it and the DESI data it is built "
                   "from, as below.",
        "type": "dataset",
        "title": info.title if info is not None else
        "desivoids: galaxies in voids and walls of DESI DR1",
        "version": version,
        "date-released": release_date(prov),
        "authors": [{"name": "The desivoids developers"}],
        "keywords": ["cosmic voids", "galaxy evolution", "DESI", "quenching"],
        "license": "BSD-3-Clause",
        "commit": prov["git"]["commit"] or "unknown",
        "references": [
            {"type": "data", "title": "Data Release 1 of the Dark Energy Spectroscopic Instrument",
             "authors": [{"name": "DESI Collaboration"}], "year": 2025,
             "url": "https://data.desi.lbl.gov/public/dr1/"},
            {"type": "article", "title": "DESIVAST: A Catalog of Low-Redshift Voids using Data "
             "from the DESI DR1 Bright Galaxy Survey",
             "authors": [{"family-names": "Rincon", "given-names": "Hernan"}],
             "journal": "The Astrophysical Journal", "volume": 982, "start": 38, "year": 2025},
            {"type": "software", "title": "FastSpecFit: fast spectral synthesis and "
             "emission-line fitting of DESI spectra",
             "authors": [{"family-names": "Moustakas", "given-names": "John"}],
             "url": "https://github.com/desihub/fastspecfit"},
        ],
    }
    abstract = []
    if info is not None and info.mock:
        abstract.append(f"A mock run: made from {info.sky}, written by desivoids.mock with a "
                        "planted answer to test the pipeline; not DESI data.")
    failed = (prov.get("integrity") or {}).get("failed_checks")
    if failed:
        abstract.append("Released although the run's integrity stage failed: "
                        + ", ".join(failed) + ". See reports/integrity.json.")
    if abstract:
        doc["abstract"] = " ".join(abstract)
    return ("# The citation of this release (Citation File Format 1.2.0)\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def cff_schema() -> dict:
    """The Citation File Format 1.2.0 JSON schema, as its validator cffconvert 2.0.0 ships it
    (kept as package data: cffconvert pins a jsonschema the Jupyter stack cannot run with)."""
    return json.loads((Path(__file__).parent.parent / "data" / "cff-1.2.0.schema.json").read_text())


def _dates_as_strings(obj):
    if isinstance(obj, dict):
        return {k: _dates_as_strings(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dates_as_strings(v) for v in obj]
    return obj.isoformat() if isinstance(obj, (datetime.date, datetime.datetime)) else obj


def validate_citation(path: Path) -> list[str]:
    """Problems of a CITATION.cff against the schema (empty: valid). YAML dates are read as
    strings first, as the schema's note to implementers asks."""
    import jsonschema

    doc = _dates_as_strings(yaml.safe_load(Path(path).read_text()))
    validator = jsonschema.Draft7Validator(cff_schema(),
                                           format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]
