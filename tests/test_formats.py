"""desivoids.formats: the executable specification of the DESI files is self-consistent and
encodes the documented facts (desi-data-formats.md)."""
import numpy as np
import pytest

from desivoids import formats as f
from desivoids import formats


def test_real_row_counts():
    assert sum(f.FASTSPEC_V3_ROWS) == 6_445_927
    assert f.FASTSPEC_V3_ROWS[2] == 1_358_627 and f.FASTSPEC_V3_ROWS[10] == 45_570
    vf = f.DESIVAST_ROWS[("VoidFinder", "MAXIMALS")]
    voids = sum(vf.values()) + sum(sum(f.DESIVAST_ROWS[(a, "VOIDS")].values()) for a in f.V2_ALGORITHMS)
    assert voids == f.DESIVAST_TOTAL_VOIDS == 10_754
    assert f.DESIVAST_ROWS[("V2", "ZONEVOID")] == f.DESIVAST_ROWS[("ZOBOV", "VOIDS")]


def test_hdus_in_order():
    assert f.expected_hdus("voidfinder") == ("PRIMARY", "MAXIMALS", "HOLES")
    assert f.expected_hdus("v2") == ("PRIMARY", "VOIDS", "ZONEVOID", "GALZONE", "TRIANGLE", "GALVIZ")
    assert f.expected_hdus("v2_zobov") == ("PRIMARY", "VOIDS", "ZONEVOID", "GALZONE")
    assert f.expected_hdus("fastspec_v3") == ("PRIMARY", "METADATA", "SPECPHOT", "FASTSPEC")
    assert f.expected_hdus("fastspec_v21") == ("PRIMARY", "FASTSPEC", "METADATA")


def test_desivast_columns():
    assert f.column_names("voidfinder", "MAXIMALS") == (
        "X", "Y", "Z", "RADIUS", "VOID", "EDGE", "R", "RA", "DEC", "R_EFF", "R_EFF_UNCERT")
    assert f.column_names("voidfinder", "HOLES") == ("X", "Y", "Z", "RADIUS", "VOID")
    assert f.column_names("v2", "VOIDS")[:8] == ("VOID", "X", "Y", "Z", "REDSHIFT", "RA", "DEC", "RADIUS")
    assert f.column_names("v2", "VOIDS")[-2:] == ("TOT_AREA", "EDGE_AREA")
    assert f.column_names("v2", "ZONEVOID") == ("ZONE", "VOID0", "VOID1")
    assert f.column_names("v2", "GALZONE") == ("GAL", "TARGET", "X", "Y", "Z", "ZONE", "DEPTH", "EDGE", "OUT")
    for kind in f.DESIVAST_KINDS:
        for h in f.kind(kind).hdus[1:]:
            for c in h.columns:
                assert c.tform in ("K", "D"), (kind, h.extname, c.name)
    units = {c.name: c.tunit for c in f.columns("voidfinder", "MAXIMALS")}
    assert units["X"] == units["RADIUS"] == units["R_EFF"] == "Mpc h-1"
    assert units["VOID"] is None and units["EDGE"] is None
    assert f.header_keys("voidfinder") == ("OMEGAM", "HP", "ZLIML", "ZLIMU", "DLIML", "DLIMU",
                                           "MAGLIM", "VOLUME", "GALAXY", "WALLNUM", "FIELDNUM",
                                           "DENSITY", "AVSEP", "VOID")
    assert f.header_keys("voidfinder", "HOLES") == ("VOID", "HOLE")


