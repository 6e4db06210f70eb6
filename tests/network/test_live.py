"""Real kernel: a lab bridge, network-namespace "containers", nftables DNAT.

Each test has its own bridge, subnet (10.200.N.0/24), ULA and nft table (see
tests/support/netlab.py); traffic goes only to 127.0.0.0/8, to the lab bridge's
own addresses and to the namespaces the test creates.

IPv6 is tested through the bridge's ULA address, not [::1]: the kernel does
not route ::1 to another host even after DNAT (there is no route_localnet
for IPv6), so lxcri leaves ::1 alone and [::1]:PORT is refused.
"""

from __future__ import annotations

import json
import subprocess
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface
from pathlib import Path

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import bridge, inspect, ports
from tests.network.portspec import one_port
from tests.support.netlab import Lab, connect, free_port, sh, udp_ask

pytestmark = pytest.mark.slow


def _gw(lab: Lab) -> str:
    return str(lab.subnet.network_address + 1)


def _gw6(lab: Lab) -> str:
    return str(lab.ipv6_subnet.network_address + 1)


def _container_chains(lab: Lab) -> list[str]:
    out = sh("nft", "-j", "list", "table", "inet", lab.table).stdout
    return [
        i["chain"]["name"]
        for i in json.loads(out)["nftables"]
        if "chain" in i and i["chain"]["name"].startswith("c-")
    ]


def test_published_port_reachable_from_host_then_gone(lab: Lab) -> None:
    ct = lab.container(2)
    lab.serve(ct, 80)
    port = free_port()
    ports.publish("web1", [one_port(f"{port}:80")], ct.ipv4, ct.ipv6, table=lab.table)
    # Host-local clients are masqueraded: the container sees the gateway.
    assert connect("127.0.0.1", port) == f"peer={_gw(lab)}"
    assert connect(_gw(lab), port) == f"peer={_gw(lab)}"
    assert connect(_gw6(lab), port) == f"peer={_gw6(lab)}"
    assert connect("::1", port) == "ConnectionRefusedError"  # see module docstring
    assert sorted(_container_chains(lab)) == ["c-web1-out", "c-web1-post", "c-web1-pre"]

    ports.unpublish("web1", table=lab.table)
    assert "c-web1" not in lab.nft_table()
    assert _container_chains(lab) == []
    assert connect("127.0.0.1", port) == "ConnectionRefusedError"
    assert connect(_gw(lab), port) == "ConnectionRefusedError"
    ports.unpublish("web1", table=lab.table)  # idempotent


def test_unpublish_after_container_is_gone(lab: Lab) -> None:
    """The stop hook may run after init was killed: rules go by id alone."""
    ct = lab.container(2)
    server = lab.serve(ct, 80)
    port = free_port()
    ports.publish("gone", [one_port(f"{port}:80")], ct.ipv4, ct.ipv6, table=lab.table)
    assert connect("127.0.0.1", port) == f"peer={_gw(lab)}"
    server.kill()
    server.wait()
    sh("ip", "netns", "del", ct.name)  # the container and its veth vanish
    ports.unpublish("gone", table=lab.table)
    assert _container_chains(lab) == []
    assert ports.list_published(table=lab.table) == []


def test_outside_client_reaches_port_and_keeps_its_address(lab: Lab) -> None:
    ct = lab.container(2)
    lab.serve(ct, 80)
    client, host_addr = lab.outside()
    port = free_port()
    ports.publish("web", [one_port(f"{port}:80")], ct.ipv4, ct.ipv6, table=lab.table)
    assert lab.connect_from(client, str(host_addr.ip), port) == f"peer={client.ipv4.ip}"
    ports.unpublish("web", table=lab.table)
    assert lab.connect_from(client, str(host_addr.ip), port) == "ConnectionRefusedError"


