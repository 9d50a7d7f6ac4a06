"""The release stage: its entry point :func:`run`, its result type and the completeness check."""
from __future__ import annotations

import importlib
import json
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import formats, paths
from ..checksums import sha256_file
from ..errors import StageError
from ..outputs import staged, write_json
from . import columns as C
from . import hats as H
from .. import lookup
from .provenance import citation, provenance, release_date, validate_citation
from .figures import answer_figure
from ..systematics.expected import expected_of
from ..params import checked
from ..runinfo import RunInfo, run_info

__all__ = ["run", "ReleaseResult", "PROMISED", "check_completeness"]

#: every file a release promises (besides completeness.json, which reports on them)
PROMISED = (*C.TABLES, "reports/integrity.json", "reports/plausibility.json",
            "reports/environment.json", "reports/systematics.json",
            "reports/systematics_summary.csv", "data_dictionary.md", "data_dictionary.json",
            "figures/answer.png", "provenance.json", "CITATION.cff", "README.md", "SHA256SUMS")
#: release file -> (stage, key of the stage's declared file) it copies
_REPORTS = {"reports/integrity.json": ("integrity", "report"),
            "reports/plausibility.json": ("plausibility", "report"),
            "reports/environment.json": ("environment", "report"),
            "reports/systematics.json": ("systematics", "report"),
            "reports/systematics_summary.csv": ("systematics", "summary_csv")}


@dataclass
class ReleaseResult:
    out_dir: Path
    completeness: list[dict]
    dictionary: list[dict]
    provenance: dict

    def files(self) -> pd.DataFrame:
        """The completeness rows with each file's size (a HATS catalogue's: all its files)."""
        def size(name: str) -> int:
            p = self.out_dir / name
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() \
                else p.stat().st_size if p.exists() else 0

        return pd.DataFrame(self.completeness).assign(
            bytes=lambda t: [size(f) for f in t.file])

    def __str__(self) -> str:
        ok = sum(r["ok"] for r in self.completeness)
        return (f"release: {ok} of {len(self.completeness)} promised files complete -> "
                f"{paths.display(self.out_dir)}")


def _table(cols: tuple[C.Col, ...], data: dict) -> pa.Table:
    sch = C.schema(cols)
    return pa.Table.from_arrays([pa.array(data[f.name], f.type) if not isinstance(
        data[f.name], (pa.Array, pa.ChunkedArray)) else data[f.name].cast(f.type) for f in sch],
        schema=sch)


def galaxies_core(layout: paths.RunLayout) -> pa.Table:
    """The tracer sample (every tracer, failed fits flagged) with the analysis columns."""
    from ..systematics.quenched import DEFINITIONS, quenched

    # cap as Parquet stores it, dictionary-encoded (as assignments below): decoding DR1's 6.4
    # million to strings cost 0.25 of the read's 0.4 CPU s; _table casts the kept ones back
    sel = pq.read_table(paths.require(layout.file("plausibility", "selection"),
                                      "plausibility"), columns=["targetid", "cap", "tracer"],
                        read_dictionary=["cap"])
    sel = sel.filter(sel["tracer"])
    import pyarrow.dataset as ds

    want = [c.name for c in C.GALAXIES_CORE if c.source.startswith("convert:")]
    g = ds.dataset(layout.file("convert", "galaxies"), format="parquet").to_table(
        columns=want, filter=pc.is_in(pc.field("targetid"), value_set=sel["targetid"]))
    g = g.sort_by("targetid")
    caps = sel.sort_by("targetid").column("cap")
    frame = g.select(["logmstar", "sfr", "dn4000", "absmag01_sdss_u",
                      "absmag01_sdss_r"]).to_pandas()
    data = {name: g.column(name) for name in want}
    data["cap"] = caps
    failed = (frame.logmstar.to_numpy() == 0) & (frame.sfr.to_numpy() == 0)
    data["failed_fit"] = pa.array(failed)
    for definition in DEFINITIONS:
        q = quenched(frame, definition)
        data[f"quenched_{definition}"] = pa.array(q.quenched, mask=~q.defined)
    return _table(C.GALAXIES_CORE, data)


