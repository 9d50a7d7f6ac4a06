"""Assemble benchmarks/REPORT.md and REPORT.json from the sections each benchmark writes to
benchmarks/results/.

Each benchmark script (bench_<stage>.py) measures at DR1 scale and writes results/<name>.md
(figures with the command that produced them) and results/<name>.json (the raw numbers, with the
machine's facts and load average). A section's name is a stage of the registry, or the mock sky,
optionally followed by ``-<part>`` (``systematics-coverage``); sections go in pipeline order.
benchmarks/run.py (``make bench``) runs the benchmarks and records the run in results/run.json.

    .venv/bin/python benchmarks/report.py
"""
from __future__ import annotations

import json
from pathlib import Path

import measure  # one direction: the report reads what measure writes; measure never imports it

from desivoids.stages import ORDER as STAGE_ORDER

#: every benchmark and report section, in pipeline order: the mock sky first, then the stages as
#: the registry orders them, then the whole run (bench_pipeline.py: every stage's notebook
#: together). benchmarks/run.py runs the bench_<name>.py of each that has one.
ORDER = ["mock", *STAGE_ORDER, "pipeline"]
HERE = measure.HERE
RESULTS = measure.RESULTS
RUN = RESULTS / "run.json"  # written by run.py: the machine and load at the start, each benchmark


def _key(stem: str) -> tuple:
    base, _, part = stem.partition("-")
    return (ORDER.index(base) if base in ORDER else len(ORDER), part, stem)


def sections() -> list[Path]:
    return sorted(RESULTS.glob("*.md"), key=lambda p: _key(p.stem))


def _load_average(doc: dict):
    """The load average a section recorded at its start (the scripts record it differently)."""
    m = doc.get("machine", {})
    for k in ("load_average", "load_average_at_start"):
        if k in m:
            return m[k]
    for k in ("load_average_start", "load_average_at_start"):
        if k in doc:
            return doc[k]
    return None


def main() -> Path:
    run = json.loads(RUN.read_text()) if RUN.exists() else {}
    facts = measure.machine()
    parts = sections()
    body = [p.read_text().strip() + "\n" for p in parts]
    docs = {}
    for p in parts:
        j = p.with_suffix(".json")
        try:
            docs[p.stem] = json.loads(j.read_text()) if j.exists() else None
        except json.JSONDecodeError:
            docs[p.stem] = None
    start = run.get("machine", facts)
    ran = {b["name"]: b for b in run.get("benchmarks", [])}
    head = [
        "# Benchmark report",
        "",
        "Throughput and peak memory of the pipeline at DR1 scale (the `--scale dr1` mock sky:",
        "6,445,927 galaxies, 10,754 voids, 101,863 holes, 694,642 GALZONE tracers per V2 file),",
        "each figure beside a reference measured in the same run, as a ratio. Every figure was",
        "produced by the command shown with it. `make bench` runs every benchmark and assembles",
        "this page (`make bench BENCH=environment` runs one); `python benchmarks/report.py`",
        "reassembles it from benchmarks/results/ without measuring.",
        "",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']:.0f} GiB memory, "
        f"{facts['platform']}, Python {facts['python']}.",
    ]
    if run:
        head += ["", f"Run: `{run.get('command', 'benchmarks/run.py')}`, started "
                 f"{run.get('started_at')}, load average (1, 5, 15 min) at the start "
                 f"{start['load_average']}"
                 + (f", at the end {run['load_average_end']}" if run.get("load_average_end")
                    else "") + ". Other work on the machine shows in the load average that each "
                 "section records before its measurements.", "",
                 "| benchmark | status | wall s | load avg before | finished at |",
                 "|---|---|---:|---:|---|"]
        for b in run.get("benchmarks", []):
            head.append(f"| {b['name']} | {b['status']} | {b.get('seconds', '')} | "
                        f"{b.get('load_average_before', [''])[0]} | {b.get('finished_at', '')} |")
        stale = [b["name"] for b in run.get("benchmarks", []) if b["status"] != "ok"]
        stale += [n for n in dict.fromkeys(p.stem.partition("-")[0] for p in parts)
                  if n not in ran]
        if stale:
            head += ["", f"**Not measured by this run: {', '.join(stale)}.** Their sections "
                     "below (if any) are from an earlier run of their own script."]
    head.append("")
    out = HERE / "REPORT.md"
    out.write_text("\n".join(head) + "\n" + "\n".join(body))
    (HERE / "REPORT.json").write_text(json.dumps({
        "machine": facts, "run": run or None,
        "load_average_at_start": start.get("load_average"),
        "sections": [{"name": p.stem,
                      # as the section recorded it, else as run.py did before running it
                      "load_average_at_start": _load_average(docs[p.stem] or {}) or ran.get(
                          p.stem.partition("-")[0], {}).get("load_average_before"),
                      "results": docs[p.stem]} for p in parts],
    }, indent=1) + "\n")
    return out


if __name__ == "__main__":
    print(main())
