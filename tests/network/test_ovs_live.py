"""On a real Open vSwitch (userspace datapath): VLAN tags and trunks isolate as configured,
set through lxcri's own builders; inspect-network's reader agrees with ovs-vsctl and ip.

"Containers" here are network namespaces on veths plugged into an OVS bridge.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from lxcri_core.network import netreport, ovs
from tests.support import l2probe
from tests.support.ovslab import LOCK, OvsLab

pytestmark = pytest.mark.timeout(180)


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@dataclass
class OvsNet:
    lab: OvsLab
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    sleepers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"lxob{self.tag}"

    def up(self) -> None:
        self.lab.vsctl(
            "add-br", self.bridge, "--", "set", "bridge", self.bridge, "datapath_type=netdev"
        )

    def port(self, n: int, ip: str | None = None) -> tuple[str, str]:
        """A namespace ``lxon<tag><n>`` whose eth0's peer ``lxov<tag><n>`` is an OVS port."""
        ns, host = f"lxon{self.tag}{n}", f"lxov{self.tag}{n}"
        sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(host)
        sh("ip", "link", "set", host, "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        if ip:
            sh("ip", "-n", ns, "addr", "add", ip, "dev", "eth0")
        self.lab.vsctl("add-port", self.bridge, host)
        return ns, host

    def sleeper(self, ns: str) -> int:
        """A process in ``ns``: what a container's init is to the inspector."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "120"])
        self.sleepers.append(p)
        return p.pid

    def close(self) -> None:
        for p in self.sleepers:
            p.kill()
            p.wait()
        self.lab.vsctl("--if-exists", "del-br", self.bridge, check=False)
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)


@pytest.fixture
def ovsnet(ovs: OvsLab) -> Iterator[OvsNet]:
    """A network lab on the module's Open vSwitch (other modules import it with OvsNet)."""
    n = OvsNet(ovs)
    try:
        n.up()
        yield n
    finally:
        n.close()


def _run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def test_same_tag_reaches_other_tag_does_not(ovsnet: OvsNet) -> None:
    a, pa = ovsnet.port(1, "10.203.0.1/24")
    _, pb = ovsnet.port(2, "10.203.0.2/24")
    _, pc = ovsnet.port(3, "10.203.0.3/24")
    _run(ovs.port_vlan_cmd(pa, 10))
    _run(ovs.port_vlan_cmd(pb, 10))
    _run(ovs.port_vlan_cmd(pc, 20))
    assert l2probe.ping(a, "10.203.0.2") == "reply"
    assert l2probe.ping(a, "10.203.0.3", 2) == "none"
    # the same port moved to tag 10 reaches: the tag, not the address, separated them
    _run(ovs.port_vlan_cmd(pc, 10))
    assert l2probe.ping(a, "10.203.0.3") == "reply"


def test_trunk_carries_the_listed_vlans_only(ovsnet: OvsNet) -> None:
    t, pt = ovsnet.port(0)
    a, pa = ovsnet.port(1)
    b, pb = ovsnet.port(2)
    c, pc = ovsnet.port(3)
    _run(ovs.port_vlan_cmd(pt, None, ovs.parse_trunks("10;20")))
    for port, vlan in ((pa, 10), (pb, 20), (pc, 30)):
        _run(ovs.port_vlan_cmd(port, vlan))
    # tagged frames from the trunk: 10 and 20 arrive untagged at their access ports, 30 nowhere
    listeners = {ns: l2probe.listen(ns, "eth0", 3) for ns in (a, b, c)}
    for vlan in (10, 20, 30):
        l2probe.send(t, "eth0", f"LXCRI-T{vlan}", vlan)
    got = {ns: l2probe.markers(p) for ns, p in listeners.items()}
    assert got == {a: {"LXCRI-T10"}, b: {"LXCRI-T20"}, c: set()}
    # and back: frames of access ports on VLAN 10 / 20 reach the trunk, VLAN 30's do not
    lt = l2probe.listen(t, "eth0", 3)
    for ns, name in ((a, "LXCRI-A10"), (b, "LXCRI-B20"), (c, "LXCRI-C30")):
        l2probe.send(ns, "eth0", name)
    assert l2probe.markers(lt) == {"LXCRI-A10", "LXCRI-B20"}


def test_inspector_equals_ovs_vsctl_and_ip(ovsnet: OvsNet) -> None:
    a, pa = ovsnet.port(1, "10.204.0.1/24")
    b, pb = ovsnet.port(2, "10.204.0.2/24")
    _run(ovs.port_vlan_cmd(pa, 7))
    _run(ovs.port_vlan_cmd(pb, None, [7, 8]))
    sh("ip", "-n", a, "route", "add", "default", "via", "10.204.0.254")
    targets = [
        netreport.CtTarget("ct-a", "a" * 64, 901, ovsnet.sleeper(a)),
        netreport.CtTarget("ct-b", "b" * 64, 902, ovsnet.sleeper(b)),
    ]
    report = netreport.collect(targets)
    assert not report.ovs_error
    # OVS as ovs-vsctl reports it
    (br,) = [x for x in report.ovs_bridges if x.name == ovsnet.bridge]
    assert br.datapath_type == "netdev"
    assert sorted(p.name for p in br.ports if p.name != ovsnet.bridge) == sorted(
        ovsnet.lab.vsctl("list-ports", ovsnet.bridge).split()
    )
    ports = {p.name: p for p in br.ports}
    assert ports[pa].tag == int(ovsnet.lab.vsctl("get", "port", pa, "tag"))
    assert (
        ports[pb].trunks == (7, 8)
        and ovsnet.lab.vsctl("get", "port", pb, "trunks").strip() == "[7, 8]"
    )
    # each host veth: its owner by peer ifindex, on the OVS bridge with its tag
    veths = {v.name: v for v in report.veths}
    for host, ct in ((pa, "ct-a"), (pb, "ct-b")):
        link = json.loads(sh("ip", "-j", "link", "show", host))[0]
        v = veths[host]
        assert (v.ifindex, v.peer_ifindex, v.container, v.container_ifname) == (
            link["ifindex"],
            link["link_index"],
            ct,
            "eth0",
        )
        assert v.bridge == ovsnet.bridge and v.ovs
    assert veths[pa].tag == 7 and veths[pb].trunks == (7, 8)
    # addresses and routes as `ip -j` shows them inside
    cts = {c.name: c for c in report.containers}
    for ns, ct in ((a, "ct-a"), (b, "ct-b")):
        want = {
            x["ifname"]: sorted(f"{i['local']}/{i['prefixlen']}" for i in x["addr_info"])
            for x in json.loads(sh("ip", "-n", ns, "-j", "addr", "show"))
        }
        got = {i["name"]: sorted(i["addresses"]) for i in cts[ct].interfaces}
        assert got == want
        want_routes = sorted(
            r["dst"]
            for fam in ("-4", "-6")
            for r in json.loads(sh("ip", "-n", ns, "-j", fam, "route", "show"))
        )
        assert sorted(r["dst"] for r in cts[ct].routes) == want_routes
    assert any(r["dst"] == "default" and r["gateway"] == "10.204.0.254" for r in cts["ct-a"].routes)
    # one container: only its parts
    only = netreport.collect(targets, only="ct-b")
    assert [v.name for v in only.veths] == [pb] and [c.name for c in only.containers] == ["ct-b"]


def test_the_lock_is_held_while_ovs_runs(ovs: OvsLab) -> None:
    """The trixie run's OVS fixture (same lock file) waits while this one's daemon runs."""
    import fcntl
    import os

    fd = os.open(LOCK, os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
