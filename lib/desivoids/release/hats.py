"""The release as HATS catalogues (HEALPix-partitioned Parquet, an IVOA note) that LSDB opens.

``hats/galaxies``: galaxies_core joined with the void membership, one column per algorithm
(flag, void, r / r_eff, interior), partitioned so that no HEALPix pixel holds more than
``pixel_threshold`` rows and sorted by targetid within each; ``hats/galaxies_margin``: its
margin cache (the galaxies within ``margin_arcsec`` of each partition's boundary), which a
cross-match needs at partition boundaries; ``hats/voids``: voids_unified with the interior flag.
hats-import runs on a dask.distributed client: the run's cluster when ``scheduler_address`` names
one (its workers must see the release folder), else a LocalCluster started for the import.
Each catalogue's ``hats.properties`` carries the release version, the sha256 of the tables it
was built from and of the run's input files, and the citation.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..checksums import sha256_file
from ..formats import ALGORITHMS
from . import columns as C
from .. import lookup

__all__ = ["CATALOGUES", "GALAXIES", "CONTINUOUS", "VOIDS", "galaxies_table", "voids_table",
           "write", "ArrowFileReader", "validate", "citation_line", "partition_figure", "documented"]

_A = "environment:galaxy_void_assignments"
#: the galaxies catalogue's columns: galaxies_core's, then four per algorithm
GALAXIES = C.GALAXIES_CORE + tuple(col for a in ALGORITHMS for col in (
    C.Col(f"flag_{a.lower()}", C.I1, "", f"{a} flag (0 wall, 1 void, 2 edge, 9 outside)",
          f"{_A}.flag"),
    C.Col(f"void_{a.lower()}", C.I8, "", f"{a} void of the galaxy; null unless flag = 1",
          f"{_A}.void"),
    C.Col(f"r_over_reff_{a.lower()}", C.F8, "", f"{a}: distance to the void's centre / its "
          "effective radius", f"{_A}.r_over_reff"),
    C.Col(f"interior_{a.lower()}", C.BOOL, "", f"{a}: the void is interior; null: no void or "
          "unknown", f"{_A}.interior")))
_D = "density:galaxy_environment"
#: the continuous environment, added to hats/galaxies after the per-algorithm columns when the
#: run's density stage has published it (a run without that stage releases GALAXIES alone)
CONTINUOUS = (
    C.Col("delta_k", C.F8, "", "k-NN density contrast of the volume-limited tracers, corrected "
          "for the survey edge; null outside the survey", f"{_D}.delta_k"),
    C.Col("edge_fraction", C.F8, "", "fraction of the k-NN sphere inside the survey (points "
          "filling it); null outside the survey", f"{_D}.edge_fraction"),
    C.Col("edge_flag", C.BOOL, "", "edge_fraction < 0.5 or outside the survey: no reliable delta_k",
          f"{_D}.edge_flag"),
    C.Col("web_class", C.I1, "", "T-Web class: 0 void, 1 sheet, 2 filament, 3 knot; null "
          "outside the survey", f"{_D}.web_class"),
) + tuple(C.Col(f"void_centric_{a.lower()}", C.F8, "", f"{a}: distance to the centre of the "
                "galaxy's void (wall and edge galaxies: the nearest void's) / its effective "
                "radius", f"{_D}.void_centric_{a.lower()}") for a in ALGORITHMS)
VOIDS = C.VOIDS_UNIFIED + (
    C.Col("interior", C.BOOL, "", "not an edge void (null where unknown)", "derived: not is_edge"),)

#: catalogue folder below the release -> (what it is, its columns, the release tables it is from)
CATALOGUES = {
    "hats/galaxies": ("galaxies_core with its void membership under every algorithm, "
                      "HEALPix-partitioned and sorted by targetid within partitions", GALAXIES,
                      ("galaxies_core.parquet", C.ASSIGNMENTS_FILE)),
    "hats/galaxies_margin": ("the margin cache of hats/galaxies: its galaxies near partition "
                             "boundaries, for cross-matches", GALAXIES,
                             ("galaxies_core.parquet", C.ASSIGNMENTS_FILE)),
    "hats/voids": ("voids_unified: every void's centre on the sky, radius, algorithm, cap and "
                   "whether it is interior", VOIDS, ("voids_unified.parquet",)),
}


def documented(name: str, names: list[str]) -> list[str]:
    """The documented columns of catalogue ``name`` whose written columns are ``names``: with
    the continuous environment when the catalogue carries it."""
    cols = [c.name for c in CATALOGUES[name][1]]
    if name.startswith("hats/galaxies") and CONTINUOUS[0].name in names:
        cols += [c.name for c in CONTINUOUS]
    return cols


def galaxies_table(core: pa.Table, assign: pa.Table, environment: pa.Table | None = None
                   ) -> pa.Table:
    """galaxies_core with, per algorithm, the assignments' flag, void, r_over_reff, interior;
    and the density stage's continuous environment (:data:`CONTINUOUS`) when given."""
    ids = core.column("targetid")
    data = {f.name: core.column(f.name) for f in core.schema}
    for a in ALGORITHMS:
        t = assign.filter(pc.equal(assign["algorithm"], a))
        row = lookup.index_in(ids, t["targetid"])  # the assignments are in targetid order
        if pc.any(pc.is_null(row)).as_py():
            from ..errors import StageError

            raise StageError(f"galaxy_void_assignments.parquet: no {a} row for some galaxies "
                             "of galaxies_core; rerun environment")
        for src in ("flag", "void", "r_over_reff", "interior"):
            data[f"{src}_{a.lower()}"] = t[src].take(row)
    if environment is None:
        return _table(GALAXIES, data)
    row = lookup.index_in(ids, environment["targetid"])  # density's is in targetid order
    if pc.any(pc.is_null(row)).as_py():
        from ..errors import StageError

        raise StageError("galaxy_environment.parquet: no row for some galaxies of "
                         "galaxies_core; rerun density")
    for c in CONTINUOUS:
        data[c.name] = environment[c.name].take(row)
    return _table(GALAXIES + CONTINUOUS, data)


