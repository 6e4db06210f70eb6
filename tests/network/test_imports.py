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


#: What the managed hooks must not import: each costs milliseconds of every container
#: start and stop (dataclasses pulls in inspect, ast, dis: ~13 ms; typing ~3.5 ms).
HOOK_FORBIDDEN = {
    "dataclasses", "inspect", "ast", "typing", "pathlib", "logging", "subprocess",
    "tempfile", "socket", "urllib", "urllib.parse", "lxcri_core.spec.model",
    "lxcri_core.containers", "structlog",
}  # fmt: skip


def test_the_hook_path_imports_nothing_heavy() -> None:
    # everything pre-start and post-stop of a managed container with ports import
    code = (
        "import lxcri_core.hooks.context, lxcri_core.hooks.run, lxcri_core.network.ports\n"
        "import lxcri_core.network.listeners, lxcri_core.network.nftlib, lxcri_core.mountsys\n"
        "import lxcri_core.fsutil, lxcri_core.log, lxcri_core.runner, sys\n"
        "from lxcri_core.hooks.run import _ports\n"
        "from lxcri_core.network.listeners import read_listeners\n"
        "_ports({'spec': {'ports': [{'container_port': 80, 'host_port': 8080}]}})\n"
        "read_listeners(protos={'tcp'}, ports={8080})\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert "lxcri_core.network.ports" in loaded
    assert HOOK_FORBIDDEN & loaded == set()


def test_unpublishing_needs_no_ipaddress() -> None:
    # post-stop (LXC and Proxmox) only takes ports back, by container id
    code = (
        "import sys\nfrom lxcri_core.network import ports\nfrom lxcri_core.hooks import run\n"
        "ports.unpublish_ruleset('c1')\nprint('ipaddress' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
