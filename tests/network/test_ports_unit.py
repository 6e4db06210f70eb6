"""Pure parts of published ports: -p parsing, ruleset builders, the listing parser."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import ports
from lxcri_core.runner import CmdResult
from lxcri_core.spec.model import PortMapping
from tests.network.portspec import one_port

DATA = Path(__file__).resolve().parents[1] / "data" / "network"
V4 = IPv4Interface("10.88.0.2/16")
V6 = IPv6Interface("fd42:88::2/64")


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("18080:80", PortMapping(80, 18080, "tcp", "")),
        ("18080:80/udp", PortMapping(80, 18080, "udp", "")),
        ("8053:53/UDP", PortMapping(53, 8053, "udp", "")),
        ("127.0.0.1:18080:80", PortMapping(80, 18080, "tcp", "127.0.0.1")),
        ("[fd00::2]:443:8443/tcp", PortMapping(8443, 443, "tcp", "fd00::2")),
    ],
)
def test_one_parser_gives_the_one_mapping(spec, want):
    """``-p`` has one parser (spec.options.parse_port) and one class (spec.model)."""
    assert one_port(spec) == want
    # the network layer takes the spec's class and gives it back from the live ruleset
    # (it imports spec.model only there: the hooks read a record's ports as RecordPort)
    rs = ports.publish_ruleset("web", [want], V4, V6)
    listed = {"nftables": [c["add"] for c in rs["nftables"] if "rule" in c.get("add", {})]}
    (got,) = {p.mapping for p in ports.parse_published(json.dumps(listed))}
    assert type(got) is PortMapping and got == want
    assert not hasattr(ports, "parse_port_spec")


def test_port_mapping_str_round_trips():
    for spec in ("18080:80/tcp", "127.0.0.1:1:2/udp", "[::1]:5:6/tcp"):
        assert str(one_port(spec)) == spec
    assert one_port("[::1]:5:6").address == IPv6Address("::1")
    assert one_port("127.0.0.1:5:6").address == IPv4Address("127.0.0.1")
    assert one_port("5:6").address is None


@pytest.mark.parametrize("spec", ["80", "127.0.0.1::80"])
def test_unassigned_host_port_never_reaches_a_rule(spec):
    """``-p 80`` is create's to give a port; the ruleset refuses host port 0."""
    with pytest.raises(NetworkError, match="from 1 to 65535"):
        ports.publish_ruleset("a", [one_port(spec)], V4)


def _rules(ruleset: dict[str, Any], chain: str) -> list[dict[str, Any]]:
    return [
        c["add"]["rule"]
        for c in ruleset["nftables"]
        if "add" in c and "rule" in c["add"] and c["add"]["rule"]["chain"] == chain
    ]


def _dnats(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["dnat"] for r in rules for e in r["expr"] if "dnat" in e]


def test_publish_ruleset_both_families_and_all_chains():
    rs = ports.publish_ruleset("100", [one_port("18080:80")], V4, V6, "t")
    cmds = rs["nftables"]
    assert cmds[0] == {"add": {"table": {"family": "inet", "name": "t"}}}
    chains = [c["add"]["chain"] for c in cmds if "add" in c and "chain" in c["add"]]
    assert [(c["name"], c["hook"], c["prio"]) for c in chains] == [
        ("c-100-pre", "prerouting", -100),
        ("c-100-out", "output", -100),
        ("c-100-post", "postrouting", 100),
    ]
    # Every chain is flushed before rules are added: publish replaces, never appends.
    flushed = [c["flush"]["chain"]["name"] for c in cmds if "flush" in c]
    assert flushed == ["c-100-pre", "c-100-out", "c-100-post"]
    for chain in ("c-100-pre", "c-100-out"):
        assert _dnats(_rules(rs, chain)) == [
            {"family": "ip", "addr": "10.88.0.2", "port": 80},
            {"family": "ip6", "addr": "fd42:88::2", "port": 80},
        ]
    # Only table ``t`` is named anywhere in the batch.
    assert {c[k][o]["table"] for c in cmds[1:] for k in c for o in c[k]} == {"t"}
    post = _rules(rs, "c-100-post")
    assert len(post) == 4 and all(r["expr"][-1] == {"masquerade": None} for r in post)
    assert all(r["comment"] == "lxcri 100" for r in post)


def test_publish_ruleset_ipv6_rule_excludes_loopback():
    rs = ports.publish_ruleset("100", [one_port("18080:80")], None, V6)
    (rule,) = _rules(rs, "c-100-pre")
    assert {"match": {"op": "!=", "left": {"payload": {"protocol": "ip6", "field": "daddr"}},
                      "right": "::1"}} in rule["expr"]  # fmt: skip


def test_publish_ruleset_host_ip_limits_family_and_address():
    rs = ports.publish_ruleset("web", [one_port("127.0.0.1:18443:443/udp")], V4, V6)
    (rule,) = _rules(rs, "c-web-pre")
    kinds = [next(iter(e)) for e in rule["expr"]]
    assert "fib" not in json.dumps(rule)  # bound to one address, not "any local"
    assert kinds[-1] == "dnat"
    assert {"payload": {"protocol": "udp", "field": "dport"}} in [
        e["match"]["left"] for e in rule["expr"] if "match" in e
    ]
    assert _dnats([rule]) == [{"family": "ip", "addr": "10.88.0.2", "port": 443}]


