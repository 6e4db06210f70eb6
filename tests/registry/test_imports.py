"""Importing the registry client stays cheap: no HTTP stack, no UI library."""

from __future__ import annotations

import subprocess
import sys


def test_registry_import_is_light() -> None:
    code = (
        "import sys, lxcri_core.registry, lxcri_core.progress\n"
        "print(' '.join(m for m in ('requests', 'urllib3', 'rich', 'click', 'textual')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
