"""inspect-network's parsers and join, from output recorded here (tests/data/network/inspect):
OVS bridge vmbr1 (userspace) with veth9101i0 (tag 10) and veth9102i0 (trunks 10,20), Linux
bridge lxrecbr0 with veth9103i0; each veth's peer eth0 in a namespace of its own."""

from __future__ import annotations

import json
from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from lxcri_core.errors import NetworkError
from lxcri_core.network import ctnet, netreport, ovs, veth
from lxcri_core.network.listeners import Listener
from lxcri_core.network.ports import PublishedPort
from lxcri_core.spec.model import PortMapping

DATA = Path(__file__).parent.parent / "data" / "network" / "inspect"


def _text(name: str) -> str:
    return (DATA / name).read_text()


def test_parse_ovs_bridges_ports_tags_trunks() -> None:
    (br,) = ovs.parse_ovs(_text("ovs-vsctl.json"))
    assert (br.name, br.datapath_type) == ("vmbr1", "netdev")
    ports = {p.name: p for p in br.ports}
    assert set(ports) == {"vmbr1", "veth9101i0", "veth9102i0"}
    assert (ports["veth9101i0"].tag, ports["veth9101i0"].trunks) == (10, ())
    assert (ports["veth9102i0"].tag, ports["veth9102i0"].trunks) == (None, (10, 20))
    assert ports["vmbr1"].interfaces[0].type == "internal"


def test_parse_ovs_refuses_garbage() -> None:
    with pytest.raises(NetworkError, match="expected 3"):
        ovs.parse_ovs('{"data":[],"headings":[]}\n')
    with pytest.raises(NetworkError, match="cannot parse"):
        ovs.parse_ovs("not json\n")
    table = '{"data":[[1]],"headings":["name"]}\n'
    with pytest.raises(NetworkError, match="unexpected form"):
        ovs.parse_ovs(table * 3)


def test_ct_net_addresses_and_main_routes() -> None:
    net = ctnet.parse_ct_net(_text("ct-9101.txt"))
    eth0 = next(i for i in net.interfaces if i.link.name == "eth0")
    assert ip_interface("10.205.0.10/24") in eth0.addresses
    assert ip_interface("fd42:205::10/64") in eth0.addresses
    assert eth0.link.peer_ifindex is not None and eth0.link.peer_netnsid == 0
    dsts = {r.dst for r in net.routes}
    assert {"default", "10.205.0.0/24", "fd42:205::/64"} <= dsts
    assert "10.205.0.10" not in dsts  # the local table is left out


def _report(only: str | None = None) -> netreport.NetworkReport:
    targets = [netreport.CtTarget(f"ct{v}", f"{v:064x}", v, 1000 + v) for v in (9101, 9102, 9103)]
    nets: dict[str, ctnet.CtNet | str] = {
        t.name: ctnet.parse_ct_net(_text(f"ct-{t.vmid}.txt")) for t in targets
    }
    pub = PublishedPort(f"{9101:064x}", PortMapping(80, 8080, "tcp", ""), ip_address("10.205.0.10"))
    listeners = [
        Listener("tcp", ip_address("0.0.0.0"), 8080),
        Listener("udp", ip_address("::"), 8080),
    ]
    return netreport.build_report(
        _text("host-ip-addr.json"),
        ovs.parse_ovs(_text("ovs-vsctl.json")),
        targets,
        nets,
        [pub],
        listeners,
        only=only,
    )


def test_report_joins_veths_to_their_containers_by_peer_ifindex() -> None:
    r = _report()
    v = {x.name: x for x in r.veths}
    assert set(v) == {"veth9101i0", "veth9102i0", "veth9103i0"}
    assert (v["veth9101i0"].container, v["veth9101i0"].bridge, v["veth9101i0"].ovs) == (
        "ct9101",
        "vmbr1",
        True,
    )
    assert v["veth9101i0"].tag == 10 and v["veth9102i0"].trunks == (10, 20)
    assert (v["veth9103i0"].container, v["veth9103i0"].bridge, v["veth9103i0"].ovs) == (
        "ct9103",
        "lxrecbr0",
        False,
    )
    assert all(x.container_ifname == "eth0" and x.name_vmid for x in v.values())
    assert [b.name for b in r.bridges] == ["lxrecbr0"]
    (p,) = r.published
    assert (p.container, p.host_port, p.shadows) == ("ct9101", 8080, "tcp 0.0.0.0:8080")
    doc = r.to_json()
    assert doc["containers"][0]["interfaces"][1]["addresses"][0] == "10.205.0.10/24"


def test_owner_is_the_peer_not_the_name() -> None:
    """A container whose netns the host veth does not peer with is not its owner, whatever
    the name says: swap the records' names and the owners follow the kernel's ifindex."""
    targets = [
        netreport.CtTarget("ct9101", "a" * 64, 9101, 1),
        netreport.CtTarget("ct9102", "b" * 64, 9102, 2),
    ]
    nets: dict[str, ctnet.CtNet | str] = {
        "ct9101": ctnet.parse_ct_net(_text("ct-9102.txt")),  # 9101's record, 9102's netns
        "ct9102": ctnet.parse_ct_net(_text("ct-9101.txt")),
    }
    r = netreport.build_report(_text("host-ip-addr.json"), [], targets, nets)
    v = {x.name: x for x in r.veths}
    assert v["veth9101i0"].container == "ct9102" and v["veth9101i0"].name_vmid == 9101
    assert v["veth9103i0"].container is None


