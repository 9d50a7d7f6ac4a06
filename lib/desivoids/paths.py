"""Absolute paths of the project and of one run's outputs.

Everything is built from ``__file__`` or from parameters, never from the working directory, so
notebooks executed by papermill, nbval (which starts kernels in the notebook's folder) and the
command line all see the same files. A relative path given to the library (a notebook parameter,
a params file) is relative to the repository root; the command line turns the paths a user types
into absolute ones first, relative to the current directory (see :mod:`desivoids.stagecli`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = ROOT / "params"
BOOK = ROOT / "book"
EXECUTED = BOOK / "executed"  # executed stage notebooks that the book renders (git-ignored)
DATA = ROOT / "data"
BENCHMARKS = ROOT / "benchmarks"


def resolve(path: str | Path, base: Path = ROOT) -> Path:
    """An absolute path: ``path`` itself if absolute, else relative to ``base`` (the repo root)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def display(path: str | Path) -> str:
    """A path as a reader should see it: relative to the repository when inside it (a book page
    never shows the folders of the machine that built it), else as given."""
    p = Path(path)
    try:
        return p.resolve().relative_to(ROOT).as_posix() if p.is_absolute() else p.as_posix()
    except ValueError:
        return str(p)


def require(path: Path, stage: str) -> Path:
    """``path`` (an output of ``stage``), or an InputError saying which stage writes it."""
    if not Path(path).exists():
        from .errors import InputError

        raise InputError(path, None, None, f"not found: the {stage} stage writes it; run "
                         f"`desivoids {stage}` (or `desivoids run`) first")
    return Path(path)


def _check_read(stage: str, what: str) -> None:
    """While a stage's ``run`` runs (:func:`desivoids.stages.running`), refuse its opening the
    outputs of a stage that its registry entry does not declare in ``reads``."""
    from .stages import STAGES, active_stage

    reader = active_stage()
    if reader is None or stage == reader or stage not in STAGES or stage in STAGES[reader].reads:
        return
    from .errors import StageError

    raise StageError(f"the {reader} stage opened the {stage} stage's {what} but does not declare "
                     f"{stage!r} in its reads {list(STAGES[reader].reads)} "
                     "(lib/desivoids/stages.py)")


@dataclass(frozen=True)
class RunLayout:
    """Where each stage of one run writes, all below ``data_dir``: stage ``S`` owns ``data_dir/S/``
    (see :mod:`desivoids.stages`). Stages read each other's outputs only through these paths, so
    any stage can be rerun alone."""

    data_dir: Path

    @classmethod
    def of(cls, data_dir: str | Path) -> "RunLayout":
        return cls(resolve(data_dir))

    def stage(self, name: str) -> Path:
        """The output folder of a stage (refused, while another stage's ``run`` runs, if that
        stage does not declare ``name`` in its ``reads``: see :meth:`file`)."""
        _check_read(name, "folder")
        return self.data_dir / name

    def file(self, stage: str, key: str) -> Path:
        """The file (or folder) ``key`` that ``stage`` declares in its ``produces``
        (:mod:`desivoids.stages`): ``layout.file("environment", "assignments")``. While a stage's
        ``run`` runs, a file of a stage it does not declare in ``reads`` is refused (a
        :class:`~desivoids.errors.StageError`): the registry's ``reads`` is what it reads."""
        from .stages import file_name

        name = file_name(stage, key)
        _check_read(stage, f"{key!r} ({name})")
        return self.data_dir / stage / name

    @property
    def mirror(self) -> Path:
        """Mock profile only: the local 'remote' that acquire fetches from (DESI relative layout),
        written by the runner before the stages run."""
        return self.data_dir / "mirror"

    @property
    def mock_truth(self) -> Path:
        """Mock profile only: the mock's planted truth (truth.json) beside its mirror; absent on
        real data."""
        return self.mirror / "truth" / "truth.json"

    # acquire -------------------------------------------------------------------------------
    @property
    def acquire(self) -> Path:
        return self.stage("acquire")

    @property
    def raw(self) -> Path:
        """Verified FITS files as fetched by acquire, in DESI's relative layout (dr1/...)."""
        return self.file("acquire", "raw")

    @property
    def manifest(self) -> Path:
        return self.file("acquire", "manifest")

    @property
    def spectra(self) -> Path:
        """Tile spectra converted by acquire: one Parquet file per coadd, wavelength grids once."""
        return self.file("acquire", "spectra")

    # recon, convert, load ------------------------------------------------------------------
    @property
    def recon(self) -> Path:
        return self.stage("recon")

    @property
    def convert(self) -> Path:
        """The convert stage's Parquet tables (see desivoids.convert.columns)."""
        return self.stage("convert")

    @property
    def load(self) -> Path:
        return self.stage("load")

    # the runner's record of a run --------------------------------------------------------
    @property
    def run(self) -> Path:
        """Written by ``desivoids run``: the parameters as run and each stage's time and memory."""
        return self.data_dir / "run"

    def run_file(self, key: str) -> Path:
        """A file of the runner's record (``stages.RUN_FILES``: params, report, report_md)."""
        from .stages import RUN_FILES

        return self.run / RUN_FILES[key]

    # the shared database -------------------------------------------------------------------
    @property
    def database(self) -> Path:
        """The run's SQLite database (used when no db_url is given): each stage owns its tables."""
        return self.data_dir / "database" / "desivoids.sqlite"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.database}"

    def db_url(self, given: str = "") -> str:
        """``given`` when set (a PostgreSQL or SQLite URL), else the run's SQLite file."""
        return given or self.sqlite_url


