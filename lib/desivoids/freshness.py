"""Which stages are stale: the record of what a stage's last publication was made from.

Every ``run`` (wrapped by :func:`desivoids.params.checked`) records, inside the folder it
publishes, :data:`INPUTS`: its parameters as run and the digest of each producer's output that
it read (the sha256 of the producer's ``MANIFEST.sha256``, which lists the sha256 of every file
it published). :func:`desivoids.outputs.staged` writes the record into the staging folder, so the
manifest seals it with the outputs; a stage that publishes no sealed folder of its own (acquire,
whose folder grows file by file; release, which publishes one folder per version) gets it written
beside its outputs after its run succeeded.

``desivoids run`` reruns a stage only when :func:`stale` gives reasons: no record, a parameter
changed, a producer's output changed since, its own outputs missing or changed after
publication, or no executed notebook for the book; the way Snakemake and showyourwork decide,
on content rather than on times.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator

from . import paths
from .stages import MOCK_OUTPUT, STAGES

#: The record of a stage's last publication, at the top of its folder.
INPUTS = "inputs.json"
#: The mock sky's stamp (desivoids.runner.MOCK_STAMP): acquire's input on a mock profile.
_MOCK_STAMP = ".desivoids-mock.json"

_PENDING: ContextVar[dict | None] = ContextVar("desivoids_pending_record", default=None)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def output_digest(layout: paths.RunLayout, stage: str) -> str | None:
    """One digest of what ``stage`` last published: its manifest's sha256 (which covers every
    file and the stage's own record), or for a folder without a manifest its record's."""
    from .outputs import MANIFEST

    folder = layout.stage(stage)
    return _sha256(folder / MANIFEST) if (folder / MANIFEST).is_file() else _sha256(folder / INPUTS)


def input_digests(stage: str, layout: paths.RunLayout) -> dict[str, str | None]:
    """The digest of every producer's output that ``stage`` reads (None: not published)."""
    out = {p: output_digest(layout, p) for p in STAGES[stage].reads}
    stamp = layout.stage(MOCK_OUTPUT) / _MOCK_STAMP
    if stage == "acquire" and stamp.is_file():  # the mock sky is what acquire fetches
        out[MOCK_OUTPUT] = _sha256(stamp)
    return out


def normal_parameters(values: dict[str, Any]) -> dict[str, Any]:
    """Parameters as compared between runs: data_dir left out (the record lives in it), paths
    resolved against the repository, URL passwords masked, tuples as lists (JSON's types)."""
    from .outputs import jsonable
    from .params import is_path, masked

    out = {}
    for k, v in masked(values).items():
        if k == "data_dir":
            continue
        if is_path(k) and isinstance(v, (str, Path)) and str(v):
            v = paths.display(paths.resolve(v))
        out[k] = json.loads(json.dumps(jsonable(v), default=str))
    return out


def record_of(stage: str, data_dir: str | Path, arguments: dict[str, Any]) -> dict:
    layout = paths.RunLayout.of(data_dir)
    return {"stage": stage, "parameters": normal_parameters(arguments),
            "inputs": input_digests(stage, layout)}


@contextmanager
def recording(stage: str, data_dir: str | Path, arguments: dict[str, Any]) -> Iterator[None]:
    """Around a stage's ``run``: the record is taken before it reads anything (so a producer
    republished meanwhile makes it stale, not fresh), written by :func:`staged` into the
    stage's own staging folder, or after the run when the stage sealed no folder of its own."""
    from .outputs import MANIFEST, write_json

    layout = paths.RunLayout.of(data_dir)
    pending = {"folder": layout.stage(stage), "record": record_of(stage, data_dir, arguments),
               "written": False}
    token = _PENDING.set(pending)
    try:
        yield
    finally:
        _PENDING.reset(token)
    folder = pending["folder"]
    if not pending["written"] and folder.is_dir() and not (folder / MANIFEST).exists():
        write_json(folder / INPUTS, pending["record"])


def write_pending(tmp: Path, target: Path) -> None:
    """Called by :func:`desivoids.outputs.staged` before it seals ``tmp``: the running stage's
    record goes into it when ``target`` is that stage's folder."""
    pending = _PENDING.get()
    if pending is None or Path(target).resolve() != pending["folder"].resolve():
        return
    from .outputs import write_json

    write_json(tmp / INPUTS, pending["record"])
    pending["written"] = True


def read_record(layout: paths.RunLayout, stage: str) -> dict | None:
    try:
        doc = json.loads((layout.stage(stage) / INPUTS).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def stale(stage: str, data_dir: str | Path, parameters: dict[str, Any],
          executed: Path | None = None) -> list[str]:
    """Why ``stage`` must rerun with ``parameters`` (every declared one, defaults included);
    [] when it is fresh. ``executed``: the executed notebook the book needs."""
    from .outputs import MANIFEST, manifest_problems

    layout = paths.RunLayout.of(data_dir)
    rec = read_record(layout, stage)
    if rec is None:
        return [f"no record of an earlier run ({paths.display(layout.stage(stage) / INPUTS)})"]
    why = []
    folder = layout.stage(stage)
    problems = manifest_problems(folder) if (folder / MANIFEST).is_file() else None
    if problems:
        why += [f"its output {n}: {what}" for n, what in problems[:3]]
    now, then = normal_parameters(parameters), rec.get("parameters", {})
    for k in sorted(set(now) | set(then)):
        if now.get(k) != then.get(k):
            why.append(f"parameter {k} changed: {then.get(k, '(unset)')!r} -> {now.get(k, '(unset)')!r}")
    was = rec.get("inputs", {})
    for p, digest in input_digests(stage, layout).items():
        if digest is None:
            why.append(f"{p}'s outputs are missing")
        elif was.get(p) != digest:
            why.append(f"{p}'s outputs changed since its last run")
    if STAGES[stage].tables and not parameters.get("db_url") and not layout.database.exists():
        why.append(f"its tables' database {paths.display(layout.database)} is missing")
    if executed is not None and not Path(executed).exists():
        why.append(f"no executed notebook {paths.display(executed)} for the book")
    return why
