"""Every package folder is listed in pyproject (plugin/ and tui/ are renamed)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMES = {"lxcri_core": "lxcri_core", "plugin": "lxcri_pve", "tui": "lxcri_tui"}


def test_all_packages_listed():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for folder, name in NAMES.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *rel)))
    assert found == listed


def test_constraints_pin_debian_trixie_versions():
    pins = dict(
        line.split("==")
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["textual"] == "2.1.2" and pins["rich"] == "13.9.4" and pins["click"] == "8.1.8"
    from importlib.metadata import version

    for pkg in ("textual", "rich", "click", "proxmoxer", "pyroute2", "structlog", "PyYAML"):
        assert version(pkg) == pins[pkg], f"{pkg} is not at the constrained version"
