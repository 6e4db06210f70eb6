"""Hooks import the network modules on every container start: keep them light."""

from __future__ import annotations

import subprocess
import sys


def test_network_modules_import_no_netlink_or_ui() -> None:
    code = (
        "import lxcri_core.network.ports, lxcri_core.network.ipam, lxcri_core.network.bridge\n"
        "import lxcri_core.network.inspect, lxcri_core.network.options, sys\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "lxcri_core.network.ports" in loaded
    assert not {"pyroute2", "structlog", "yaml", "requests", "click", "rich", "textual"} & loaded