def test_hairpin_from_a_container_on_the_same_bridge(lab: Lab) -> None:
    server_ct = lab.container(2)
    other = lab.container(3)
    lab.serve(server_ct, 80)
    port = free_port()
    ports.publish("srv", [one_port(f"{port}:80")], server_ct.ipv4, server_ct.ipv6, table=lab.table)
    # Without the hairpin masquerade the reply would skip the DNAT and be dropped.
    assert lab.connect_from(other, _gw(lab), port) == f"peer={_gw(lab)}"
    assert lab.connect_from(other, _gw6(lab), port) == f"peer={_gw6(lab)}"


def test_udp_port(lab: Lab) -> None:
    ct = lab.container(2)
    lab.serve(ct, 53, "udp")
    port = free_port()
    ports.publish("dns", [one_port(f"{port}:53/udp")], ct.ipv4, ct.ipv6, table=lab.table)
    assert udp_ask("127.0.0.1", port) == f"peer={_gw(lab)}"
    assert udp_ask(_gw6(lab), port) == f"peer={_gw6(lab)}"


def test_host_ip_binding_limits_the_address(lab: Lab) -> None:
    ct = lab.container(2)
    lab.serve(ct, 80)
    port = free_port()
    ports.publish("lo", [one_port(f"127.0.0.1:{port}:80")], ct.ipv4, table=lab.table)
    assert connect("127.0.0.1", port) == f"peer={_gw(lab)}"
    assert connect(_gw(lab), port) == "ConnectionRefusedError"


def test_containers_are_independent(lab: Lab) -> None:
    a, b = lab.container(2), lab.container(3)
    lab.serve(a, 80)
    lab.serve(b, 80)
    pa, pb = free_port(), free_port()
    ports.publish("a", [one_port(f"{pa}:80")], a.ipv4, a.ipv6, table=lab.table)
    ports.publish("b", [one_port(f"{pb}:80")], b.ipv4, b.ipv6, table=lab.table)
    listed = {(p.container_id, p.mapping.host_port, str(p.container_ip)) for p in
              ports.list_published(table=lab.table)}  # fmt: skip
    assert listed == {
        ("a", pa, str(a.ipv4.ip)),
        ("a", pa, str(a.ipv6.ip if a.ipv6 else "")),
        ("b", pb, str(b.ipv4.ip)),
        ("b", pb, str(b.ipv6.ip if b.ipv6 else "")),
    }
    with pytest.raises(NetworkError, match="already published by container a"):
        ports.publish("b", [one_port(f"{pa}:80")], b.ipv4, table=lab.table)

    ports.unpublish("a", table=lab.table)
    assert connect("127.0.0.1", pa) == "ConnectionRefusedError"
    assert connect("127.0.0.1", pb) == f"peer={_gw(lab)}"
    assert sorted(_container_chains(lab)) == ["c-b-out", "c-b-post", "c-b-pre"]


def test_republish_replaces_the_old_ports(lab: Lab) -> None:
    ct = lab.container(2)
    lab.serve(ct, 80)
    old, new = free_port(), free_port()
    ports.publish("web", [one_port(f"{old}:80")], ct.ipv4, table=lab.table)
    ports.publish("web", [one_port(f"{new}:80")], ct.ipv4, table=lab.table)
    assert connect("127.0.0.1", new) == f"peer={_gw(lab)}"
    assert connect("127.0.0.1", old) == "ConnectionRefusedError"
    assert [p.mapping.host_port for p in ports.list_published(table=lab.table)] == [new]


def test_bridge_nat_to_the_outside(lab: Lab) -> None:
    ct = lab.container(2)
    client, host_addr = lab.outside()
    lab.serve(client, 8080)
    # The container reaches an outside address through the masquerade as the host.
    assert lab.connect_from(ct, str(client.ipv4.ip), 8080) == f"peer={host_addr.ip}"


