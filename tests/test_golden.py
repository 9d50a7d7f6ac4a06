"""Golden tables (tests/golden/*.yaml), transcribed by hand from DESI's own data models and the
code that writes the files, checked against the executable specification (desivoids.formats)
and, for tile spectra, against the real iron fixture files.

formats.py is shared by the mock writer and the readers, so a mistake in it passes every other
test; these tables are the independent reference.  Where formats.py disagrees with (or is
silent on) a golden fact, the check is marked xfail(strict=True) in KNOWN below with the
evidence, so that the disagreement stays visible until formats.py is fixed (and the xfail then
fails, as a reminder to remove it).

Golden TFORM syntax: an exact TFORM ("D", "10D", "6A"), alternatives when the sources are
ambiguous ("K|J"), or "?A" for a string whose width the sources do not establish.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from desivoids import formats

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
TILE_DIR = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "desi-iron-tile"
TILE_FILES = {"redrock": "redrock-4-80613-thru20210324.fits",
              "coadd": "coadd-4-80613-thru20210324.fits"}
BITPIX = {"uint8": 8, "int16": 16, "int32": 32, "int64": 64, "float32": -32, "float64": -64}

#: (kind, EXTNAME, column, check) -> why formats.py fails that golden check
#: (the first reading found eight: the 2.x per-line block and line list, SUBTYPE in v2.1
#: METADATA, TARGETID in the coadd FIBERMAP; all fixed in formats.py)
KNOWN: dict[tuple[str, str, str, str], str] = {}


def _load(kind: str) -> dict:
    with open(GOLDEN_DIR / f"{kind}.yaml") as fh:
        data = yaml.safe_load(fh)
    assert data["kind"] == kind, f"{kind}.yaml says kind {data['kind']!r}"
    return data


GOLDEN = {p.stem: _load(p.stem) for p in sorted(GOLDEN_DIR.glob("*.yaml"))}


def _norm(tform: str) -> str:
    t = str(tform).strip().upper()
    return t[1:] if re.fullmatch(r"1[A-Z]", t) else t  # '1A' == 'A'


def tform_matches(golden: str, actual: str) -> bool:
    for alt in str(golden).split("|"):
        if alt == "?A":
            if re.fullmatch(r"\d*A", _norm(actual)):
                return True
        elif _norm(alt) == _norm(actual):
            return True
    return False


def _params(check: str, rows):
    """pytest params, with the KNOWN discrepancies marked xfail(strict)."""
    out = []
    for kind, ext, col, *rest in rows:
        reason = KNOWN.get((kind, ext, col, check))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(kind, ext, col, *rest, marks=marks, id=f"{kind}-{ext}-{col}"))
    return out


def _columns(required_only=False):
    for kind, g in GOLDEN.items():
        for h in g["hdus"]:
            for c in h.get("columns") or ():
                if not required_only or c.get("required", True):
                    yield kind, h["extname"], c["name"], c


def _absent():
    for kind, g in GOLDEN.items():
        for h in g["hdus"]:
            for name in h.get("absent") or ():
                yield kind, h["extname"], name


# ---------------------------------------------------------------------------------------------
# The golden files themselves
# ---------------------------------------------------------------------------------------------


def test_one_golden_file_per_kind():
    assert sorted(GOLDEN) == sorted(formats.KINDS)


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_golden_file_is_well_formed(kind):
    g = GOLDEN[kind]
    for h in g["hdus"]:
        refs = list(h.get("src", []))
        for c in h.get("columns") or ():
            assert set(c) <= {"name", "dtype", "tform", "tzero", "required", "src"}, c
            assert re.fullmatch(r"(\?A|\d*[LXBIJKAEDCM])(\|\d*[LXBIJKAEDCM])*", str(c["tform"])), c
            refs += c["src"]
        assert set(refs) <= set(g["sources"]), f"{kind}: unknown sources {set(refs) - set(g['sources'])}"
        assert "image" not in h or h["image"] in BITPIX


# ---------------------------------------------------------------------------------------------
# formats.py against the golden tables
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(GOLDEN))
def test_hdus_in_order(kind):
    assert formats.expected_hdus(kind) == tuple(h["extname"] for h in GOLDEN[kind]["hdus"])


@pytest.mark.parametrize("kind,ext,col,c", _params("tform", _columns()))
def test_column_and_tform(kind, ext, col, c):
    have = {x.name: x for x in formats.columns(kind, ext)}
    assert col in have, f"formats.columns({kind!r}, {ext!r}) has no {col!r}"
    assert tform_matches(c["tform"], have[col].tform), \
        f"{kind} {ext}.{col}: formats.py says TFORM {have[col].tform!r}, golden {c['tform']!r}"
    if "tzero" in c:
        assert have[col].tzero == c["tzero"], \
            f"{kind} {ext}.{col}: formats.py says TZERO {have[col].tzero!r}, golden {c['tzero']!r}"


@pytest.mark.parametrize("kind,ext,col,c", _params("required", _columns(required_only=True)))
def test_required_column(kind, ext, col, c):
    assert col in formats.key_columns(kind, ext)


@pytest.mark.parametrize("kind,ext", [(k, h["extname"]) for k, g in GOLDEN.items()
                                      for h in g["hdus"] if h.get("complete")])
def test_complete_table_in_file_order(kind, ext):
    golden = [c["name"] for c in next(h for h in GOLDEN[kind]["hdus"] if h["extname"] == ext)["columns"]]
    assert list(formats.column_names(kind, ext)) == golden
    assert list(formats.key_columns(kind, ext)) == golden


@pytest.mark.parametrize("kind,ext,col", _params("absent", _absent()))
def test_column_absent(kind, ext, col):
    assert col not in formats.column_names(kind, ext)


# ---------------------------------------------------------------------------------------------
# The golden tile tables against the real iron fixture files (read with astropy)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def tile_hdul(request):
    if not TILE_DIR.is_dir():
        pytest.skip(f"real DESI tile fixtures not present at {TILE_DIR}")
    from astropy.io import fits

    with fits.open(TILE_DIR / TILE_FILES[request.param]) as hdul:
        yield hdul


@pytest.mark.parametrize("tile_hdul,kind", [(k, k) for k in TILE_FILES], indirect=["tile_hdul"])
def test_fixture_hdus_in_order(tile_hdul, kind):
    assert [h.name for h in tile_hdul] == [h["extname"] for h in GOLDEN[kind]["hdus"]]


@pytest.mark.parametrize("tile_hdul,kind", [(k, k) for k in TILE_FILES], indirect=["tile_hdul"])
def test_fixture_columns_and_images(tile_hdul, kind):
    for h in GOLDEN[kind]["hdus"]:
        hdr = tile_hdul[h["extname"]].header
        if "image" in h:
            assert hdr["BITPIX"] == BITPIX[h["image"]], (h["extname"], hdr["BITPIX"])
        cols = {hdr[f"TTYPE{i}"]: i for i in range(1, hdr.get("TFIELDS", 0) + 1)}
        for c in h.get("columns") or ():
            assert c["name"] in cols, f"{h['extname']} has no column {c['name']!r}"
            i = cols[c["name"]]
            assert tform_matches(c["tform"], hdr[f"TFORM{i}"]), (h["extname"], c["name"], hdr[f"TFORM{i}"])
            assert hdr.get(f"TZERO{i}") == c.get("tzero"), (h["extname"], c["name"])
