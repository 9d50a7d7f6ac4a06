"""The recon stage: an inventory of every FITS file (its entry point and result type in
:mod:`desivoids.recon.stage`, as every stage's)."""
from .stage import (BLOCK, FITS_SUFFIXES, HEADER_KEYS, ColumnInfo, FileInfo, HduInfo, ReconError,
                    ReconResult, find_fits, inspect_file, inventory, run, tables, write)

__all__ = ["run", "ReconResult", "ReconError", "FileInfo", "HduInfo", "ColumnInfo", "inventory",
           "inspect_file", "find_fits", "tables", "write", "HEADER_KEYS", "FITS_SUFFIXES", "BLOCK"]