def test_ensure_bridge_is_idempotent_and_visible(lab: Lab) -> None:
    ct = lab.container(2)
    again = bridge.ensure_bridge(lab.bridge, lab.subnet, lab.ipv6_subnet, table=lab.table)
    assert not again.created
    assert again.gateway == IPv4Interface(f"{_gw(lab)}/24")
    assert again.ipv6_gateway == IPv6Interface(f"{_gw6(lab)}/64")
    (br,) = [b for b in inspect.read_bridges() if b.name == lab.bridge]
    assert br.ipv4 == (again.gateway,) and br.ipv6 == (again.ipv6_gateway,)
    assert [p.name for p in br.ports] == [ct.veth] and br.ports[0].kind == "veth"
    nat = sh("nft", "list", "chain", "inet", lab.table, f"b-{lab.bridge}-post").stdout
    assert nat.count("masquerade") == 2  # one per family, not one per call
    sysctl = Path("/proc/sys/net/ipv4")
    assert (sysctl / "conf" / lab.bridge / "route_localnet").read_text().strip() == "1"
    assert (sysctl / "ip_forward").read_text().strip() == "1"


def test_bridge_ready_fast_path(lab: Lab) -> None:
    name = f"{lab.bridge}r"
    subnet = lab.new_subnet()
    assert bridge.bridge_ready(name, subnet, table=lab.table) is None  # not there yet
    try:
        made = bridge.ensure_bridge(name, subnet, table=lab.table)
        ready = bridge.bridge_ready(name, subnet, table=lab.table)
        assert ready is not None
        assert (ready.name, ready.index, ready.gateway) == (made.name, made.index, made.gateway)
        # a lost NAT chain or a downed link sends callers back to ensure_bridge
        sh("nft", "delete", "chain", "inet", lab.table, f"b-{name}-post")
        assert bridge.bridge_ready(name, subnet, table=lab.table) is None
        bridge.ensure_bridge(name, subnet, table=lab.table)
        sh("ip", "link", "set", name, "down")
        assert bridge.bridge_ready(name, subnet, table=lab.table) is None
    finally:
        bridge.remove_bridge(name, table=lab.table)


def test_ensure_bridge_refuses_overlap_and_non_bridges(lab: Lab) -> None:
    other = f"{lab.bridge}x"
    with pytest.raises(NetworkError, match=f"overlaps {_gw(lab)}/24 on {lab.bridge}"):
        # a /25 inside the lab's /24: no other bridge (another run's lab) can hold it
        bridge.ensure_bridge(other, IPv4Network(f"{lab.subnet.network_address}/25"),
                             table=lab.table)  # fmt: skip
    assert sh("ip", "link", "show", other, check=False).returncode != 0  # nothing created
    ct = lab.container(2)
    free = lab.new_subnet()
    with pytest.raises(NetworkError, match="not a bridge"):
        bridge.ensure_bridge(ct.veth, free, table=lab.table)


def test_first_use_creates_and_remove_cleans(lab: Lab) -> None:
    name = f"{lab.bridge}b"
    subnet = lab.new_subnet()
    try:
        info = bridge.ensure_bridge(name, subnet, table=lab.table)
        assert info.created and info.ipv6_gateway is None
        assert connect(str(info.gateway.ip), free_port()) == "ConnectionRefusedError"  # it is local
    finally:
        bridge.remove_bridge(name, table=lab.table)
    bridge.remove_bridge(name, table=lab.table)  # idempotent
    assert sh("ip", "link", "show", name, check=False).returncode != 0
    assert f"b-{name}-post" not in lab.nft_table()


