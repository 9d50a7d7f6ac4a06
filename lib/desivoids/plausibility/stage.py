"""The plausibility stage: its entry point :func:`run` and its result type."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from .. import formats, idsets, paths
from ..errors import StageError
from ..load.tables import table_transaction
from ..outputs import staged, write_json
from ..errors import InputError
from ..vastheaders import agreed_value, caps_present, primary_headers
from .findings import CATALOGUE, SAMPLE, findings, from_tallies, tally
from .selection import FAILED_FIT, SELECTION_COLUMNS, first_failed, tracer_cuts, waterfall
from ..params import checked
from ..stages import file_name

__all__ = ["run", "PlausibilityResult", "SAMPLE_COLUMNS"]

_TS = formats.TRACER_SELECTION
#: galaxies columns kept in sample.parquet (what environment and systematics read)
SAMPLE_COLUMNS = ("targetid", "ra", "dec", "z", "healpix", "comoving_distance", "comoving_x",
                  "comoving_y", "comoving_z", "logmstar", "logmstar_err", "sfr", "sfr_zero",
                  "log_ssfr", "dn4000", "dn4000_err", "absmag01_sdss_u", "absmag01_sdss_g",
                  "absmag01_sdss_r", "m_r")
_FINDING_COLUMNS = ("logmstar", "sfr", "dn4000", "z", "absmag01_sdss_u", "absmag01_sdss_r")
#: every galaxies column the stage reads (once per part)
READ_COLUMNS = tuple(dict.fromkeys(SELECTION_COLUMNS + _FINDING_COLUMNS + SAMPLE_COLUMNS))
SCHEMA_VERSION = 1


@dataclass
class PlausibilityResult:
    report: dict
    out_dir: Path

    @property
    def waterfall(self) -> pd.DataFrame:
        return pd.DataFrame(self.report["waterfall"])

    @property
    def findings(self) -> pd.DataFrame:
        return pd.DataFrame(self.report["findings"])

    @property
    def reproduction(self) -> pd.DataFrame:
        return pd.DataFrame(self.report["reproduction"])

    def __str__(self) -> str:
        w = self.waterfall
        both = w[w.cap == "both"]
        n_in, n_out = int(both.remaining.iloc[0]), int(both.remaining.iloc[-1])
        f = self.findings
        lines = [f"plausibility: {n_in:,d} galaxies -> {n_out:,d} in the sample; "
                 f"{int((f.status == 'finding').sum())} findings -> {paths.display(self.out_dir)}"]
        for r in self.report["reproduction"]:
            lines.append(f"  {r['cap']}: tracers {r['selected']:,d}, GALZONE {r['galzone']:,d}, "
                         f"in both {r['both']:,d}, selected only {r['selected_only']:,d}, "
                         f"GALZONE only {r['galzone_only']:,d}"
                         + (f" (and {r['galzone_out']:,d} with OUT = 1)" if r.get("galzone_out")
                            else ""))
        return "\n".join(lines)


def _threshold(given, headers, key: str) -> tuple[float | None, str]:
    """A threshold: the parameter, else the DESIVAST headers' value (VoidFinder's, where the
    files agree within formats.HEADER_TOLERANCES). MAGLIM absent or without a value (VAST
    writes it so when no magnitude cut was made) is None: no cut; ZLIMU must be there."""
    if given is not None:
        return float(given), "parameter"
    value, how = agreed_value(headers, key, formats.HEADER_TOLERANCES.get(key, 0.0))
    if value is None:
        if key == formats.MAGLIM_KEY:
            return None, ("MAGLIM of the DESIVAST headers has no value (VAST writes it so "
                          "when no magnitude cut was made)")
        raise InputError(None, "PRIMARY", key, "no DESIVAST file carries this header key")
    if how.get("max_difference"):
        return value, (f"{key} of the DESIVAST VoidFinder headers (the files differ by up to "
                       f"{how['max_difference']:.4g}, within the tolerance "
                       f"{how['tolerance']:g} of formats.HEADER_TOLERANCES)")
    return value, f"{key} of the DESIVAST headers"


def _reproduction(tracer_ids: dict[str, np.ndarray], galzone: pa.Table,
                  caps_present=formats.CAPS) -> list[dict]:
    """Selected tracers against GALZONE's TARGETs per cap whose files are present. GALZONE rows
    with OUT = 1 that are not selected are input galaxies VAST left out (files VAST writes list
    every input galaxy, those beyond the far limit with OUT = 1): counted apart, not as
    GALZONE-only tracers."""
    out = []
    targets = galzone.column("targetid").to_numpy()
    flagged = np.asarray(pc.fill_null(pc.equal(galzone.column("out"), formats.GALZONE_OUT),
                                      False))
    for cap in caps_present:  # sorted id sets (desivoids.idsets: np.unique and np.isin's
        # results, without their slow paths for 64-bit TARGETIDs)
        # the cap compared by Arrow: GALZONE's 2 million caps as numpy's Python strings (DR1
        # scale) cost more than the rest of the check
        in_cap = np.asarray(pc.fill_null(pc.equal(galzone.column("cap"), cap), False))
        sel = idsets.unique(tracer_ids.get(cap, np.zeros(0, np.int64)))
        gz = idsets.unique(targets[in_cap])
        flagged_ids = idsets.unique(targets[in_cap & flagged])
        left_out = flagged_ids[~idsets.isin(flagged_ids, sel, allowed_sorted=True)]
        gz = gz[~idsets.isin(gz, left_out, allowed_sorted=True)]
        n_out = int(len(left_out))
        in_gz = idsets.isin(sel, gz, allowed_sorted=True)
        both, only_sel = sel[in_gz], sel[~in_gz]
        only_gz = gz[~idsets.isin(gz, sel, allowed_sorted=True)]
        out.append({"cap": cap, "selected": int(len(sel)), "galzone": int(len(gz)),
                    "both": int(len(both)), "selected_only": int(len(only_sel)),
                    "galzone_only": int(len(only_gz)), "galzone_out": n_out,
                    "examples_selected_only": only_sel[:10].tolist(),
                    "examples_galzone_only": only_gz[:10].tolist()})
    return out


def _codes(values: np.ndarray, names) -> np.ndarray:
    """The index in ``names`` of each of ``values`` (every value one of ``names``)."""
    code = np.zeros(len(values), np.int8)
    for i, name in enumerate(names[1:], start=1):
        code[values == name] = i
    return code


def _by_targetid(targetid: np.ndarray, first: np.ndarray, caps: np.ndarray, cuts: list,
                 n_tracer_cuts: int, schema: pa.Schema) -> pa.Table:
    """The selection table sorted by TARGETID (what ``selection.sort_by("targetid")`` gives:
    the same stable order), its columns taken in that order before they are made strings.
    ``caps``: each row's cap, a name of formats.CAPS or its index there."""
    order = np.argsort(targetid, kind="stable")
    first = first[order]
    codes = caps if np.issubdtype(caps.dtype, np.integer) else _codes(caps, formats.CAPS)
    return pa.table({
        "targetid": targetid[order],
        "cap": pa.array(formats.CAPS, pa.string()).take(codes[order]),
        "removed_by": pa.array([c.name for c in cuts] + [None], pa.string()).take(first),
        "tracer": first >= n_tracer_cuts, "sample": first == len(cuts)}, schema=schema)


