"""The acquire chapter's findings, tables and figures (desivoids.acquire.figures) on a tiny mock
sky fetched through the stage, and on a dry run (nothing fetched: empty tables, no error)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from desivoids import acquire
from desivoids.acquire import figures


@pytest.fixture(scope="module")
def fetched(tiny_sky, tmp_path_factory):
    root, summary = tiny_sky
    d = tmp_path_factory.mktemp("acquire_fig") / "run"
    result = acquire.run(data_dir=str(d), source=str(root), workers=2,
                         sets=["desivast", "fastspecfit", "tiles"])
    return root, summary, result


def test_the_findings_and_tables_count_every_file_of_the_mirror(fetched):
    root, summary, result = fetched
    on_disk = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] == "dr1"]
    data = [p for p in on_disk if p.suffix == ".fits"]
    text = " ".join(figures.findings(result, str(root)))
    assert f"planned {len(on_disk):,d} files" in text
    assert f"{len(data):,d} files" in text and "verified" in text and "No file failed" in text
    manifest = figures.manifest_table(result)
    assert len(manifest) == len(on_disk) and set(manifest.state) == {"verified", "complete"}
    states = figures.state_table(result)
    assert states["files"].sum() == len(on_disk)
    pairs = figures.pairs_table(result)
    assert len(pairs) == len(summary["tiles"]) and list(pairs.columns)[-2:] == ["kept", "file"]
    assert (pairs.targets == pairs[["dropped: SPECTYPE", "dropped: ZWARN", "dropped: DELTACHI2",
                                    "kept"]].sum(axis=1)).all()


def test_the_figures_have_units_and_words(fetched):
    _, _, result = fetched
    fig = figures.state_figure(result)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "size on disk [MB]"
    assert {t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()} == {"verified", "complete"}
    spec = figures.spectrum_figure(result)
    (ax,) = spec.axes
    assert "[Angstrom]" in ax.get_xlabel() and "erg" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["B camera", "R camera", "Z camera"]
    assert ax.get_title().startswith("TARGETID ")
    plt.close("all")


def test_a_dry_run_gives_empty_tables_and_a_figure_that_says_so(tiny_sky, tmp_path):
    root, _ = tiny_sky
    result = acquire.run(data_dir=str(tmp_path / "run"), source=str(root), dry_run=True)
    assert "dry run" in " ".join(figures.findings(result, str(root)))
    assert figures.manifest_table(result).empty and figures.transfer_table(result).empty
    assert figures.pairs_table(result).empty and len(figures.plan_table(result)) > 0
    texts = [t.get_text() for t in figures.spectrum_figure(result).axes[0].texts]
    assert any("no tile spectrum" in t for t in texts)
    assert any("dry run" in t.get_text() for t in figures.state_figure(result).axes[0].texts)
    plt.close("all")