def voids_unified(layout: paths.RunLayout) -> pa.Table:
    v = pq.read_table(layout.file("convert", "voids")).to_pandas()
    counts = pq.read_table(paths.require(layout.file("environment", "void_counts"),
                                         "environment")).to_pandas()
    m = v.merge(counts[counts.in_catalogue][["algorithm", "cap", "void", "n_tracers",
                                             "n_galaxies"]],
                on=["algorithm", "cap", "void"], how="left")
    m[["n_tracers", "n_galaxies"]] = m[["n_tracers", "n_galaxies"]].fillna(0).astype("int64")
    m = m.sort_values(["algorithm", "cap", "void"], ignore_index=True)
    return _table(C.VOIDS_UNIFIED, {c.name: m[c.name].to_numpy() if c.type != pa.bool_()
                                    else pa.array(m[c.name], pa.bool_(), from_pandas=True)
                                    for c in C.VOIDS_UNIFIED})


def assignments(layout: paths.RunLayout, targetids: pa.Array) -> pa.Table:
    """environment's assignments of the galaxies ``targetids``, in its (targetid) order, its
    string columns read dictionary-encoded (:func:`.lookup.rows_of`) and cast back to strings
    by _table for the kept tenth: the same values."""
    t = lookup.rows_of(layout.file("environment", "assignments"), targetids,
                       dictionary=tuple(c.name for c in C.ASSIGNMENTS if c.type == pa.string()))
    return _table(C.ASSIGNMENTS, {c.name: t.column(c.name) for c in C.ASSIGNMENTS})


def sample(core: pa.Table, assign: pa.Table, size: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(core.num_rows, size=min(size, core.num_rows), replace=False))
    s = core.take(pa.array(rows))
    data = {f.name: s.column(f.name) for f in core.schema}
    # the sampled galaxies' rows only: pivoting all of DR1's 2.8 million cost 0.6 CPU s
    mine = assign.select(["targetid", "algorithm", "flag"])
    mine = mine.filter(lookup.is_in(mine["targetid"], s.column("targetid").combine_chunks()))
    a = mine.to_pandas().pivot(index="targetid", columns="algorithm", values="flag")
    ids = s.column("targetid").to_numpy()
    for alg in formats.ALGORITHMS:
        data[f"flag_{alg.lower()}"] = pa.array(a[alg].reindex(ids).to_numpy(np.int8))
    return _table(C.SAMPLE_10K, data)


class _HashedOnce:
    """sha256_file for the release being staged, each file's bytes hashed once: the HATS
    catalogues' properties, SHA256SUMS and the completeness check all need the tables' sha256.
    A file whose size, mtime or inode has changed since is hashed again."""

    def __init__(self):
        self._seen: dict[Path, tuple[tuple, str]] = {}

    @staticmethod
    def _key(path: Path) -> tuple:
        st = Path(path).stat()
        return st.st_size, st.st_mtime_ns, st.st_ino

    def __call__(self, path: Path) -> str:
        key = self._key(path)
        seen = self._seen.get(Path(path))
        if seen is None or seen[0] != key:
            seen = self._seen[Path(path)] = (key, sha256_file(path))
        return seen[1]

    def published(self, layout: paths.RunLayout, stage: str, key: str) -> Path:
        """A producer's declared file, its sha256 taken from the producer's manifest: the stage
        checked the producer's folder against it before reading anything
        (:func:`desivoids.params.verify_reads`), so hashing the file again (density's
        galaxy_environment: 0.2 GB at DR1 scale) would only repeat that check."""
        from ..checksums import parse_sumfile
        from ..outputs import MANIFEST

        path, folder = layout.file(stage, key), layout.stage(stage)
        listing = folder / MANIFEST
        listed = parse_sumfile(listing.read_text(), str(listing)).get(
            path.relative_to(folder).as_posix()) if listing.is_file() else None
        if listed is not None:
            self._seen[path] = (self._key(path), listed)
        return path


