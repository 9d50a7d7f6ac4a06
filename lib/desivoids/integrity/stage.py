"""The integrity stage: its entry point :func:`run`, its result type and the report's checks."""
from __future__ import annotations

import importlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from .. import formats, paths
from ..errors import StageError
from ..load.queries import dispose_engines, engine
from ..outputs import jsonable, staged, write_json
from ..vastheaders import caps_present, primary_headers
from .checks import FAIL, PASS, WARN, Check, demote as _demote
from .references import references
from .tables import (_database_keys, _interleaved, _parquet_keys, nulls, ranges, read,
                     reconciliation, sorted_key, types)
from ..load import schema as S
from ..params import checked
from ..stages import file_name

__all__ = ["run", "IntegrityResult", "SCHEMA", "check_all", "checked_inputs", "stale"]

SCHEMA = Path(__file__).with_name("report.schema.json")
SCHEMA_VERSION = 1
DEFAULT_MAX_NULL_FRACTION = {
    "targetid": 0.0, "ra": 0.0, "dec": 0.0, "z": 0.0, "survey": 0.0, "program": 0.0,
    "spectype": 0.0, "zwarn": 0.0, "deltachi2": 0.0, "bgs_target": 0.0, "logmstar": 0.01,
    "sfr": 0.01, "dn4000": 0.05, "absmag01_sdss_u": 0.01, "absmag01_sdss_r": 0.01}


@dataclass
class IntegrityResult:
    report: dict
    path: Path

    @property
    def checks(self) -> list[dict]:
        return self.report["checks"]

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"id": c["id"], "status": c["status"] + (" (demoted)" if c["demoted"]
                                                                       else ""),
                              "check": c["title"]} for c in self.checks])

    def v2_labellings(self):
        """Per V2 file (algorithm, cap): its voids' share of the zones and of the tracers
        (GALZONE rows with a zone), from the ``tessellation.<cap>`` checks."""
        import pandas as pd

        rows = [{"algorithm": alg, "cap": c["id"].split(".", 1)[1], **lab}
                for c in self.checks if c["id"].startswith("tessellation.")
                for alg, lab in c["evidence"].get("labellings", {}).items()]
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        s = self.report["summary"]
        lines = [f"integrity: {s['pass']} passed, {s['warn']} warnings, {s['fail']} failed -> "
                 f"{paths.display(self.path)}"]
        lines += [f"  {c['status'].upper()} {c['id']}: {c['title']}" for c in self.checks
                  if c["status"] != PASS]
        return "\n".join(lines)


def check_all(convert_dir: Path, db, max_null_fraction: dict, z_range: list) -> list[Check]:
    """Every check, in report order."""
    paths.require(convert_dir / file_name("convert", "reconciliation"), "convert")
    headers = primary_headers(convert_dir / file_name("convert", "voids"))
    dlimu = {cap: float(h["DLIMU"]) for (alg, cap), h in headers.items()
             if formats.family(alg).zones}  # the limit GALZONE's tracers are checked against
    def in_parquet():
        return parquet_checks(convert_dir, max_null_fraction, z_range, dlimu, headers)

    if isinstance(engine(db), Connection):  # one connection: its queries one after the other
        recon, db_keys, parquet = reconciliation(convert_dir, db), _database_keys(db), in_parquet()
    else:  # the database's two scans, each on its own connection (SQLite: a core each; they
        # were the stage's longest thread one after the other), beside the Parquet checks
        # (Arrow and numpy release the GIL): the stage's wall time is the longest of the three
        with ThreadPoolExecutor(2) as pool:
            pending = pool.submit(reconciliation, convert_dir, db), pool.submit(_database_keys, db)
            parquet = in_parquet()
            recon, db_keys = (p.result() for p in pending)
    n = len(db_keys)  # the Parquet key checks come first in ``parquet``, one per table
    return recon + _interleaved(parquet[:n], db_keys) + types(convert_dir, db) + parquet[n:]