def test_fastspec_v3_columns():
    assert len(f.FASTSPEC_LINES) == 46 and len(set(f.FASTSPEC_LINES)) == 46
    assert len(f.columns("fastspec_v3", "FASTSPEC")) == 887
    names = f.column_names("fastspec_v3", "FASTSPEC")
    assert len(set(names)) == 887
    assert "HALPHA_FLUX" in names and "OII_3726_EW_IVAR" in names and "HBETA_MOMENT1" in names
    meta = {c.name: c for c in f.columns("fastspec_v3", "METADATA")}
    assert list(meta)[:4] == ["TARGETID", "SURVEY", "PROGRAM", "HEALPIX"]
    assert meta["TARGETID"].tform == "K" and meta["RA"].tform == "D" and meta["Z"].tform == "D"
    assert meta["ZWARN"].tform == "B" and meta["ZWARN"].tzero == -128  # int8 in FITS
    assert meta["SPECTYPE"].tform == "6A" and meta["DELTACHI2"].tform == "D"
    assert meta["FLUX_R"].tform == "E" and meta["RA"].tunit is None
    sp = {c.name: c for c in f.columns("fastspec_v3", "SPECPHOT")}
    for key in ("LOGMSTAR", "LOGMSTAR_IVAR", "SFR", "SFR_IVAR", "DN4000", "TAUV",
                "ABSMAG01_SDSS_U", "ABSMAG01_SDSS_R", "ABSMAG01_IVAR_SDSS_R", "KCORR01_SDSS_R"):
        assert sp[key].tform == "E", key
    assert sp["LOGMSTAR"].tunit is None
    for ext in ("METADATA", "SPECPHOT", "FASTSPEC"):
        assert f.column_names("fastspec_v3", ext)[0] == "TARGETID"


def test_fastspec_v21_layout():
    fs = f.column_names("fastspec_v21", "FASTSPEC")
    for key in ("Z", "LOGMSTAR", "SFR", "AV", "DN4000", "ABSMAG01_SDSS_R", "HALPHA_FLUX"):
        assert key in fs
    assert "TAUV" not in fs and "LOGMSTAR_IVAR" not in fs and "SFR_IVAR" not in fs
    assert f.QUANTITY_HDU["fastspec_v21"]["LOGMSTAR"] == "FASTSPEC"
    assert f.QUANTITY_HDU["fastspec_v3"]["LOGMSTAR"] == "SPECPHOT"


@pytest.mark.parametrize("name,kind", [
    ("DESIVAST_BGS_VOLLIM_VoidFinder_NGC.fits", "voidfinder"),
    ("/a/b/DESIVAST_BGS_VOLLIM_V2_REVOLVER_SGC.fits", "v2"),
    ("DESIVAST_BGS_VOLLIM_V2_VIDE_NGC.fits", "v2"),
    ("DESIVAST_BGS_VOLLIM_V2_ZOBOV_SGC.fits", "v2_zobov"),
    ("fastspec-iron-main-bright-nside1-hp11.fits", "fastspec_v3"),
    ("fastspec-iron-main-bright.fits", "fastspec_v21"),
    ("redrock-4-80613-thru20210324.fits", "redrock"),
    ("coadd-4-80613-thru20210324.fits", "coadd"),
    ("DESIVAST_BGS_VOLLIM_V2_FOO_NGC.fits", None),
    ("fastspec-iron-main-dark.fits", None),
])
def test_classify(name, kind):
    assert f.classify(name) == kind


def test_every_real_name_classifies_to_its_kind():
    for kind in f.KINDS.values():
        for name in kind.names:
            assert f.classify(name) == kind.kind
    assert len(f.DESIVAST_FILES) == 8 and len(f.FASTSPEC_V3_FILES) == 12


def test_paths_and_checksums():
    assert f.DESIVAST_CHECKSUM == "dr1/vac/dr1/desivast/v1.0/dr1_vac_dr1_desivast_v1.0.sha256sum"
    assert f.relpath("fastspec_v3", f.fastspec_v3_filename(2)) == \
        "dr1/vac/dr1/fastspecfit/iron/v3.0/catalogs/fastspec-iron-main-bright-nside1-hp02.fits"