def test_only_one_container() -> None:
    r = _report(only="ct9103")
    assert [v.name for v in r.veths] == ["veth9103i0"]
    assert [c.name for c in r.containers] == ["ct9103"] and r.published == ()
    assert [b.name for b in r.bridges] == ["lxrecbr0"] and r.ovs_bridges == ()


def test_stopped_container_is_reported_not_read() -> None:
    r = netreport.build_report(
        _text("host-ip-addr.json"), [], [netreport.CtTarget("x", "c" * 64, 9200, None)], {}
    )
    assert r.containers[0].error == "not running"


def test_veth_naming() -> None:
    assert veth.host_veth_name(100) == "veth100i0"
    assert veth.host_veth_name(999999999, 9) == "veth999999999i9"
    assert veth.parse_veth_name("veth9101i0") == (9101, 0)
    for bad in ("veth0100i0", "veth99i0", "veth100i32", "veth100", "eth0", "veth100i0x"):
        assert veth.parse_veth_name(bad) is None
    for vmid, n in ((99, 0), (999999999, 10), (100, 32)):
        with pytest.raises(NetworkError):
            veth.host_veth_name(vmid, n)


@pytest.mark.parametrize(
    "name", ["", "a" * 16, "../etc", "br/0", "-x", "a b", "br;rm", "..", "vmbr0\n"]
)
def test_ovs_names_are_checked(name: str) -> None:
    with pytest.raises(NetworkError):
        ovs.port_vlan_cmd(name, 10)
    with pytest.raises(NetworkError):
        ovs.bridge_exists_cmd(name)


def test_vlan_values() -> None:
    assert ovs.port_vlan_cmd("veth100i0", 10)[-2:] == ["tag=10", "trunks=[]"]
    assert ovs.port_vlan_cmd("veth100i0", None, [20, 10, 20])[-2:] == ["tag=[]", "trunks=[10,20]"]
    assert ovs.parse_trunks("10;20 30,40") == (10, 20, 30, 40)
    for bad in ("", "0", "4095", "10;x", "10;-1", "99999"):
        with pytest.raises(NetworkError):
            ovs.parse_trunks(bad)
    with pytest.raises(NetworkError):
        ovs.port_vlan_cmd("veth100i0", 4095)


def _ct_output(ifname: str, n_addr: int = 1) -> str:
    """A container's `ip -j -batch` output as the container chose to make it."""
    addrs = [
        {
            "family": "inet",
            "local": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "prefixlen": 32,
        }
        for i in range(n_addr)
    ]
    link = {"ifindex": 2, "ifname": ifname, "link_index": 77, "link_netnsid": 0, "addr_info": addrs}
    return json.dumps([link]) + "\n" + json.dumps([]) + "\n"


def test_a_hostile_container_cannot_flood_the_report() -> None:
    net = ctnet.parse_ct_net(_ct_output("eth0", 10000))
    assert len(net.interfaces[0].addresses) == ctnet.MAX_ITEMS
    bad = '[{"ifname": "eth0", "ifindex": "x"}]\n[]\n'
    with pytest.raises(NetworkError, match="unexpected form"):
        ctnet.parse_ct_net(bad)
    with pytest.raises(NetworkError, match="expected 2"):
        ctnet.parse_ct_net("[]\n")


def test_interface_names_with_escape_sequences_are_escaped_in_tables() -> None:
    from lxcri_pve.cli.network_cmds import _printable

    name = "e\x1b[31mx\x07"
    net = ctnet.parse_ct_net(_ct_output(name))
    assert net.interfaces[0].link.name == name  # reported as it is (JSON escapes it)
    assert _printable(name) == "e\\x1b[31mx\\x07"


def test_nsdump_output_reads_as_ip_shows_each_netns() -> None:
    """One process for every container (nsdump) says what iproute2 says in each netns."""
    nets = ctnet.parse_ct_nets(_text("nsdump.txt"))
    assert len(nets) == 4
    got = [n for n in nets.values() if isinstance(n, ctnet.CtNet)]
    errors = [n for n in nets.values() if isinstance(n, str)]
    assert len(got) == 3 and errors == [
        "FileNotFoundError: [Errno 2] No such file or directory: '/proc/999999999/ns/net'"
    ]
    by_ip = {v: ctnet.parse_ct_net(_text(f"ct-{v}.txt")) for v in (9101, 9102, 9103)}
    for net in got:
        eth0 = next(i for i in net.interfaces if i.link.name == "eth0")
        (vmid,) = [
            v
            for v, n in by_ip.items()
            if any(i.link == eth0.link for i in n.interfaces)  # same ifindex, peer, mac...
        ]
        want = by_ip[vmid]
        assert [(i.link, i.addresses) for i in net.interfaces] == [
            (i.link, i.addresses) for i in want.interfaces
        ]
        assert [(r.dst, r.gateway, r.dev) for r in net.routes] == [
            (r.dst, r.gateway, r.dev) for r in want.routes
        ]


def test_nsdump_refuses_what_is_no_container_pid() -> None:
    from lxcri_core.network import nsdump

    assert nsdump.main(["1", "-5", "abc"]) == 0  # each refused on a line of its own
    with pytest.raises(NetworkError, match="no pid header"):
        ctnet.parse_ct_nets("[]\n")
