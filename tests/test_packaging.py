"""The two ways to install the lab list the same packages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        deps += extra
    return set(deps)


def _environment_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return set(pip)


def test_environment_yml_lists_what_pyproject_lists() -> None:
    missing = _pyproject_packages() - _environment_packages()
    extra = _environment_packages() - _pyproject_packages()
    assert not missing and not extra, f"environment.yml differs from pyproject.toml: missing {missing}, extra {extra}"


def test_environment_yml_pins_python_311_or_newer() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert "python>=3.11" in env["dependencies"]


def test_design_card_packages_are_dependencies() -> None:
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in _pyproject_packages()}
    for wanted in ("jupyterlab", "kubernetes", "httpx", "ipywidgets", "pandas", "matplotlib",
                   "prometheus-api-client", "nbmake"):
        assert wanted in names, wanted
