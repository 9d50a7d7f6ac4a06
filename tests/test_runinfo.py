"""Issue 22 points 1, 2 and 8 in the library: a run says whether it is a mock and how many
galaxies it has (from the runner's record, else the mock stamp); every figure of a mock run
carries a MOCK mark (pyplot's figures through matplotlib's figure.hooks, the answer figure
directly) and the answer figure shows the planted value; the answer in words has one sentence
per distinct result."""
from __future__ import annotations

import json

import matplotlib
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from desivoids import runinfo
from desivoids.release.figures import answer
from desivoids.systematics.stage import result_paragraph


def _summary(v2_same=True):
    rows = []
    for algorithm, rd in (("VoidFinder", -0.10), ("REVOLVER", -0.02), ("VIDE", -0.02),
                          ("ZOBOV", -0.02 if v2_same else 0.03)):
        for definition, shift in (("ssfr", 0.0), ("dn4000", 0.01), ("ur", 0.004)):
            rows.append({"algorithm": algorithm, "sample": "all voids", "definition": definition,
                         "cap": "both", "n_void": 1234, "n_wall": 56789, "rd": rd + shift,
                         "rd_jk_lo": rd + shift - 0.011, "rd_jk_hi": rd + shift + 0.012})
    return pd.DataFrame(rows)


def test_the_runs_record_decides_mock_and_counts_its_galaxies(tmp_path):
    d = tmp_path / "run"
    (d / "run").mkdir(parents=True)
    (d / "run" / "params.json").write_text(json.dumps({"profile": "mock", "mock": {"scale": "small"}}))
    info = runinfo.run_info(d)
    assert info.mock and info.galaxies == 150_000 and info.label == "mock"  # the scale's rows
    assert "mock" in info.title and "not DESI DR1" in info.sky
    parts = d / "convert" / "galaxies"
    parts.mkdir(parents=True)
    for k, n in enumerate((7, 5)):
        pq.write_table(pa.table({"targetid": np.arange(n)}), parts / f"part-{k}.parquet")
    assert runinfo.run_info(d).galaxies == 12  # once converted: the run's own rows
    (d / "run" / "params.json").write_text(json.dumps({"profile": "dr1", "mock": None}))
    real = runinfo.run_info(d)
    assert not real.mock and real.label == "DESI DR1" and "mock" not in real.title.lower()
    assert real.sky == "DESI DR1 (12 galaxies)"


def test_a_stage_run_alone_is_a_mock_where_the_mock_sky_is(tmp_path):
    d = tmp_path / "run"
    assert not runinfo.run_info(d).mock
    (d / "mirror").mkdir(parents=True)
    (d / "mirror" / ".desivoids-mock.json").write_text(json.dumps({"scale": "tiny", "seed": 1}))
    assert runinfo.run_info(d).mock and runinfo.run_info(d).galaxies == 4800


def _marks(fig):
    return [t for t in fig.texts if (t.get_gid() or "").startswith(runinfo.MOCK_GID)]


def test_every_pyplot_figure_of_a_mock_run_carries_the_mark():
    import matplotlib.pyplot as plt

    before = list(matplotlib.rcParams["figure.hooks"])
    try:
        runinfo.mark_figures(True)
        fig, _ = plt.subplots()
        assert any("MOCK" in t.get_text() for t in _marks(fig))
        plt.close(fig)
        runinfo.mark_figures(False)
        fig, _ = plt.subplots()
        assert _marks(fig) == []
        plt.close(fig)
    finally:
        matplotlib.rcParams["figure.hooks"] = before


def test_the_answer_figure_says_mock_and_shows_the_planted_value():
    s = _summary()
    expected = pd.DataFrame({"algorithm": ["VoidFinder", "REVOLVER", "VIDE", "ZOBOV"],
                             "definition": "ssfr", "expected": [-0.1, -0.05, -0.05, -0.05]})
    fig = answer(s, mock=True, expected=expected)
    assert _marks(fig) and "Mock sky" in fig.axes[0].get_title()
    planted = [c for c in fig.axes[0].collections if "expected" in str(c.get_label())]
    # one row per distinct result: VoidFinder's ssfr, then the three identical V2 prunings in one
    # row; the planted value beside the estimate of each row that has one (ssfr only here)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "VoidFinder: sSFR" and "REVOLVER, VIDE, ZOBOV: sSFR" in labels
    assert len(labels) == 2 * 3
    x = planted[0].get_offsets()[:, 0]
    assert len(planted) == 1 and np.allclose(x[np.isfinite(x)], [-0.1, -0.05])
    real = answer(s)
    assert not _marks(real) and "DESI DR1" in real.axes[0].get_title()
    assert not [c for c in real.axes[0].collections if "expected" in str(c.get_label())]
    matplotlib.pyplot.close("all")  # pyplot's figures: leave no state to the next test


def test_the_answer_in_words_has_one_sentence_per_distinct_result():
    text = result_paragraph(_summary())
    assert text.count("In ") == 2  # VoidFinder; the three identical V2 prunings together
    assert text.startswith("In VoidFinder voids (1,234 void and 56,789 wall galaxies), galaxies "
                           "are quenched 10.0 percentage points less often than wall galaxies of "
                           "the same stellar mass by specific star-formation rate")
    assert "95% interval 8.8 to 11.1 less" in text
    assert "In REVOLVER, VIDE and ZOBOV voids" in text
    assert "2.1 less to 0.2 more, which includes no difference" in text  # dn4000 of the V2
    one = _summary()
    one.loc[one.algorithm == "ZOBOV", ["n_wall", "rd", "rd_jk_lo", "rd_jk_hi"]] = [0, np.nan,
                                                                                   np.nan, np.nan]
    assert "ZOBOV has no estimate: 1,234 void and 0 wall galaxies, no wall galaxy to compare" \
        in result_paragraph(one)
    assert "1 percentage point less often" in result_paragraph(
        _summary().assign(rd=-0.01, rd_jk_lo=-0.03, rd_jk_hi=0.004))
    assert "+0." not in text and "[" not in text
    apart = result_paragraph(_summary(v2_same=False))
    assert "In REVOLVER and VIDE voids" in apart and "In ZOBOV voids" in apart
    assert "3.0 percentage points more often" in apart
