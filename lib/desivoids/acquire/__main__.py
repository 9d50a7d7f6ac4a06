"""``python -m desivoids.acquire ...``: the same as ``desivoids acquire ...``."""
import sys

from ..stagecli import main
from ..stages import STAGES

sys.exit(main(STAGES["acquire"], sys.argv[1:]))
