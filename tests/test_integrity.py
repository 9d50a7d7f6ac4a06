"""integrity (stage 1): every check passes on the mock and fails on a dataset broken on
purpose for it; failures stop the stage naming them; a demotion turns one into a warning and is
listed; the report follows its documented, versioned schema."""
from __future__ import annotations

import json
import sqlite3

import jsonschema
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from desivoids import integrity
from desivoids.errors import StageError, UsageError
from validation_fixtures import rewrite_parquet, set_value


def statuses(result_or_report) -> dict[str, str]:
    report = getattr(result_or_report, "report", result_or_report)
    return {c["id"]: c["status"] for c in report["checks"]}


def failing(d, **kw) -> dict[str, str]:
    """Run the stage on a broken copy: it must fail; returns the statuses from its report."""
    with pytest.raises(StageError, match="integrity: .* check\\(s\\) failed") as err:
        integrity.run(data_dir=str(d), **kw)
    report = json.loads((d / "integrity" / "report.json").read_text())
    failed = {i for i, s in statuses(report).items() if s == "fail"}
    for cid in failed:
        assert cid in str(err.value)  # the error names every failed check
    return statuses(report)


def test_every_check_passes_on_the_mock(run_copy):
    result = integrity.run(data_dir=str(run_copy))
    st = statuses(result)
    assert "fail" not in st.values()
    families = {i.split(".")[0] for i in st}
    assert families == {"reconciliation", "keys", "types", "nulls", "range", "refs",
                        "tessellation"}
    # the mock's V2 files are three prunings: three ZONEVOIDs, each pointing at its own VOIDS
    assert st["refs.zonevoid_voids.REVOLVER.NGC"] == "pass"
    assert "warn" not in st.values()
    lab = result.v2_labellings().set_index(["algorithm", "cap"])
    assert len(lab) == 6
    assert (lab.loc[("ZOBOV", "NGC"), "zone_share"] == 1.0
            > lab.loc[("REVOLVER", "NGC"), "zone_share"] > 0)
    assert lab.tracer_share.nunique() > 1
    rows = next(c for c in result.checks if c["id"] == "reconciliation.galaxies")["evidence"]
    assert rows["rows_in"] == 4800 and rows["unbalanced"] == 0


def test_the_report_follows_its_schema(run_copy):
    result = integrity.run(data_dir=str(run_copy))
    schema = json.loads(integrity.SCHEMA.read_text())
    doc = json.loads(result.path.read_text())
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == 1
    broken = dict(doc)
    del broken["summary"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    bad_status = json.loads(json.dumps(doc))
    bad_status["checks"][0]["status"] = "ok"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_status, schema)


def test_a_duplicate_key_in_parquet_fails(run_copy):
    path = run_copy / "convert" / "voids.parquet"
    rewrite_parquet(path, lambda t: pa.concat_tables([t, t.slice(3, 1)]))
    st = failing(run_copy)
    assert st["keys.parquet.voids"] == "fail" and st["keys.database.voids"] == "pass"


def test_a_duplicate_key_in_the_database_fails(run_copy):
    db = sqlite3.connect(run_copy / "database" / "desivoids.sqlite")
    with db:  # a table without its key, holding one row twice
        db.execute("ALTER TABLE holes RENAME TO holes_keyed")
        db.execute("CREATE TABLE holes AS SELECT * FROM holes_keyed")
        db.execute("INSERT INTO holes SELECT * FROM holes_keyed LIMIT 1")
    db.close()
    st = failing(run_copy)
    assert st["keys.database.holes"] == "fail" and st["keys.parquet.holes"] == "pass"
    assert st["reconciliation.holes"] == "fail"  # one row more than convert read


def test_a_galzone_target_that_is_no_galaxy_fails(run_copy):
    """Checked against the galaxies' TARGETIDs sorted once for their own key check."""
    rewrite_parquet(run_copy / "convert" / "galzone.parquet",
                    lambda t: set_value(t, "targetid", 0, 12_345))
    failing(run_copy)
    report = json.loads((run_copy / "integrity" / "report.json").read_text())
    check = next(c for c in report["checks"] if c["id"] == "refs.galzone_targets")
    assert check["status"] == "fail"
    assert check["evidence"]["not_in_galaxies"] == 1 and check["evidence"]["examples"] == [12_345]
    assert {c["id"]: c["status"] for c in report["checks"]}["keys.parquet.galaxies"] == "pass"


