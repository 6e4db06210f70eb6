"""A container must not reach what the host keeps to itself: its loopback services and its
listening ports. Real LXC containers on lxcri's bridge."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from tests.containers.conftest import Lxcri
from tests.support.lxcenv import DEMO_REF, LxcEnv, free_port, http_get, proc_status, wait_for
from tests.support.rawnet import syn_probe

pytestmark = pytest.mark.slow

CAP_NET_RAW = 13


def _try_get(port: int, host: str = "127.0.0.1") -> str:
    try:
        if host == "127.0.0.1":
            return http_get(port, timeout=2)
        with socket.create_connection((host, port), timeout=2) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return c.recv(4096).decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def loopback_service() -> Iterator[int]:
    """A host service bound to 127.0.0.1 only (an admin API, a database, ...)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_container_with_net_raw_cannot_reach_host_loopback(
    lxcri: Lxcri, lxenv: LxcEnv, loopback_service: int
) -> None:
    lxenv.add_demo()
    port = free_port()
    p = lxcri("run", "-d", "--name", "web", "-p", f"{port}:80", DEMO_REF)
    assert p.returncode == 0, p.stderr
    lxenv.remember("web")
    assert "lxcri demo" in wait_for(lambda: _try_get(port), what="httpd through the port")
    doc = json.loads(lxcri("status", "web", "--output", "json").stdout)
    pid, ip = doc["pid"], str(IPv4Interface(doc["ipv4"]).ip)
    # the attacker's means: CAP_NET_RAW is in the container's default set
    assert int(proc_status(pid)["CapEff"], 16) & (1 << CAP_NET_RAW)
    cfg = lxenv.config()
    mac = Path(f"/sys/class/net/{cfg.bridge}/address").read_text().strip()
    gateway = str(IPv4Network(cfg.bridge_subnet).network_address + 1)
    # what a process in the container can do with a packet socket (the host's
    # python in the container's network namespace: busybox has no packet tool)
    inside = ["nsenter", f"--net=/proc/{pid}/ns/net"]
    with socket.socket() as open_to_all:
        open_to_all.bind(("0.0.0.0", 0))
        open_to_all.listen(1)
        # the probe itself works: a wildcard listener answers through the gateway
        assert syn_probe(inside, "eth0", mac, ip, gateway, open_to_all.getsockname()[1]) == (
            "syn-ack"
        )
    assert syn_probe(inside, "eth0", mac, ip, "127.0.0.1", loopback_service) == "none"
    # while the published port still answers on the host's loopback
    assert "lxcri demo" in _try_get(port)