def voids_table(voids: pa.Table) -> pa.Table:
    data = {f.name: voids.column(f.name) for f in voids.schema}
    data["interior"] = pc.invert(voids["is_edge"])
    return _table(VOIDS, data)


def _table(cols, data: dict) -> pa.Table:
    sch = C.schema(cols)
    return pa.Table.from_arrays([pa.chunked_array([data[f.name]]) if isinstance(
        data[f.name], pa.Array) else data[f.name] for f in sch], names=sch.names).cast(sch)


#: dask settings of the LocalCluster the release starts (not of a cluster it is given)
LOCAL_CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False}


@contextmanager
def dask_client(scheduler_address: str) -> Iterator[object]:
    """The run's cluster (:func:`desivoids.compute.client`, as every stage connects to it), else
    a LocalCluster in this process (threads) closed afterwards."""
    import dask
    from distributed import Client, LocalCluster

    from .. import compute

    if scheduler_address:
        with compute.client(scheduler_address) as c:
            yield c
        return
    # no dashboard: starting one imports bokeh (0.6 s of a DR1-scale release, measured); the
    # scheduler's HTTP server on a free port: its default, 8787, may be taken by another
    # cluster, and distributed then warns on stderr, which fails the notebook. No statistical
    # profiler either: the worker samples its threads' Python stacks every 10 ms for a
    # dashboard nobody opens, 2-4 of the release's CPU seconds at DR1 scale (measured)
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                         dashboard_address=":0", scheduler_kwargs={"dashboard": False}
                         ) as cluster, Client(cluster) as c:
        yield c


class ArrowFileReader:
    """hats-import's input reader (its ``InputReader`` interface: ``read`` yields tables) of
    the Arrow IPC files :func:`write` hands it: memory-mapped, nothing to decode. Writing the
    joined galaxies as Parquet for hats-import and reading them back twice (its map and split
    each read the file) cost 0.6 s of CPU at DR1 scale, the IPC file 0.05 s (measured)."""

    def read(self, input_file, read_columns=None):
        with pa.memory_map(str(input_file)) as source:
            table = pa.ipc.open_file(source).read_all()
            yield table.select(read_columns) if read_columns else table


def numba_disk_cache() -> int:
    """Keep hats' numba-compiled functions in numba's on-disk cache; returns how many.

    Why: hats jit-compiles its pixel-tree alignment (``@njit`` without ``cache=True``) in every
    new process, about 6.5 s of the margin cache's pipeline at DR1 scale (benchmarks/REPORT.md,
    release); cached, a later run loads the machine code instead (the first still compiles).
    numba keys the cache on the function's source file and the CPU, so an upgraded hats
    recompiles; the cache lives where numba puts it (``__pycache__`` beside hats' modules, or
    ``NUMBA_CACHE_DIR``)."""
    import importlib

    from numba.core.registry import CPUDispatcher

    n = 0
    for name in ("hats.pixel_tree.pixel_alignment", "hats.pixel_tree.moc_filter"):
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, CPUDispatcher):
                obj.enable_caching()
                n += 1
    return n


def citation_line(cff: str) -> str:
    """CITATION.cff in one line: this release, then what it is built from."""
    import yaml

    doc = yaml.safe_load(cff)
    refs = "; ".join(r["title"] for r in doc.get("references", []))
    return (f"{doc['title']}, release {doc['version']} ({doc['date-released']}), commit "
            f"{doc.get('commit', 'unknown')}; built from: {refs}. See CITATION.cff.")


