"""The convert stage: its entry point :func:`run` (the FITS files of ``input_dir``, or what
acquire verified, through :func:`.build.convert_files`) and its result type."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..params import checked
from ..paths import RunLayout, display, resolve
from . import fastspecfit
from .build import DEFAULT_CHUNK_ROWS, convert_files, discover
from .rawcheck import acquired_digests


@dataclass
class ConvertResult:
    out_dir: Path
    reconciliation: dict
    omega_m: float
    omega_m_source: str
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)
    #: wall seconds per phase (desivast, plan, chunks, duplicates, verify, publish); not written
    #: to the output, which stays deterministic
    timings: dict[str, float] = field(default_factory=dict)

    def table(self):
        from .reconcile import table

        return table(self.reconciliation)

    def __str__(self) -> str:
        lines = []
        for name, rows in sorted(self.rows.items()):
            rejected = sum(self.reconciliation["totals"][name]["rejected"].values())
            lines.append(f"  {name:<10} {rows:>10,d} rows  ({rejected:,d} rejected)")
        lines.append(f"convert: {display(self.out_dir)} in {self.seconds:.1f} s (Omega_m "
                     f"{self.omega_m}, {self.omega_m_source})")
        lines.append("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        return "\n".join(lines)



@checked("convert")
def run(data_dir: str = "data/mock", input_dir: str = "", extra_columns: list | tuple = (),
        chunk_rows: int = DEFAULT_CHUNK_ROWS, scheduler: str = "threads",
        scheduler_address: str = "", num_workers: int = 0, fastspec_version: str = "auto",
        omega_m: float = 0.0, strict: bool = False,
        compression: str = fastspecfit.DEFAULT_COMPRESSION,
        direct_io: bool = True) -> ConvertResult:
    """The convert stage: the FITS files of ``input_dir`` (default: what acquire verified,
    ``RunLayout.raw``) into ``RunLayout.convert``, replaced atomically on success.

    ``omega_m`` 0 takes OMEGAM from the DESIVAST headers; ``num_workers`` 0: two threads
    per core, or one process per core (``THREADS_PER_CORE``).
    """
    layout = RunLayout.of(data_dir)
    source = resolve(input_dir) if input_dir else layout.raw
    fast, vast = discover(source, fastspec_version)
    acquired = Path(source).resolve().is_relative_to(layout.acquire.resolve())
    expected = acquired_digests(layout.raw, layout.manifest) if acquired else None
    return convert_files(fast, vast, layout.convert, base=source, extra_columns=extra_columns,
                         chunk_rows=chunk_rows, scheduler=scheduler,
                         scheduler_address=scheduler_address, num_workers=num_workers or None,
                         strict=strict, omega_m=omega_m or None, compression=compression,
                         direct_io=direct_io, expected=expected)
