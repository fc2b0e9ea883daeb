"""The two ways to install reslab give the same environment: pyproject.toml (the Makefile's .venv, dev extras
included) and environment.yml (conda) list the same packages at the same exact pins, for the same Python."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from conftest import ROOT


def pins(requirements: list[str]) -> dict[str, str]:
    """{normalised name (PEP 503): its version specifier}; two spellings of one name are one package."""
    out = {}
    for line in requirements:
        req = Requirement(line)
        out[re.sub(r"[-_.]+", "-", req.name).lower()] = str(req.specifier)
    return out


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def conda() -> list:
    return yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]


def pip_of_conda() -> list[str]:
    pip = [d["pip"] for d in conda() if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml has one pip: section"
    return [line for line in pip[0] if not line.startswith("-")]  # `-e .` installs reslab itself


def test_environment_yml_and_pyproject_pin_the_same_packages():
    project = pyproject()
    wanted = pins(project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra])
    listed = pins(pip_of_conda())
    assert set(listed) - set(wanted) == set(), "in environment.yml only"
    assert set(wanted) - set(listed) == set(), "in pyproject.toml only"
    assert {n: listed[n] for n in wanted if listed[n] != wanted[n]} == {}, "pinned differently in environment.yml"
    assert {n: s for n, s in wanted.items() if not re.fullmatch(r"==[\w.+!-]+", s)} == {}, "pinned exactly"


def test_environment_yml_asks_for_a_python_that_pyproject_accepts():
    python = [d.split("=", 1)[1] for d in conda() if isinstance(d, str) and re.match(r"python\s*=", d)]
    assert len(python) == 1
    assert SpecifierSet(pyproject()["requires-python"]).contains(f"{python[0]}.0")
