"""plausibility's reproduction check (selected tracers against GALZONE's TARGETs) counts and
lists exactly what numpy's set routines give, on TARGETID-like 64-bit ids, with GALZONE rows of
OUT = 1 and both kinds of disagreement."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from desivoids import formats
from desivoids.plausibility.stage import _reproduction


def _numpy_reproduction(tracer_ids, galzone, caps_present):
    """The check as plain numpy set operations (what the stage computed before issue 25)."""
    out = []
    caps = np.asarray(galzone.column("cap").to_pylist())
    targets = galzone.column("targetid").to_numpy()
    flagged = np.array([v == formats.GALZONE_OUT for v in galzone.column("out").to_pylist()])
    for cap in caps_present:
        sel = np.unique(tracer_ids.get(cap, np.zeros(0, np.int64)))
        gz = np.unique(targets[caps == cap])
        left_out = np.setdiff1d(np.unique(targets[(caps == cap) & flagged]), sel,
                                assume_unique=True)
        gz = np.setdiff1d(gz, left_out, assume_unique=True)
        both = np.intersect1d(sel, gz, assume_unique=True)
        only_sel = np.setdiff1d(sel, gz, assume_unique=True)
        only_gz = np.setdiff1d(gz, sel, assume_unique=True)
        out.append({"cap": cap, "selected": len(sel), "galzone": len(gz), "both": len(both),
                    "selected_only": len(only_sel), "galzone_only": len(only_gz),
                    "galzone_out": len(left_out),
                    "examples_selected_only": only_sel[:10].tolist(),
                    "examples_galzone_only": only_gz[:10].tolist()})
    return out


def test_the_same_counts_and_examples_as_numpys_set_operations():
    rng = np.random.default_rng(25)
    ids = rng.choice(2**60, 4000, replace=False)
    n = 3000
    gz_ids = rng.choice(ids, n)  # GALZONE lists a TARGET once per V2 file: repeats
    caps = rng.choice(["NGC", "SGC"], n)
    out = rng.choice([0, formats.GALZONE_OUT, None], n, p=[0.8, 0.15, 0.05])
    galzone = pa.table({"cap": caps, "targetid": pa.array(gz_ids, pa.int64()),
                        "out": pa.array(out.tolist(), pa.int64())})
    tracer_ids = {"NGC": rng.choice(ids, 1500), "SGC": rng.choice(ids, 700)}
    got = _reproduction(tracer_ids, galzone, ("NGC", "SGC"))
    want = _numpy_reproduction(tracer_ids, galzone, ("NGC", "SGC"))
    assert got == want
    for r in got:  # every kind of row occurs, so the comparison covers each path
        assert r["both"] and r["selected_only"] and r["galzone_only"] and r["galzone_out"]
    # a cap with no selected tracers at all
    assert _reproduction({}, galzone, ("SGC",)) == _numpy_reproduction({}, galzone, ("SGC",))


def test_caps_as_arrow_gives_the_same_check_for_any_string_layout():
    """The caps are compared by Arrow (issue 25: GALZONE's 2 million caps as Python strings
    were most of the check): a cap column in chunks, dictionary-encoded or with nulls (no cap:
    in no cap's set) gives what the plain numpy check gives."""
    rng = np.random.default_rng(2525)
    ids = rng.choice(2**60, 3000, replace=False)
    n = 2400
    gz_ids = rng.choice(ids, n)
    caps = rng.choice(["NGC", "SGC", None], n, p=[0.6, 0.35, 0.05]).tolist()
    out = pa.array(rng.choice([0, formats.GALZONE_OUT], n, p=[0.85, 0.15]).tolist(), pa.int64())
    tracer_ids = {"NGC": rng.choice(ids, 1200), "SGC": rng.choice(ids, 600)}
    plain = pa.array(caps, pa.string())
    for cap_column in (pa.chunked_array([plain[:1000], plain[1000:]]),
                       pa.chunked_array([plain.dictionary_encode()]),
                       pa.chunked_array([plain.cast(pa.large_string())])):
        galzone = pa.table({"cap": cap_column, "targetid": pa.array(gz_ids, pa.int64()),
                            "out": out})
        want = _numpy_reproduction(tracer_ids, galzone, ("NGC", "SGC"))
        assert _reproduction(tracer_ids, galzone, ("NGC", "SGC")) == want
        assert all(r["both"] and r["galzone_only"] and r["galzone_out"] for r in want)
