"""A dual-stack lxcri bridge: containers get IPv6 too, published ports answer on IPv6."""

from __future__ import annotations

import socket
import uuid

import pytest

from lxcri_core.containers import engine
from lxcri_core.network import bridge
from tests.support.lxcenv import DEMO_REF, LxcEnv, free_port, wait_for

pytestmark = pytest.mark.slow


def _get(host: str, port: int) -> str:
    """The HTTP answer, or "" while httpd in the container is not listening yet."""
    try:
        return _fetch(host, port)
    except OSError:
        return ""


def _fetch(host: str, port: int) -> str:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data.decode(errors="replace")


def test_published_port_answers_on_ipv4_and_ipv6(lxenv: LxcEnv, monkeypatch):
    name = f"lx6{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("LXCRI_BRIDGE", name)
    monkeypatch.setenv("LXCRI_BRIDGE_SUBNET", "10.251.7.0/24")
    monkeypatch.setenv("LXCRI_BRIDGE_SUBNET6", "fd88:7::/64")
    lxenv.env.update(
        LXCRI_BRIDGE=name, LXCRI_BRIDGE_SUBNET="10.251.7.0/24", LXCRI_BRIDGE_SUBNET6="fd88:7::/64"
    )
    try:
        lxenv.add_demo()
        port = free_port()
        lxenv.start("web6", image=DEMO_REF, publish=(f"{port}:80",))
        st = engine.status(lxenv.config(), "web6")
        assert st.ipv4.startswith("10.251.7.")
        assert st.ipv6.startswith("fd88:7::")
        assert "lxcri demo" in wait_for(lambda: _get("127.0.0.1", port), 10, "IPv4 answer")
        assert "lxcri demo" in wait_for(lambda: _get("fd88:7::1", port), 10, "IPv6 answer")
        engine.stop(lxenv.config(), "web6")
        with pytest.raises(OSError):
            _fetch("fd88:7::1", port)
    finally:
        lxenv.remove_all()
        bridge.remove_bridge(name)
