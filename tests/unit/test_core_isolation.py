"""Core stays free of UI libraries; the CLI entry imports lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "lxcri_core",
    "lxcri_core.config",
    "lxcri_core.errors",
    "lxcri_core.reference",
    "lxcri_core.store",
    "lxcri_core.log",
    "lxcri_core.media",
]


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize("mod", CORE_MODULES)
def test_core_never_imports_ui_libraries(mod):
    loaded = _loaded(f"import {mod}")
    assert mod in loaded
    assert not {"textual", "rich", "click"} & loaded


def test_core_package_tree_imports_no_ui(tmp_path):
    code = (
        "import pkgutil, importlib, lxcri_core\n"
        "for m in pkgutil.walk_packages(lxcri_core.__path__, 'lxcri_core.'):\n"
        "    importlib.import_module(m.name)"
    )
    loaded = _loaded(code)
    assert not {"textual", "rich", "click"} & loaded


def test_cli_version_is_cheap():
    loaded = _loaded("from lxcri_pve.cli import main")
    assert "rich" not in loaded and "requests" not in loaded and "yaml" not in loaded