def _require_rows(first: np.ndarray, cuts: list, n_tracer_cuts: int) -> None:
    """An empty tracer selection or sample is this stage's error (a misspelt ``survey`` or a
    ``zmin`` above ZLIMU once passed with exit 0 and failed two stages later): name the cut that
    removed the last rows."""
    for what, n_cuts in (("tracers", n_tracer_cuts), ("sample", len(cuts))):
        if int(np.count_nonzero(first >= n_cuts)) == 0:
            counts = np.bincount(first, minlength=len(cuts) + 1)[:n_cuts]
            last = next((cuts[i] for i in range(n_cuts - 1, -1, -1) if counts[i]), None)
            why = (f"the cut {last.name!r} ({last.description}) removed the last "
                   f"{int(counts[cuts.index(last)]):,} rows" if last is not None
                   else "the catalogue has no rows")
            raise StageError(f"the selection keeps no {what} of {len(first):,} rows: {why}; "
                             "check the selection parameters")


def _parts(dataset: ds.Dataset, columns: list[str]):
    """Each part's ``columns``, in order, the next part read in a thread (Arrow decodes without
    the GIL) while the caller works on this one: two parts in memory at most."""
    fragments = list(dataset.get_fragments())
    with ThreadPoolExecutor(1) as pool:
        read = [pool.submit(f.to_table, columns=columns) for f in fragments[:1]]
        for i in range(len(fragments)):
            t = read.pop().result()
            if i + 1 < len(fragments):
                read.append(pool.submit(fragments[i + 1].to_table, columns=columns))
            yield t


