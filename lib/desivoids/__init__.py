"""desivoids: galaxies in DESI DR1 cosmic voids versus walls, per void-finding algorithm."""

__version__ = "0.1.0"
