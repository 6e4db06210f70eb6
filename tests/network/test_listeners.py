"""Host listeners from /proc/net and the host ports -p must not take over.

The parser reads text recorded in a network namespace with known sockets
(tests/data/network/proc-net/): TCP listeners on 127.0.0.1:22,
0.0.0.0:8080, [::]:8006 (dual-stack, as pveproxy), [::1]:5432, 192.0.2.10:3128,
[::ffff:127.0.0.1]:9090; UDP on 127.0.0.53:53 and [::]:123; plus an
established TCP pair on 8080 and a connected UDP socket on 127.0.0.1:40053,
which are not listeners.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from ipaddress import ip_address
from pathlib import Path

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import listeners, ports
from lxcri_core.network.listeners import Listener
from tests.network.portspec import one_port
from tests.support.netlab import Lab, connect

DATA = Path(__file__).resolve().parents[1] / "data" / "network"


def _recorded() -> list[Listener]:
    return listeners.read_listeners(DATA / "proc-net")


def test_parse_recorded_proc_net() -> None:
    got = {(lst.proto, str(lst.address), lst.port) for lst in _recorded()}
    assert got == {
        ("tcp", "127.0.0.1", 22),
        ("tcp", "0.0.0.0", 8080),
        ("tcp", "192.0.2.10", 3128),
        ("tcp", "::1", 5432),
        ("tcp", "::", 8006),
        ("tcp", "127.0.0.1", 9090),  # ::ffff:127.0.0.1 serves IPv4 only
        ("udp", "127.0.0.53", 53),
        ("udp", "::", 123),
    }


def test_parse_skips_garbage_and_honours_byte_order() -> None:
    text = "header\n0: zz:zz 00000000:0000 0A\nshort line\n 1: 7F000001:0050 00000000:0000 0A x\n"
    assert listeners.parse_proc_net(text, "tcp", byteorder="big") == [
        Listener("tcp", ip_address("127.0.0.1"), 80)
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "22:80",  # 127.0.0.1:22: every address includes loopback
        "127.0.0.1:22:80",
        "8006:80",  # [::]:8006 may be dual-stack: it serves IPv4 too
        "10.1.2.3:8006:80",
        "0.0.0.0:8006:80",
        "[fd00::1]:8006:80",
        "8080:80",
        "127.0.0.1:8080:80",  # the 0.0.0.0 listener serves 127.0.0.1 too
        "0.0.0.0:8080:80",
        "192.0.2.10:3128:80",
        "3128:80",
        "5432:5432",
        "[::1]:5432:5432",
        "0.0.0.0:9090:80",
        "53:53/udp",
        "127.0.0.53:53:53/udp",
        "123:123/udp",
        "127.0.0.1:123:123/udp",
    ],
)
def test_ports_host_sockets_serve_are_refused(spec: str) -> None:
    m = one_port(spec)
    with pytest.raises(NetworkError) as e:
        listeners.refuse_in_use([m], _recorded())
    assert str(e.value) == (
        f"host port {m.host_port}/{m.protocol} is already in use by a host process "
        "(address already in use)"
    )


@pytest.mark.parametrize(
    "spec",
    [
        "192.0.2.11:3128:80",  # another address than the listener's
        "127.0.0.1:3128:80",
        "127.0.0.1:5432:5432",  # the listener is on ::1 only
        "[::]:8080:80",  # an IPv4-only listener; IPv6 traffic is not its
        "[fd00::1]:8080:80",
        "127.0.0.1:53:53/udp",  # the resolver is on 127.0.0.53
        "53:53/tcp",  # the resolver is UDP
        "22:22/udp",
        "40053:53/udp",  # a connected UDP socket is a client, not a listener
        "57676:80",  # nor is an established connection's local port
        "9091:80",
    ],
)
def test_ports_no_host_socket_serves_are_allowed(spec: str) -> None:
    listeners.refuse_in_use([one_port(spec)], _recorded())


def test_reader_sees_a_real_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert Listener("tcp", ip_address("127.0.0.1"), port) in listeners.read_listeners()
        with pytest.raises(NetworkError, match=f"host port {port}/tcp is already in use"):
            listeners.host_port_for("tcp", "", port)
        assert listeners.host_port_for("udp", "", port) == port  # another protocol


def test_sock_diag_finds_what_proc_net_lists() -> None:
    # the default reader asks the kernel's sock_diag (the /proc/net/tcp* files cost
    # 5-20 ms at every start); it must see the same listeners as the files, IPv4-mapped
    # IPv6 as IPv4, and no connected or merely bound socket
    from lxcri_core.network import sockdiag

    assert sockdiag.tcp_listeners() is not None, "sock_diag unavailable: the test needs it"
    held = []
    try:
        v6 = socket.AF_INET6
        for fam, addr in ((socket.AF_INET, "127.0.0.1"), (v6, "::1"),
                          (v6, "::ffff:127.0.0.1"), (v6, "::")):  # fmt: skip
            s = socket.socket(fam)
            held.append(s)
            s.bind((addr, 0))
            s.listen(1)
        bound = socket.socket()  # bound, not listening
        held.append(bound)
        bound.bind(("127.0.0.1", 0))
        client = socket.create_connection(held[0].getsockname()[:2])  # an established pair
        held.append(client)
        mine = {s.getsockname()[1] for s in held}
        want = [
            Listener("tcp", ip_address("127.0.0.1"), held[0].getsockname()[1]),
            Listener("tcp", ip_address("::1"), held[1].getsockname()[1]),
            Listener("tcp", ip_address("127.0.0.1"), held[2].getsockname()[1]),
            Listener("tcp", ip_address("::"), held[3].getsockname()[1]),
        ]
        fast = {x for x in listeners.read_listeners(protos={"tcp"}) if x.port in mine}
        # the same namespace's files, by another path: the /proc reader
        files = {x for x in listeners.read_listeners("/proc/self/net", {"tcp"}) if x.port in mine}
        assert fast == files == set(want)
        only = listeners.read_listeners(protos={"tcp"}, ports={want[1].port})
        assert only == [want[1]]
    finally:
        for s in held:
            s.close()


# In a fresh network namespace the ephemeral range can be narrowed to two
# ports: a v6-only listener on [::]:40000 does not stop an IPv4 bind from
# picking 40000, but -p 80 must not choose a port a host socket serves.
_PICK = r"""
import socket, sys
from lxcri_core.errors import NetworkError
from lxcri_core.network.listeners import free_host_port
open("/proc/sys/net/ipv4/ip_local_port_range", "w").write("40000 40001")
held = []
for port in map(int, sys.argv[1].split(",")) if sys.argv[1] else []:
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", port))
    s.listen(1)
    held.append(s)
