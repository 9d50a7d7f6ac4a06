"""One integrity check's result: an id, a status (pass, warn, fail) and the evidence behind it.

A check reports what it finds; its thresholds are parameters declared once in the stage
notebook and never move to make it pass. A user may demote a named check (or a glob of ids,
``nulls.galaxies.*``) from fail to warn; the report and the book list every demotion.
"""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "PASS", "WARN", "FAIL", "verdict", "demote"]

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass
class Check:
    id: str
    title: str
    status: str
    evidence: dict[str, Any] = field(default_factory=dict)
    demoted: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def verdict(problem: bool, severity: str = FAIL) -> str:
    """``severity`` when a problem was found, else pass."""
    return severity if problem else PASS


def demote(checks: list[Check], patterns: list[str]) -> list[str]:
    """Turn the failed checks matching ``patterns`` into warnings; returns their ids. A pattern
    that matches no check at all is an error (a misspelt id must not silently demote nothing)."""
    from ..errors import UsageError

    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(c.id, p) for c in checks)]
    if unknown:
        raise UsageError(f"demote: no integrity check matches {unknown}; ids are "
                         f"{sorted(c.id for c in checks)}")
    done = []
    for c in checks:
        if c.status == FAIL and any(fnmatch.fnmatchcase(c.id, p) for p in patterns):
            c.status, c.demoted = WARN, True
            done.append(c.id)
    return done