def spatial_index(table: pa.Table) -> np.ndarray:
    """Each row's hats spatial index: its order-29 HEALPix pixel (nested), hats' _healpix_29."""
    from hats.pixel_math.spatial_index import compute_spatial_index

    return np.asarray(compute_spatial_index(table["ra"].to_numpy(), table["dec"].to_numpy()))


def finest_order(table: pa.Table, threshold: int, limit: int = 10,
                 index: np.ndarray | None = None) -> int:
    """The finest HEALPix order the partitioning needs: the coarsest at which no pixel holds
    more than ``threshold`` rows. hats-import otherwise aligns order-``limit`` histograms
    (12.6 million pixels at order 10: 6 s per catalogue, measured), whatever the data.
    ``index``: the rows' :func:`spatial_index`, when already computed."""
    pix = (spatial_index(table) if index is None else index) >> 2 * (29 - limit)
    for order in range(limit + 1):
        if len(pix) == 0 or np.bincount(pix >> 2 * (limit - order)).max() <= threshold:
            return max(order, 1)  # hats-import needs highest above its lowest order, 0
    from ..errors import StageError

    raise StageError(f"hats_pixel_threshold {threshold}: more rows than that share one "
                     f"order-{limit} HEALPix pixel; raise the threshold")


def properties(version: str, citation: str, sources: dict[str, str], inputs: list[dict],
               title: str = "desivoids: galaxies in DESI DR1 voids and walls") -> dict:
    """Extra hats.properties keys (java properties: one line each, values are strings);
    ``title``: the run's (a mock run's says mock)."""
    return {"obs_title": title,
            "desivoids_release": version,
            "desivoids_citation": citation,
            "desivoids_source_sha256": " ".join(f"{n}:{s}" for n, s in sources.items()),
            "desivoids_inputs_sha256": " ".join(f"{f['path']}:{f['sha256']}" for f in inputs)}


