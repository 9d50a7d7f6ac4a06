"""Shared checks on executed stage notebooks: their text outputs, and nbval re-execution."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

SANITIZE = Path(__file__).resolve().parent / "nbval_sanitize.cfg"


def output_text(path: Path) -> str:
    """Every text/plain and stream output of an executed notebook, joined by newlines."""
    parts = []
    for cell in nbformat.read(path, as_version=4).cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("data", {}).get("text/plain", "") or o.get("text", ""))
    return "\n".join(parts)


def run_nbval(executed: Path) -> subprocess.CompletedProcess:
    """Re-execute an executed notebook under ``pytest --nbval`` with the project's sanitizers."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", str(executed), "--nbval-sanitize-with", str(SANITIZE),
         "-p", "no:cacheprovider", "-p", "no:hypothesispytest",  # unused here: ~1 s of start-up
         "-q", "-o", "addopts=", "--rootdir", str(executed.parent)],
        capture_output=True, text=True, cwd=executed.parent)