@checked("plausibility")
def run(data_dir: str = "data/mock", db_url: str = "", survey: str = _TS["SURVEY"],
        program: str = _TS["PROGRAM"], bgs_bit: str = _TS["BGS_TARGET_BIT"],
        spectype: str = _TS["SPECTYPE"], zwarn: int = _TS["ZWARN"],
        min_deltachi2: float = _TS["DELTACHI2_GT"], zmin: float = 0.0,
        zlimu: float | None = None, maglim: float | None = None) -> PlausibilityResult:
    """The plausibility stage (parameters as the notebook declares them)."""
    layout = paths.RunLayout.of(data_dir)
    headers = primary_headers(paths.require(layout.file("convert", "voids"), "convert"))
    zl, zl_from = _threshold(zlimu, headers, "ZLIMU")
    ml, ml_from = _threshold(maglim, headers, "MAGLIM")
    cuts = tracer_cuts(survey, program, bgs_bit, spectype, zwarn, min_deltachi2, zmin, zl, ml,
                       maglim_note=ml_from if ml is None else "")
    n_tracer_cuts = len(cuts)
    cuts = cuts + [FAILED_FIT]
    dataset = ds.dataset(layout.file("convert", "galaxies"), format="parquet")
    sel_parts, sample_parts, firsts, caps_all, ids_all = [], [], [], [], []  # caps: indexes
    catalogue = []  # the catalogue's findings tallied part by part (findings.tally)
    tracer_ids: dict[str, list[np.ndarray]] = {c: [] for c in formats.CAPS}
    # the string columns taken from their few values by code (building them from numpy's
    # strings row by row cost more than the cuts)
    cap_names = pa.array(formats.CAPS, pa.string())
    cut_names = pa.array([c.name for c in cuts] + [None], pa.string())
    # every column the stage reads, read once per part (one part at a time: bounded memory)
    columns = list(READ_COLUMNS)
    for t in _parts(dataset, columns):
        first = first_failed(t, cuts)
        cap_code = formats.cap_index_of_ra(t.column("ra").to_numpy())  # no string per row
        tracer = first >= n_tracer_cuts
        sample = first == len(cuts)
        cap_column = cap_names.take(cap_code)
        sel_parts.append(pa.table({
            "targetid": t.column("targetid"), "cap": cap_column,
            "removed_by": cut_names.take(first),
            "tracer": pa.array(tracer), "sample": pa.array(sample)}))
        tid = t.column("targetid").to_numpy()
        for i, cap in enumerate(formats.CAPS):
            tracer_ids[cap].append(tid[tracer & (cap_code == i)])
        if sample.any():
            s = t.select(list(SAMPLE_COLUMNS)).filter(pa.array(sample))
            sample_parts.append(s.add_column(1, "cap", cap_column.filter(pa.array(sample))))
        catalogue.append(tally({c: t.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                                for c in _FINDING_COLUMNS}, CATALOGUE))
        firsts.append(first)
        caps_all.append(cap_code)
        ids_all.append(tid)
    selection = pa.concat_tables(sel_parts) if sel_parts else None
    sample_table = pa.concat_tables(sample_parts) if sample_parts else None
    first = np.concatenate(firsts) if firsts else np.zeros(0, np.int16)
    caps = np.concatenate(caps_all) if caps_all else np.zeros(0, np.int8)
    _require_rows(first, cuts, n_tracer_cuts)
    out = layout.stage("plausibility")
    ids = np.concatenate(ids_all) if ids_all else np.zeros(0, np.int64)
    thresholds = dict(survey=survey, program=program, bgs_bit=bgs_bit, spectype=spectype,
                      zwarn=zwarn, min_deltachi2=min_deltachi2, zmin=zmin, zlimu=zl,
                      zlimu_from=zl_from, maglim=ml, maglim_from=ml_from)
    # The report is computed in a thread from here on: beside the table's sort, the wait for a
    # load running beside this stage (`desivoids run --jobs`) and the table's insert
    with ThreadPoolExecutor(1) as reporter:
        reporting = reporter.submit(_report, layout, headers, cuts, n_tracer_cuts, first, caps,
                                    catalogue, sample_table, tracer_ids, thresholds)
        in_key_order = _by_targetid(ids, first, caps, cuts, n_tracer_cuts, selection.schema)
        # table and folder as one unit: the commit, recording the sealed folder, precedes its
        # rename. The selection table's insert (6.4 million rows at DR1 scale, the stage's
        # longest step, in C without the GIL) runs in a thread beside the Parquet files; its
        # pool's exit waits for it before the transaction ends, whatever happens
        with table_transaction(layout.db_url(db_url), "the plausibility stage's table",
                               layout.data_dir) as db, \
                staged(out, commit=db.committing("plausibility")) as tmp:
            with ThreadPoolExecutor(1) as pool:
                inserted = pool.submit(db.publish, "selection", in_key_order,
                                       key=("targetid",))  # in key order: the database appends
                pq.write_table(selection, tmp / file_name("plausibility", "selection"),
                               compression="zstd")
                if sample_table is None:
                    sample_table = dataset.schema.empty_table().select(list(SAMPLE_COLUMNS))
                    sample_table = sample_table.add_column(1, "cap", pa.array([], pa.string()))
                pq.write_table(sample_table, tmp / file_name("plausibility", "sample"),
                               compression="zstd")
                report = reporting.result()
                write_json(tmp / file_name("plausibility", "report"), report)
                inserted.result()
            db.prepare()  # what can fail happens before the commit
    return PlausibilityResult(report, out)


