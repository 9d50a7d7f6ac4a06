"""Absolute paths of the project and of one run's outputs.

Everything is built from ``__file__`` or from parameters, never from the working directory, so
notebooks executed by papermill, nbval (which starts kernels in the notebook's folder) and the
command line all see the same files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
BOOK = ROOT / "book"
EXECUTED = BOOK / "executed"  # executed stage notebooks that the book renders (git-ignored)
BUILD = ROOT / "_build"
DATA = ROOT / "data"
BENCHMARKS = ROOT / "benchmarks"


def resolve(path: str | Path, base: Path = ROOT) -> Path:
    """An absolute path: ``path`` itself if absolute, else relative to ``base`` (the repo root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


@dataclass(frozen=True)
class RunLayout:
    """Where each stage of one run reads and writes, all below ``data_dir``.

    Stages talk only through these files and the database, so any stage can be rerun alone.
    """

    data_dir: Path

    @classmethod
    def of(cls, data_dir: str | Path) -> "RunLayout":
        return cls(resolve(data_dir))

    @property
    def mirror(self) -> Path:
        """Mock profile only: the local 'remote' that acquire fetches from (DESI relative layout)."""
        return self.data_dir / "mirror"

    @property
    def raw(self) -> Path:
        """Verified FITS files as fetched by acquire, in DESI's relative layout (dr1/...)."""
        return self.data_dir / "raw"

    @property
    def manifest(self) -> Path:
        return self.data_dir / "acquire" / "manifest.sqlite"

    @property
    def acquire(self) -> Path:
        return self.data_dir / "acquire"

    @property
    def recon(self) -> Path:
        return self.data_dir / "recon"

    @property
    def parquet(self) -> Path:
        return self.data_dir / "parquet"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'desivoids.sqlite'}"

    @property
    def reports(self) -> Path:
        return self.data_dir / "reports"