def test_publish_ruleset_plain_addresses_skip_hairpin():
    rs = ports.publish_ruleset("a", [one_port("1:2")], IPv4Address("10.0.0.2"), None)
    assert len(_rules(rs, "c-a-post")) == 1  # only the host-local masquerade


def test_publish_ruleset_without_ports_is_unpublish():
    assert ports.publish_ruleset("a", [], V4, V6, "t") == ports.unpublish_ruleset("a", "t")


@pytest.mark.parametrize(
    ("specs", "v4", "v6", "words"),
    [
        (["1:2"], None, None, "no IPv4 or IPv6 address"),
        (["1:2", "1:3"], V4, None, "published twice"),
        (["[fd00::1]:1:2"], V4, None, "no IPv6 address"),
        (["10.0.0.1:1:2"], None, V6, "no IPv4 address"),
    ],
)
def test_publish_ruleset_rejects(specs, v4, v6, words):
    with pytest.raises(NetworkError, match=words):
        ports.publish_ruleset("a", [one_port(s) for s in specs], v4, v6)


def test_same_port_twice_with_different_protocols_is_fine():
    rs = ports.publish_ruleset("a", [one_port("53:53/udp"), one_port("53:53")], V4)
    assert len(_rules(rs, "c-a-pre")) == 2


def test_unpublish_ruleset_is_idempotent_delete_of_own_chains():
    cmds = ports.unpublish_ruleset("abc", "t")["nftables"]
    assert cmds[0] == {"add": {"table": {"family": "inet", "name": "t"}}}
    pairs = list(zip(cmds[1::2], cmds[2::2], strict=True))
    assert len(pairs) == 3
    for add, delete in pairs:
        assert add["add"]["chain"]["name"] == delete["delete"]["chain"]["name"]
    assert [d["delete"]["chain"]["name"] for _, d in pairs] == [
        "c-abc-pre",
        "c-abc-out",
        "c-abc-post",
    ]
    assert not any("rule" in c.get("add", {}) or "table" in c.get("delete", {}) for c in cmds)


@pytest.mark.parametrize("bad", ["", "-x", "a b", "a;b", "x" * 201, "ünï", "a/b"])
def test_container_id_must_be_chain_safe(bad):
    with pytest.raises(NetworkError, match="container id"):
        ports.unpublish_ruleset(bad)


def test_parse_published_recorded_listing():
    found = ports.parse_published((DATA / "nft-list-table.json").read_text())
    got = {(p.container_id, str(p.mapping), str(p.container_ip)) for p in found}
    assert got == {
        ("100", "18080:80/tcp", "10.88.0.2"),
        ("100", "18080:80/tcp", "fd42:88::2"),
        ("100", "127.0.0.1:18443:443/tcp", "10.88.0.2"),
        ("100", "[fd00::2]:8053:53/udp", "fd42:88::2"),
        ("abc123", "9000:9000/udp", "10.88.0.3"),
    }
    assert len(found) == 5  # output chains mirror prerouting and are not counted twice


def test_parse_published_empty_table():
    text = '{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet"}}]}'
    assert ports.parse_published(text) == []


class Recorder:
    """A Runner that records calls and answers from a queue."""

    def __init__(self, *answers: CmdResult) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.answers = list(answers)

    def __call__(self, argv, stdin=None):
        self.calls.append((list(argv), stdin))
        return self.answers.pop(0) if self.answers else CmdResult(0, "", "")


def test_publish_is_one_nft_call_without_conflict_check():
    run = Recorder()
    ports.publish("100", [one_port("1:2"), one_port("3:4")], V4, V6,
                  check_conflicts=False, run=run)  # fmt: skip
    assert len(run.calls) == 1
    argv, stdin = run.calls[0]
    assert argv == ["nft", "-j", "-f", "-"]
    assert json.loads(stdin or "") == ports.publish_ruleset(
        "100", [one_port("1:2"), one_port("3:4")], V4, V6
    )


