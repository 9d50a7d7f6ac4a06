"""The executable specification of the DESI DR1 files this project reads.

Readers, validators and the mock sky all code against this module, so "what a real file looks
like" is written down once. Data only: file-name patterns, relative DESI paths, HDUs by EXTNAME
in order, columns in order with FITS TFORM (and TUNIT where the real file has one), header keys,
real DR1 row counts, and the bit masks needed for the tracer selection.

Sources (see desi-data-formats.md in shared/reference for the project's summary):

- DESIVAST: desi-data-formats.md (column lists, order, K/D types, TUNIT 'Mpc h-1', header keys,
  row counts), itself from DESI-UR/VAST and hbrincon/DESIVAST. Established there: HDU names and
  order, column names and order, int64/float64, TUNIT 'Mpc h-1' on lengths. NOT established
  exactly and chosen here: TUNIT on RA/DEC ('deg'), on TOT_AREA/EDGE_AREA ('Mpc2 h-2'), the
  order of the primary header keys, and the TRIANGLE/GALVIZ column types (they are
  visualisation-only; readers must not depend on them).
- FastSpecFit v3.0 (fastspecfit 3.1.5, iron): desihub/fastspecfit doc/fastspec.rst (the
  METADATA/SPECPHOT/FASTSPEC/MODELS datamodel with TAUV, i.e. the 3.x data model), restricted to
  the columns present for healpix coadds of the main survey (footnotes [1] healpix-only columns
  kept; [2],[3] tile/exposure-only and [5] CMX/SV-only columns dropped). Emission lines: that page
  lists 45 line names; the 3.x line list (py/fastspecfit/data/emlines.ecsv of the 3.x series)
  adds LYALPHA in front, giving 46 lines, and then FASTSPEC has 35 + 46 x 18 + 4 x 6 = 887
  columns, exactly the documented count -- the per-line block (18 columns) and the moment block
  are therefore consistent with the real file. Counts: METADATA here has 53 columns (the real
  file has 54: one column of the real file is not identified by the sources found), SPECPHOT
  has 126 (the real file has 127: likewise one unidentified, probably KCORR00_TWOMASS_J, which
  the datamodel omits although it lists ABSMAG00_TWOMASS_J; it is NOT included here because no
  source confirms it). Readers must therefore check "expected columns present", not "exactly
  these columns", for METADATA and SPECPHOT -- see :func:`required_columns`.
  Types: int64 K, int32 J, float32 E, float64 D, bool L, fixed-width strings nA; ZWARN is int8,
  which FITS stores as TFORM 'B' with TZERO = -128 (what fitsio/cfitsio write; astropy's Table
  writer stores int8 as a logical 'L' instead, which readers accept with the bits lost: see
  :func:`accepts`).
  String widths of SURVEY/PROGRAM/TILEID_LIST/SUBTYPE are not documented for the merged
  catalogue; widths here are sensible maxima (readers must decode and strip, never rely on width).
  The files carry no reliable TUNIT (desi-data-formats.md): no TUNIT is specified for FastSpecFit
  columns here; the documented physical unit of each column is recorded in ``Column.unit``.
- FastSpecFit v2.1 (fastspecfit 2.5.0): PRIMARY, FASTSPEC, METADATA; FASTSPEC carries
  Z, COEFF, AV (not TAUV), AGE, ZZSUN, LOGMSTAR, SFR (no *_IVAR for mass/SFR), DN4000, ABSMAG,
  KCORR, line measurements (doc/fastspec.rst of the 2.x series). Only the key columns and the
  per-line block are encoded for v2.1 (the full 2.x list was not established).

Everything returned is immutable; use :func:`expected_hdus`, :func:`columns`,
:func:`key_columns`, :func:`classify` and :func:`relpath`. What a reader demands of a file
(which may have been written by other code) is the last section: :func:`required_columns`,
:func:`read_columns`, :func:`value_kind`/:func:`accepts` and :func:`check_file`, the one
judgement that recon and convert both apply, and :func:`locate` (files by DESI name in any
folder).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One binary-table column: FITS TFORM (e.g. 'K', 'D', 'E', 'J', 'B', 'L', '6A', '5E'),
    TUNIT as written in the real file (None: no TUNIT card), TZERO if any, and the documented
    physical unit (which may differ from TUNIT: FastSpecFit files carry none reliably)."""

    name: str
    tform: str
    tunit: Optional[str] = None
    tzero: Optional[int] = None
    unit: Optional[str] = None

    @property
    def numpy_dtype(self) -> str:
        """Big-endian numpy dtype string of one cell (as stored on disk, before TZERO)."""
        return tform_to_dtype(self.tform)


@dataclass(frozen=True)
class HeaderKey:
    """A header keyword the real file carries, its Python type and a comment."""

    key: str
    type: type
    comment: str = ""


@dataclass(frozen=True)
class HDUSpec:
    """One HDU: EXTNAME, columns (None for an image/empty primary HDU) and header keys."""

    extname: str
    columns: Optional[tuple[Column, ...]] = None
    header_keys: tuple[HeaderKey, ...] = ()
    #: True when the real file carries more columns than listed (see module docstring)
    open_ended: bool = False
    #: number of columns in the real file, where known
    real_ncols: Optional[int] = None
    #: the real files carry it but nothing here reads it (V2 TRIANGLE/GALVIZ, visualisation
    #: only): a file without it is complete, which readers report as a note, not a fault
    optional: bool = False

    @property
    def colnames(self) -> tuple[str, ...]:
        return tuple(c.name for c in (self.columns or ()))


@dataclass(frozen=True)
class FileKind:
    """A kind of DESI file: where it lives, how it is named, and its HDUs in order."""

    kind: str
    reldir: str
    pattern: str  # regex on the file name (basename)
    hdus: tuple[HDUSpec, ...]
    description: str = ""
    names: tuple[str, ...] = field(default_factory=tuple)  # every real file name of this kind

    def hdu(self, extname: str) -> HDUSpec:
        for h in self.hdus:
            if h.extname == extname:
                return h
        raise KeyError(f"{self.kind}: no HDU with EXTNAME {extname!r}; "
                       f"expected one of {[h.extname for h in self.hdus]}")


_TFORM_RE = re.compile(r"^(\d*)([LXBIJKAEDCMPQ])$")
#: big-endian numpy type of one element of each FITS binary-table code (FITS standard 4.0,
#: table 18); 'L' is one byte holding 'T', 'F' or 0
TFORM_ELEMENT_DTYPE = {"L": "i1", "B": "u1", "I": ">i2", "J": ">i4", "K": ">i8",
                       "E": ">f4", "D": ">f8", "C": ">c8", "M": ">c16"}


def tform_to_dtype(tform: str) -> str:
    """Big-endian numpy dtype string for a FITS TFORM (repeat counts become subarrays)."""
    m = _TFORM_RE.match(tform.strip())
    if not m:
        raise ValueError(f"unsupported TFORM {tform!r}")
    rep, code = m.groups()
    n = int(rep) if rep else 1
    if code == "A":
        return f"S{n}"
    if code not in TFORM_ELEMENT_DTYPE:
        raise ValueError(f"unsupported TFORM {tform!r}")
    base = TFORM_ELEMENT_DTYPE[code]
    return base if n == 1 else f"({n},){base}"


def _cols(spec: str, tunit: Optional[str] = None) -> tuple[Column, ...]:
    """'X:D Y:D VOID:K' -> Columns; a ':D@Mpc h-1' suffix sets a TUNIT."""
    out = []
    for item in spec.split():
        name, rest = item.split(":", 1)
        unit = tunit
        if "@" in rest:
            rest, unit = rest.split("@", 1)
            unit = unit.replace("_", " ")
        out.append(Column(name, rest, tunit=unit))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Where the data lives (DESI relative layout; identical on the HTTPS portal, S3, local mirrors)
# --------------------------------------------------------------------------------------------

HTTPS_ROOT = "https://data.desi.lbl.gov/public/"
S3_BUCKET = "desidata"
S3_REGION = "us-west-2"

RELEASE = "dr1"
SPECPROD = "iron"
VAC_DIR = f"{RELEASE}/vac/dr1"
DESIVAST_ROOT = f"{VAC_DIR}/desivast"
DESIVAST_VERSION = "v1.0"
DESIVAST_DIR = f"{DESIVAST_ROOT}/{DESIVAST_VERSION}"
FASTSPEC_ROOT = f"{VAC_DIR}/fastspecfit/{SPECPROD}"
FASTSPEC_VERSIONS = ("v3.0", "v2.1")