def test_an_orphan_zone_fails(run_copy):
    rewrite_parquet(run_copy / "convert" / "galzone.parquet",
                    lambda t: set_value(t, "zone", 0, 99_999))
    st = failing(run_copy)
    bad = [i for i, s in st.items() if i.startswith("refs.galzone_zones.") and s == "fail"]
    assert len(bad) == 1
    cap = bad[0].rsplit(".", 1)[1]
    assert st[f"tessellation.{cap}"] == "fail"  # and that file no longer matches its twins


def test_a_hole_of_a_missing_void_fails(run_copy):
    rewrite_parquet(run_copy / "convert" / "holes.parquet",
                    lambda t: set_value(t, "void", 0, 987_654))
    st = failing(run_copy)
    assert "fail" in {st["refs.holes_voids.NGC"], st["refs.holes_voids.SGC"]}


def test_a_zone_pointing_at_no_void_fails(run_copy):
    rewrite_parquet(run_copy / "convert" / "zonevoid.parquet",
                    lambda t: set_value(t, "void0", 0, 555_555))
    st = failing(run_copy)
    assert [i for i, s in st.items() if i.startswith("refs.zonevoid_voids.") and s == "fail"]


def test_a_void0_of_another_pruning_fails(run_copy):
    """A VIDE zone pointing at a void id that VIDE's own VOIDS lacks (ZOBOV's has it) fails."""
    zv = run_copy / "convert" / "zonevoid.parquet"
    voids = pq.read_table(run_copy / "convert" / "voids.parquet").to_pandas()
    vide = set(voids[(voids.algorithm == "VIDE") & (voids.cap == "NGC")].void)
    zobov = set(voids[(voids.algorithm == "ZOBOV") & (voids.cap == "NGC")].void)
    foreign = min(zobov - vide)

    def point_vide_at_zobov(t):
        rows = pc.indices_nonzero(pc.and_(pc.equal(t["algorithm"], "VIDE"),
                                          pc.equal(t["cap"], "NGC"))).to_pylist()
        return set_value(t, "void0", rows[0], foreign)

    rewrite_parquet(zv, point_vide_at_zobov)
    st = failing(run_copy)
    assert st["refs.zonevoid_voids.VIDE.NGC"] == "fail"
    assert st["refs.zonevoid_voids.ZOBOV.NGC"] == "pass" and st["tessellation.NGC"] == "pass"
    report = json.loads((run_copy / "integrity" / "report.json").read_text())
    ev = next(c for c in report["checks"] if c["id"] == "refs.zonevoid_voids.VIDE.NGC")["evidence"]
    assert ev["unknown_void_ids"] == 1 and ev["zones_affected"] == 1
    assert ev["examples"][0]["void0"] == foreign


def test_a_nan_column_fails(run_copy):
    part = max((run_copy / "convert" / "galaxies").glob("*.parquet"), key=lambda p: p.stat().st_size)

    def nan_mass(t):
        i = t.schema.get_field_index("logmstar")
        return t.set_column(i, t.schema.field(i), pa.array([float("nan")] * t.num_rows))

    rewrite_parquet(part, nan_mass)
    st = failing(run_copy)
    assert st["nulls.galaxies.logmstar"] == "fail" and st["nulls.galaxies.sfr"] == "pass"


def test_an_out_of_range_value_fails(run_copy):
    part = sorted((run_copy / "convert" / "galaxies").glob("*.parquet"))[0]
    rewrite_parquet(part, lambda t: set_value(t, "dec", 0, 95.0))
    st = failing(run_copy)
    assert st["range.galaxies.dec"] == "fail" and st["range.galaxies.ra"] == "pass"


def test_galzone_differing_between_the_v2_files_fails(run_copy):
    def change_vide(t):
        rows = pc.indices_nonzero(pc.and_(pc.equal(t["algorithm"], "VIDE"),
                                          pc.equal(t["cap"], "SGC"))).to_pylist()
        return set_value(t, "depth", rows[0], 123)

    rewrite_parquet(run_copy / "convert" / "galzone.parquet", change_vide)
    st = failing(run_copy)
    assert st["tessellation.SGC"] == "fail" and st["tessellation.NGC"] == "pass"


