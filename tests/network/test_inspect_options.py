"""Bridge inspector (from recorded `ip -j -d addr show`), --network parsing, NAT ruleset."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from pathlib import Path

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import bridge, inspect
from lxcri_core.network.options import NetworkMode, parse_network
from lxcri_core.runner import CmdResult

DATA = Path(__file__).resolve().parents[1] / "data" / "network"


def test_parse_bridges_recorded():
    bridges = inspect.parse_bridges((DATA / "ip-addr-bridges.json").read_text())
    assert [b.name for b in bridges] == ["lxtrec0", "lxtrec1"]
    br, empty = bridges
    assert br.ipv4 == (IPv4Interface("10.200.251.1/24"),)
    assert br.ipv6 == (IPv6Interface("fd42:251::1/64"),)  # link-local left out
    assert len(br.addresses) == 3
    assert [(p.name, p.kind, p.state) for p in br.ports] == [
        ("vrec1", "veth", "LOWERLAYERDOWN"),
        ("vrec2", "veth", "DOWN"),
    ]
    assert br.mtu == 1500 and br.mac.count(":") == 5 and br.state == "DOWN"
    assert empty.addresses == () and empty.ports == ()


def test_parse_bridges_ignores_non_bridges():
    text = '[{"ifname": "eth0", "addr_info": [], "linkinfo": {"info_kind": "veth"}}]'
    assert inspect.parse_bridges(text) == []


@pytest.mark.parametrize("text", ["not json", '{"a": 1}'])
def test_parse_bridges_rejects_garbage(text):
    with pytest.raises(NetworkError, match="ip -j -d addr show"):
        inspect.parse_bridges(text)


def test_read_bridges_runs_the_command_as_data():
    seen = []

    def run(argv, stdin=None):
        seen.append(list(argv))
        return CmdResult(0, "[]", "")

    assert inspect.read_bridges(run) == []
    assert seen == [inspect.IP_ADDR]


@pytest.mark.parametrize(
    ("text", "want"),
    [
        (None, NetworkMode("bridge", None)),
        ("bridge", NetworkMode("bridge", None)),
        ("none", NetworkMode("none", None)),
        ("bridge=vmbr0", NetworkMode("bridge", "vmbr0")),
    ],
)
def test_parse_network(text, want):
    assert parse_network(text) == want


@pytest.mark.parametrize("text", ["host", "bridge=", "bridge=a b", "bridge=" + "x" * 16, "br=x"])
def test_parse_network_rejects(text):
    with pytest.raises(NetworkError):
        parse_network(text)


def test_nat_ruleset_masquerades_subnets_to_elsewhere():
    rs = bridge.nat_ruleset("lxcri0", IPv4Network("10.88.0.0/16"), IPv6Network("fd42::/64"), "t")
    cmds = rs["nftables"]
    assert cmds[1]["add"]["chain"]["name"] == "b-lxcri0-post"
    assert cmds[2] == {
        "flush": {"chain": {"family": "inet", "table": "t", "name": "b-lxcri0-post"}}
    }
    rules = [c["add"]["rule"] for c in cmds if "rule" in c.get("add", {})]
    assert len(rules) == 2
    v4 = rules[0]["expr"]
    assert v4[0]["match"]["op"] == "==" and v4[1]["match"]["op"] == "!="
    assert v4[0]["match"]["right"] == {"prefix": {"addr": "10.88.0.0", "len": 16}}
    assert rules[1]["expr"][0]["match"]["left"]["payload"]["protocol"] == "ip6"
    assert all(r["expr"][-1] == {"masquerade": None} for r in rules)


def test_drop_nat_ruleset_is_idempotent_delete():
    cmds = bridge.drop_nat_ruleset("lxcri0", "t")["nftables"]
    assert [next(iter(c)) for c in cmds] == ["add", "add", "delete"]
    assert cmds[2]["delete"]["chain"]["name"] == "b-lxcri0-post"


@pytest.mark.parametrize("name", ["", "a" * 16, "a b", "a/b"])
def test_bridge_names_checked(name):
    with pytest.raises(NetworkError, match="bridge name"):
        bridge.nat_chain(name)


def test_set_sysctl_writes_only_changes(tmp_path):
    key = tmp_path / "net" / "ipv4" / "ip_forward"
    key.parent.mkdir(parents=True)
    key.write_text("0\n")
    bridge.set_sysctl("net/ipv4/ip_forward", "1", root=tmp_path)
    assert key.read_text() == "1\n"
    os.utime(key, ns=(1_000_000_000, 1_000_000_000))
    bridge.set_sysctl("net/ipv4/ip_forward", "1", root=tmp_path)  # already 1: not rewritten
    assert key.stat().st_mtime_ns == 1_000_000_000
    with pytest.raises(NetworkError, match=r"net\.ipv4\.missing"):
        bridge.set_sysctl("net/ipv4/missing", "1", root=tmp_path)


def test_guard_ruleset_drops_loopback_from_the_bridge_before_conntrack():
    from lxcri_core.network import localnet

    cmds = localnet.guard_ruleset("lxcri0", "t")["nftables"]
    chain = cmds[1]["add"]["chain"]
    assert (chain["name"], chain["type"], chain["hook"], chain["prio"]) == (
        "b-lxcri0-guard",
        "filter",
        "prerouting",
        -300,  # before conntrack (-200) and DNAT (-100)
    )
    assert cmds[2] == {
        "flush": {"chain": {"family": "inet", "table": "t", "name": "b-lxcri0-guard"}}
    }
    rules = [c["add"]["rule"]["expr"] for c in cmds if "rule" in c.get("add", {})]
    matched = {(r[1]["match"]["left"]["payload"]["field"], json.dumps(r[1]["match"]["right"]))
               for r in rules}  # fmt: skip
    assert matched == {
        ("daddr", '{"prefix": {"addr": "127.0.0.0", "len": 8}}'),
        ("saddr", '{"prefix": {"addr": "127.0.0.0", "len": 8}}'),
        ("daddr", '"::1"'),
        ("saddr", '"::1"'),
    }
    for r in rules:
        assert r[0] == {
            "match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lxcri0"}
        }
        assert r[-1] == {"drop": None}
