"""The load notebook executed on the tiny mock sky's convert output: it reconciles every table,
lists the indexes, runs the example queries, and nbval re-execution reproduces its outputs."""
from __future__ import annotations


import pytest

from desivoids import runner
from desivoids.load import queries
from desivoids.stages import STAGES
from notebook_checks import output_text, run_nbval



@pytest.fixture(scope="module")
def run_dir(tiny_sky, tmp_path_factory):
    from desivoids.convert import build

    root, _ = tiny_sky
    d = tmp_path_factory.mktemp("nb_load") / "run"
    fast, vast = build.discover(root)
    build.convert_files(fast, vast, d / "convert", base=root, chunk_rows=5000)
    return d


@pytest.fixture(scope="module")
def executed(run_dir):
    out = runner.execute_stage(STAGES["load"], {"data_dir": str(run_dir)},
                               output=run_dir.parent / "04_load.ipynb", progress=False)
    return out


@pytest.mark.slow
def test_notebook_reconciles_and_queries(executed, run_dir):
    text = output_text(executed)
    assert (run_dir / "database" / "desivoids.sqlite").is_file()
    assert "sqlite database (cone index: rtree)" in text
    for name in ("galaxies", "galaxy_positions", "pk_voids", "ix_galaxies_z", "R*Tree",
                 "sphere galaxies also in the cone"):
        assert name in text, name
    assert "Every Parquet row is in the database: all 7 tables match" in text  # every table reconciles
    assert "NaN" not in text
    queries.dispose_engines()


@pytest.mark.slow
def test_nbval_reproduces_the_outputs(executed):
    proc = run_nbval(executed)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.postgres
def test_notebook_on_postgres(run_dir, pg_db_url, tmp_path):
    out = runner.execute_stage(STAGES["load"], {"data_dir": str(run_dir), "db_url": pg_db_url},
                               output=tmp_path / "04_load_pg.ipynb", progress=False)
    text = output_text(out)
    assert "postgresql database (cone index: q3c)" in text
    assert "ix_galaxies_q3c" in text and "GiST (cube)" in text
    assert "sphere galaxies also in the cone" in text
    queries.dispose_engines()