def fastspec_dir(version: str) -> str:
    """The catalogue folder of a FastSpecFit version, e.g. dr1/vac/dr1/fastspecfit/iron/v3.0/catalogs."""
    return f"{FASTSPEC_ROOT}/{version}/catalogs"


FASTSPEC_V3_DIR = fastspec_dir("v3.0")
FASTSPEC_V21_DIR = fastspec_dir("v2.1")
REDUX_DIR = f"{RELEASE}/spectro/redux/{SPECPROD}"
TILES_DIR = f"{REDUX_DIR}/tiles/cumulative"
HEALPIX_DIR = f"{REDUX_DIR}/healpix"


def checksum_filename(reldir: str) -> str:
    """DESI's checksum-list name for a folder of the relative layout: the path with '/' -> '_',
    from the release for value-added catalogues (``dr1_vac_dr1_desivast_v1.0.sha256sum`` in
    dr1/vac/dr1/desivast/v1.0, established) and from below ``spectro/`` for the spectroscopic
    reductions (``redux_iron_tiles_cumulative_80613_20210324.sha256sum``). Applied by the same
    convention to the FastSpecFit catalogue folders (not verified against the real portal)."""
    parts = reldir.strip("/").split("/")
    if len(parts) > 2 and parts[1] == "spectro":
        parts = parts[2:]
    return "_".join(parts) + ".sha256sum"


DESIVAST_CHECKSUM = f"{DESIVAST_DIR}/{checksum_filename(DESIVAST_DIR)}"
FASTSPEC_V3_CHECKSUM = f"{FASTSPEC_V3_DIR}/{checksum_filename(FASTSPEC_V3_DIR)}"
FASTSPEC_V21_CHECKSUM = f"{FASTSPEC_V21_DIR}/{checksum_filename(FASTSPEC_V21_DIR)}"

CAPS = ("NGC", "SGC")
V2_ALGORITHMS = ("REVOLVER", "VIDE", "ZOBOV")
ALGORITHMS = ("VoidFinder",) + V2_ALGORITHMS

#: NGC is 83 < RA < 304 degrees; everything else is SGC (science.md)
NGC_RA_MIN, NGC_RA_MAX = 83.0, 304.0


# --------------------------------------------------------------------------------------------
# The void catalogues: one record per (algorithm, cap), each of a family. A family says how its
# files are laid out and what its voids are made of, as VAST's VoidFinderCatalog and V2Catalog
# do; code dispatches on the family's attributes, never on an algorithm's name. A fifth
# catalogue is one entry in FAMILY_OF; a new family is one more Family (and its membership).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    #: the file name, with ``{algorithm}`` and ``{cap}``
    filename: str
    #: the key of :data:`KINDS` that describes its files' HDUs and columns
    kind: str
    #: the HDU with one row per void
    void_hdu: str
    #: voids are unions of spheres (HOLES): membership by hole, galaxies on hole surfaces, the
    #: FIELD HDU of files VAST writes
    holes: bool
    #: the tracers of its tessellation (GALZONE) carry zones: membership by nearest tracer
    zones: bool
    #: its header limits are the ones used when the two families round them differently
    reference_limits: bool
    #: how an interior void is told: the void table's column and the rule, in words
    interior_column: str
    interior_rule: str
    #: layout of the MASK HDU in files VAST writes: "radec" grid or "healpix_ring" map
    mask_scheme: str


VOIDFINDER = Family("VoidFinder", "DESIVAST_BGS_VOLLIM_VoidFinder_{cap}.fits", "voidfinder",
                    "MAXIMALS", holes=True, zones=False, reference_limits=True,
                    interior_column="EDGE", interior_rule="EDGE == 0", mask_scheme="radec")
V2 = Family("V2", "DESIVAST_BGS_VOLLIM_V2_{algorithm}_{cap}.fits", "v2", "VOIDS", holes=False,
            zones=True, reference_limits=False, interior_column="EDGE_AREA / TOT_AREA",
            interior_rule="EDGE_AREA / TOT_AREA <= 0.1", mask_scheme="healpix_ring")
#: every algorithm's family, in the order of ALGORITHMS
FAMILY_OF = {"VoidFinder": VOIDFINDER, "REVOLVER": V2, "VIDE": V2, "ZOBOV": V2}


@dataclass(frozen=True)
class Catalogue:
    """One void catalogue: an algorithm's file for one cap."""

    algorithm: str
    cap: str

    @property
    def family(self) -> Family:
        return FAMILY_OF[self.algorithm]

    @property
    def filename(self) -> str:
        return self.family.filename.format(algorithm=self.algorithm, cap=self.cap)


CATALOGUES = tuple(Catalogue(a, c) for a in FAMILY_OF for c in CAPS)


def family(algorithm: str) -> Family:
    """The family of an algorithm (KeyError naming it for an unknown one)."""
    try:
        return FAMILY_OF[algorithm]
    except KeyError:
        raise KeyError(f"unknown void-finding algorithm {algorithm!r}; known: "
                       f"{list(FAMILY_OF)}") from None


