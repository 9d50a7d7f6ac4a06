"""The release's tables, column by column: type, unit, meaning and where each value comes from.

This is the data dictionary of the data product: every Parquet field carries its unit,
description and source in its metadata, and the dictionary (Markdown and JSON) is generated from
the written files' schemas, so what is documented is what was written.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from ..formats import ALGORITHMS
from ..stages import file_name

__all__ = ["Col", "TABLES", "schema", "dictionary_rows"]

F8, F4, I8, I1, STR, BOOL = pa.float64(), pa.float32(), pa.int64(), pa.int8(), pa.string(), pa.bool_()


@dataclass(frozen=True)
class Col:
    name: str
    type: pa.DataType
    unit: str
    description: str
    source: str  # "<stage>:<table>.<column>" or "derived: ..."

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, metadata={"unit": self.unit, "description":
                                                        self.description, "source": self.source})


_G = "convert:galaxies"
GALAXIES_CORE = (
    Col("targetid", I8, "", "DESI target identifier", f"{_G}.targetid (FastSpecFit TARGETID)"),
    Col("cap", STR, "", "NGC (83 < RA < 304 deg) or SGC", "derived: RA"),
    Col("ra", F8, "deg", "right ascension, in [0, 360)", f"{_G}.ra (METADATA RA)"),
    Col("dec", F8, "deg", "declination", f"{_G}.dec (METADATA DEC)"),
    Col("z", F8, "", "redshift", f"{_G}.z"),
    Col("comoving_x", F8, "Mpc/h", "comoving position, flat LCDM with the catalogue's OMEGAM",
        f"{_G}.comoving_x"),
    Col("comoving_y", F8, "Mpc/h", "comoving position", f"{_G}.comoving_y"),
    Col("comoving_z", F8, "Mpc/h", "comoving position", f"{_G}.comoving_z"),
    Col("m_r", F8, "mag", "M_r = ABSMAG01_SDSS_R + 0.97 (Z - 0.1) (DESIVAST's)", f"{_G}.m_r"),
    Col("logmstar", F8, "log10(Msun)", "stellar mass, h = 1, Chabrier IMF", f"{_G}.logmstar"),
    Col("sfr", F8, "Msun/yr", "star-formation rate, h = 1 (0 for many galaxies)", f"{_G}.sfr"),
    Col("log_ssfr", F8, "log10(1/yr)", "log10(SFR) - LOGMSTAR; null where SFR = 0",
        f"{_G}.log_ssfr"),
    Col("dn4000", F8, "", "4000 A break, emission-line subtracted", f"{_G}.dn4000"),
    Col("absmag01_sdss_u", F8, "mag", "absolute magnitude, SDSS u at z = 0.1, h = 1",
        f"{_G}.absmag01_sdss_u"),
    Col("absmag01_sdss_r", F8, "mag", "absolute magnitude, SDSS r at z = 0.1, h = 1",
        f"{_G}.absmag01_sdss_r"),
    Col("failed_fit", BOOL, "", "FastSpecFit fit failed (LOGMSTAR = 0 and SFR = 0): no physical "
        "properties, never counted as quenched", "derived: plausibility's failed_fit cut"),
    Col("quenched_ssfr", BOOL, "", "log sSFR < -11 (SFR = 0 quenched); null: failed fit or an "
        "undefined input", "derived: systematics.quenched('ssfr')"),
    Col("quenched_dn4000", BOOL, "", "DN4000 > 1.6; null: failed fit or undefined",
        "derived: systematics.quenched('dn4000')"),
    Col("quenched_ur", BOOL, "", "u - r >= 2.22; null: failed fit or undefined",
        "derived: systematics.quenched('ur')"),
)
_V = "convert:voids"
_ONE_OF = ", ".join(ALGORITHMS[:-1]) + " or " + ALGORITHMS[-1]
VOIDS_UNIFIED = (
    Col("algorithm", STR, "", _ONE_OF, f"{_V}.algorithm"),
    Col("cap", STR, "", "NGC or SGC", f"{_V}.cap"),
    Col("void", I8, "", "void id within (algorithm, cap)", f"{_V}.void (MAXIMALS/VOIDS VOID)"),
    Col("x", F8, "Mpc/h", "void centre", f"{_V}.x"),
    Col("y", F8, "Mpc/h", "void centre", f"{_V}.y"),
    Col("z", F8, "Mpc/h", "void centre", f"{_V}.z"),
    Col("ra", F8, "deg", "centre RA in [0, 360)", f"{_V}.ra"),
    Col("dec", F8, "deg", "centre Dec", f"{_V}.dec"),
    Col("r_eff", F8, "Mpc/h", "effective radius (VoidFinder R_EFF, V2 RADIUS)", f"{_V}.r_eff"),
    Col("is_edge", BOOL, "", "edge void (VoidFinder EDGE != 0; V2 EDGE_AREA/TOT_AREA > 0.1)",
        f"{_V}.is_edge"),
    Col("n_tracers", I8, "", "tracers of the sample in the void", "environment:void_counts"),
    Col("n_galaxies", I8, "", "galaxies of the catalogue in the void", "environment:void_counts"),
)
_A = "environment:galaxy_void_assignments"
ASSIGNMENTS = (
    Col("targetid", I8, "", "DESI target identifier", f"{_A}.targetid"),
    Col("algorithm", STR, "", _ONE_OF, f"{_A}.algorithm"),
    Col("cap", STR, "", "the cap whose catalogue placed the galaxy", f"{_A}.cap"),
    Col("flag", I1, "", "0 wall, 1 void, 2 edge, 9 outside (VAST)", f"{_A}.flag"),
    Col("void", I8, "", "the galaxy's void; null unless flag = 1", f"{_A}.void"),
    Col("r_over_reff", F8, "", "distance to the void's centre / its effective radius",
        f"{_A}.r_over_reff"),
    Col("interior", BOOL, "", "the void is interior; null: no void or unknown", f"{_A}.interior"),
    Col("flag_interior", I1, "", "the flag of the interior-only variant", f"{_A}.flag_interior"),
)
SAMPLE_10K = GALAXIES_CORE + tuple(
    Col(f"flag_{a.lower()}", I1, "", f"{a} flag (0 wall, 1 void, 2 edge, 9 outside)",
        f"{_A}.flag") for a in ALGORITHMS)

#: the release's membership table keeps the name of the environment stage's file it comes from
ASSIGNMENTS_FILE = file_name("environment", "assignments")

#: file name -> (columns, what the table is)
TABLES = {
    "galaxies_core.parquet": (GALAXIES_CORE, "the tracer sample (DESIVAST's selection) with the "
                              "columns of the analysis"),
    "voids_unified.parquet": (VOIDS_UNIFIED, "every void of the four algorithms, both caps"),
    ASSIGNMENTS_FILE: (ASSIGNMENTS, "void membership of the tracer sample under "
                                        "every algorithm"),
    "sample_10k.parquet": (SAMPLE_10K, "a reproducible random subset of galaxies_core with its "
                           "flags, for a first look"),
}


def schema(columns: tuple[Col, ...]) -> pa.Schema:
    return pa.schema([c.field() for c in columns])


def dictionary_rows(schemas: dict[str, pa.Schema]) -> list[dict]:
    """The data dictionary from written schemas: table, column, type, unit, description, source."""
    rows = []
    for table, sch in schemas.items():
        for f in sch:
            meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
            rows.append({"table": table, "column": f.name, "type": str(f.type),
                         "unit": meta.get("unit", ""), "description": meta.get("description", ""),
                         "source": meta.get("source", "")})
    return rows
