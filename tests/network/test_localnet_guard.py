"""route_localnet without the hole: a container must not reach the host's loopback.

Real kernel: a lab bridge and network-namespace "containers" (see
tests/support/netlab.py). The attacker crafts frames with a packet socket,
as a container process with CAP_NET_RAW can (tests/support/rawnet.py).
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.network import bridge, localnet, ports
from tests.network.portspec import one_port
from tests.support.netlab import Lab, Netns, connect, free_port, sh
from tests.support.rawnet import syn_probe, udp_spoof

pytestmark = pytest.mark.slow


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, int]]:
    """A TCP listener on the host's 127.0.0.1 only, as a local admin service."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s, s.getsockname()[1]


def _mac(dev: str) -> str:
    return Path(f"/sys/class/net/{dev}/address").read_text().strip()


def _probe(lab: Lab, ct: Netns, dst: str, port: int) -> str:
    prefix = ["ip", "netns", "exec", ct.name]
    return syn_probe(prefix, "eth0", _mac(lab.bridge), str(ct.ipv4.ip), dst, port)


def test_container_cannot_open_a_session_to_host_loopback(
    lab: Lab, listener: tuple[socket.socket, int]
) -> None:
    _, port = listener
    ct = lab.container(2)
    gw = str(lab.subnet.network_address + 1)
    with socket.socket() as open_to_all:  # the probe works: a wildcard listener answers
        open_to_all.bind(("0.0.0.0", 0))
        open_to_all.listen(1)
        assert _probe(lab, ct, gw, open_to_all.getsockname()[1]) == "syn-ack"
    # the attack: a SYN to 127.0.0.1 put on the wire to the bridge's MAC
    assert _probe(lab, ct, "127.0.0.1", port) == "none"
    assert _probe(lab, ct, "127.0.0.2", port) == "none"  # the whole 127/8
    counters = sh("nft", "-j", "list", "chain", "inet", lab.table, f"b-{lab.bridge}-guard").stdout
    dropped = [
        e["counter"]["packets"]
        for item in json.loads(counters)["nftables"]
        if "rule" in item
        for e in item["rule"]["expr"]
        if "counter" in e
    ]
    assert sum(dropped) >= 2


def test_published_port_still_answers_on_host_loopback(lab: Lab) -> None:
    """The guard sits before NAT: replies to host-local clients are not loopback-addressed yet."""
    ct = lab.container(2)
    lab.serve(ct, 80)
    port = free_port()
    ports.publish("g", [one_port(f"{port}:80")], ct.ipv4, ct.ipv6, table=lab.table)
    assert connect("127.0.0.1", port) == f"peer={lab.subnet.network_address + 1}"
    # a container aiming at 127.0.0.1:PUBLISHED gets nothing either (no detour via the host)
    assert _probe(lab, ct, "127.0.0.1", port) == "none"


def test_spoofed_loopback_source_is_not_delivered(lab: Lab) -> None:
    """A datagram "from 127.0.0.1" must not reach a host service that trusts loopback."""
    ct = lab.container(2)
    gw = str(lab.subnet.network_address + 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        s.settimeout(1.5)
        prefix = ["ip", "netns", "exec", ct.name]
        udp_spoof(prefix, "eth0", _mac(lab.bridge), "127.0.0.1", gw, s.getsockname()[1], "x")
        with pytest.raises(TimeoutError):
            s.recvfrom(100)


def test_remove_bridge_removes_the_guard(lab: Lab) -> None:
    name = f"{lab.bridge}g"
    lab.links.append(name)  # removed by the lab even when an assert fails
    info = bridge.ensure_bridge(name, lab.new_subnet(), table=lab.table)
    assert f"chain b-{name}-guard" in lab.nft_table()
    # the guard alone missing sends the fast path back to ensure_bridge
    sh("nft", "delete", "chain", "inet", lab.table, f"b-{name}-guard")
    assert bridge.bridge_ready(name, info.subnet, table=lab.table) is None
    bridge.ensure_bridge(name, info.subnet, table=lab.table)
    assert bridge.bridge_ready(name, info.subnet, table=lab.table) is not None
    bridge.remove_bridge(name, table=lab.table)
    assert f"b-{name}-" not in lab.nft_table()


def test_guard_ruleset_accepted_by_nft_check_mode() -> None:
    for rs in (localnet.guard_ruleset("lxcri0", "lxtcheck"),
               localnet.drop_guard_ruleset("lxcri0", "lxtcheck")):  # fmt: skip
        done = subprocess.run(
            ["nft", "-c", "-j", "-f", "-"], input=json.dumps(rs), capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr


def test_guard_commands_leave_a_whole_guard_alone_and_restore_a_tampered_one() -> None:
    # the Proxmox hookscript's post-start re-applies the guard only when it is not whole:
    # replacing a hooked chain's rules costs the kernel ~15 ms at every CT start
    import secrets

    table, br = "lxcritest" + secrets.token_hex(4), "hpg" + secrets.token_hex(3)
    chain = localnet.guard_chain(br)
    try:
        cmds = localnet.guard_commands(br, table)
        assert cmds == localnet.guard_ruleset(br, table)["nftables"]  # missing: all of it
        ports.nft_apply({"nftables": cmds}, "guard")
        assert localnet.guard_commands(br, table) == []
        listed = json.loads(sh("nft", "-j", "-a", "list", "chain", "inet", table, chain).stdout)
        handle = next(i["rule"]["handle"] for i in listed["nftables"] if "rule" in i)
        for tamper in (
            ["delete", "rule", "inet", table, chain, "handle", str(handle)],  # a rule gone
            ["add", "rule", "inet", table, chain, "accept"],  # an accept added
            ["chain", "inet", table, chain, "{", "policy", "drop", ";", "}"],  # another policy
        ):
            subprocess.run(["nft", *tamper], check=True, capture_output=True)
            cmds = localnet.guard_commands(br, table)
            assert cmds == localnet.guard_ruleset(br, table)["nftables"], tamper
            ports.nft_apply({"nftables": cmds}, "guard")
            listed = json.loads(sh("nft", "-j", "-a", "list", "chain", "inet", table, chain).stdout)
            handle = next(i["rule"]["handle"] for i in listed["nftables"] if "rule" in i)
            assert localnet.guard_commands(br, table) == [], tamper
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)