def parquet_checks(convert_dir: Path, max_null_fraction: dict, z_range: list, dlimu: dict,
                   headers: dict) -> list[Check]:
    """The checks of convert's Parquet alone: keys, nulls, ranges, references (report order)."""
    key = S.KEYS["galaxies"]
    gal = read(convert_dir, "galaxies", list(key))
    galaxies = (gal, sorted_key(gal, key))  # read and sorted once, for its keys and references
    return (_parquet_keys(convert_dir, galaxies) + nulls(convert_dir, max_null_fraction)
            + ranges(convert_dir, z_range, dlimu)
            + references(convert_dir, caps_present(headers),
                         galaxies if key == ("targetid",) else None))


def checked_inputs(layout: paths.RunLayout) -> dict:
    """What an integrity run checks, as published now: the sha256 of the convert and load
    folders' manifests (each covers every file of its folder) and load's run id."""
    from ..publication import manifest_digest

    try:
        load_run = json.loads(layout.file("load", "report").read_text()).get("run_id")
    except (OSError, ValueError):
        load_run = None
    return {"convert_manifest": manifest_digest(layout.convert),
            "load_manifest": manifest_digest(layout.load), "load_run": load_run}


def stale(report: dict, layout: paths.RunLayout) -> list[str]:
    """How an integrity report differs from the convert and load outputs published now (its
    ``inputs`` against :func:`checked_inputs`): one phrase per difference, [] when it checked
    exactly them."""
    checked, now = report.get("inputs"), checked_inputs(layout)
    if not isinstance(checked, dict):
        return ["the report does not say which convert and load outputs it checked"]
    return [f"{k}: checked {checked.get(k)}, now {v}" for k, v in now.items()
            if checked.get(k) != v]


def _validated(doc: dict) -> dict:
    """The report as JSON will hold it, checked against the documented schema."""
    import jsonschema

    doc = jsonable(doc)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    return doc


@checked("integrity")
def run(data_dir: str = "data/mock", db_url: str = "",
        max_null_fraction: dict = DEFAULT_MAX_NULL_FRACTION, z_range: list = (-0.01, 7.0),
        demote: list = ()) -> IntegrityResult:
    """The integrity stage: run every check on the convert stage's Parquet and the database,
    publish ``<data_dir>/integrity/report.json``, then fail naming every failed check."""
    layout = paths.RunLayout.of(data_dir)
    url = layout.db_url(db_url)
    if not db_url:
        paths.require(layout.database, "load")
    inputs = checked_inputs(layout)  # before the checks: a later convert or load makes it stale
    db = engine(url)
    try:
        with ThreadPoolExecutor(1) as pool:
            # the report's validator imports format grammars (about 1 s, more than any check
            # but the database's scans): imported meanwhile, mostly while the checks wait in C
            pool.submit(importlib.import_module, "jsonschema")
            checks = check_all(layout.convert, db, dict(max_null_fraction), list(z_range))
        dialect = db.dialect.name
    except SQLAlchemyError as exc:  # e.g. a database the load stage has not filled
        raise StageError(f"integrity: cannot read the database {db.url!r}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    finally:
        dispose_engines()
    demoted = _demote(checks, list(demote))
    doc = _validated({
        "schema": "desivoids.integrity", "schema_version": SCHEMA_VERSION, "database": dialect,
        "inputs": inputs,
        "parameters": {"max_null_fraction": dict(max_null_fraction), "z_range": list(z_range),
                       "demote": list(demote)},
        "checks": [c.to_json() for c in checks],
        "summary": {s: sum(c.status == s for c in checks) for s in (PASS, WARN, FAIL)},
        "demoted": demoted})
    with staged(layout.stage("integrity")) as tmp:
        write_json(tmp / file_name("integrity", "report"), doc)
    result = IntegrityResult(doc, layout.file("integrity", "report"))
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        raise StageError(f"integrity: {len(failed)} check(s) failed: "
                         + "; ".join(f"{c.id} ({c.title})" for c in failed)
                         + f". Report: {paths.display(result.path)}; a check can be demoted to a "
                           "warning with the parameter demote")
    return result
