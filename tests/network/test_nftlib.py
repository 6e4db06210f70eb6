"""nft in-process (libnftables): the same results and error text as the nft binary."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from ipaddress import IPv4Interface

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import nftlib, ports
from lxcri_core.network.command import run_cmd
from lxcri_core.runner import CmdResult
from lxcri_core.spec.model import PortMapping


def _binary(argv: list[str], stdin: str | None = None) -> CmdResult:
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    return CmdResult(p.returncode, p.stdout, p.stderr)


@pytest.fixture
def table() -> Iterator[str]:
    if nftlib._load() is None:
        # nftables depends on libnftables1: `make deps` installs both
        pytest.fail("libnftables.so.1 cannot be loaded (run `make deps`)")
    name = "lxcritest" + secrets.token_hex(4)
    nft = shutil.which("nft") or "nft"
    yield name
    subprocess.run([nft, "delete", "table", "inet", name], capture_output=True)


def test_only_lxcri_shapes_are_taken_over() -> None:
    assert nftlib.command_text(["nft", "-j", "-f", "-"], "{}") == "{}"
    assert nftlib.command_text(["nft", "-j", "list", "table", "inet", "t"], None) == (
        "list table inet t"
    )
    # the binary's argv is not parsed; the library's buffer is: no words it would split
    assert (
        nftlib.command_text(["nft", "-j", "list", "table", "inet", "a;flush ruleset"], None) is None
    )
    assert nftlib.command_text(["nft", "-j", "list", "table", "inet", "a b"], None) is None
    assert nftlib.command_text(["nft", "list", "ruleset"], None) is None  # no -j
    assert nftlib.command_text(["nft", "-j", "-f", "/etc/x"], None) is None
    assert nftlib.command_text(["nft", "-j", "-c", "list", "ruleset"], None) is None
    assert nftlib.command_text(["ip", "-j", "link"], None) is None


def test_publish_list_unpublish_in_process_match_the_binary(table: str) -> None:
    m = PortMapping(80, 18080, "tcp", "")
    rs = json.dumps(ports.publish_ruleset("c1", [m], IPv4Interface("10.99.7.2/24"), None, table))
    done = nftlib.run(["nft", "-j", "-f", "-"], rs)
    assert done is not None and done[0] == 0, done
    listing = ["nft", "-j", "list", "table", "inet", table]
    lib = nftlib.run(listing)
    assert lib is not None and lib[0] == 0
    assert json.loads(lib[1]) == json.loads(_binary(listing).stdout)
    (p,) = ports.parse_published(lib[1])
    assert (p.container_id, p.mapping) == ("c1", m)
    ports.unpublish("c1", table=table)  # through the default runner
    assert ports.list_published(table=table) == []


def test_errors_are_the_binarys(table: str) -> None:
    missing = ["nft", "-j", "list", "table", "inet", table + "x"]
    assert CmdResult(*(nftlib.run(missing) or (None, None, None))) == _binary(missing)
    bad = json.dumps(
        {"nftables": [{"add": {"table": {"family": "inet", "name": table}}},
                      {"add": {"rule": {"family": "inet", "table": table, "chain": "nope",
                                        "expr": []}}}]}
    )  # fmt: skip
    got = nftlib.run(["nft", "-j", "-f", "-"], bad)
    assert got is not None
    assert CmdResult(*got) == _binary(["nft", "-j", "-f", "-"], bad)
    with pytest.raises(NetworkError, match=r"^x failed: .*No such file or directory"):
        ports.nft_apply(json.loads(bad), "x")


def test_the_default_runner_spawns_no_nft(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # with no nft on PATH, the default runner still lists and applies (in-process);
    # other programs still run as processes
    monkeypatch.setenv("PATH", "/nonexistent")
    assert ports.list_published(table=table) == []
    ports.unpublish("c2", table=table)
    with pytest.raises(NetworkError, match="ip is not installed"):
        run_cmd(["ip", "-j", "link"])


def test_the_conflict_check_sees_another_containers_port_for_real(table: str) -> None:
    v4 = IPv4Interface("10.99.7.2/24")
    ports.publish("c1", [PortMapping(80, 18081)], v4, table=table, listeners=[])
    ports.publish("c1", [PortMapping(80, 18081)], v4, table=table, listeners=[])  # its own
    with pytest.raises(NetworkError, match="18081/tcp is already published by container c1"):
        ports.publish("c2", [PortMapping(80, 18081)], IPv4Interface("10.99.7.3/24"),
                      table=table, listeners=[])  # fmt: skip
    ports.publish("c2", [PortMapping(80, 18082)], IPv4Interface("10.99.7.3/24"),
                  table=table, listeners=[])  # fmt: skip
    assert {p.container_id for p in ports.list_published(table=table)} == {"c1", "c2"}