def test_a_row_missing_from_the_database_fails_the_reconciliation(run_copy):
    db = sqlite3.connect(run_copy / "database" / "desivoids.sqlite")
    with db:
        db.execute("DELETE FROM galaxies WHERE rowid IN (SELECT rowid FROM galaxies LIMIT 1)")
    db.close()
    st = failing(run_copy)
    assert st["reconciliation.galaxies"] == "fail"


def test_a_mistyped_column_fails(run_copy):
    def int32_void(t):
        i = t.schema.get_field_index("void")
        return t.set_column(i, pa.field("void", pa.int32()), t.column("void").cast(pa.int32()))

    rewrite_parquet(run_copy / "convert" / "voids.parquet", int32_void)
    st = failing(run_copy)
    assert st["types.parquet.voids"] == "fail" and st["types.parquet.zonevoid"] == "pass"


def test_a_demoted_check_warns_and_is_listed(run_copy):
    part = sorted((run_copy / "convert" / "galaxies").glob("*.parquet"))[0]
    rewrite_parquet(part, lambda t: set_value(t, "dec", 0, 95.0))
    result = integrity.run(data_dir=str(run_copy), demote=["range.galaxies.*"])
    assert statuses(result)["range.galaxies.dec"] == "warn"
    assert result.report["demoted"] == ["range.galaxies.dec"]
    assert next(c for c in result.checks if c["id"] == "range.galaxies.dec")["demoted"]
    with pytest.raises(UsageError, match="no integrity check matches"):
        integrity.run(data_dir=str(run_copy), demote=["range.galaxy.dec"])  # misspelt


def test_thresholds_are_parameters(run_copy):
    result = integrity.run(data_dir=str(run_copy), max_null_fraction={"logmstar": 0.0})
    assert [c["id"] for c in result.checks if c["id"].startswith("nulls.")] == \
        ["nulls.galaxies.logmstar"]
    failing(run_copy, z_range=[0.0, 1.0])  # the mock holds quasars beyond z = 1


def test_a_composite_key_is_checked_as_packed_integers_with_the_group_bys_answer():
    """Composite keys (GALZONE's algorithm, cap, gal) are checked by sorting one packed int64
    per row (tables.packed_key), not by Arrow's hash group_by: the same duplicates, found
    whatever the strings and the integers' range."""
    import numpy as np

    from desivoids.integrity.tables import _duplicates, packed_key

    rng = np.random.default_rng(3)
    n = 5000
    t = pa.table({"algorithm": pa.array(np.array(["REVOLVER", "VIDE", "ZOBOV"])[
                      rng.integers(0, 3, n)]),
                  "cap": pa.array(np.array(["NGC", "SGC"])[rng.integers(0, 2, n)]),
                  "gal": pa.array(rng.permutation(n) - 2**40, pa.int64())})
    key = ("algorithm", "cap", "gal")
    p = packed_key(t, key)
    assert p is not None and len(np.unique(p)) == n and (np.diff(p) > 0).all()
    assert _duplicates(t, key) == (0, [])
    # a row repeated, and rows equal but for one digit: only the repeated row is a duplicate
    twin = t.slice(7, 1)
    near = t.slice(8, 1).set_column(2, "gal", pa.array([pc.max(t["gal"]).as_py() + 1]))
    t2 = pa.concat_tables([t, twin, near])
    n_dup, examples = _duplicates(t2, key)
    want = t2.group_by(list(key)).aggregate([([], "count_all")]).filter(
        pc.greater(pc.field("count_all"), 1))
    assert n_dup == want.num_rows == 1
    assert twin.to_pylist()[0] | {"count_all": 2} in examples
    # a null in the key, or a float column: the group_by decides
    with_null = t.set_column(1, "cap", pa.array([None] + t["cap"].to_pylist()[1:]))
    assert packed_key(with_null, key) is None and _duplicates(with_null, key) == (0, [])
    assert packed_key(t.append_column("x", pa.array(np.ones(n))), ("cap", "x")) is None
