"""sha256 of files and DESI's published ``.sha256sum`` lists, in one place for every stage."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

BLOCK = 8 << 20


def sha256_hash(path: str | Path, prefix: int | None = None) -> "hashlib._Hash":
    """The running sha256 of a file, or of its first ``prefix`` bytes (to resume a partial one)."""
    h = hashlib.sha256()
    left = prefix
    with open(path, "rb") as f:
        while left is None or left > 0:
            block = f.read(BLOCK if left is None else min(BLOCK, left))
            if not block:
                break
            h.update(block)
            if left is not None:
                left -= len(block)
    return h


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a whole file, read in 8 MiB blocks."""
    return sha256_hash(path).hexdigest()


def parse_sumfile(text: str, where: str = "") -> dict[str, str]:
    """``sha256sum`` output (``HEX  NAME`` or ``HEX *NAME``) -> {name: hex}; a malformed line is
    an error naming the file and line, not silently skipped."""
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"\s*([0-9a-fA-F]{64})\s+\*?(.+?)\s*", line)
        if not m:
            raise ValueError(f"{where or 'sha256sum file'} line {i}: not 'SHA256  NAME': {line[:80]!r}")
        name = m.group(2)
        out[name[2:] if name.startswith("./") else name] = m.group(1).lower()
    return out


def published_sums(folder: str | Path) -> dict[str, str]:
    """Every ``*.sha256sum`` list in ``folder``, keyed by base name (a list one level up that
    says ``catalogs/NAME`` still matches ``NAME``)."""
    sums = {}
    for sumfile in sorted(Path(folder).glob("*.sha256sum")):
        for name, digest in parse_sumfile(sumfile.read_text(), str(sumfile)).items():
            sums[Path(name).name] = digest
    return sums


def write_sumfile(folder: str | Path, reldir: str, names=None) -> Path:
    """Write a folder's DESI-style checksum list (``HEX  NAME`` lines, sorted by name) under the
    name DESI gives it (:func:`desivoids.formats.checksum_filename` of ``reldir``, the folder's
    place in the relative layout). ``names``: the files listed (default: every ``*.fits``)."""
    from .formats import checksum_filename

    folder = Path(folder)
    names = sorted(names) if names is not None else sorted(p.name for p in folder.glob("*.fits"))
    out = folder / checksum_filename(reldir)
    out.write_text("".join(f"{sha256_file(folder / n)}  {n}\n" for n in names))
    return out
