"""plausibility (stage 2): the DESIVAST tracer selection reproduces the mock's planted tracers
exactly, each cut removes exactly what it should (boundaries included), failed fits are a cut of
their own, the waterfall sums exactly, thresholds default to the void files' headers, and
physical ranges are findings with counts."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pyarrow.parquet as pq
import pytest

from desivoids import plausibility
from desivoids.vastheaders import common_value, primary_headers
from validation_fixtures import rewrite_parquet, set_value


@pytest.fixture(scope="module")
def mock_result(loaded_run, tmp_path_factory):
    import shutil

    d = tmp_path_factory.mktemp("plaus") / "run"
    for sub in ("convert", "database"):
        shutil.copytree(loaded_run / sub, d / sub)
    return d, plausibility.run(data_dir=str(d))


def test_the_selection_reproduces_the_planted_tracers_exactly(mock_result, tiny_sky):
    d, result = mock_result
    root, _ = tiny_sky
    truth = pq.read_table(root / "truth" / "galaxies.parquet",
                          columns=["TARGETID", "IS_TRACER"]).to_pandas().set_index("TARGETID")
    sel = pq.read_table(d / "plausibility" / "selection.parquet").to_pandas().set_index("targetid")
    assert len(sel) == len(truth) == 4800
    assert (sel.loc[truth.index, "tracer"].to_numpy() == truth.IS_TRACER.to_numpy()).all()
    for r in result.report["reproduction"]:  # and GALZONE, the sample DESIVAST used
        assert r["selected_only"] == 0 and r["galzone_only"] == 0 and r["both"] > 500


def test_the_waterfall_sums_exactly(mock_result):
    d, result = mock_result
    w = result.waterfall
    sel = pq.read_table(d / "plausibility" / "selection.parquet").to_pandas()
    for cap, g in w.groupby("cap"):
        assert g.remaining.iloc[0] - g.removed.sum() == g.remaining.iloc[-1]
        assert (np.diff(g.remaining.to_numpy()) == -g.removed.to_numpy()[1:]).all()
        rows = sel if cap == "both" else sel[sel.cap == cap]
        assert g.remaining.iloc[0] == len(rows)
        assert g.remaining.iloc[-1] == int(rows["sample"].sum())
        for _, step in g.iloc[1:].iterrows():
            assert step.removed == int((rows.removed_by == step.cut).sum())
    both = w[w.cap == "both"]
    assert both.remaining.iloc[0] == w[(w.cap != "both") & (w.step == 0)].remaining.sum()


def test_outputs_and_the_database_table(mock_result):
    d, result = mock_result
    sample = pq.read_table(d / "plausibility" / "sample.parquet")
    sel = pq.read_table(d / "plausibility" / "selection.parquet")
    assert sample.num_rows == int(np.sum(sel.column("sample").to_numpy()))
    assert {"targetid", "cap", "logmstar", "log_ssfr", "sfr_zero", "comoving_x"} <= set(
        sample.column_names)
    db = sqlite3.connect(d / "database" / "desivoids.sqlite")
    n, n_sample = db.execute("SELECT count(*), sum(sample) FROM selection").fetchone()
    db.close()
    assert n == sel.num_rows and n_sample == sample.num_rows


def test_zlimu_and_maglim_come_from_the_headers(mock_result):
    d, result = mock_result
    th = result.report["thresholds"]
    headers = primary_headers(d / "convert" / "voids.parquet")
    assert th["zlimu"] == common_value(headers, "ZLIMU") and th["zlimu_from"].startswith("ZLIMU")
    assert th["maglim"] == common_value(headers, "MAGLIM")
    assert th["min_deltachi2"] == 40.0 and th["bgs_bit"] == "BGS_BRIGHT"


def _tracers(d, n):
    """n tracer rows of the largest galaxies part, and that part's path."""
    part = max((d / "convert" / "galaxies").glob("*.parquet"), key=lambda p: p.stat().st_size)
    sel = pq.read_table(d.parent / "ref" / "plausibility" / "selection.parquet").to_pandas()
    t = pq.read_table(part)
    ids = set(sel.targetid[sel.tracer])
    rows = [i for i, tid in enumerate(t.column("targetid").to_pylist()) if tid in ids][:n]
    return part, rows


