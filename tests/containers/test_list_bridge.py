"""`lxcri list` shows the bridge lxcri manages, next to the containers on it."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from tests.containers.conftest import Lxcri
from tests.support.lxcenv import LxcEnv

pytestmark = pytest.mark.slow


def test_list_shows_the_managed_bridge(lxenv: LxcEnv, lxcri: Lxcri):
    lxenv.start("b1", args=("sleep 30",))
    out = lxcri("list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["VMID", "STATUS", "LOCK", "NAME"]  # pct's columns
    assert any("b1" in line.split() and "running" in line for line in lines)
    cfg = lxenv.config()
    gateway = str(ip_network(cfg.bridge_subnet)[1])
    bridge = [line for line in lines if line.startswith(f"bridge {cfg.bridge}:")]
    assert bridge and f"{gateway}/16" in bridge[0] and "port(s)" in bridge[0]