class FakeNft(Recorder):
    """nft's listings cut from a recorded ``list table``; every ruleset accepted.
    ``gone``: chains that vanish between ``list chains`` and their own listing."""

    def __init__(self, gone: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.data = json.loads((DATA / "nft-list-table.json").read_text())
        self.gone = gone

    def __call__(self, argv, stdin=None):
        self.calls.append((list(argv), stdin))
        items = self.data["nftables"]
        if argv[2:4] == ["list", "chains"]:
            return CmdResult(0, json.dumps({"nftables": [i for i in items if "chain" in i]}), "")
        if argv[2:4] == ["list", "chain"]:
            name = argv[6]
            if name in self.gone:
                return CmdResult(1, "", "Error: No such file or directory\n")
            mine = [i for i in items if name in (i.get("chain", {}).get("name"),
                                                  i.get("rule", {}).get("chain"))]  # fmt: skip
            return CmdResult(0, json.dumps({"nftables": mine}), "")
        if argv[2:4] == ["list", "table"]:
            return CmdResult(0, json.dumps(self.data), "")
        return CmdResult(0, "", "")

    def applied(self) -> int:
        return sum(1 for argv, _ in self.calls if argv[2:] == ["-f", "-"])

    def listed(self) -> list[str]:
        return [" ".join(argv[2:]) for argv, _ in self.calls if argv[2] == "list"]


def test_publish_refuses_port_of_another_container():
    run = FakeNft()
    with pytest.raises(NetworkError, match="already published by container 100"):
        ports.publish("200", [one_port("18080:8080")], V4, run=run)
    assert run.applied() == 0  # nothing applied
    # only the names and the pre chains are listed, not the whole table
    assert run.listed() == ["list chains inet", "list chain inet lxcri c-100-pre",
                            "list chain inet lxcri c-abc123-pre"]  # fmt: skip


def test_the_conflict_check_skips_a_chain_unpublished_meanwhile_and_falls_back(monkeypatch):
    run = FakeNft(gone=("c-100-pre",))
    ports.publish("200", [one_port("18080:8080")], V4, listeners=[], run=run)
    assert run.applied() == 1  # 100's port was taken back while we looked
    monkeypatch.setattr(ports, "LIST_CHAINS_MAX", 1)  # many containers: the table at once
    run = FakeNft()
    with pytest.raises(NetworkError, match="already published by container 100"):
        ports.publish("200", [one_port("18080:8080")], V4, run=run)
    assert run.listed() == ["list chains inet", "list table inet lxcri"]


def test_publish_allows_same_port_on_other_address_or_own_container():
    run = FakeNft()
    ports.publish("200", [one_port("10.88.0.1:18443:443")], V4, listeners=[], run=run)
    run = FakeNft()
    ports.publish("100", [one_port("18080:80")], V4, listeners=[], run=run)
    assert run.calls[-1][0] == ["nft", "-j", "-f", "-"]


def test_list_published_without_table_is_empty():
    err = "Error: No such file or directory\nlist table inet lxcri\n                ^^^^^^\n"
    assert ports.list_published(run=Recorder(CmdResult(1, "", err))) == []


def test_nft_failure_names_the_operation_and_nft_error():
    err = "Error: Could not process rule: Operation not permitted\n{...}\n^^^^\n"
    with pytest.raises(NetworkError) as e:
        ports.unpublish("100", run=Recorder(CmdResult(1, "", err)))
    assert str(e.value) == (
        "unpublishing ports of 100 failed: Error: Could not process rule: Operation not permitted"
    )


def test_published_port_addresses_are_typed():
    (p,) = [
        p
        for p in ports.parse_published((DATA / "nft-list-table.json").read_text())
        if p.mapping.protocol == "udp" and p.container_id == "100"
    ]
    assert p.mapping.address == ip_address("fd00::2") and p.container_ip == V6.ip


def test_unspecified_host_address_means_every_address_of_its_family():
    """-p 0.0.0.0:P:C as docker: every IPv4 address (it used to match daddr 0.0.0.0: nothing)."""
    rs = ports.publish_ruleset("w", [one_port("0.0.0.0:18080:80")], V4, V6)
    (rule,) = _rules(rs, "c-w-pre")
    assert _dnats([rule]) == [{"family": "ip", "addr": "10.88.0.2", "port": 80}]
    assert "fib" in json.dumps(rule) and "0.0.0.0" not in json.dumps(rule)
    rs = ports.publish_ruleset("w", [one_port("[::]:18080:80")], V4, V6)
    (rule,) = _rules(rs, "c-w-pre")
    assert _dnats([rule]) == [{"family": "ip6", "addr": "fd42:88::2", "port": 80}]
    assert "fib" in json.dumps(rule) and '"right": "::"' not in json.dumps(rule)


@pytest.mark.parametrize(
    ("spec", "clash"),
    [
        ("0.0.0.0:18080:80", True),  # 100 publishes 18080 on every address
        ("[::]:18080:80", True),
        ("10.1.2.3:18080:80", True),
        ("0.0.0.0:9000:9000/udp", True),  # abc123: every IPv4 address
        ("[fd00::5]:9000:9000/udp", False),  # abc123 has no IPv6 rule
        ("[::]:9000:9000/udp", False),
        ("0.0.0.0:18443:443", True),  # 100 has 127.0.0.1:18443
        ("[::]:18443:443", False),
        ("10.88.0.1:18443:443", False),
    ],
)
def test_publish_conflicts_with_wildcard_addresses(spec, clash):
    run = FakeNft()
    if clash:
        with pytest.raises(NetworkError, match="already published by container"):
            ports.publish("200", [one_port(spec)], V4, V6, listeners=[], run=run)
    else:
        ports.publish("200", [one_port(spec)], V4, V6, listeners=[], run=run)