def catalogue_of(name: str) -> Catalogue | None:
    """The catalogue a file is, from its name (a path's last part), or None."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return next((c for c in CATALOGUES if c.filename == base), None)


def _names_pattern(algorithms) -> str:
    """A file-name regex matching exactly the catalogues of ``algorithms`` (both caps)."""
    return "^(?:" + "|".join(re.escape(c.filename) for c in CATALOGUES
                            if c.algorithm in algorithms) + ")$"


def voidfinder_filename(cap: str) -> str:
    return Catalogue("VoidFinder", cap).filename


def v2_filename(algorithm: str, cap: str) -> str:
    return Catalogue(algorithm, cap).filename


def fastspec_v3_filename(hp: int) -> str:
    return f"fastspec-iron-main-bright-nside1-hp{hp:02d}.fits"


FASTSPEC_V21_FILENAME = "fastspec-iron-main-bright.fits"

DESIVAST_FILES = tuple(
    [voidfinder_filename(c) for c in CAPS]
    + [v2_filename(a, c) for a in V2_ALGORITHMS for c in CAPS])
FASTSPEC_V3_FILES = tuple(fastspec_v3_filename(hp) for hp in range(12))

# --------------------------------------------------------------------------------------------
# Real DR1 row counts (desi-data-formats.md)
# --------------------------------------------------------------------------------------------

#: rows per FastSpecFit v3.0 main-bright file, hp00..hp11 (sum 6,445,927)
FASTSPEC_V3_ROWS = (101838, 1017041, 1358627, 403581, 981600, 301057, 1347464, 673711,
                    81734, 66856, 45570, 66848)
FASTSPEC_TOTAL_ROWS = 6_445_927
assert sum(FASTSPEC_V3_ROWS) == FASTSPEC_TOTAL_ROWS

#: rows per DESIVAST table and cap
DESIVAST_ROWS = {
    ("VoidFinder", "MAXIMALS"): {"NGC": 3241, "SGC": 524},
    ("VoidFinder", "HOLES"): {"NGC": 89_003, "SGC": 12_860},
    ("REVOLVER", "VOIDS"): {"NGC": 1692, "SGC": 300},
    ("VIDE", "VOIDS"): {"NGC": 1258, "SGC": 220},
    ("ZOBOV", "VOIDS"): {"NGC": 2950, "SGC": 569},
    ("V2", "ZONEVOID"): {"NGC": 2950, "SGC": 569},
    ("V2", "GALZONE"): {"NGC": 604_032, "SGC": 90_610},
}
#: total voids over the four algorithms and both caps
DESIVAST_TOTAL_VOIDS = 10_754
#: interior voids in Rincon et al. 2025 (ApJ 982, 38)
DESIVAST_INTERIOR_VOIDS = {"VoidFinder": 1484, "REVOLVER": 386, "VIDE": 295}

# --------------------------------------------------------------------------------------------
# Bits
# --------------------------------------------------------------------------------------------

#: desitarget main-survey bgs_mask bit numbers (BGS_TARGET column)
BGS_TARGET_BITS = {
    "BGS_FAINT": 0, "BGS_BRIGHT": 1, "BGS_WISE": 2, "BGS_FAINT_HIP": 3,
    "BGS_FAINT_NORTH": 8, "BGS_BRIGHT_NORTH": 9, "BGS_WISE_NORTH": 10,
    "BGS_FAINT_SOUTH": 16, "BGS_BRIGHT_SOUTH": 17, "BGS_WISE_SOUTH": 18,
}
BGS_BRIGHT = 1 << BGS_TARGET_BITS["BGS_BRIGHT"]

#: desitarget main-survey desi_mask bit numbers used here (DESI_TARGET column)
DESI_TARGET_BITS = {"LRG": 0, "ELG": 1, "QSO": 2, "BGS_ANY": 60, "MWS_ANY": 61, "SCND_ANY": 62}

#: Redrock ZWARN bits
ZWARN_BITS = {"SKY": 0, "LITTLE_COVERAGE": 1, "SMALL_DELTA_CHI2": 2, "NEGATIVE_MODEL": 3,
              "MANY_OUTLIERS": 4, "Z_FITLIMIT": 5, "NEGATIVE_EMISSION": 6, "UNPLUGGED": 7,
              "BAD_TARGET": 8, "NODATA": 9, "BAD_MINFIT": 10, "POORDATA": 11}

SPECTYPES = ("GALAXY", "QSO", "STAR")

# --------------------------------------------------------------------------------------------
# DESIVAST
# --------------------------------------------------------------------------------------------

MPC_H = "Mpc h-1"
_L = "@Mpc_h-1"

VAST_PRIMARY_KEYS = (
    HeaderKey("OMEGAM", float, "Omega_m of the flat LCDM cosmology"),
    HeaderKey("HP", int, "HEALPix (footprint) setting used by VAST"),
    HeaderKey("ZLIML", float, "lower redshift limit"),
    HeaderKey("ZLIMU", float, "upper redshift limit"),
    HeaderKey("DLIML", float, "lower comoving distance limit [Mpc/h]"),
    HeaderKey("DLIMU", float, "upper comoving distance limit [Mpc/h]"),
    HeaderKey("MAGLIM", float, "absolute magnitude limit of the tracers"),
)
VOIDFINDER_PRIMARY_KEYS = VAST_PRIMARY_KEYS + (
    HeaderKey("VOLUME", float, "survey volume [(Mpc/h)^3]"),
    HeaderKey("GALAXY", int, "number of galaxies"),
    HeaderKey("WALLNUM", int, "number of wall galaxies"),
    HeaderKey("FIELDNUM", int, "number of field galaxies"),
    HeaderKey("DENSITY", float, "galaxy number density [(Mpc/h)^-3]"),
    HeaderKey("AVSEP", float, "average galaxy separation [Mpc/h]"),
    HeaderKey("VOID", int, "number of voids"),
)

MAXIMALS = HDUSpec(
    "MAXIMALS",
    _cols(f"X:D{_L} Y:D{_L} Z:D{_L} RADIUS:D{_L} VOID:K EDGE:K R:D{_L} RA:D@deg DEC:D@deg "
          f"R_EFF:D{_L} R_EFF_UNCERT:D{_L}"),
    (HeaderKey("VOID", int, "number of voids"),),
)
HOLES = HDUSpec(
    "HOLES",
    _cols(f"X:D{_L} Y:D{_L} Z:D{_L} RADIUS:D{_L} VOID:K"),
    (HeaderKey("VOID", int, "number of voids"), HeaderKey("HOLE", int, "number of holes")),
)
V2_VOIDS = HDUSpec(
    "VOIDS",
    _cols(f"VOID:K X:D{_L} Y:D{_L} Z:D{_L} REDSHIFT:D RA:D@deg DEC:D@deg RADIUS:D{_L} "
          f"X1:D{_L} Y1:D{_L} Z1:D{_L} X2:D{_L} Y2:D{_L} Z2:D{_L} X3:D{_L} Y3:D{_L} Z3:D{_L} "
          "TOT_AREA:D@Mpc2_h-2 EDGE_AREA:D@Mpc2_h-2"),
)
ZONEVOID = HDUSpec("ZONEVOID", _cols("ZONE:K VOID0:K VOID1:K"))
GALZONE = HDUSpec("GALZONE", _cols(f"GAL:K TARGET:K X:D{_L} Y:D{_L} Z:D{_L} ZONE:K DEPTH:K "
                                   "EDGE:K OUT:K"))
TRIANGLE = HDUSpec("TRIANGLE", _cols(
    "VOID:K N_X:D N_Y:D N_Z:D P1_X:D P1_Y:D P1_Z:D P2_X:D P2_Y:D P2_Z:D P3_X:D P3_Y:D P3_Z:D"),
    optional=True)
GALVIZ = HDUSpec("GALVIZ", _cols("GID:K G2V:K G2V2:K"), optional=True)

# Files VAST writes itself (../fixtures/vast-sdss-dr7/README.md; VAST 1.7.6) differ from the
# DESIVAST VAC files in ways a reader must accept (issue 19.3):

#: extra HDUs VAST writes that the VAC lacks: MASK (VAST's own survey mask, an image), and
#: VoidFinder's WALL and FIELD galaxies (X, Y, Z); not converted, listed as skipped
VAST_EXTRA_HDUS = {"voidfinder": ("MASK", "WALL", "FIELD"), "v2": ("MASK",),
                   "v2_zobov": ("MASK",)}
#: VoidFinder's MASK: a (360 MSKRES, 180 MSKRES) int image of the RA-Dec grid cells in the
#: survey (index [int(MSKRES ra), int(MSKRES dec) + 90 MSKRES]), its resolution in header key
#: MSKRES (cells per degree; also in the primary header); V2's MASK: a 1-D HEALPix map (RING
#: order, as healpy writes it) with NSIDE in the primary header
MASK_HDU = "MASK"
MASK_RESOLUTION_KEY = "MSKRES"
V2_MASK_NSIDE_KEY = "NSIDE"
#: columns VAST adds only when its calculate_r_eff runs (absent from find_voids' output): the
#: convert stage computes them where absent (desivoids.convert.reff), so they are not required
VOIDFINDER_COMPUTED_COLUMNS = ("R_EFF", "R_EFF_UNCERT")
#: VAST writes column names in lower case by default (capitalize_colnames=False); DESIVAST's are
#: upper case. Readers match DESIVAST column names case-insensitively.
DESIVAST_COLUMN_NAMES_ANY_CASE = True
#: MAGLIM is written without a value (a FITS undefined value) when no magnitude cut was made;
#: VoidFinder then writes MAGCUT = F and no MAGLIM at all
MAGLIM_KEY, MAGCUT_KEY = "MAGLIM", "MAGCUT"
#: VoidFinder and V2 round the far limit differently in their headers (DR7: ZLIMU 0.1026 vs
#: 0.103, DLIMU 300.0 vs 300.0033): header values agree when within these absolute tolerances,
#: and the VoidFinder value is used (it is the limit VoidFinder's holes were grown within)
HEADER_TOLERANCES = {"ZLIMU": 5e-4, "ZLIML": 5e-4, "DLIMU": 0.5, "DLIML": 0.5}
#: GALZONE OUT flag: 1 for an input galaxy outside the mask or the distance limits (VAST lists
#: every input galaxy; those beyond the far limit have OUT = 1 and ZONE -1)
GALZONE_OUT = 1

PRIMARY_VOIDFINDER = HDUSpec("PRIMARY", None, VOIDFINDER_PRIMARY_KEYS)
PRIMARY_V2 = HDUSpec("PRIMARY", None, VAST_PRIMARY_KEYS)

# --------------------------------------------------------------------------------------------
# FastSpecFit
# --------------------------------------------------------------------------------------------

#: the 46 emission lines of FastSpecFit 3.x, in file order (45 from doc/fastspec.rst + LYALPHA)
FASTSPEC_LINES = (
    "LYALPHA", "NV_1240", "OI_1304", "SILIV_1396", "CIV_1549", "HEII_1640", "ALIII_1857",
    "SILIII_1892", "CIII_1908", "MGII_2796", "MGII_2803", "NEV_3346", "NEV_3426", "OII_3726",
    "OII_3729", "NEIII_3869", "H6", "H6_BROAD", "HEPSILON", "HEPSILON_BROAD", "HDELTA",
    "HDELTA_BROAD", "HGAMMA", "HGAMMA_BROAD", "OIII_4363", "HEI_4471", "HEII_4686", "HBETA",
    "HBETA_BROAD", "OIII_4959", "OIII_5007", "NII_5755", "HEI_5876", "OI_6300", "SIII_6312",
    "NII_6548", "HALPHA", "HALPHA_BROAD", "NII_6584", "SII_6716", "SII_6731", "ARIII_7135",
    "OII_7320", "OII_7330", "SIII_9069", "SIII_9532",
)
assert len(FASTSPEC_LINES) == 46
#: lines with the moment columns (LINENAME2 in the datamodel)
FASTSPEC_MOMENT_LINES = ("CIV_1549", "MGII_2800", "HBETA", "OIII_5007")

_FLUX = "1e-17 erg / (cm2 s)"
_FLAM = "1e-17 erg / (Angstrom cm2 s)"
#: per-line suffixes, TFORM and documented unit, in file order
FASTSPEC_LINE_SUFFIXES = (
    ("MODELAMP", "E", _FLAM), ("AMP", "E", _FLAM), ("AMP_IVAR", "E", None),
    ("FLUX", "E", _FLUX), ("FLUX_IVAR", "E", None), ("BOXFLUX", "E", _FLUX),
    ("BOXFLUX_IVAR", "E", None), ("VSHIFT", "E", "km / s"), ("VSHIFT_IVAR", "E", None),
    ("SIGMA", "E", "km / s"), ("SIGMA_IVAR", "E", None), ("CONT", "E", _FLAM),
    ("CONT_IVAR", "E", None), ("EW", "E", "Angstrom"), ("EW_IVAR", "E", None),
    ("FLUX_LIMIT", "E", "erg / (cm2 s)"), ("CHI2", "E", None), ("NPIX", "J", None),
)
#: the 2.x per-line block (fastspecfit doc/fastspec.rst of a 2.x release, and a 2.5-3.0 io.py):
#: VSHIFT and SIGMA without inverse variances, and an EW_LIMIT (tests/golden/fastspec_v21.yaml)
FASTSPEC_V21_LINE_SUFFIXES = (
    ("MODELAMP", "E", _FLAM), ("AMP", "E", _FLAM), ("AMP_IVAR", "E", None),
    ("FLUX", "E", _FLUX), ("FLUX_IVAR", "E", None), ("BOXFLUX", "E", _FLUX),
    ("BOXFLUX_IVAR", "E", None), ("VSHIFT", "E", "km / s"), ("SIGMA", "E", "km / s"),
    ("CONT", "E", _FLAM), ("CONT_IVAR", "E", None), ("EW", "E", "Angstrom"),
    ("EW_IVAR", "E", None), ("FLUX_LIMIT", "E", "erg / (cm2 s)"), ("EW_LIMIT", "E", "Angstrom"),
    ("CHI2", "E", None), ("NPIX", "J", None),
)
FASTSPEC_MOMENT_SUFFIXES = (
    ("MOMENT1", "E", "Angstrom"), ("MOMENT1_IVAR", "E", None), ("MOMENT2", "E", "Angstrom2"),
    ("MOMENT2_IVAR", "E", None), ("MOMENT3", "E", "Angstrom3"), ("MOMENT3_IVAR", "E", None),
)


def _c(name, tform, unit=None, tzero=None):
    return Column(name, tform, tunit=None, tzero=tzero, unit=unit)


#: SURVEY/PROGRAM fixed widths (enough for 'special' and 'backup'/'bright')
SURVEY_TFORM, PROGRAM_TFORM = "7A", "6A"
_KEYS_HP = (_c("TARGETID", "K"), _c("SURVEY", SURVEY_TFORM), _c("PROGRAM", PROGRAM_TFORM),
            _c("HEALPIX", "J"))

_BANDS7 = ("G", "R", "Z", "W1", "W2", "W3", "W4")

METADATA_V3_COLUMNS = (
    _KEYS_HP
    + (_c("TILEID_LIST", "40A"), _c("RA", "D", "deg"), _c("DEC", "D", "deg"),
       _c("COADD_FIBERSTATUS", "K"), _c("DESI_TARGET", "K"), _c("BGS_TARGET", "K"),
       _c("MWS_TARGET", "K"), _c("SCND_TARGET", "K"), _c("Z", "D"),
       _c("ZWARN", "B", tzero=-128), _c("DELTACHI2", "D"), _c("SPECTYPE", "6A"),
       _c("SUBTYPE", "20A"), _c("Z_RR", "D"))
    + tuple(_c(f"TSNR2_{t}", "E") for t in ("BGS", "LRG", "ELG", "QSO", "LYA"))
    + (_c("PHOTSYS", "1A"), _c("LS_ID", "K"))
    + tuple(_c(f"FIBERFLUX_{b}", "E", "nanomaggies") for b in "GRZ")
    + tuple(_c(f"FIBERTOTFLUX_{b}", "E", "nanomaggies") for b in "GRZ")
    + tuple(_c(f"FLUX_{b}", "E", "nanomaggies") for b in _BANDS7)
    + tuple(_c(f"FLUX_IVAR_{b}", "E", "1 / nanomaggies2") for b in _BANDS7)
    + (_c("EBV", "E", "mag"),)
    + tuple(_c(f"MW_TRANSMISSION_{b}", "E") for b in _BANDS7)
)


def _absmag_block(prefix: str, band: str) -> tuple[Column, ...]:
    """ABSMAGxx_BAND, ABSMAGxx_IVAR_BAND, ABSMAGxx_SYNTH_BAND, ABSMAGxx_SYNTH_IVAR_BAND."""
    return (_c(f"ABSMAG{prefix}_{band}", "E", "mag"),
            _c(f"ABSMAG{prefix}_IVAR_{band}", "E", "1 / mag2"),
            _c(f"ABSMAG{prefix}_SYNTH_{band}", "E", "mag"),
            _c(f"ABSMAG{prefix}_SYNTH_IVAR_{band}", "E", "1 / mag2"))


_ABSMAG_BANDS = (("10", "DECAM_G"), ("10", "DECAM_R"), ("10", "DECAM_Z"), ("00", "U"),
                 ("00", "B"), ("00", "V"), ("00", "TWOMASS_J"), ("01", "SDSS_U"),
                 ("01", "SDSS_G"), ("01", "SDSS_R"), ("01", "SDSS_I"), ("01", "SDSS_Z"),
                 ("01", "W1"))
_KCORR_BANDS = (("10", "DECAM_G"), ("10", "DECAM_R"), ("10", "DECAM_Z"), ("00", "U"),
                ("00", "B"), ("00", "V"), ("01", "SDSS_U"), ("01", "SDSS_G"), ("01", "SDSS_R"),
                ("01", "SDSS_I"), ("01", "SDSS_Z"), ("01", "W1"))

SPECPHOT_V3_COLUMNS = (
    _KEYS_HP
    + (_c("SEED", "K"), _c("COEFF", "5E", _FLAM), _c("RCHI2", "E"), _c("RCHI2_LINE", "E"),
       _c("RCHI2_CONT", "E"), _c("RCHI2_PHOT", "E"), _c("VDISP", "E", "km / s"),
       _c("VDISP_IVAR", "E"), _c("TAUV", "E"), _c("TAUV_IVAR", "E"), _c("AGE", "E", "Gyr"),
       _c("AGE_IVAR", "E"), _c("ZZSUN", "E"), _c("ZZSUN_IVAR", "E"),
       _c("LOGMSTAR", "E", "log10(Msun)"), _c("LOGMSTAR_IVAR", "E"),
       _c("SFR", "E", "Msun / yr"), _c("SFR_IVAR", "E"), _c("DN4000", "E"),
       _c("DN4000_OBS", "E"), _c("DN4000_IVAR", "E"), _c("DN4000_MODEL", "E"),
       _c("DN4000_MODEL_IVAR", "E"))
    + tuple(_c(f"FLUX_SYNTH_{b}", "E", "nanomaggies") for b in "GRZ")
    + tuple(_c(f"FLUX_SYNTH_SPECMODEL_{b}", "E", "nanomaggies") for b in "GRZ")
    + tuple(_c(f"FLUX_SYNTH_PHOTMODEL_{b}", "E", "nanomaggies") for b in _BANDS7)
    + tuple(c for p, b in _ABSMAG_BANDS for c in _absmag_block(p, b))
    + tuple(_c(f"KCORR{p}_{b}", "E", "mag") for p, b in _KCORR_BANDS)
    + tuple(c for w in ("1500", "2800") for c in (_c(f"LOGLNU_{w}", "E"),
                                                   _c(f"LOGLNU_{w}_IVAR", "E")))
    + tuple(c for w in ("1450", "1700", "3000", "5100") for c in (_c(f"LOGL_{w}", "E"),
                                                                   _c(f"LOGL_{w}_IVAR", "E")))
    + tuple(c for n in ("FLYA_1215_CONT", "FOII_3727_CONT", "FHBETA_CONT", "FOIII_5007_CONT",
                        "FHALPHA_CONT") for c in (_c(n, "E", _FLAM), _c(f"{n}_IVAR", "E")))
)

_DOUBLETS = ("MGII", "OII", "OIII", "SII", "NII", "OIIRED")

FASTSPEC_V3_FIXED_COLUMNS = (
    _KEYS_HP
    + tuple(_c(f"SNR_{c}", "E") for c in "BRZ")
    + tuple(_c(f"SMOOTHCORR_{c}", "E", "percent") for c in "BRZ")
    + (_c("APERCORR", "E"), _c("APERCORR_G", "E"), _c("APERCORR_R", "E"),
       _c("APERCORR_Z", "E"))
    + tuple(_c(f"INIT_SIGMA_{k}", "E", "km / s") for k in ("UV", "NARROW", "BALMER"))
    + tuple(_c(f"INIT_VSHIFT_{k}", "E", "km / s") for k in ("UV", "NARROW", "BALMER"))
    + (_c("INIT_BALMER_BROAD", "L"), _c("DELTA_LINECHI2", "E"), _c("DELTA_LINENDOF", "J"))
    + tuple(c for d in _DOUBLETS for c in (_c(f"{d}_DOUBLET_RATIO", "E"),
                                           _c(f"{d}_DOUBLET_RATIO_IVAR", "E")))
)


def fastspec_line_columns(lines=FASTSPEC_LINES, suffixes=FASTSPEC_LINE_SUFFIXES
                          ) -> tuple[Column, ...]:
    """The per-line block (line-major: 18 columns per line in 3.x, 17 in 2.x)."""
    bad = [ln for ln in lines if ln not in FASTSPEC_LINES]
    if bad:
        raise ValueError(f"unknown FastSpecFit emission lines: {bad}")
    return tuple(_c(f"{ln}_{suf}", tf, unit) for ln in lines for suf, tf, unit in suffixes)


def fastspec_moment_columns(lines=FASTSPEC_MOMENT_LINES) -> tuple[Column, ...]:
    return tuple(_c(f"{ln}_{suf}", tf, unit) for ln in lines
                 for suf, tf, unit in FASTSPEC_MOMENT_SUFFIXES)


def fastspec_v3_columns(lines=FASTSPEC_LINES,
                        moment_lines=FASTSPEC_MOMENT_LINES) -> tuple[Column, ...]:
    """FASTSPEC columns of v3.0; with all lines this is the real 887-column table."""
    return (FASTSPEC_V3_FIXED_COLUMNS + fastspec_line_columns(lines)
            + fastspec_moment_columns(moment_lines))


FASTSPEC_V3_COLUMNS = fastspec_v3_columns()
assert len(FASTSPEC_V3_COLUMNS) == 887, len(FASTSPEC_V3_COLUMNS)

FASTSPEC_PRIMARY_KEYS = (
    HeaderKey("SPECPROD", str, "spectroscopic production name ('iron')"),
    HeaderKey("COADDTYP", str, "type of spectral coadd ('healpix')"),
)
FASTSPEC_V3_PRIMARY_KEYS = FASTSPEC_PRIMARY_KEYS + (
    HeaderKey("NSIDE", int, "HEALPix nside of the catalogue split (1)"),
    HeaderKey("NEST", bool, "nested HEALPix scheme (T)"),
)
#: dependency keys DEPNAMnn / DEPVERnn (nn = 00, 01, ...) come in pairs
DEP_KEY_RE = re.compile(r"^DEP(NAM|VER)(\d\d)$")

# v2.1: FASTSPEC first (with the physical properties), then METADATA -------------------------

FASTSPEC_V21_FIXED_COLUMNS = (
    _KEYS_HP
    + (_c("Z", "D"), _c("COEFF", "5E", _FLAM), _c("RCHI2", "E"), _c("RCHI2_CONT", "E"),
       _c("RCHI2_PHOT", "E"))
    + tuple(_c(f"SNR_{c}", "E") for c in "BRZ")
    + tuple(_c(f"SMOOTHCORR_{c}", "E", "percent") for c in "BRZ")
    + (_c("VDISP", "E", "km / s"), _c("VDISP_IVAR", "E"), _c("AV", "E", "mag"),
       _c("AGE", "E", "Gyr"), _c("ZZSUN", "E"), _c("LOGMSTAR", "E", "log10(Msun)"),
       _c("SFR", "E", "Msun / yr"), _c("DN4000", "E"), _c("DN4000_OBS", "E"),
       _c("DN4000_IVAR", "E"), _c("DN4000_MODEL", "E"))
    + tuple(_c(f"FLUX_SYNTH_{b}", "E", "nanomaggies") for b in "GRZ")
    + tuple(c for p, b in _ABSMAG_BANDS if b != "TWOMASS_J"
            for c in (_c(f"ABSMAG{p}_{b}", "E", "mag"), _c(f"ABSMAG{p}_IVAR_{b}", "E"),
                      _c(f"KCORR{p}_{b}", "E", "mag")))
    + (_c("RCHI2_LINE", "E"), _c("DELTA_LINECHI2", "E"), _c("DELTA_LINENDOF", "J"),
       _c("APERCORR", "E"), _c("APERCORR_G", "E"), _c("APERCORR_R", "E"),
       _c("APERCORR_Z", "E"))
)
#: the 2.x datamodel's lines start LYALPHA, OI_1304: it has no NV_1240 (single source; the rest
#: of its order is taken to be the 3.x order)
FASTSPEC_V21_LINES = tuple(ln for ln in FASTSPEC_LINES if ln != "NV_1240")


def fastspec_v21_columns(lines=FASTSPEC_V21_LINES) -> tuple[Column, ...]:
    return FASTSPEC_V21_FIXED_COLUMNS + fastspec_line_columns(lines, FASTSPEC_V21_LINE_SUFFIXES)


FASTSPEC_V21_COLUMNS = fastspec_v21_columns()

#: the 3.x METADATA less SUBTYPE, which the 2.x datamodel does not have (single source); the
#: rest of its order and extras are not verified
METADATA_V21_COLUMNS = tuple(c for c in METADATA_V3_COLUMNS if c.name != "SUBTYPE")

# --------------------------------------------------------------------------------------------
# Tile spectra (only what the pipeline reads; real fixtures in shared/fixtures/desi-iron-tile)
# --------------------------------------------------------------------------------------------

REDROCK_REDSHIFTS_COLUMNS = (
    _c("TARGETID", "K"), _c("Z", "D"), _c("ZERR", "D"), _c("ZWARN", "K"), _c("CHI2", "D"),
    _c("COEFF", "10D"), _c("NPIXELS", "K"), _c("SPECTYPE", "6A"), _c("SUBTYPE", "20A"),
    _c("NCOEFF", "K"), _c("DELTACHI2", "D"))

# --------------------------------------------------------------------------------------------
# The kinds
# --------------------------------------------------------------------------------------------

KINDS: dict[str, FileKind] = {
    "voidfinder": FileKind(
        "voidfinder", DESIVAST_DIR, _names_pattern(["VoidFinder"]),
        (PRIMARY_VOIDFINDER, MAXIMALS, HOLES),
        "DESIVAST VoidFinder: voids as unions of spheres (holes)",
        tuple(voidfinder_filename(c) for c in CAPS)),
    "v2": FileKind(
        "v2", DESIVAST_DIR, _names_pattern(["REVOLVER", "VIDE"]),
        (PRIMARY_V2, V2_VOIDS, ZONEVOID, GALZONE, TRIANGLE, GALVIZ),
        "DESIVAST V2 (REVOLVER, VIDE): zones and voids, with visualisation HDUs",
        tuple(v2_filename(a, c) for a in ("REVOLVER", "VIDE") for c in CAPS)),
    "v2_zobov": FileKind(
        "v2_zobov", DESIVAST_DIR, _names_pattern(["ZOBOV"]),
        (PRIMARY_V2, V2_VOIDS, ZONEVOID, GALZONE),
        "DESIVAST V2 ZOBOV: no TRIANGLE/GALVIZ",
        tuple(v2_filename("ZOBOV", c) for c in CAPS)),
    "fastspec_v3": FileKind(
        "fastspec_v3", FASTSPEC_V3_DIR, r"^fastspec-iron-main-bright-nside1-hp(\d\d)\.fits$",
        (HDUSpec("PRIMARY", None, FASTSPEC_V3_PRIMARY_KEYS),
         HDUSpec("METADATA", METADATA_V3_COLUMNS, open_ended=True, real_ncols=54),
         HDUSpec("SPECPHOT", SPECPHOT_V3_COLUMNS, open_ended=True, real_ncols=127),
         HDUSpec("FASTSPEC", FASTSPEC_V3_COLUMNS, real_ncols=887)),
        "FastSpecFit iron v3.0 main-bright, split in 12 nside-1 nested HEALPix pixels",
        FASTSPEC_V3_FILES),
    "fastspec_v21": FileKind(
        "fastspec_v21", FASTSPEC_V21_DIR, r"^fastspec-iron-main-bright\.fits$",
        (HDUSpec("PRIMARY", None, FASTSPEC_PRIMARY_KEYS),
         HDUSpec("FASTSPEC", FASTSPEC_V21_COLUMNS, open_ended=True),
         HDUSpec("METADATA", METADATA_V21_COLUMNS, open_ended=True)),
        "FastSpecFit iron v2.1 main-bright, one file",
        (FASTSPEC_V21_FILENAME,)),
    "redrock": FileKind(
        "redrock", TILES_DIR, r"^redrock-(\d)-(\d+)-thru(\d{8})\.fits$",
        (HDUSpec("PRIMARY"), HDUSpec("REDSHIFTS", REDROCK_REDSHIFTS_COLUMNS, open_ended=True),
         HDUSpec("FIBERMAP", (_c("TARGETID", "K"),), open_ended=True),
         HDUSpec("EXP_FIBERMAP", open_ended=True), HDUSpec("TSNR2", open_ended=True)),
        "Redrock redshifts of one petal of one tile"),
    "coadd": FileKind(
        "coadd", TILES_DIR, r"^coadd-(\d)-(\d+)-thru(\d{8})\.fits$",
        (HDUSpec("PRIMARY"), HDUSpec("FIBERMAP", (_c("TARGETID", "K"),), open_ended=True),
         HDUSpec("EXP_FIBERMAP", open_ended=True))
        + tuple(HDUSpec(f"{cam}_{what}") for cam in "BRZ"
                for what in ("WAVELENGTH", "FLUX", "IVAR", "MASK", "RESOLUTION"))
        + (HDUSpec("SCORES", open_ended=True),),
        "Coadded spectra of one petal of one tile"),
}

DESIVAST_KINDS = ("voidfinder", "v2", "v2_zobov")
FASTSPEC_KINDS = ("fastspec_v3", "fastspec_v21")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def kind(name: str) -> FileKind:
    try:
        return KINDS[name]
    except KeyError:
        raise KeyError(f"unknown file kind {name!r}; known: {sorted(KINDS)}") from None


def classify(filename) -> Optional[str]:
    """The kind of a DESI file from its name (any directory), or None if it is not one of ours."""
    base = str(filename).replace("\\", "/").rsplit("/", 1)[-1]
    for k, fk in KINDS.items():
        if re.match(fk.pattern, base):
            return k
    return None


def expected_hdus(kind_name: str) -> tuple[str, ...]:
    """EXTNAMEs in file order (the primary HDU is 'PRIMARY')."""
    return tuple(h.extname for h in kind(kind_name).hdus)


def hdu_spec(kind_name: str, extname: str) -> HDUSpec:
    return kind(kind_name).hdu(extname)


def columns(kind_name: str, extname: str) -> tuple[Column, ...]:
    """Columns of one HDU in file order (empty for image HDUs)."""
    return hdu_spec(kind_name, extname).columns or ()


def column_names(kind_name: str, extname: str) -> tuple[str, ...]:
    return tuple(c.name for c in columns(kind_name, extname))


def key_columns(kind_name: str, extname: str) -> tuple[str, ...]:
    """The documented key columns of an HDU: the data-model columns this project knows the real
    files carry (what tests/golden checks against DESI's data models).

    For DESIVAST this is every documented column, in order. For FastSpecFit it is KEY_COLUMNS
    (the real METADATA/SPECPHOT carry one column more than listed here). This is NOT what a
    reader demands of a file: a file written by other code may lack any optional column, and
    FASTSPEC may carry any subset of the lines. What recon and convert both require is
    :func:`required_columns`, and :func:`check_file` applies it.
    """
    if kind_name in FASTSPEC_KINDS:
        return KEY_COLUMNS[kind_name][extname]
    return column_names(kind_name, extname)


def header_keys(kind_name: str, extname: str = "PRIMARY") -> tuple[str, ...]:
    return tuple(k.key for k in hdu_spec(kind_name, extname).header_keys)


def relpath(kind_name: str, filename: str) -> str:
    """DESI relative path of a file of that kind, e.g. 'dr1/vac/dr1/desivast/v1.0/DESIVAST_...'."""
    return f"{kind(kind_name).reldir}/{filename}"


def cap_of_ra(ra_deg):
    """'NGC' where 83 < RA < 304 deg, else 'SGC' (vectorised: returns an array of str)."""
    import numpy as np

    ra = np.asarray(ra_deg, dtype=float) % 360.0
    return np.where((ra > NGC_RA_MIN) & (ra < NGC_RA_MAX), "NGC", "SGC")


def cap_index_of_ra(ra_deg):
    """:func:`cap_of_ra` as the index of the cap in :data:`CAPS` (int8): no string per row."""
    import numpy as np

    ra = np.asarray(ra_deg, dtype=float) % 360.0
    return np.where((ra > NGC_RA_MIN) & (ra < NGC_RA_MAX), CAPS.index("NGC"),
                    CAPS.index("SGC")).astype(np.int8)


#: the columns of FASTSPEC that readers of this project rely on (present in real and mock)
FASTSPEC_KEY_COLUMNS = {
    "fastspec_v3": ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX")
    + tuple(f"{ln}_{s}" for ln in ("HALPHA", "HBETA", "OII_3726", "OII_3729", "OIII_5007",
                                   "NII_6584") for s in ("FLUX", "FLUX_IVAR", "EW", "EW_IVAR")),
    "fastspec_v21": ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "Z", "AV", "AGE", "ZZSUN",
                     "LOGMSTAR", "SFR", "DN4000", "DN4000_IVAR", "ABSMAG01_SDSS_U",
                     "ABSMAG01_SDSS_G", "ABSMAG01_SDSS_R")
    + tuple(f"{ln}_{s}" for ln in ("HALPHA", "HBETA", "OII_3726", "OII_3729", "OIII_5007",
                                   "NII_6584") for s in ("FLUX", "FLUX_IVAR", "EW", "EW_IVAR")),
}

_META_KEYS = ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "RA", "DEC", "COADD_FIBERSTATUS",
              "DESI_TARGET", "BGS_TARGET", "MWS_TARGET", "SCND_TARGET", "ZWARN", "DELTACHI2",
              "SPECTYPE", "PHOTSYS") + tuple(f"FLUX_{b}" for b in _BANDS7) \
    + tuple(f"FLUX_IVAR_{b}" for b in _BANDS7) + ("EBV",)
_SDSS = ("U", "G", "R", "I", "Z")
#: documented key columns per FastSpecFit HDU (desi-data-formats.md): present in the real files
#: and in the mock; the other listed columns may be missing or differ in the real tables
KEY_COLUMNS = {
    "fastspec_v3": {
        "METADATA": _META_KEYS[:11] + ("Z",) + _META_KEYS[11:],
        "SPECPHOT": ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "LOGMSTAR", "LOGMSTAR_IVAR",
                     "SFR", "SFR_IVAR", "AGE", "AGE_IVAR", "ZZSUN", "VDISP", "TAUV", "DN4000",
                     "DN4000_OBS", "DN4000_IVAR", "DN4000_MODEL")
        + tuple(f"ABSMAG01_SDSS_{b}" for b in _SDSS) + tuple(f"ABSMAG01_IVAR_SDSS_{b}" for b in _SDSS)
        + tuple(f"ABSMAG00_{b}" for b in "UBV") + tuple(f"ABSMAG10_DECAM_{b}" for b in "GRZ")
        + tuple(f"KCORR01_SDSS_{b}" for b in _SDSS),
        "FASTSPEC": FASTSPEC_KEY_COLUMNS["fastspec_v3"],
    },
    "fastspec_v21": {
        "FASTSPEC": FASTSPEC_KEY_COLUMNS["fastspec_v21"],
        "METADATA": _META_KEYS,
    },
}

#: where each physical quantity of the analysis lives, per FastSpecFit version
QUANTITY_HDU = {
    "fastspec_v3": {"Z": "METADATA", "ZWARN": "METADATA", "DELTACHI2": "METADATA",
                    "SPECTYPE": "METADATA", "RA": "METADATA", "DEC": "METADATA",
                    "BGS_TARGET": "METADATA", "SURVEY": "METADATA", "PROGRAM": "METADATA",
                    "LOGMSTAR": "SPECPHOT", "SFR": "SPECPHOT", "DN4000": "SPECPHOT",
                    "AGE": "SPECPHOT", "ZZSUN": "SPECPHOT", "ABSMAG01_SDSS_U": "SPECPHOT",
                    "ABSMAG01_SDSS_G": "SPECPHOT", "ABSMAG01_SDSS_R": "SPECPHOT"},
    "fastspec_v21": {"Z": "FASTSPEC", "ZWARN": "METADATA", "DELTACHI2": "METADATA",
                     "SPECTYPE": "METADATA", "RA": "METADATA", "DEC": "METADATA",
                     "BGS_TARGET": "METADATA", "SURVEY": "METADATA", "PROGRAM": "METADATA",
                     "LOGMSTAR": "FASTSPEC", "SFR": "FASTSPEC", "DN4000": "FASTSPEC",
                     "AGE": "FASTSPEC", "ZZSUN": "FASTSPEC", "ABSMAG01_SDSS_U": "FASTSPEC",
                     "ABSMAG01_SDSS_G": "FASTSPEC", "ABSMAG01_SDSS_R": "FASTSPEC"},
}

#: tracer selection of DESIVAST (science.md); ZLIMU/MAGLIM are read from the void file header
TRACER_SELECTION = {"SURVEY": "main", "PROGRAM": "bright", "BGS_TARGET_BIT": "BGS_BRIGHT",
                    "SPECTYPE": "GALAXY", "ZWARN": 0, "DELTACHI2_GT": 40.0, "ZLIMU": 0.24,
                    "MAGLIM": -20.0, "KCORR_SLOPE": 0.97, "KCORR_PIVOT": 0.1}


# --------------------------------------------------------------------------------------------
# What the project reads, and what a file must have: one specification for recon and convert
# --------------------------------------------------------------------------------------------
#
# Files written by other code (another mirror, a re-run of fastspecfit, a user's own sky) may
# lack columns that nothing needs, or store a column in another FITS encoding of the same
# values. A reader therefore requires only what the science (science.md) and the output
# contract (desivoids.convert.columns: the non-null columns) need, takes every other column it
# reads where present, and accepts every encoding of the documented value. recon reports what
# convert would refuse, through the same function (:func:`check_file`).

#: FastSpecFit columns the galaxies table is built from, and where each is read (EXTNAME).
_META_READ = ("TARGETID", "SURVEY", "PROGRAM", "HEALPIX", "RA", "DEC", "Z", "ZWARN", "DELTACHI2",
              "SPECTYPE", "DESI_TARGET", "BGS_TARGET", "MWS_TARGET", "SCND_TARGET")
_PHYS_READ = ("LOGMSTAR", "LOGMSTAR_IVAR", "SFR", "SFR_IVAR", "DN4000", "DN4000_IVAR", "AGE",
              "ZZSUN", "ABSMAG01_SDSS_U", "ABSMAG01_SDSS_G", "ABSMAG01_SDSS_R")
#: emission lines kept (flux and equivalent width with inverse variances)
READ_LINES = ("HALPHA", "HBETA", "OII_3726", "OII_3729", "OIII_5007", "NII_6584")
_LINE_READ = tuple(f"{ln}_{s}" for ln in READ_LINES for s in ("FLUX", "FLUX_IVAR", "EW", "EW_IVAR"))
GALAXY_READ: dict[str, dict[str, str]] = {
    "fastspec_v3": {**{c: "METADATA" for c in _META_READ}, **{c: "SPECPHOT" for c in _PHYS_READ},
                    **{c: "FASTSPEC" for c in _LINE_READ}},
    # v2.1 keeps Z with the physical quantities in FASTSPEC (LOGMSTAR_IVAR and SFR_IVAR are not
    # in its data model: read where present, else null)
    "fastspec_v21": {**{c: "METADATA" for c in _META_READ if c != "Z"}, "Z": "FASTSPEC",
                     **{c: "FASTSPEC" for c in _PHYS_READ + _LINE_READ}},
}
#: What a FastSpecFit file must have: TARGETID (row matching), the position (RA, DEC, Z), the
#: tracer selection (SURVEY, PROGRAM, BGS_TARGET, SPECTYPE, ZWARN, DELTACHI2, and
#: ABSMAG01_SDSS_R for M_r) and the inputs of the three quenched definitions (SFR, LOGMSTAR;
#: DN4000; ABSMAG01_SDSS_U - ABSMAG01_SDSS_R). Everything else the galaxies table carries (IVARs,
#: AGE, ZZSUN, ABSMAG01_SDSS_G, HEALPIX, the other targeting bits, every line column) is
#: descriptive: null where the file lacks it.
GALAXY_REQUIRED = ("TARGETID", "SURVEY", "PROGRAM", "RA", "DEC", "Z", "ZWARN", "DELTACHI2",
                   "SPECTYPE", "BGS_TARGET", "LOGMSTAR", "SFR", "DN4000", "ABSMAG01_SDSS_U",
                   "ABSMAG01_SDSS_R")
for _k, _read in GALAXY_READ.items():
    assert set(GALAXY_REQUIRED) <= set(_read), _k
    assert all(_read[q] == h for q, h in QUANTITY_HDU[_k].items()), _k
del _k, _read

#: DESIVAST HDUs the project reads; every documented column of them is read, and all are needed
#: except these descriptive ones (science.md never uses them, the output allows null): the
#: VoidFinder centre's R/RA/DEC (X, Y, Z give them) and R_EFF_UNCERT, the V2 centre's
#: REDSHIFT/RA/DEC and ellipsoid axes, and GALZONE's DEPTH/EDGE/OUT (not used by membership).
DESIVAST_READ_HDUS = {"voidfinder": ("MAXIMALS", "HOLES"),
                      "v2": ("VOIDS", "ZONEVOID", "GALZONE"),
                      "v2_zobov": ("VOIDS", "ZONEVOID", "GALZONE")}
DESIVAST_OPTIONAL_COLUMNS = {
    "MAXIMALS": ("R", "RA", "DEC", "R_EFF_UNCERT"),
    "VOIDS": ("REDSHIFT", "RA", "DEC") + tuple(f"{a}{i}" for i in (1, 2, 3) for a in "XYZ"),
    "GALZONE": ("DEPTH", "EDGE", "OUT"),
}
#: the kinds whose HDUs are row-matched (one row per galaxy in every HDU, checked on TARGETID)
ROW_MATCHED_KINDS = FASTSPEC_KINDS


def read_columns(kind_name: str, extname: str) -> tuple[str, ...]:
    """The columns of an HDU this project reads where present (empty: the HDU is not read)."""
    if kind_name in FASTSPEC_KINDS:
        return tuple(dict.fromkeys(("TARGETID",) + tuple(
            c for c, h in GALAXY_READ[kind_name].items() if h == extname)))
    if extname in DESIVAST_READ_HDUS.get(kind_name, ()):
        return column_names(kind_name, extname)
    return ()


def required_columns(kind_name: str, extname: str) -> tuple[str, ...]:
    """The columns a file of this kind must have in this HDU (recon: a fault; convert: refused).

    FastSpecFit: TARGETID in every HDU plus GALAXY_REQUIRED in the HDU each is read from;
    DESIVAST: the read HDUs' columns less DESIVAST_OPTIONAL_COLUMNS. Tile spectra are not
    judged by column here (only their HDUs are), so nothing is listed for them.
    """
    if kind_name in FASTSPEC_KINDS:
        return tuple(c for c in read_columns(kind_name, extname)
                     if c == "TARGETID" or c in GALAXY_REQUIRED)
    skip = DESIVAST_OPTIONAL_COLUMNS.get(extname, ())
    if extname == "MAXIMALS":
        skip = skip + VOIDFINDER_COMPUTED_COLUMNS
    return tuple(c for c in read_columns(kind_name, extname) if c not in skip)


def required_hdus(kind_name: str) -> tuple[str, ...]:
    """EXTNAMEs a file of this kind must have (expected_hdus less the optional ones)."""
    return tuple(h.extname for h in kind(kind_name).hdus if not h.optional)


_LENIENT_TFORM = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])")
#: TZERO that makes a FITS integer code hold unsigned values (and B signed int8), FITS 4.0 7.3.2
UNSIGNED_TZERO = {"B": -128, "I": 32768, "J": 2**31, "K": 2**63}
_INT_CODES = "BIJK"


def value_kind(tform: str, tzero=None, tscal=None) -> tuple[str, int]:
    """(what a column holds once FITS scaling is applied, repeat count) for a TFORM.

    Kinds: 'int', 'uint' (TZERO offset making it unsigned), 'float' (E/D, or scaled integers),
    'str', 'bool' (L), 'other' (X, P, Q, C, M). 'B' with TZERO -128 is a signed int8: 'int'.
    """
    m = _LENIENT_TFORM.match(str(tform))
    if not m:
        return "other", 1
    repeat, code = int(m.group(1) or 1), m.group(2)
    if code == "A":
        return "str", repeat
    if code == "L":
        return "bool", repeat
    if code in _INT_CODES:
        if tscal not in (None, 1) or tzero not in (None, 0):
            if tscal in (None, 1) and tzero == UNSIGNED_TZERO[code]:
                return ("int" if code == "B" else "uint"), repeat
            return "float", repeat
        return "int", repeat
    if code in "ED":
        return "float", repeat
    return "other", repeat


_KIND_HINT = {"int": "an integer (FITS B/I/J/K)", "float": "a real (FITS E/D)",
              "str": "a string (FITS A)", "bool": "a logical (FITS L)"}


def _documented(kind_name: str, extname: str, name: str) -> Optional[Column]:
    """The documented column, or the v3.0 one of that name (v2.1 may carry v3.0 columns its
    data model does not list, e.g. LOGMSTAR_IVAR)."""
    for c in columns(kind_name, extname):
        if c.name == name:
            return c
    if kind_name in FASTSPEC_KINDS:
        for h in kind("fastspec_v3").hdus[1:]:
            for c in h.columns or ():
                if c.name == name:
                    return c
    return None


def accepts(doc: Column, tform: str, tzero=None, tscal=None) -> tuple[bool, Optional[str]]:
    """(acceptable, note) for a file's column encoding against the documented column.

    Every integer encoding of an integer (B/I/J/K, signed or with an unsigned TZERO that fits in
    int64) is the same value. A logical (L) is accepted where the documented type is int8 (TFORM
    B with TZERO -128): astropy's Table writer stores int8 as L, so a file written by astropy
    (as fastspecfit is) can carry ZWARN so; the note says that the bits are lost.
    """
    want, wrep = value_kind(doc.tform, doc.tzero)
    got, grep = value_kind(tform, tzero, tscal)
    if want != "str" and grep != wrep:
        return False, None
    if got == want:
        return True, None
    if want == "int" and got == "uint" and not str(tform).strip().endswith("K"):
        return True, None  # uint64 does not fit the int64 the readers store
    if want == "int" and got == "bool" and doc.tform == "B" and doc.tzero == -128:
        return True, ("stored as a logical (FITS L), as astropy writes int8 columns: the bits are "
                      "lost (False -> 0, True -> 1), so only == 0 is meaningful")
    return False, None


@dataclass(frozen=True)
class Finding:
    """One result of :func:`check_file`: ``code`` says what (missing_hdu, missing_column,
    mistyped, not_row_matched, empty are faults; absent_hdu, absent_column, lossy are notes)."""

    code: str
    hdu: Optional[str]
    column: Optional[str]
    message: str

    def __str__(self) -> str:
        """'HDU.COLUMN: message' (or 'HDU: message'), as the reconciliation lists notes."""
        return f"{self.hdu}.{self.column}: {self.message}" if self.column else \
            f"{self.hdu}: {self.message}"


@dataclass(frozen=True)
class HDUFacts:
    """What a reader found in one HDU: rows (None: not a table) and {column: (TFORM, TZERO,
    TSCAL)} in file order."""

    rows: Optional[int]
    columns: dict


@dataclass
class FileCheck:
    faults: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.faults

    @property
    def absent_columns(self) -> list[str]:
        """Optional read columns the file lacks (the reader writes nulls for them)."""
        return [f.column for f in self.notes if f.code == "absent_column"]


def check_file(kind_name: str, found: dict) -> FileCheck:
    """Judge a file of a known kind from its headers: ``found`` maps EXTNAME -> HDUFacts.

    Faults (every one, not the first): a missing required HDU; a needed column missing; a read
    column whose encoding is not one of the documented value (wrong kind, or a vector); row
    counts that differ between row-matched HDUs; an empty read DESIVAST table. Notes: a missing
    optional HDU, an optional read column absent, a lossy but accepted encoding.
    """
    out = FileCheck()
    fk = kind(kind_name)
    for h in fk.hdus[1:]:
        if h.extname in found:
            continue
        if h.optional:
            out.notes.append(Finding("absent_hdu", h.extname, None,
                                     "HDU absent (visualisation only; nothing reads it)"))
        else:
            out.faults.append(Finding("missing_hdu", h.extname, None,
                                      f"HDU missing; a {kind_name} file has {expected_hdus(kind_name)}"))
    for h in fk.hdus[1:]:
        facts = found.get(h.extname)
        read = read_columns(kind_name, h.extname)
        if facts is None or not read:
            continue
        need = set(required_columns(kind_name, h.extname))
        columns_found = facts.columns
        if kind_name in DESIVAST_KINDS and DESIVAST_COLUMN_NAMES_ANY_CASE:
            columns_found = {k.upper(): v for k, v in facts.columns.items()}
        for name in read:
            if name not in columns_found:
                if name in need:
                    out.faults.append(Finding("missing_column", h.extname, name,
                                              "required column not found"))
                elif h.extname == "MAXIMALS" and name in VOIDFINDER_COMPUTED_COLUMNS:
                    out.notes.append(Finding("computed_column", h.extname, name,
                                             "absent (VAST adds it only with calculate_r_eff): "
                                             "computed by convert from HOLES"))
                else:
                    out.notes.append(Finding("absent_column", h.extname, name,
                                             "optional column absent: written as nulls"))
                continue
            doc = _documented(kind_name, h.extname, name)
            if doc is None:
                continue
            tform, tzero, tscal = columns_found[name]
            ok, note = accepts(doc, tform, tzero, tscal)
            if not ok:
                want = value_kind(doc.tform, doc.tzero)[0]
                out.faults.append(Finding("mistyped", h.extname, name,
                                          f"mistyped: expected {_KIND_HINT.get(want, want)} "
                                          f"scalar, found FITS {tform}"
                                          + (f" with TZERO {tzero}" if tzero not in (None, 0)
                                             else "")))
            elif note:
                out.notes.append(Finding("lossy", h.extname, name, note))
        if kind_name in DESIVAST_KINDS and facts.rows == 0:
            out.faults.append(Finding("empty", h.extname, None, "empty table: 0 rows"))
    if kind_name in ROW_MATCHED_KINDS:
        lengths = {h.extname: found[h.extname].rows for h in fk.hdus[1:] if h.extname in found}
        if len(set(lengths.values())) > 1:
            out.faults.append(Finding("not_row_matched", "/".join(lengths), "TARGETID",
                                      f"HDUs not row-matched: row counts {lengths}"))
    return out


def locate(root, kinds=None) -> dict[str, list]:
    """{kind: [paths]} of every file below ``root``, in any folder, whose name is a DESI file
    name (:func:`classify`) of one of ``kinds`` (default: all), sorted by path."""
    from pathlib import Path

    want = set(kinds or KINDS)
    out: dict[str, list] = {k: [] for k in (kinds or KINDS)}
    for p in sorted(Path(root).rglob("*")):
        k = classify(p.name)
        if k in want and p.is_file():
            out[k].append(p)
    return out