def _sumfile(folder: Path, digest=sha256_file) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"
                   and p.name != "completeness.json")
    return "".join(f"{digest(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)


def check_completeness(folder: Path, digest=sha256_file) -> list[dict]:
    """Every promised file: exists, reads, matches SHA256SUMS, has its documented columns.
    ``digest``: a file's hex sha256 (the stage passes the one that wrote SHA256SUMS, so the
    bytes it hashed are not hashed again)."""
    from ..checksums import parse_sumfile

    sums_path = folder / "SHA256SUMS"
    sums = parse_sumfile(sums_path.read_text(), str(sums_path)) if sums_path.exists() else {}
    out = []
    for name in PROMISED:
        p = folder / name
        r = {"file": name, "exists": p.is_file(), "reads": False, "checksum": None,
             "columns": None, "problem": ""}
        if not r["exists"]:
            r["problem"] = "missing"
        else:
            try:
                if name.endswith(".parquet"):
                    sch = pq.read_schema(p)
                    want = [c.name for c in C.TABLES[name][0]]
                    r["columns"] = sch.names == want
                    if not r["columns"]:
                        r["problem"] = f"columns {sch.names} are not the documented {want}"
                    pq.read_metadata(p)  # the footer reads
                elif name.endswith(".json"):
                    json.loads(p.read_text())
                elif name.endswith(".cff"):
                    problems = validate_citation(p)
                    if problems:
                        r["problem"] = "; ".join(problems)
                elif name.endswith(".png"):
                    if p.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                        r["problem"] = "not a PNG file"
                elif p.stat().st_size == 0:
                    r["problem"] = "empty"
                r["reads"] = True  # no reader raised (a wrong content is a problem, not unread)
            except Exception as exc:  # any reader error is the finding
                r["problem"] = f"unreadable: {type(exc).__name__}: {exc}"
            if name != "SHA256SUMS":
                r["checksum"] = sums.get(name) == digest(p)
                if not r["checksum"] and not r["problem"]:
                    r["problem"] = "sha256 differs from SHA256SUMS" if name in sums else \
                        "not listed in SHA256SUMS"
        r["ok"] = not r["problem"]
        out.append(r)
    for name in H.CATALOGUES:
        out.append(_check_catalogue(folder, name, sums, digest))
    return out


def _continuous_environment(layout: paths.RunLayout, digest: _HashedOnce) -> Path | None:
    """The density stage's galaxy_environment.parquet when that stage has run, else None
    (hats/galaxies then goes without the continuous environment); ``digest`` takes its sha256
    from density's manifest."""
    path = layout.file("density", "environment")
    return digest.published(layout, "density", "environment") if path.is_file() else None


def _check_catalogue(folder: Path, name: str, sums: dict, digest=sha256_file) -> dict:
    """A HATS catalogue: hats validates it and every file of it matches SHA256SUMS."""
    p = folder / name
    r = {"file": name + "/", "exists": p.is_dir(), "reads": False, "checksum": None,
         "columns": None, "problem": H.validate(p)}
    if r["exists"]:
        r["reads"] = not r["problem"].startswith("unreadable")
        files = sorted(f.relative_to(folder).as_posix() for f in p.rglob("*") if f.is_file())
        unlisted = [f for f in files if f not in sums]
        differ = [f for f in files if f in sums and sums[f] != digest(folder / f)]
        r["checksum"] = bool(files) and not unlisted and not differ
        if not r["problem"] and (unlisted or differ):
            r["problem"] = (f"sha256 differs from SHA256SUMS: {', '.join(differ)}" if differ
                            else f"not listed in SHA256SUMS: {', '.join(unlisted)}")
        if not r["problem"]:
            import hats

            names = [c for c in hats.read_hats(p).schema.names if c != "_healpix_29"]
            want = H.documented(name, names)
            r["columns"] = names == want
            if not r["columns"]:
                r["problem"] = f"columns {names} are not the documented {want}"
    r["ok"] = not r["problem"]
    return r


@checked("release")
def run(data_dir: str = "data/mock", version: str = "v1", sample_size: int = 10000,
        sample_seed: int = 20251201, allow_failed_integrity: bool = False,
        hats_pixel_threshold: int = 1_000_000, hats_margin_arcsec: float = 10.0,
        scheduler_address: str = "") -> ReleaseResult:
    """The release stage (parameters as the notebook declares them)."""
    layout = paths.RunLayout.of(data_dir)
    if not version or "/" in version or version.startswith("."):
        from ..errors import UsageError

        raise UsageError(f"version {version!r}: a folder name such as v1")
    for stage, key in _REPORTS.values():
        paths.require(layout.file(stage, key), stage)
    integrity = integrity_status(layout.file("integrity", "report"))
    changed = _integrity_stale(layout)
    if changed:  # whatever allow_failed_integrity says: the report is not about these outputs
        raise StageError("release refused: the run's integrity report is older than the convert "
                         f"and load outputs it would be released with ({'; '.join(changed)}); "
                         "rerun `desivoids integrity`")
    if integrity["failed_checks"] and not allow_failed_integrity:
        raise StageError(f"release refused: the run's integrity stage failed "
                         f"({', '.join(integrity['failed_checks'])}); fix the input or rerun "
                         "integrity, or set allow_failed_integrity true to release it anyway "
                         "(the README, provenance and CITATION then say so)")
    integrity["released_anyway"] = bool(integrity["failed_checks"])
    out = layout.stage("release") / version
    # the citation check's validator imports jsonschema's format grammars (about a CPU second):
    # imported meanwhile, while the tables below are read (Arrow, mostly without the GIL)
    threading.Thread(target=importlib.import_module, args=("jsonschema",), daemon=True).start()
    with staged(out, manifest=False) as tmp:  # SHA256SUMS is the release's own manifest
        core = galaxies_core(layout)
        assign = assignments(layout, core.column("targetid").combine_chunks())
        tables = {"galaxies_core.parquet": core, "voids_unified.parquet": voids_unified(layout),
                  C.ASSIGNMENTS_FILE: assign,
                  "sample_10k.parquet": sample(core, assign, sample_size, sample_seed)}
        with ThreadPoolExecutor(2) as pool:  # Arrow writes without the GIL: two files at once
            list(pool.map(lambda item: pq.write_table(item[1], tmp / item[0],
                                                      compression="zstd"), tables.items()))
        (tmp / "reports").mkdir()
        for name, (stage, key) in _REPORTS.items():
            shutil.copyfile(layout.file(stage, key), tmp / name)
        prov = provenance(layout, {"version": version, "sample_size": sample_size,
                                   "sample_seed": sample_seed,
                                   "allow_failed_integrity": allow_failed_integrity,
                                   "hats_pixel_threshold": hats_pixel_threshold,
                                   "hats_margin_arcsec": hats_margin_arcsec})
        prov["integrity"] = integrity
        info = run_info(data_dir)  # a mock run's release says so in its title, README and figure
        cff = citation(version, prov, info)
        digest = _HashedOnce()
        H.write(tmp, tables, version=version, citation=H.citation_line(cff),
                inputs=prov["inputs"]["files"], pixel_threshold=hats_pixel_threshold,
                margin_arcsec=hats_margin_arcsec, scheduler_address=scheduler_address,
                created=release_date(prov), title=info.title,
                environment=_continuous_environment(layout, digest), digest=digest)
        schemas = {name: pq.read_schema(tmp / name) for name in tables}
        dictionary = C.dictionary_rows(schemas)
        write_json(tmp / "data_dictionary.json", dictionary)
        (tmp / "data_dictionary.md").write_text(_dictionary_md(dictionary))
        (tmp / "figures").mkdir()
        summary = pq.read_table(layout.file("systematics", "summary")).to_pandas()
        answer_figure(summary, tmp / "figures" / "answer.png", mock=info.mock,
                      expected=expected_of(data_dir, summary))
        write_json(tmp / "provenance.json", prov)
        (tmp / "CITATION.cff").write_text(cff)
        (tmp / "README.md").write_text(_readme(version, dictionary, integrity, info))
        (tmp / "SHA256SUMS").write_text(_sumfile(tmp, digest))
        completeness = check_completeness(tmp, digest)
        write_json(tmp / "completeness.json", completeness)
        with (tmp / "SHA256SUMS").open("a") as f:  # the report on the files is checksummed too
            f.write(f"{sha256_file(tmp / 'completeness.json')}  completeness.json\n")
        bad = [r for r in completeness if not r["ok"]]
        if bad:
            raise StageError("release: incomplete, nothing published: " + "; ".join(
                f"{r['file']}: {r['problem']}" for r in bad))
    return ReleaseResult(out, completeness, dictionary, prov)


def _integrity_stale(layout: paths.RunLayout) -> list[str]:
    """How the integrity report's checked inputs differ from the published convert and load."""
    from ..integrity import stale

    return stale(json.loads(layout.file("integrity", "report").read_text()), layout)


def integrity_status(report: Path) -> dict:
    """The integrity report's verdict: the ids of its failed checks (demoted ones are warnings)."""
    doc = json.loads(Path(report).read_text())
    failed = [c["id"] for c in doc.get("checks", []) if c.get("status") == "fail"]
    return {"status": "failed" if failed else "passed", "failed_checks": failed}


def _readme(version: str, dictionary: list[dict], integrity: dict, info: RunInfo) -> str:
    lines = [f"# desivoids release {version}, {info.label}", ""]
    if info.mock:
        lines += [f"**A mock run**: made from {info.sky}, written by `desivoids.mock` with a "
                  "planted answer to test the pipeline. These tables are not DESI data.", ""]
    if integrity["failed_checks"]:
        lines += ["**Released although the run's integrity stage failed** "
                  f"(`allow_failed_integrity`): {', '.join(integrity['failed_checks'])}. "
                  "See `reports/integrity.json` before using these tables.", ""]
    lines += ["Galaxies in voids and walls, per void-finding algorithm. The files:", ""]
    lines += [f"- `{t}`: {C.TABLES[t][1]}" for t in dict.fromkeys(r["table"] for r in dictionary)]
    lines += [f"- `{n}/`: {H.CATALOGUES[n][0]} (HATS; open it with `lsdb.read_hats`)"
              for n in H.CATALOGUES]
    lines += ["- `reports/`: the integrity, plausibility, environment and systematics reports",
              "- `data_dictionary.md`, `.json`: every column, its type, unit and source",
              "- `figures/answer.png`: the result in one figure",
              "- `provenance.json`, `CITATION.cff`: how it was made and how to cite it",
              "- `SHA256SUMS`: check a copy with `sha256sum -c SHA256SUMS`;"
              " `completeness.json`: the release's own check of every file", ""]
    return "\n".join(lines)


def _dictionary_md(rows: list[dict]) -> str:
    lines = ["# Data dictionary", "",
             "Generated from the written files' schemas: every column of every table of the "
             "release, its Arrow type, unit, meaning and source.", ""]
    for table in dict.fromkeys(r["table"] for r in rows):
        lines += [f"## {table}", "", C.TABLES[table][1] + ".", "",
                  "| column | type | unit | description | source |", "|---|---|---|---|---|"]
        lines += [f"| {r['column']} | {r['type']} | {r['unit']} | {r['description']} | "
                  f"{r['source']} |" for r in rows if r["table"] == table]
        lines.append("")
    lines += ["## HATS catalogues", "",
              "HEALPix-partitioned Parquet (HATS) copies of the tables above, which LSDB opens "
              "(`lsdb.read_hats`), cone-searches and cross-matches; each adds `_healpix_29`, the "
              "order-29 HEALPix index of (ra, dec).", ""]
    lines += [f"- `{n}/`: {what}; columns: {', '.join(c.name for c in cols)}"
              for n, (what, cols, _) in H.CATALOGUES.items()]
    lines += ["", "When the run's density stage has run, `hats/galaxies` and its margin cache "
              "also carry the continuous environment:", "",
              "| column | type | description | source |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.type} | {c.description} | {c.source} |" for c in H.CONTINUOUS]
    lines.append("")
    return "\n".join(lines)
