"""The convert stage's output contract: every Parquet table, its columns, types and meaning.

This module is the data dictionary of ``RunLayout.parquet``; the load stage, the notebooks and the
book read it rather than repeating it. Layout of ``RunLayout.of(data_dir).parquet``::

    galaxies/          Parquet dataset (several part files, one or more per FastSpecFit file)
    voids.parquet      one row per void, all four algorithms and both caps
    holes.parquet      VoidFinder HOLES (the spheres whose union is a void)
    zonevoid.parquet   V2 ZONEVOID, per algorithm and cap
    galzone.parquet    V2 GALZONE, per algorithm and cap
    rejects.parquet    every source row that is not in an output table, with its reason
    reconciliation.json  rows in / out / rejected by reason, per source file and HDU

Conventions:

- Column names are lower-case snake_case; the FITS source column is in each field's metadata
  (``source``), with its unit (``unit``) and a one-line ``description``.
- Native byte order; FITS fixed-width strings are decoded (ASCII/UTF-8) and stripped of padding.
- Every real number is float64 (FITS ``E`` columns are widened losslessly) and coordinates are
  float64; every integer is int64 except ``healpix`` (int32).
- Source values are copied unchanged: a NaN in the source stays NaN in a source column. The
  *derived* columns use null (not NaN) for "undefined" (``*_err`` where IVAR = 0, ``log_ssfr``
  where SFR = 0) so no sentinel value can leak into a statistic.
- Rows whose RA, DEC or Z is NaN/inf (galaxies), or whose position/radius is NaN/inf (holes,
  galzone), are not written to the table but to ``rejects`` with the reason; ``strict=True``
  turns each of them into a :class:`~desivoids.errors.FormatError` instead. Void rows are
  never rejected: a void with a non-finite value keeps its row, the value becomes null and the
  column is listed in ``nonfinite_columns`` (V2 membership goes through ZONEVOID, so dropping a
  void would orphan its galaxies).
- The schema is the same whatever the input: a file needs only the columns
  ``desivoids.formats.required_columns`` lists (the science's and this contract's); any other
  column below that the file lacks is null, and listed per file in the reconciliation's
  ``absent_columns``. A lossy but accepted encoding (ZWARN stored as a FITS logical, as
  astropy writes int8) is listed in ``file_notes``.
- Bad input stops the stage with a FormatError naming file, HDU and column (every problem of
  every file at once), and nothing is
  published: a truncated or unreadable file, a missing HDU or needed column, a mistyped column, HDUs
  not row-matched on TARGETID, a TARGETID twice anywhere in the catalogue, an empty DESIVAST
  table, or FastSpecFit files that are all empty. A single FastSpecFit file whose HDUs are all
  empty (a HEALPix pixel without galaxies) is accepted and listed in the reconciliation's
  ``empty_files`` (an error with ``strict=True``).
- Header keys of the source HDUs (OMEGAM, ZLIMU, DLIMU, MAGLIM, ...) are kept in each table's
  Parquet schema metadata under the key ``desivoids`` (JSON: ``{"sources": {file: {HDU:
  {key: value}}}, "omega_m": ..., ...}``), read from the files, never hard-coded.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from .. import formats
from ..formats import ALGORITHMS, CAPS  # one definition (formats), re-exported for readers

__all__ = [
    "Column", "GALAXY_COLUMNS", "LINES", "LINE_COLUMNS", "DERIVED_COLUMNS",
    "GALAXIES", "VOIDS", "HOLES", "ZONEVOID", "GALZONE", "REJECTS", "TABLES",
    "ALGORITHMS", "CAPS", "M_R_EVOLUTION", "V2_EDGE_AREA_RATIO", "METADATA_KEY",
    "galaxy_schema", "schema_of", "column_dictionary", "extra_column_name",
]

#: Key of the JSON document stored in every output file's Parquet schema metadata.
METADATA_KEY = b"desivoids"

#: M_r = ABSMAG01_SDSS_R + 0.97 (Z - 0.1): DESIVAST's evolution-corrected absolute magnitude.
M_R_EVOLUTION = 0.97
#: A V2 void is an edge void when EDGE_AREA / TOT_AREA exceeds this (DESIVAST, VAST V2Catalog).
V2_EDGE_AREA_RATIO = 0.1


@dataclass(frozen=True)
class Column:
    """One output column: its name and type, where it comes from and what it means.

    ``source`` is the FITS column (``None`` for derived columns). Whether a file must have it
    is desivoids.formats' decision (``required_columns``), not this table's: the contract here is
    the output, which is the same whatever the input.
    """

    name: str
    type: pa.DataType
    source: str | None
    unit: str
    description: str
    nullable: bool = True

    def field(self) -> pa.Field:
        meta = {"source": self.source or "derived", "unit": self.unit,
                "description": self.description}
        return pa.field(self.name, self.type, nullable=self.nullable, metadata=meta)


F8, I8, I4, STR, BOOL = pa.float64(), pa.int64(), pa.int32(), pa.string(), pa.bool_()

# --------------------------------------------------------------------------------------------
# galaxies: FastSpecFit v3.0 (METADATA + SPECPHOT + FASTSPEC) or v2.1 (FASTSPEC + METADATA).
# A source column is looked up in the HDUs in the order METADATA, SPECPHOT, FASTSPEC: the first
# HDU that has it supplies it (v2.1 FASTSPEC holds what v3.0 keeps in SPECPHOT).
# --------------------------------------------------------------------------------------------
GALAXY_COLUMNS: tuple[Column, ...] = (
    Column("targetid", I8, "TARGETID", "", "DESI target identifier (unique in the catalogue)",
           nullable=False),
    Column("survey", STR, "SURVEY", "", "survey, e.g. 'main' (decoded, stripped)"),
    Column("program", STR, "PROGRAM", "", "program, e.g. 'bright' (decoded, stripped)"),
    Column("healpix", I4, "HEALPIX", "", "HEALPix pixel of the coadd (nside 64, nested)"),
    Column("ra", F8, "RA", "deg", "right ascension (finite, else the row is rejected)",
           nullable=False),
    Column("dec", F8, "DEC", "deg", "declination (finite, else the row is rejected)",
           nullable=False),
    Column("z", F8, "Z", "", "redshift (finite, else the row is rejected)", nullable=False),
    Column("zwarn", I8, "ZWARN", "", "redrock warning bits (0: no warning)"),
    Column("deltachi2", F8, "DELTACHI2", "", "chi2 difference to the second-best redrock fit"),
    Column("spectype", STR, "SPECTYPE", "", "redrock spectral type: GALAXY, QSO or STAR"),
    Column("desi_target", I8, "DESI_TARGET", "", "DESI targeting bits"),
    Column("bgs_target", I8, "BGS_TARGET", "", "BGS targeting bits (bit 1: BGS_BRIGHT)"),
    Column("mws_target", I8, "MWS_TARGET", "", "MWS targeting bits"),
    Column("scnd_target", I8, "SCND_TARGET", "", "secondary targeting bits"),
    Column("logmstar", F8, "LOGMSTAR", "log10(Msun)", "stellar mass, h=1, Chabrier IMF"),
    Column("logmstar_ivar", F8, "LOGMSTAR_IVAR", "log10(Msun)^-2",
           "inverse variance of logmstar (absent in v2.1: null)"),
    Column("sfr", F8, "SFR", "Msun/yr", "star-formation rate, h=1 (exactly 0 for many galaxies)"),
    Column("sfr_ivar", F8, "SFR_IVAR", "(Msun/yr)^-2",
           "inverse variance of sfr (absent in v2.1: null)"),
    Column("dn4000", F8, "DN4000", "", "4000 A break, emission-line subtracted"),
    Column("dn4000_ivar", F8, "DN4000_IVAR", "", "inverse variance of dn4000"),
    Column("age", F8, "AGE", "Gyr", "light-weighted stellar age"),
    Column("zzsun", F8, "ZZSUN", "", "stellar metallicity Z/Zsun"),
    Column("absmag01_sdss_u", F8, "ABSMAG01_SDSS_U", "mag", "absolute mag, SDSS u at z=0.1, h=1"),
    Column("absmag01_sdss_g", F8, "ABSMAG01_SDSS_G", "mag", "absolute mag, SDSS g at z=0.1, h=1"),
    Column("absmag01_sdss_r", F8, "ABSMAG01_SDSS_R", "mag", "absolute mag, SDSS r at z=0.1, h=1"),
)

#: Emission lines whose flux and equivalent width (with inverse variances) are kept.
LINES = formats.READ_LINES


def _line_columns() -> tuple[Column, ...]:
    cols = []
    for line in LINES:
        lo = line.lower()
        cols += [
            Column(f"{lo}_flux", F8, f"{line}_FLUX", "1e-17 erg/s/cm2", f"{line} line flux"),
            Column(f"{lo}_flux_ivar", F8, f"{line}_FLUX_IVAR", "(1e-17 erg/s/cm2)^-2",
                   f"{line} flux inverse variance"),
            Column(f"{lo}_ew", F8, f"{line}_EW", "Angstrom", f"{line} rest-frame equivalent width"),
            Column(f"{lo}_ew_ivar", F8, f"{line}_EW_IVAR", "Angstrom^-2",
                   f"{line} equivalent-width inverse variance"),
        ]
    return tuple(cols)


LINE_COLUMNS = _line_columns()

#: Provenance and derived columns, appended after the source columns (and any extra columns).
DERIVED_COLUMNS: tuple[Column, ...] = (
    Column("logmstar_err", F8, None, "log10(Msun)",
           "1/sqrt(logmstar_ivar); null where the IVAR is 0, non-finite or absent"),
    Column("sfr_err", F8, None, "Msun/yr", "1/sqrt(sfr_ivar); null where the IVAR is 0 or absent"),
    Column("dn4000_err", F8, None, "", "1/sqrt(dn4000_ivar); null where the IVAR is 0"),
    Column("sfr_zero", BOOL, None, "",
           "SFR == 0 exactly. log_ssfr is null for these rows; the sSFR quenched definition "
           "counts them as quenched (not missing, not log10(1e-15))"),
    Column("log_ssfr", F8, None, "log10(1/yr)",
           "log10(SFR) - LOGMSTAR; null where SFR <= 0 or either input is non-finite"),
    Column("m_r", F8, None, "mag",
           "M_r = ABSMAG01_SDSS_R + 0.97 (Z - 0.1), as DESIVAST defines it (MAGLIM cut)"),
    Column("comoving_distance", F8, None, "Mpc/h",
           "line-of-sight comoving distance at Z, flat LCDM H0=100h, Omega_m in the metadata; "
           "null for Z < 0"),
    Column("comoving_x", F8, None, "Mpc/h", "r cos(dec) cos(ra)"),
    Column("comoving_y", F8, None, "Mpc/h", "r cos(dec) sin(ra)"),
    Column("comoving_z", F8, None, "Mpc/h", "r sin(dec)"),
    Column("source_file", STR, None, "", "FastSpecFit file, relative to the raw directory",
           nullable=False),
    Column("source_row", I8, None, "", "0-based row of the file's HDUs (row-matched)",
           nullable=False),
)


def extra_column_name(fits_name: str) -> str:
    """Output name of an extra FastSpecFit column requested by parameter: lower case."""
    return fits_name.strip().lower()


def galaxy_schema(extra: dict[str, pa.DataType] | None = None) -> pa.Schema:
    """The galaxies schema; ``extra`` maps extra output names to their arrow types (appended
    after the line columns, before the derived ones)."""
    fields = [c.field() for c in GALAXY_COLUMNS + LINE_COLUMNS]
    for name, typ in (extra or {}).items():
        fields.append(pa.field(name, typ, metadata={"source": name.upper(), "unit": "",
                                                   "description": "extra column (parameter)"}))
    fields += [c.field() for c in DERIVED_COLUMNS]
    return pa.schema(fields)


# --------------------------------------------------------------------------------------------
# DESIVAST
# --------------------------------------------------------------------------------------------
VOID_COLUMNS: tuple[Column, ...] = (
    Column("algorithm", STR, None, "", "VoidFinder, REVOLVER, VIDE or ZOBOV", nullable=False),
    Column("cap", STR, None, "", "NGC or SGC (from the file name)", nullable=False),
    Column("void", I8, "VOID", "", "void id within (algorithm, cap); VoidFinder: MAXIMALS.VOID",
           nullable=False),
    Column("x", F8, "X", "Mpc/h", "void centre, comoving (VoidFinder: the maximal sphere's)"),
    Column("y", F8, "Y", "Mpc/h", "void centre, comoving"),
    Column("z", F8, "Z", "Mpc/h", "void centre, comoving"),
    Column("ra", F8, "RA", "deg", "RA of the centre wrapped to [0, 360) (VoidFinder writes "
           "atan(y/x)+180 which can be negative)"),
    Column("dec", F8, "DEC", "deg", "Dec of the centre"),
    Column("r", F8, "R", "Mpc/h", "comoving distance of the centre (VoidFinder only; V2 null)"),
    Column("redshift", F8, "REDSHIFT", "", "redshift of the centre (V2 only; VoidFinder null)"),
    Column("radius", F8, "RADIUS", "Mpc/h", "the source RADIUS column as is: VoidFinder the "
           "radius of the void's largest (maximal) sphere; V2 the effective radius"),
    Column("r_eff", F8, "R_EFF|RADIUS", "Mpc/h", "effective radius of the void: VoidFinder "
           "R_EFF, V2 RADIUS"),
    Column("r_eff_uncert", F8, "R_EFF_UNCERT", "Mpc/h", "uncertainty of r_eff (VoidFinder only)"),
    Column("edge", I8, "EDGE", "", "VoidFinder EDGE: 0 interior, 1 a hole touches the boundary, "
           "2 a hole within 10 Mpc/h of it; V2 null"),
    Column("tot_area", F8, "TOT_AREA", "(Mpc/h)^2", "V2 total void surface area; VoidFinder null"),
    Column("edge_area", F8, "EDGE_AREA", "(Mpc/h)^2", "V2 surface area on the survey edge"),
    Column("edge_area_ratio", F8, None, "", "V2 EDGE_AREA / TOT_AREA; VoidFinder null"),
    Column("is_edge", BOOL, None, "", "edge void: VoidFinder EDGE != 0; V2 edge_area_ratio > 0.1"
           "; null when the deciding value is non-finite"),
    *(Column(f"{a}{i}".lower(), F8, f"{a}{i}", "Mpc/h",
             f"ellipsoid axis {i}, {a} component (V2 only)")
      for i in (1, 2, 3) for a in ("X", "Y", "Z")),
    Column("nonfinite_columns", STR, None, "", "source columns that were NaN/inf in this row "
           "(their values are null here), comma-separated; null when none"),
    Column("source_file", STR, None, "", "DESIVAST file, relative to the raw directory",
           nullable=False),
    Column("source_row", I8, None, "", "0-based row in MAXIMALS (VoidFinder) or VOIDS (V2)",
           nullable=False),
)

HOLE_COLUMNS: tuple[Column, ...] = (
    Column("cap", STR, None, "", "NGC or SGC", nullable=False),
    Column("void", I8, "VOID", "", "VoidFinder void id (MAXIMALS.VOID) of this hole",
           nullable=False),
    Column("hole_index", I8, None, "", "0-based row of HOLES in file order (membership takes "
           "the first hole, in this order, that contains a galaxy)", nullable=False),
    Column("x", F8, "X", "Mpc/h", "hole centre", nullable=False),
    Column("y", F8, "Y", "Mpc/h", "hole centre", nullable=False),
    Column("z", F8, "Z", "Mpc/h", "hole centre", nullable=False),
    Column("radius", F8, "RADIUS", "Mpc/h", "hole radius", nullable=False),
    Column("source_file", STR, None, "", "DESIVAST VoidFinder file", nullable=False),
)

ZONEVOID_COLUMNS: tuple[Column, ...] = (
    Column("algorithm", STR, None, "", "REVOLVER, VIDE or ZOBOV (the file it came from: each "
           "V2 file carries its own pruning's ZONEVOID)", nullable=False),
    Column("cap", STR, None, "", "NGC or SGC", nullable=False),
    Column("zone", I8, "ZONE", "", "zone id", nullable=False),
    Column("void0", I8, "VOID0", "", "smallest void holding the zone; -1: none", nullable=False),
    Column("void1", I8, "VOID1", "", "largest void holding the zone; -1: none", nullable=False),
    Column("source_file", STR, None, "", "DESIVAST V2 file", nullable=False),
    Column("source_row", I8, None, "", "0-based row of ZONEVOID", nullable=False),
)

GALZONE_COLUMNS: tuple[Column, ...] = (
    Column("algorithm", STR, None, "", "REVOLVER, VIDE or ZOBOV (file it came from)",
           nullable=False),
    Column("cap", STR, None, "", "NGC or SGC", nullable=False),
    Column("gal", I8, "GAL", "", "galaxy index in the tessellation", nullable=False),
    Column("targetid", I8, "TARGET", "", "DESI TARGETID of the tracer", nullable=False),
    Column("x", F8, "X", "Mpc/h", "tracer position", nullable=False),
    Column("y", F8, "Y", "Mpc/h", "tracer position", nullable=False),
    Column("z", F8, "Z", "Mpc/h", "tracer position", nullable=False),
    Column("zone", I8, "ZONE", "", "zone of the tracer; -1: none", nullable=False),
    Column("depth", I8, "DEPTH", "", "depth of the tracer in its zone"),
    Column("edge", I8, "EDGE", "", "1: Voronoi cell on the boundary"),
    Column("out", I8, "OUT", "", "1: outside the mask"),
    Column("source_file", STR, None, "", "DESIVAST V2 file", nullable=False),
    Column("source_row", I8, None, "", "0-based row of GALZONE", nullable=False),
)

REJECT_COLUMNS: tuple[Column, ...] = (
    Column("table", STR, None, "", "output table the row would have gone to", nullable=False),
    Column("source_file", STR, None, "", "file, relative to the raw directory", nullable=False),
    Column("hdu", STR, None, "", "EXTNAME of the HDU holding the row", nullable=False),
    Column("source_row", I8, None, "", "0-based row in that HDU", nullable=False),
    Column("key", I8, None, "", "TARGETID (galaxies, galzone), VOID (holes) or ZONE"),
    Column("column", STR, None, "", "source column that failed the check", nullable=False),
    Column("reason", STR, None, "", "'nonfinite' (NaN/inf) or 'out_of_range' (RA outside "
           "[0, 360], |DEC| > 90); the reconciliation counts '<reason>:<column>'",
           nullable=False),
)


def _schema(cols: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([c.field() for c in cols])


GALAXIES = galaxy_schema()
VOIDS = _schema(VOID_COLUMNS)
HOLES = _schema(HOLE_COLUMNS)
ZONEVOID = _schema(ZONEVOID_COLUMNS)
GALZONE = _schema(GALZONE_COLUMNS)
REJECTS = _schema(REJECT_COLUMNS)

#: Output name (file ``<name>.parquet``, or the ``galaxies/`` dataset directory) -> schema.
TABLES: dict[str, pa.Schema] = {
    "galaxies": GALAXIES, "voids": VOIDS, "holes": HOLES, "zonevoid": ZONEVOID,
    "galzone": GALZONE, "rejects": REJECTS,
}

_COLUMNS: dict[str, tuple[Column, ...]] = {
    "galaxies": GALAXY_COLUMNS + LINE_COLUMNS + DERIVED_COLUMNS, "voids": VOID_COLUMNS,
    "holes": HOLE_COLUMNS, "zonevoid": ZONEVOID_COLUMNS, "galzone": GALZONE_COLUMNS,
    "rejects": REJECT_COLUMNS,
}


def schema_of(table: str) -> pa.Schema:
    """The pyarrow schema of an output table (galaxies without extra columns)."""
    return TABLES[table]


def _required(table: str, col: Column) -> bool | None:
    """Must a source file have this column (formats.required_columns)? None for derived ones."""
    if col.source is None:
        return None
    if table == "galaxies":
        return col.source in formats.GALAXY_REQUIRED
    hdus = {"voids": ("MAXIMALS", "VOIDS"), "holes": ("HOLES",), "zonevoid": ("ZONEVOID",),
            "galzone": ("GALZONE",)}.get(table, ())
    need = {c for k in formats.DESIVAST_KINDS for h in hdus
            if h in formats.DESIVAST_READ_HDUS[k] for c in formats.required_columns(k, h)}
    return any(s in need for s in col.source.split("|"))


def column_dictionary():
    """The data dictionary as a pandas DataFrame: table, column, type, source, whether a source
    file must have it (``required``; otherwise null where absent), unit, meaning."""
    import pandas as pd

    rows = [{"table": t, "column": c.name, "type": str(c.type), "nullable": c.nullable,
             "source": c.source or "derived", "required": _required(t, c), "unit": c.unit,
             "description": c.description}
            for t, cols in _COLUMNS.items() for c in cols]
    return pd.DataFrame(rows)
