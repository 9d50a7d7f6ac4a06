"""A mock DESI DR1 sky in the real file formats, with a planted, known answer.

``generate(out_dir, seed=..., scale="tiny"|"small"|"dr1", fastspec_version="v3.0"|"v2.1",
tiles=N)`` writes DESIVAST void catalogues, FastSpecFit catalogues and DESI-style .sha256sum
files in DESI's relative layout under ``out_dir``, and the planted truth under
``out_dir/truth`` (read only by tests). See generate.py for the steps and truth.py for the
membership rules the truth follows.
"""
from __future__ import annotations

from .generate import PLANTED_OFFSET, generate
from .scales import SCALES

__all__ = ["generate", "SCALES", "PLANTED_OFFSET"]