def test_bits_and_caps():
    assert f.BGS_TARGET_BITS["BGS_FAINT"] == 0 and f.BGS_TARGET_BITS["BGS_BRIGHT"] == 1
    assert f.BGS_TARGET_BITS["BGS_WISE"] == 2 and f.BGS_TARGET_BITS["BGS_FAINT_HIP"] == 3
    assert f.BGS_BRIGHT == 2
    assert list(f.cap_of_ra([83.0, 83.1, 303.9, 304.0, -10.0])) == ["SGC", "NGC", "NGC", "SGC", "SGC"]
    ra = [83.0, 83.1, 303.9, 304.0, -10.0, 443.5, 0.0, 359.99]
    idx = f.cap_index_of_ra(ra)
    assert idx.dtype == np.int8 and [f.CAPS[i] for i in idx] == list(f.cap_of_ra(ra))


def test_tform_dtypes():
    assert f.tform_to_dtype("K") == ">i8" and f.tform_to_dtype("E") == ">f4"
    assert f.tform_to_dtype("6A") == "S6" and f.tform_to_dtype("10D") == "(10,)>f8"
    assert np.dtype(f.tform_to_dtype("5E")).itemsize == 20
    with pytest.raises(ValueError):
        f.tform_to_dtype("Q2")


def test_required_columns_are_documented_columns():
    for kind in f.FASTSPEC_KINDS + f.DESIVAST_KINDS:
        for ext in f.expected_hdus(kind)[1:]:
            req = f.key_columns(kind, ext)
            assert req and set(req) <= set(f.column_names(kind, ext)), (kind, ext)
    assert "LOGMSTAR" in f.key_columns("fastspec_v3", "SPECPHOT")
    assert "BGS_TARGET" in f.key_columns("fastspec_v21", "METADATA")


def test_what_a_fastspecfit_file_must_have():
    """The deliberate decision: positions, the tracer selection and the three quenched
    definitions' inputs; every line column and every IVAR is optional."""
    assert f.required_columns("fastspec_v3", "METADATA") == (
        "TARGETID", "SURVEY", "PROGRAM", "RA", "DEC", "Z", "ZWARN", "DELTACHI2", "SPECTYPE",
        "BGS_TARGET")
    assert f.required_columns("fastspec_v3", "SPECPHOT") == (
        "TARGETID", "LOGMSTAR", "SFR", "DN4000", "ABSMAG01_SDSS_U", "ABSMAG01_SDSS_R")
    assert f.required_columns("fastspec_v3", "FASTSPEC") == ("TARGETID",)
    assert set(f.required_columns("fastspec_v21", "FASTSPEC")) == {
        "TARGETID", "Z", "LOGMSTAR", "SFR", "DN4000", "ABSMAG01_SDSS_U", "ABSMAG01_SDSS_R"}
    assert "HALPHA_FLUX" in f.read_columns("fastspec_v3", "FASTSPEC")
    for kind in f.FASTSPEC_KINDS:
        for ext in f.expected_hdus(kind)[1:]:
            assert set(f.required_columns(kind, ext)) <= set(f.read_columns(kind, ext))
    assert "TOT_AREA" in f.required_columns("v2", "VOIDS") and "X1" not in f.required_columns("v2", "VOIDS")
    assert f.required_hdus("v2") == ("PRIMARY", "VOIDS", "ZONEVOID", "GALZONE")
    assert f.read_columns("v2", "TRIANGLE") == ()


def test_convert_reads_exactly_the_columns_formats_lists():
    from desivoids.convert import columns

    sources = {c.source for c in columns.GALAXY_COLUMNS + columns.LINE_COLUMNS}
    for kind in f.FASTSPEC_KINDS:
        assert set(f.GALAXY_READ[kind]) == sources, kind


@pytest.mark.parametrize("tform,tzero,tscal,kind", [
    ("K", None, None, "int"), ("1J", None, None, "int"), ("B", -128, None, "int"),
    ("I", 32768, None, "uint"), ("K", 2**63, None, "uint"), ("J", 5.0, 0.01, "float"),
    ("E", None, None, "float"), ("6A", None, None, "str"), ("L", None, None, "bool"),
    ("PJ(3)", None, None, "other")])
