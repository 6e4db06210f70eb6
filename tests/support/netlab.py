"""A throw-away network lab for the networking tests: a bridge, "containers" as
network namespaces on veths, an "outside" namespace, and a tiny server.

Everything is named ``lxt<tag>...`` with a random tag and uses free /24s in
10.200.0.0/16 (and ULAs under fd42:c8::/32), so tests never touch other
addresses; ``close`` removes all of it (namespaces, links, the nft table).
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network

# Answers every TCP connection / UDP datagram with "peer=<client address>" so
# tests can see whether the source was NATed. Dual-stack on [::]:PORT.
SERVER = r"""
import socket, sys, threading
port, proto = int(sys.argv[1]), sys.argv[2]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET6, kind)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", port))
def peer(a):
    return a[0].removeprefix("::ffff:")
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        c, a = s.accept()
        c.sendall(f"peer={peer(a)}".encode())
        c.close()
    else:
        data, a = s.recvfrom(100)
        s.sendto(f"peer={peer(a)}".encode(), a)
"""

# Run inside a namespace: connect and print what the server said, or the error.
CLIENT = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    with socket.create_connection((host, port), timeout=5) as c:
        print(c.recv(100).decode())
except OSError as e:
    print(type(e).__name__)
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def used_v4_networks() -> list[IPv4Network]:
    out = sh("ip", "-j", "addr", "show").stdout
    nets = []
    for link in json.loads(out):
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                nets.append(IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return nets


def free_subnet(taken: list[IPv4Network]) -> IPv4Network:
    """A 10.200.N.0/24 that overlaps no address on the host nor ``taken``."""
    used = used_v4_networks() + taken
    choices = list(range(1, 255))
    random.shuffle(choices)
    for n in choices:
        net = IPv4Network(f"10.200.{n}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.200.N.0/24 left")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ula_for(net: IPv4Network) -> IPv6Network:
    return IPv6Network(f"fd42:c8:{net.network_address.packed[2]:x}::/64")


def connect(host: str, port: int) -> str:
    """From the host: what the server answered, or the exception's class name."""
    try:
        with socket.create_connection((host, port), timeout=5) as c:
            return c.recv(100).decode()
    except OSError as e:
        return type(e).__name__


def udp_ask(host: str, port: int) -> str:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(b"hi", (host, port))
        try:
            return s.recv(100).decode()
        except OSError as e:
            return type(e).__name__


@dataclass
class Netns:
    name: str
    veth: str  # host side
    ipv4: IPv4Interface
    ipv6: IPv6Interface | None


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    namespaces: list[Netns] = field(default_factory=list)
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    subnets: list[IPv4Network] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bridge = f"lxt{self.tag}"
        self.table = f"lxt{self.tag}"
        self.subnet = self.new_subnet()
        self.ipv6_subnet = ula_for(self.subnet)

    def new_subnet(self) -> IPv4Network:
        net = free_subnet(self.subnets)
        self.subnets.append(net)
        return net

    def container(self, host: int, ipv6: bool = True) -> Netns:
        """A namespace on the lab bridge with address .host (and ULA ::host)."""
        idx = len(self.namespaces)
        ns = Netns(
            f"lxt{self.tag}n{idx}",
            f"lxt{self.tag}v{idx}",
            IPv4Interface((self.subnet.network_address + host, self.subnet.prefixlen)),
            IPv6Interface((self.ipv6_subnet.network_address + host, 64)) if ipv6 else None,
        )
        self._netns(ns)
        sh("ip", "link", "set", ns.veth, "master", self.bridge, "up")
        gw4 = str(self.subnet.network_address + 1)
        sh("ip", "-n", ns.name, "route", "add", "default", "via", gw4)
        if ns.ipv6 is not None:
            gw6 = str(self.ipv6_subnet.network_address + 1)
            sh("ip", "-n", ns.name, "-6", "route", "add", "default", "via", gw6)
        return ns

    def outside(self) -> tuple[Netns, IPv4Interface]:
        """A namespace on a point-to-point veth to the host, in its own /24.

        Returns it and the host's address on that link (what an outside client
        would connect to)."""
        net = self.new_subnet()
        idx = len(self.namespaces)
        ns = Netns(
            f"lxt{self.tag}n{idx}",
            f"lxt{self.tag}v{idx}",
            IPv4Interface((net.network_address + 2, 24)),
            None,
        )
        host = IPv4Interface((net.network_address + 1, 24))
        self._netns(ns)
        sh("ip", "addr", "add", str(host), "dev", ns.veth)
        sh("ip", "link", "set", ns.veth, "up")
        sh("ip", "-n", ns.name, "route", "add", "default", "via", str(host.ip))
        return ns, host

    def _netns(self, ns: Netns) -> None:
        sh("ip", "netns", "add", ns.name)
        self.namespaces.append(ns)
        sh("ip", "link", "add", ns.veth, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
        self.links.append(ns.veth)
        sh("ip", "-n", ns.name, "addr", "add", str(ns.ipv4), "dev", "eth0")
        if ns.ipv6 is not None:
            sh("ip", "-n", ns.name, "-6", "addr", "add", str(ns.ipv6), "dev", "eth0", "nodad")
        sh("ip", "-n", ns.name, "link", "set", "eth0", "up")
        sh("ip", "-n", ns.name, "link", "set", "lo", "up")

    def serve(self, ns: Netns, port: int = 80, proto: str = "tcp") -> subprocess.Popen[str]:
        """Start the peer-reporting server in ``ns`` and wait until it listens."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, "-c", SERVER, str(port), proto],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.servers.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def connect_from(self, ns: Netns, host: str, port: int) -> str:
        out = sh("ip", "netns", "exec", ns.name, sys.executable, "-c", CLIENT, host, str(port))
        return out.stdout.strip()

    def nft_table(self) -> str:
        return sh("nft", "list", "table", "inet", self.table, check=False).stdout

    def close(self) -> None:
        from lxcri_core.network import bridge

        for proc in self.servers:
            proc.kill()
            proc.wait()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns.name, check=False)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
        with contextlib.suppress(Exception):
            bridge.remove_bridge(self.bridge, table=self.table)
        sh("nft", "delete", "table", "inet", self.table, check=False)
