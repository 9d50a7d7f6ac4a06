"""The pipeline's stages, in order, and the notebook that runs each one.

A stage has one name everywhere: notebook ``notebooks/NN_<name>.py``, library module
``desivoids.<name>``, command-line verb ``desivoids <name>``, book chapter and params section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import paths

#: Stage names in run order. Later stages (integrity, plausibility, environment, systematics,
#: release) are appended here as their notebooks land.
ORDER: tuple[str, ...] = ("acquire", "recon", "convert", "load")


@dataclass(frozen=True)
class Stage:
    name: str
    number: int
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


STAGES: dict[str, Stage] = {name: Stage(name, i + 1) for i, name in enumerate(ORDER)}


def select(names: list[str] | None) -> list[Stage]:
    """The stages to run, in pipeline order, whatever order ``names`` gives them in."""
    if not names:
        return [STAGES[n] for n in ORDER]
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown}; known stages: {list(ORDER)}")
    return [STAGES[n] for n in ORDER if n in names]