# ------------------------------------------------------------------------------ containment
def safe_relative(relative: str, *, source: str, key: str | None = None) -> str:
    """``relative`` when it is a relative path of plain names (``a/b/c``), else an
    :class:`~desivoids.errors.UnsafePathError` naming ``source`` and ``key``: an absolute path,
    a ``..`` or ``.`` component, an empty name (``a//b``, ``""``), a backslash or a NUL byte.
    Checked on the text alone, so a listing or a parameter is refused before anything is opened
    (:func:`contained` adds the check of the folder's symlinks)."""
    from .errors import UnsafePathError

    key = relative if key is None else key
    text = relative if isinstance(relative, str) else str(relative)
    why = None
    if not text:
        why = "an empty name"
    elif "\0" in text or "\\" in text:
        why = "a NUL byte or a backslash in the path"
    elif text.startswith("/") or Path(text).is_absolute():
        why = "an absolute path"
    else:
        bad = next((p for p in text.split("/") if p in ("", ".", "..")), None)
        if bad is not None:
            why = f"a {bad!r} component" if bad else "an empty component ('//' or a trailing '/')"
    if why:
        raise UnsafePathError(source, key, f"refused: {why} would not stay inside the folder it is "
                              "written to; nothing was read or written for it")
    return text


def contained(base: str | Path, relative: str, *, source: str, key: str | None = None) -> Path:
    """``base / relative`` when it stays inside ``base`` once resolved, else an
    :class:`~desivoids.errors.UnsafePathError` naming ``source`` (where the path came from: a
    source's URL, a checksum list, a parameter) and ``key`` (the path as it gave it).

    The one check of every path a source, a listing, a checksum list or a parameter supplies
    before it is written to (or read from): :func:`safe_relative` on the text, then the resolved
    path (symlinks followed, the file itself need not exist) must lie below the resolved
    ``base``, so a symlink inside ``base`` leading out is refused too."""
    from .errors import UnsafePathError

    rel = safe_relative(relative, source=source, key=key)
    base = Path(base)
    target = base / rel
    root = base.resolve()
    try:
        target.resolve().relative_to(root)
    except ValueError:
        raise UnsafePathError(source, relative if key is None else key,
                              f"refused: {display(target)} leads outside {display(base)} (a symlink); "
                              "nothing was read or written for it") from None
    return target