taken = [int(p) for p in sys.argv[2].split(",")] if sys.argv[2] else []
try:
    print(free_host_port("tcp", None, taken, tries=16))
except NetworkError as e:
    print(e)
"""


def _pick(held: str, taken: str = "") -> str:
    ns = f"lxtpick{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _PICK, held, taken],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.mark.slow
def test_free_port_choice_skips_listened_and_published_ports() -> None:
    assert _pick("40000") == "40001"
    assert _pick("40001") == "40000"
    assert _pick("", taken="40000") == "40001"  # published by another container
    assert _pick("40000,40001") == "found no free host port for tcp: every candidate is in use"


@pytest.mark.slow
def test_publish_refuses_a_port_a_host_service_listens_on(lab: Lab) -> None:
    """What the start hook runs: a service that appeared since create wins over the container."""
    ct = lab.container(2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(NetworkError, match=f"host port {port}/tcp is already in use"):
            ports.publish("svc", [one_port(f"{port}:80")], ct.ipv4, table=lab.table)
        assert "c-svc-" not in lab.nft_table()  # nothing applied
        # the service's own clients still reach it
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    lab.serve(ct, 80)
    ports.publish("svc", [one_port(f"{port}:80")], ct.ipv4, table=lab.table)
    # a restart republishes over its own rules: they are not sockets
    ports.publish("svc", [one_port(f"{port}:80")], ct.ipv4, table=lab.table)
    assert connect("127.0.0.1", port) == f"peer={lab.subnet.network_address + 1}"