def test_value_kind(tform, tzero, tscal, kind):
    assert f.value_kind(tform, tzero, tscal)[0] == kind


def test_encodings_accepted_for_a_documented_column():
    zwarn = next(c for c in f.columns("fastspec_v3", "METADATA") if c.name == "ZWARN")
    bgs = next(c for c in f.columns("fastspec_v3", "METADATA") if c.name == "BGS_TARGET")
    ra = next(c for c in f.columns("fastspec_v3", "METADATA") if c.name == "RA")
    for tform, tzero in (("B", -128), ("I", None), ("J", None), ("K", None), ("I", 32768)):
        assert f.accepts(zwarn, tform, tzero) == (True, None), tform
    ok, note = f.accepts(zwarn, "L")
    assert ok and "bits are lost" in note
    assert f.accepts(bgs, "L") == (False, None)  # a bit mask is not a logical
    assert f.accepts(bgs, "K", 2**63) == (False, None)  # uint64 does not fit int64
    assert f.accepts(ra, "E") == (True, None) and f.accepts(ra, "J")[0] is False
    assert f.accepts(ra, "2D")[0] is False  # a vector is not a scalar


def test_check_file_reports_every_fault_at_once():
    facts = {"METADATA": f.HDUFacts(3, {"TARGETID": ("K", None, None), "RA": ("J", None, None)}),
             "FASTSPEC": f.HDUFacts(2, {"TARGETID": ("K", None, None)})}
    check = f.check_file("fastspec_v3", facts)
    codes = [(x.code, x.hdu, x.column) for x in check.faults]
    assert ("missing_hdu", "SPECPHOT", None) in codes
    assert ("mistyped", "METADATA", "RA") in codes
    assert ("missing_column", "METADATA", "DEC") in codes and ("missing_column", "METADATA", "Z") in codes
    assert ("not_row_matched", "METADATA/FASTSPEC", "TARGETID") in codes
    assert "HALPHA_FLUX" in check.absent_columns


# ----------------------------------------------------------------- one record per catalogue
def test_every_catalogue_is_one_record_of_a_family():
    assert tuple(formats.FAMILY_OF) == formats.ALGORITHMS
    names = [c.filename for c in formats.CATALOGUES]
    assert len(set(names)) == len(formats.ALGORITHMS) * len(formats.CAPS)
    for c in formats.CATALOGUES:
        assert formats.catalogue_of(f"some/dir/{c.filename}") == c
        kind = formats.classify(c.filename)
        assert kind in (c.family.kind, "v2_zobov")  # ZOBOV files lack the visualisation HDUs
        assert c.family.void_hdu in formats.expected_hdus(kind)
    assert formats.catalogue_of("DESIVAST_BGS_VOLLIM_V2_VoidFinder_NGC.fits") is None
    with pytest.raises(KeyError, match="unknown void-finding algorithm 'POLYVOID'"):
        formats.family("POLYVOID")


def test_a_fifth_catalogue_is_one_entry(monkeypatch):
    """A new pruning of the V2 family: its file name, parsing and family follow from one entry."""
    monkeypatch.setitem(formats.FAMILY_OF, "POLYVOID", formats.V2)
    c = formats.Catalogue("POLYVOID", "SGC")
    assert c.filename == "DESIVAST_BGS_VOLLIM_V2_POLYVOID_SGC.fits"
    assert c.family.zones and not c.family.holes


def test_no_library_code_decides_by_an_algorithms_name():
    """Behaviour follows the family's attributes (formats.Family), not `alg == "VoidFinder"`:
    an AST scan of the library (the mock, an independent writer, aside)."""
    import ast

    from desivoids import paths

    found = []
    for py in sorted((paths.ROOT / "lib" / "desivoids").rglob("*.py")):
        if "mock" in py.parts:
            continue
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Compare) and any(
                    isinstance(x, ast.Constant) and x.value in formats.ALGORITHMS
                    for x in [node.left, *node.comparators]):
                found.append(f"{py.name}:{node.lineno}")
    assert not found, found
