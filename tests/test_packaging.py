"""Packaging facts a fresh clone depends on."""
from __future__ import annotations

import tomllib

import yaml

from desivoids import paths


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((paths.ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) == wanted


def test_jupyter_book_is_pinned_below_2():
    deps = tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    jb = [d for d in deps if d.startswith("jupyter-book")]
    assert jb and "<2" in jb[0], "Jupyter Book 2 downloads its theme at build time and fails offline"


def test_ci_runs_the_readme_test_command():
    ci = (paths.ROOT / ".ci" / "run").read_text()
    readme = (paths.ROOT / "README.md").read_text()
    assert "make test" in ci.splitlines()[-1]
    assert "make book\nmake test" in readme


def test_outputs_are_git_ignored():
    ignored = (paths.ROOT / ".gitignore").read_text().split()
    for entry in ("data/", "_build/", "book/executed/", "book/_mathjax/"):
        assert entry in ignored or "/" + entry in ignored, entry
    # the run's data/ only: the package's own data (lib/desivoids/data) is committed
    assert "/data/" in ignored and "data/" not in ignored
