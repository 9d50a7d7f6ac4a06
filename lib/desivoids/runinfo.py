"""What a run is: a mock sky or DESI DR1, and how many galaxies it has.

The run's profile decides: a params file with a ``mock:`` section makes a mock run, and
``desivoids run`` records it in ``<data_dir>/run/params.json``. A stage run alone (no record)
is a mock run when the runner's mock sky sits in the run's folder. Everything a reader sees (the
book's title and banners, every figure, the answer's captions and table, the release's README
and CITATION) says "mock" on a mock run and "DESI DR1" on a real one, from :func:`run_info`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import paths

__all__ = ["RunInfo", "run_info", "banner", "mark_mock", "mark_figures", "MOCK_MARK"]

#: the text drawn into every figure of a mock run
MOCK_MARK = "MOCK"
#: the gid of that text (tests find it by this)
MOCK_GID = "desivoids-mock-mark"
_STAMP = ".desivoids-mock.json"  # desivoids.runner.MOCK_STAMP, written beside the mock sky


@dataclass(frozen=True)
class RunInfo:
    mock: bool
    #: FastSpecFit rows of the run (convert's galaxies table; before convert, the rows the mock
    #: sky was written with); None when neither is known yet
    galaxies: int | None
    profile: str = ""
    #: the mock's settings (seed, scale, ...) on a mock run
    settings: dict | None = None

    @property
    def label(self) -> str:
        """"mock" or "DESI DR1": what the run's pages and figures are of."""
        return "mock" if self.mock else "DESI DR1"

    @property
    def sky(self) -> str:
        """The data in a few words, with the galaxy count: for a title or a first sentence."""
        n = f"{self.galaxies:,d} " if self.galaxies is not None else ""
        if self.mock:
            return f"a mock sky of {n}galaxies in DESI's formats (not DESI DR1)"
        return f"DESI DR1 ({n}galaxies)" if n else "DESI DR1"

    @property
    def title(self) -> str:
        where = "a mock sky (not DESI DR1)" if self.mock else "DESI DR1"
        return f"desivoids: galaxies in voids and walls of {where}"


def _galaxies(layout: paths.RunLayout) -> int | None:
    import pyarrow.parquet as pq

    parts = sorted((layout.convert / "galaxies").glob("part-*.parquet"))
    if not parts:
        return None
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)


def _mock_rows(settings: dict) -> int | None:
    from .mock.scales import SCALES

    scale = SCALES.get(settings.get("scale", "small"))
    if scale is None:
        return None
    return int(sum(scale.hp_rows)) if scale.hp_rows else scale.rows


def run_info(data_dir: str | Path = "data/mock") -> RunInfo:
    """Whether the run in ``data_dir`` is a mock and how many galaxies it has."""
    layout = paths.RunLayout.of(data_dir)
    record = layout.run_file("params")
    doc = json.loads(record.read_text()) if record.exists() else {}
    if "mock" in doc:
        settings = doc["mock"]
    else:
        stamp = layout.mirror / _STAMP
        settings = json.loads(stamp.read_text()) if stamp.exists() else None
    mock = settings is not None
    galaxies = _galaxies(layout)
    if galaxies is None and mock:
        galaxies = _mock_rows(settings)
    return RunInfo(mock, galaxies, doc.get("profile", ""), settings)


def mark_mock(fig) -> None:
    """Draw the MOCK mark into a matplotlib figure: a red label in its top-left corner and a
    faint word across it, so that no copy of the figure can pass for DESI's data."""
    fig.text(0.005, 0.995, f"{MOCK_MARK}: not DESI data", ha="left", va="top", fontsize=9,
             fontweight="bold", color="#b30000", gid=MOCK_GID, zorder=1000,
             bbox={"facecolor": "white", "edgecolor": "#b30000", "boxstyle": "round,pad=0.2"})
    size = max(36.0, 12.0 * float(min(fig.get_size_inches())))  # points: larger on larger figures
    fig.text(0.5, 0.5, MOCK_MARK, ha="center", va="center", fontsize=size, fontweight="bold",
             color="#b30000", alpha=0.12, rotation=20, gid=MOCK_GID + "-watermark", zorder=1000)


def _hook(fig) -> None:  # matplotlib's figure.hooks entry: "desivoids.runinfo:_hook"
    mark_mock(fig)


def mark_figures(mock: bool) -> None:
    """On a mock run, every figure pyplot makes from now on (in this process) carries the MOCK
    mark, through matplotlib's own ``figure.hooks``; on a real run, none does."""
    import matplotlib

    hook = f"{__name__}:_hook"
    hooks = [h for h in matplotlib.rcParams["figure.hooks"] if h != hook]
    matplotlib.rcParams["figure.hooks"] = hooks + [hook] if mock else hooks


def banner(data_dir: str | Path = "data/mock") -> None:
    """A stage chapter's first output: one line saying what the run is of, displayed as
    Markdown. Also sets :func:`mark_figures` for the figures the notebook draws."""
    from IPython.display import Markdown, display

    info = run_info(data_dir)
    mark_figures(info.mock)
    if info.mock:
        text = (f"**MOCK run** (profile `{info.profile or 'mock'}`): {info.sky}, with a planted "
                "answer. Nothing on this page is a measurement of the Universe.")
    else:
        text = f"**{info.sky}** (profile `{info.profile or 'dr1'}`)."
    display(Markdown(text))