def test_ruleset_accepted_by_nft_check_mode() -> None:
    """The builders' JSON is valid for this nft (check mode changes nothing)."""
    rs = ports.publish_ruleset(
        "chk",
        [
            one_port("1:2"),
            one_port("127.0.0.1:3:4/udp"),
            one_port("[fd00::9]:5:6"),
        ],
        IPv4Interface("10.200.0.2/24"),
        IPv6Interface("fd42:c8::2/64"),
        table="lxtcheck",
    )
    for ruleset in (rs, ports.unpublish_ruleset("chk", "lxtcheck")):
        done = subprocess.run(
            ["nft", "-c", "-j", "-f", "-"],
            input=json.dumps(ruleset),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    assert sh("nft", "list", "table", "inet", "lxtcheck", check=False).returncode != 0


def _ensure(args: tuple[str, str, str]) -> bool:
    name, subnet, table = args
    return bridge.ensure_bridge(name, subnet, table=table).created


def test_concurrent_first_use_creates_one_bridge(lab: Lab) -> None:
    """Several start hooks may race to create lxcri0: all succeed, one creates it."""
    from concurrent.futures import ProcessPoolExecutor

    name, subnet = f"{lab.bridge}c", str(lab.new_subnet())
    try:
        with ProcessPoolExecutor(max_workers=4) as pool:
            created = list(pool.map(_ensure, [(name, subnet, lab.table)] * 4))
        assert created.count(True) == 1  # one link add succeeded; the others found the link
        addrs = sh("ip", "-j", "addr", "show", "dev", name).stdout
        assert [a["local"] for a in json.loads(addrs)[0]["addr_info"] if a["family"] == "inet"] == [
            str(IPv4Network(subnet).network_address + 1)
        ]
        nat = sh("nft", "list", "chain", "inet", lab.table, f"b-{name}-post").stdout
        assert nat.count("masquerade") == 1
    finally:
        bridge.remove_bridge(name, table=lab.table)


def test_unspecified_host_address_is_every_address_of_its_family(lab: Lab) -> None:
    """-p 0.0.0.0:P:C and -p [::]:P:C as in docker (they used to match daddr 0.0.0.0: nothing)."""
    ct = lab.container(2)
    lab.serve(ct, 80)
    p4, p6 = free_port(), free_port()
    ports.publish("any", [one_port(f"0.0.0.0:{p4}:80"), one_port(f"[::]:{p6}:80")],
                  ct.ipv4, ct.ipv6, table=lab.table)  # fmt: skip
    assert connect("127.0.0.1", p4) == f"peer={_gw(lab)}"
    assert connect(_gw(lab), p4) == f"peer={_gw(lab)}"
    assert connect(_gw6(lab), p4) == "ConnectionRefusedError"  # IPv4 only
    assert connect(_gw6(lab), p6) == f"peer={_gw6(lab)}"
    assert connect("127.0.0.1", p6) == "ConnectionRefusedError"  # IPv6 only


def test_bridge_ready_in_process_agrees_with_ip_and_nft(lab: Lab) -> None:
    """The fast path reads the address by ioctl and the table through libnftables; a
    secondary gateway address (not the ioctl's primary) is still found (by ip), and a
    table name that would be a second nft command is never handed to libnftables."""
    name = f"{lab.bridge}q"
    subnet = lab.new_subnet()
    try:
        made = bridge.ensure_bridge(name, subnet, table=lab.table)
        assert bridge._primary_ipv4(name) == made.gateway
        assert f"chain b-{name}-post" in (bridge._nft_list_table(lab.table) or "")
        # the gateway as a secondary address: another primary first
        sh("ip", "addr", "flush", "dev", name)
        other = made.gateway.network.network_address + 7
        sh("ip", "addr", "add", f"{other}/{made.gateway.network.prefixlen}", "dev", name)
        sh("ip", "addr", "add", str(made.gateway), "dev", name)
        assert bridge._primary_ipv4(name) != made.gateway
        assert bridge.bridge_ready(name, subnet, table=lab.table) is not None
        hostile = f"{lab.table}; delete table inet {lab.table}"
        assert bridge._nft_list_table(hostile) is None
        assert bridge.bridge_ready(name, subnet, table=hostile) is None
        assert sh("nft", "list", "table", "inet", lab.table).returncode == 0  # still there
    finally:
        bridge.remove_bridge(name, table=lab.table)