def _report(layout, headers, cuts, n_tracer_cuts, first, caps, catalogue, sample_table,
            tracer_ids, thresholds: dict) -> dict:
    """report.json: thresholds, cuts, waterfall, findings and the reproduction check."""
    samp_cols = ({c: sample_table.column(c).to_numpy(zero_copy_only=False).astype(float)
                  for c in ("logmstar", "sfr", "log_ssfr", "dn4000", "z", "absmag01_sdss_u",
                            "absmag01_sdss_r")} if sample_table is not None else
                 {c: np.zeros(0) for c in ("logmstar", "sfr", "log_ssfr", "dn4000", "z",
                                           "absmag01_sdss_u", "absmag01_sdss_r")})
    galzone = pq.read_table(layout.file("convert", "galzone"),
                            columns=["cap", "targetid", "out"])
    return {
        "schema": "desivoids.plausibility", "schema_version": SCHEMA_VERSION,
        "thresholds": thresholds,
        "cuts": [{"name": c.name, "description": c.description,
                  "defines": "tracers" if i < n_tracer_cuts else "sample"}
                 for i, c in enumerate(cuts)],
        "waterfall": waterfall(first, caps, cuts).to_dict(orient="records"),
        "findings": (from_tallies(catalogue, CATALOGUE, "catalogue")
                     + findings(samp_cols, SAMPLE, "sample")),
        "reproduction": _reproduction({c: np.concatenate(v) for c, v in tracer_ids.items()},
                                      galzone, caps_present(headers)),
    }