def test_each_cut_removes_what_it_should_and_failed_fits_are_counted(run_copy):
    ref = run_copy.parent / "ref"
    import shutil

    for sub in ("convert", "database"):
        shutil.copytree(run_copy / sub, ref / sub)
    base = plausibility.run(data_dir=str(ref))
    zlimu = base.report["thresholds"]["zlimu"]
    maglim = base.report["thresholds"]["maglim"]
    part, rows = _tracers(run_copy, 12)
    edits = [  # (column, value, cut that must remove the row, or None: still a tracer)
        ("survey", "sv3", "survey"), ("program", "dark", "program"),
        ("bgs_target", 1, "bgs_bit"),  # BGS_FAINT only
        ("spectype", "QSO", "spectype"), ("zwarn", 4, "zwarn"),
        ("deltachi2", 40.0, "deltachi2"),  # DELTACHI2 > 40 is strict
        ("z", 0.0, "zmin"), ("z", zlimu + 1e-9, "zlimu"),
        ("z", zlimu, None),  # Z <= ZLIMU keeps the boundary
        ("m_r", maglim + 0.01, "maglim"), ("m_r", maglim, None),
        ("deltachi2", None, "deltachi2"),  # a null fails the cut that reads it
    ]

    def edit(t):
        for (col, value, _), row in zip(edits, rows):
            t = set_value(t, col, row, value)
        return t

    rewrite_parquet(part, edit)
    # one more tracer becomes a failed fit: LOGMSTAR = 0 and SFR = 0 together
    extra_part, extra = _tracers(run_copy, 13)
    target_row = extra[12]
    rewrite_parquet(extra_part, lambda t: set_value(set_value(t, "logmstar", target_row, 0.0),
                                                    "sfr", target_row, 0.0))
    tids = pq.read_table(part, columns=["targetid"]).column("targetid").to_pylist()
    failed_tid = pq.read_table(extra_part, columns=["targetid"]).column("targetid")[target_row].as_py()
    result = plausibility.run(data_dir=str(run_copy))
    sel = pq.read_table(run_copy / "plausibility" / "selection.parquet").to_pandas().set_index(
        "targetid")
    for (col, value, cut), row in zip(edits, rows):
        got = sel.loc[tids[row]]
        if cut is None:
            assert got.tracer, (col, value)
        else:
            assert got.removed_by == cut and not got.tracer, (col, value, got.removed_by)
    ff = sel.loc[failed_tid]
    assert ff.removed_by == "failed_fit" and ff.tracer and not ff["sample"]
    w = result.waterfall.query("cap == 'both'").set_index("cut")
    wb = base.waterfall.query("cap == 'both'").set_index("cut")
    assert w.loc["failed_fit", "removed"] == wb.loc["failed_fit", "removed"] + 1
    assert w.loc["deltachi2", "removed"] == wb.loc["deltachi2", "removed"] + 2


def test_thresholds_are_parameters(run_copy):
    strict = plausibility.run(data_dir=str(run_copy), min_deltachi2=100.0, zlimu=0.1)
    th = strict.report["thresholds"]
    assert th["zlimu"] == 0.1 and th["zlimu_from"] == "parameter"
    sel = pq.read_table(run_copy / "plausibility" / "selection.parquet").to_pandas()
    assert sel["tracer"].sum() < 3020 and (sel.removed_by == "deltachi2").sum() > 125


def test_physical_ranges_are_findings_with_counts(run_copy):
    part = max((run_copy / "convert" / "galaxies").glob("*.parquet"), key=lambda p: p.stat().st_size)
    rewrite_parquet(part, lambda t: set_value(t, "sfr", 0, -1.0))
    result = plausibility.run(data_dir=str(run_copy))
    f = result.findings.set_index("id")
    assert f.loc["catalogue.sfr", "status"] == "finding" and f.loc["catalogue.sfr", "outside"] == 1
    assert f.loc["catalogue.sfr", "min"] == -1.0
    assert f.loc["catalogue.z", "status"] == "ok"
    assert set(f.population) == {"catalogue", "sample"}
    report = json.loads((run_copy / "plausibility" / "report.json").read_text())
    assert report["schema_version"] == 1 and report["findings"] == result.report["findings"]


@pytest.mark.parametrize("kwargs, cut", [({"zmin": 0.3}, "z"), ({"survey": "sv2"}, "survey")])
def test_an_empty_selection_is_this_stages_error_naming_the_cut(run_copy, kwargs, cut):
    """zmin above ZLIMU, or a survey no row has, once selected 0 tracers with exit 0."""
    from desivoids.errors import StageError

    with pytest.raises(StageError, match=rf"keeps no tracers .* the cut '{cut}\w*'"):
        plausibility.run(data_dir=str(run_copy), **kwargs)
    assert not (run_copy / "plausibility").exists(), "nothing published"


def test_the_selection_table_in_key_order_is_the_selection_sorted_by_targetid():
    """The database's selection table is built sorted from the columns' codes: the same rows
    as sorting the Parquet selection, nulls (kept rows' removed_by) included."""
    import numpy as np
    import pyarrow as pa

    from desivoids import formats
    from desivoids.plausibility.selection import FAILED_FIT
    from desivoids.plausibility.stage import _by_targetid

    rng = np.random.default_rng(5)
    cuts = [FAILED_FIT, FAILED_FIT, FAILED_FIT]
    n = 1000
    targetid = rng.permutation(np.arange(n, dtype=np.int64) * 7919 + 2**58)
    first = rng.integers(0, len(cuts) + 1, n).astype(np.int16)
    caps = np.array(formats.CAPS)[rng.integers(0, 2, n)]
    names = np.array([c.name for c in cuts] + [None], dtype=object)
    selection = pa.table({"targetid": targetid, "cap": pa.array(caps.astype(str)),
                          "removed_by": pa.array(names[first], pa.string()),
                          "tracer": pa.array(first >= 2), "sample": pa.array(first == 3)})
    got = _by_targetid(targetid, first, caps, cuts, 2, selection.schema)
    assert got.equals(selection.sort_by("targetid"))
    # the stage hands the caps over as their index in formats.CAPS: the same table
    index = np.array([formats.CAPS.index(c) for c in caps], np.int8)
    assert _by_targetid(targetid, first, index, cuts, 2, selection.schema).equals(got)
    assert got.column("removed_by").null_count == int((first == 3).sum()) > 0


def test_the_waterfall_of_cap_indexes_is_that_of_cap_names():
    from desivoids import formats
    from desivoids.plausibility.selection import FAILED_FIT, waterfall

    rng = np.random.default_rng(7)
    cuts = [FAILED_FIT, FAILED_FIT]
    first = rng.integers(0, len(cuts) + 1, 500).astype(np.int16)
    index = rng.integers(0, 2, 500).astype(np.int8)
    names = np.array(formats.CAPS)[index]
    by_name = waterfall(first, names, cuts)
    assert waterfall(first, index, cuts).equals(by_name)
    assert by_name[by_name.cap == "SGC"].remaining.iloc[0] == int((index == 1).sum())
