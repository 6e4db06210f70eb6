"""A container must not reach what the host keeps to itself: its loopback services and its
listening ports. Real LXC containers on lxcri's bridge."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

import pytest

from tests.containers.conftest import Lxcri
from tests.support.lxcenv import (
    BUSYBOX_REF,
    DEMO_REF,
    LxcEnv,
    free_port,
    http_get,
    mounts_under,
    proc_status,
    sh,
    wait_for,
)
from tests.support.rawnet import syn_probe

pytestmark = pytest.mark.slow

CAP_NET_RAW = 13


def _try_get(port: int, host: str = "127.0.0.1") -> str:
    try:
        if host == "127.0.0.1":
            return http_get(port, timeout=2)
        with socket.create_connection((host, port), timeout=2) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            chunks = []
            while chunk := c.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
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
    # while the published port still answers on the host's loopback (polled: one
    # request can time out on a loaded machine)
    assert "lxcri demo" in wait_for(lambda: _try_get(port), what="httpd after the probes")


@pytest.fixture
def host_address() -> Iterator[str]:
    """An IPv4 address of this host on an interface of its own (a veth pair the test
    makes and removes), so the test never depends on how the machine is networked."""
    link = f"lxth{os.getpid() % 100000}"
    sh("ip", "link", "add", link, "type", "veth", "peer", "name", f"{link}p", check=True)
    try:
        sh("ip", "addr", "add", "198.18.88.1/30", "dev", link, check=True)
        sh("ip", "link", "set", link, "up", check=True)
        sh("ip", "link", "set", f"{link}p", "up", check=True)
        yield "198.18.88.1"
    finally:
        sh("ip", "link", "del", link)


def _nothing_created(lxcri: Lxcri, lxenv: LxcEnv, name: str) -> None:
    p = lxcri("list", "--output", "json")
    assert p.returncode == 0 and json.loads(p.stdout) == [], p.stdout + p.stderr
    left = [e.name for e in lxenv.lxcpath.iterdir()] if lxenv.lxcpath.exists() else []
    assert not [e for e in left if name in e]
    assert mounts_under(lxenv.root) == []
    leases = lxenv.root / "network" / f"{lxenv.config().bridge}.json"
    assert not leases.exists() or json.loads(leases.read_text())["leases"] == {}


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
def test_run_refuses_a_host_port_a_host_service_listens_on(
    lxcri: Lxcri, lxenv: LxcEnv, bind: str
) -> None:
    with socket.socket() as service:
        service.bind((bind, 0))
        service.listen(4)
        port = service.getsockname()[1]
        for spec in (f"{port}:80", f"0.0.0.0:{port}:80", f"127.0.0.1:{port}:80"):
            p = lxcri("run", "-d", "--name", "taker", "-p", spec, BUSYBOX_REF, "sleep 60")
            assert p.returncode == 1, p.stdout + p.stderr
            assert p.stderr == (
                f"lxcri: error: host port {port}/tcp is already in use by a host process "
                "(address already in use)\n"
            )
            _nothing_created(lxcri, lxenv, "taker")
        # the service still has its own clients
        service.settimeout(5)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            service.accept()[0].close()


def test_start_refuses_a_port_a_host_service_took_since_create(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_demo()
    port = free_port()
    p = lxcri("create", "--name", "late", "-p", f"{port}:80", DEMO_REF)
    assert p.returncode == 0, p.stderr
    lxenv.remember("late")
    with socket.socket() as service:
        service.bind(("0.0.0.0", port))
        service.listen(4)
        p = lxcri("start", "late")
        assert p.returncode == 1
        assert f"host port {port}/tcp is already in use by a host process" in p.stderr
        assert len(p.stderr.splitlines()) == 1, p.stderr
        # the host's service keeps its clients
        service.settimeout(5)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            service.accept()[0].close()
    # once the service is gone the container starts, and its restart does not clash with
    # its own published port (a rule, not a socket)
    assert lxcri("start", "late").returncode == 0
    assert "lxcri demo" in wait_for(lambda: _try_get(port), what="httpd through the port")
    assert lxcri("restart", "late").returncode == 0
    assert "lxcri demo" in wait_for(lambda: _try_get(port), what="httpd after a restart")


def test_unspecified_host_address_publishes_on_every_address(
    lxcri: Lxcri, lxenv: LxcEnv, host_address: str
) -> None:
    lxenv.add_demo()
    port = free_port()
    p = lxcri("run", "-d", "--name", "all", "-p", f"0.0.0.0:{port}:80", DEMO_REF)
    assert p.returncode == 0, p.stderr
    lxenv.remember("all")
    cfg = lxenv.config()
    gateway = str(IPv4Network(cfg.bridge_subnet).network_address + 1)
    for host in ("127.0.0.1", gateway, host_address):

        def answer(host: str = host) -> str:
            return _try_get(port, host)

        assert "lxcri demo" in wait_for(answer, what=f"httpd on {host}")
    # a free port (-p 80) is one no host socket serves
    p = lxcri("run", "-d", "--name", "any", "-p", "80", DEMO_REF)
    assert p.returncode == 0, p.stderr
    lxenv.remember("any")
    doc = json.loads(lxcri("list", "--output", "json").stdout)
    (chosen,) = [i["ports"][0] for i in doc if i["name"] == "any"]
    any_port = int(chosen["host_port"])
    assert any_port != port
    assert "lxcri demo" in wait_for(lambda: _try_get(any_port), what="httpd on the chosen port")
