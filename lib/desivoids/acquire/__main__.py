"""``python -m desivoids.acquire ...``: the same as ``desivoids acquire ...``."""
import sys

from .cli import cli_main

sys.exit(cli_main())