def write(out: Path, tables: dict[str, pa.Table], *, version: str, citation: str,
          inputs: list[dict], pixel_threshold: int, margin_arcsec: float,
          scheduler_address: str = "", created: str = "",
          title: str = "desivoids: galaxies in DESI DR1 voids and walls",
          environment: Path | None = None, digest=sha256_file) -> list[str]:
    """Write the HATS catalogues below ``out`` (the release folder being staged) from the
    release's tables, already written there; returns the catalogue folders written.
    ``created``: the release date (YYYY-MM-DD) given as each catalogue's hats_creation_date in
    place of the clock's, so that a rerun of the same run writes the same bytes.
    ``environment``: the density stage's galaxy_environment.parquet, whose continuous
    environment hats/galaxies then carries (its sha256 among the catalogue's sources).
    ``digest``: a file's hex sha256 (the stage passes the one that then writes SHA256SUMS, so
    no file is hashed twice)."""
    import warnings

    with warnings.catch_warnings():  # tqdm.auto, imported by hats-import, warns in a notebook
        warnings.filterwarnings("ignore", message="IProgress not found")
        from hats_import.catalog.arguments import ImportArguments
        from hats_import.margin_cache.margin_cache_arguments import MarginCacheArguments
        from hats_import.pipeline import pipeline_with_client

    work = out / ".hats_work"  # below the release: a remote cluster's workers see it too
    work.mkdir()
    # density's galaxy_environment holds every galaxy (6.4 million at DR1 scale, 0.5 GB of these
    # columns): read for the tenth the release keeps
    env = None if environment is None else lookup.rows_of(
        environment, tables["galaxies_core.parquet"].column("targetid"),
        ["targetid", *(c.name for c in CONTINUOUS)])
    inputs_of = {"galaxies": galaxies_table(tables["galaxies_core.parquet"],
                                            tables[C.ASSIGNMENTS_FILE], env),
                 "voids": voids_table(tables["voids_unified.parquet"])}
    sort = {"galaxies": "targetid", "voids": "algorithm,cap,void"}
    common = dict(output_path=out / "hats", tmp_dir=work, resume=False, progress_bar=False,
                  write_table_kwargs={"compression": "zstd"})
    numba_disk_cache()  # the local cluster's workers are threads of this process
    try:
        with dask_client(scheduler_address) as client:
            if scheduler_address:  # and a cluster's workers, each its own process
                client.run(numba_disk_cache)
            threads = sum(client.nthreads().values())
            for name, table in inputs_of.items():
                # hats-import's input in the order of hats' spatial index: its split finds
                # each row's partition (np.unique) and its reduce sorts each partition faster
                # on rows already in that order (the galaxies' import took 5.5 s of CPU from
                # the unsorted table, 3.6 s from the sorted one, measured at DR1 scale)
                index = spatial_index(table)
                order = finest_order(table, pixel_threshold, index=index)
                table = table.take(np.argsort(index, kind="stable"))
                # in as many files as the client has threads: hats-import maps and splits
                # each file in its own task
                pieces = max(1, min(threads, table.num_rows // 100_000))
                files = []
                for k in range(pieces):
                    files.append(work / f"{name}-{k}.arrow")
                    lo, hi = k * table.num_rows // pieces, (k + 1) * table.num_rows // pieces
                    with pa.OSFile(str(files[-1]), "wb") as sink, \
                            pa.ipc.new_file(sink, table.schema) as ipc:
                        ipc.write_table(table.slice(lo, hi - lo))
                sources = {s: digest(out / s) for s in CATALOGUES[f"hats/{name}"][2]}
                if name == "galaxies" and environment is not None:
                    sources[f"density/{environment.name}"] = digest(environment)
                props = properties(version, citation, sources, inputs, title)
                args = ImportArguments(
                    output_artifact_name=name, input_file_list=[str(f) for f in files],
                    file_reader=ArrowFileReader(),
                    ra_column="ra", dec_column="dec", sort_columns=sort[name],
                    pixel_threshold=pixel_threshold, addl_hats_properties=props,
                    highest_healpix_order=order, **common)
                pipeline_with_client(args, client)
                if name == "galaxies":
                    margin = MarginCacheArguments(
                        input_catalog_path=out / "hats" / "galaxies",
                        output_artifact_name="galaxies_margin", margin_threshold=margin_arcsec,
                        addl_hats_properties=props, **common)
                    with warnings.catch_warnings():
                        # hats-import lists a non-empty margin's partitions from its files before
                        # it writes their partition_info.csv, and says so with a UserWarning (a
                        # notebook's stderr fails its stage); the catalogue is complete after
                        warnings.filterwarnings("ignore", message="Computing partitions from "
                                                "catalog parquet files")
                        pipeline_with_client(margin, client)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from hats.catalog import TableProperties

    for name in CATALOGUES:
        # hats-import records the staging folder's absolute path as the margin's primary table
        # (gone once the release is published): the primary, relative to hats/, instead
        fix = {"hats_creation_date": f"{created}T00:00UTC"} if created else {}
        if name == "hats/galaxies_margin":
            fix["primary_catalog"] = "galaxies"
        p = TableProperties.read_from_dir(out / name)
        p.copy_and_update(**fix).to_properties_file(out / name)
    return list(CATALOGUES)


def validate(folder: Path) -> str:
    """'' when hats reads ``folder`` as a valid catalogue (strict: every file consistent and
    every partition present), else the problem."""
    from hats.io.validation import is_valid_catalog

    if not folder.is_dir():
        return "missing"
    try:
        return "" if is_valid_catalog(folder, strict=True) else "hats does not validate it"
    except Exception as exc:  # any reader error is the finding
        return f"unreadable: {type(exc).__name__}: {exc}"


def partition_figure(release_dir: Path, path: Path | None = None):
    """The galaxies catalogue's partitions on the sky (Mollweide, each pixel its order's
    colour, with its row count in the title); saved to ``path`` when given."""
    import hats
    import matplotlib.pyplot as plt
    from astropy_healpix import HEALPix
    import astropy.units as u

    cat = hats.read_hats(release_dir / "hats" / "galaxies")
    pixels = cat.get_healpix_pixels()
    fig = plt.figure(figsize=(7.0, 3.8))
    ax = fig.add_subplot(projection="mollweide")
    cmap = plt.get_cmap("viridis")
    orders = sorted({p.order for p in pixels})
    for p in pixels:
        lon, lat = HEALPix(nside=2 ** p.order, order="nested").boundaries_lonlat(
            [p.pixel], step=8)
        ra = -np.unwrap(lon[0].to_value(u.rad)) + np.pi  # RA increasing to the left
        ra = (ra + np.pi) % (2 * np.pi) - np.pi
        if np.ptp(ra) > np.pi:  # a pixel cut by the map's edge: skip the wrap-around polygon
            continue
        ax.fill(ra, lat[0].to_value(u.rad), color=cmap(orders.index(p.order) / max(
            len(orders) - 1, 1)), alpha=0.7, lw=0.5, ec="k")
    ticks = np.arange(-150, 151, 30)
    ax.set_xticks(np.radians(ticks), [f"{(180 - t) % 360}°" for t in ticks])
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=cmap(k / max(len(orders) - 1, 1)),
                                     alpha=0.7, label=f"order {o}")
                       for k, o in enumerate(orders)], loc="lower right", fontsize=8)
    ax.grid(True, lw=0.3)
    ax.set_title(f"hats/galaxies: {len(pixels)} partitions (orders {', '.join(map(str, orders))}"
                 f"), at most {cat.catalog_info.hats_max_rows:,} rows each", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig
