"""pyproject.toml bounds every dependency above, and the installed set lies inside the ranges.

A fresh `pip install -e '.[dev,ray,slurm]'` must not pull a major release nobody has tested
(issue 15, "Reproducible installs"): every requirement — core, extras, build — has an upper
bound, and each one installed here (the set the suite runs with) satisfies its specifier.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
requirements = pytest.importorskip("packaging.requirements")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirements() -> list:
    meta = tomllib.loads(PYPROJECT.read_text())
    reqs = list(meta["project"]["dependencies"]) + list(meta["build-system"]["requires"])
    for extra in meta["project"]["optional-dependencies"].values():
        reqs += extra
    return [requirements.Requirement(r) for r in reqs]


def test_every_dependency_has_an_upper_bound():
    unbounded = [str(r) for r in _requirements()
                 if not any(s.operator in ("<", "<=", "~=", "==") for s in r.specifier)]
    assert not unbounded, f"no upper bound: {unbounded}"


def test_installed_versions_lie_inside_the_bounds():
    outside = []
    for r in _requirements():
        try:
            v = version(r.name)
        except PackageNotFoundError:  # an extra (ray, submitit) or a build-only requirement
            continue
        if r.name in ("setuptools", "wheel"):  # build isolation installs its own
            continue
        if not r.specifier.contains(v, prereleases=True):
            outside.append(f"{r.name} {v} not in {r.specifier}")
    assert not outside, outside
