"""``lxcri inspect-network``: the host's bridges, OVS, veths and their owners, each
container's addresses and routes, published ports and the host sockets they shadow.

Read in bulk: one ``ip -j -d addr show`` for the host, one ``ovs-vsctl`` for
OVS, one ``nft -j list table`` for published ports, one read of /proc/net for
host sockets, and one ``network.nsdump`` process for every running
container's netns.
``build_report`` joins the parsed pieces and is pure; ``collect`` does the
reads.

Which container owns a host veth is decided by the kernel's peer ifindex
(the host end's ``link_index`` is the container end's ifindex and the other
way round); a ``vethVMIDiN`` name is reported beside it as what the name
says, since anyone who can create links on the host can pick any name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from typing import TYPE_CHECKING, Any

from lxcri_core.errors import NetworkError
from lxcri_core.network.command import Runner, checked, run_cmd
from lxcri_core.network.ctnet import CtNet
from lxcri_core.network.inspect import IP_ADDR, Bridge, parse_bridges
from lxcri_core.network.listeners import Listener, covers
from lxcri_core.network.ovs import OvsBridge, OvsPort
from lxcri_core.network.ports import PublishedPort
from lxcri_core.network.veth import Link, parse_links

if TYPE_CHECKING:
    from lxcri_core.backend import ContainerStatus
    from lxcri_core.config import Config


@dataclass(frozen=True)
class CtTarget:
    """A container as lxcri's records know it; ``pid`` of its init when running."""

    name: str
    id: str
    vmid: int
    pid: int | None
    bridge: str = ""
    #: pct's ``firewall=1`` as the container was created with (reported, not enforced here)
    firewall: bool = False


@dataclass(frozen=True)
class VethInfo:
    """A host-side veth: where it is plugged and whose container end it is."""

    name: str
    ifindex: int
    state: str
    mtu: int
    peer_ifindex: int | None
    #: the Linux bridge, or the OVS bridge holding a port of this name
    bridge: str | None
    ovs: bool
    tag: int | None
    trunks: tuple[int, ...]
    #: the container whose interface is the peer (by ifindex), and that interface
    container: str | None
    container_ifname: str | None
    #: the VMID the ``vethVMIDiN`` name claims (None for other names)
    name_vmid: int | None


@dataclass(frozen=True)
class ContainerNet:
    name: str
    vmid: int
    pid: int | None
    interfaces: tuple[dict[str, Any], ...]
    routes: tuple[dict[str, Any], ...]
    #: why the netns could not be read ("" when it was, "not running")
    error: str = ""
    firewall: bool = False


@dataclass(frozen=True)
class PublishedInfo:
    container: str
    container_id: str
    host_ip: str
    host_port: int
    container_port: int
    protocol: str
    container_ip: str
    #: the host socket this DNAT takes traffic from ("tcp 0.0.0.0:8080"), if any
    shadows: str | None


@dataclass(frozen=True)
class NetworkReport:
    bridges: tuple[Bridge, ...]
    ovs_bridges: tuple[OvsBridge, ...]
    #: why OVS could not be read ("" when it was or is not installed)
    ovs_error: str
    veths: tuple[VethInfo, ...]
    containers: tuple[ContainerNet, ...]
    published: tuple[PublishedInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))  # type: ignore[no-any-return]


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (IPv4Interface, IPv6Interface)):
        return str(v)
    return v


def _iface_json(i: Any) -> dict[str, Any]:
    link: Link = i.link
    return {
        "name": link.name,
        "ifindex": link.ifindex,
        "kind": link.kind,
        "state": link.state,
        "mtu": link.mtu,
        "mac": link.mac,
        "peer_ifindex": link.peer_ifindex,
        "addresses": [str(a) for a in i.addresses],
    }


def build_report(
    host_addr_json: str,
    ovs: Sequence[OvsBridge],
    targets: Sequence[CtTarget],
    ct_nets: dict[str, CtNet | str],
    published: Iterable[PublishedPort] = (),
    listeners: Sequence[Listener] = (),
    *,
    ovs_error: str = "",
    only: str | None = None,
) -> NetworkReport:
    """Join the reads into one report; ``only`` (a container name) keeps its parts alone.

    ``ct_nets`` maps a container name to its parsed netns or the error that
    kept it unread.
    """
    links = parse_links(host_addr_json, " ".join(IP_ADDR))
    bridges = parse_bridges(host_addr_json)
    ovs_ports: dict[str, tuple[str, OvsPort]] = {}
    for ob in ovs:
        for port in ob.ports:
            ovs_ports[port.name] = (ob.name, port)
    # container end ifindex -> (container, its interface) among veths whose peer is in another ns
    ct_ends: dict[int, list[tuple[str, Link]]] = {}
    for t in targets:
        net = ct_nets.get(t.name)
        if isinstance(net, CtNet):
            for i in net.interfaces:
                if i.link.peer_ifindex is not None and i.link.peer_netnsid is not None:
                    ct_ends.setdefault(i.link.ifindex, []).append((t.name, i.link))
    veths = []
    for link in links:
        if link.kind != "veth" or link.peer_netnsid is None:
            continue  # both ends here: not a container's
        owner = None
        for name, ct_link in ct_ends.get(link.peer_ifindex or -1, []):
            if ct_link.peer_ifindex == link.ifindex:
                owner = (name, ct_link.name)
        ovs_port = ovs_ports.get(link.name)
        veths.append(
            VethInfo(
                name=link.name,
                ifindex=link.ifindex,
                state=link.state,
                mtu=link.mtu,
                peer_ifindex=link.peer_ifindex,
                bridge=link.master if ovs_port is None else ovs_port[0],
                ovs=ovs_port is not None,
                tag=ovs_port[1].tag if ovs_port else None,
                trunks=ovs_port[1].trunks if ovs_port else (),
                container=owner[0] if owner else None,
                container_ifname=owner[1] if owner else None,
                name_vmid=link.vmid,
            )
        )
    containers = []
    for t in targets:
        net = ct_nets.get(t.name, "not running")
        if isinstance(net, CtNet):
            containers.append(
                ContainerNet(
                    t.name,
                    t.vmid,
                    t.pid,
                    tuple(_iface_json(i) for i in net.interfaces),
                    tuple(dataclasses.asdict(r) for r in net.routes),
                    firewall=t.firewall,
                )
            )
        else:
            containers.append(ContainerNet(t.name, t.vmid, t.pid, (), (), net, t.firewall))
    by_id = {t.id: t.name for t in targets}
    pubs = []
    for pub in published:
        m = pub.mapping
        shadow = next(
            (
                f"{lst.proto} {lst.address}:{lst.port}"
                for lst in listeners
                if lst.proto == m.protocol
                and lst.port == m.host_port
                and covers(m.address, lst.address)
            ),
            None,
        )
        pubs.append(
            PublishedInfo(
                by_id.get(pub.container_id, ""),
                pub.container_id,
                m.host_ip,
                m.host_port,
                m.container_port,
                m.protocol,
                str(pub.container_ip),
                shadow,
            )
        )
    if only is not None:
        veths = [v for v in veths if v.container == only]
        containers = [c for c in containers if c.name == only]
        pubs = [p for p in pubs if p.container == only]
        used = {v.bridge for v in veths}
        bridges = [b for b in bridges if b.name in used]
        ovs = [b for b in ovs if b.name in used]
    return NetworkReport(
        tuple(bridges), tuple(ovs), ovs_error, tuple(veths), tuple(containers), tuple(pubs)
    )


def collect(
    targets: Sequence[CtTarget],
    *,
    only: str | None = None,
    table: str | None = None,
    run: Runner = run_cmd,
    read_listeners: Callable[[], list[Listener]] | None = None,
) -> NetworkReport:
    """Read everything ``build_report`` joins, now."""
    import shutil

    from lxcri_core.network import ctnet, listeners, ovs, ports

    host = checked(run(IP_ADDR, None), "listing network links")
    ovs_error = ""
    ovs_bridges: list[OvsBridge] = []
    if shutil.which("ovs-vsctl"):  # not installed: no OVS to show, nothing to say
        try:
            ovs_bridges = ovs.read_ovs(run)
        except NetworkError as e:  # installed, not running: say why
            ovs_error = str(e).splitlines()[0]

    wanted = [t for t in targets if only is None or t.name == only]
    running = [t.pid for t in wanted if t.pid is not None]
    try:  # one process for all of them (network.nsdump)
        by_pid = ctnet.read_ct_nets(running, run)
    except NetworkError as e:
        by_pid = dict.fromkeys(running, str(e).splitlines()[0])
    nets: dict[str, CtNet | str] = {
        t.name: "not running" if t.pid is None else by_pid.get(t.pid, "not read") for t in wanted
    }
    pubs = (
        ports.list_published(run=run)
        if table is None
        else ports.list_published(table=table, run=run)
    )
    lst = (read_listeners or listeners.read_listeners)()
    return build_report(host, ovs_bridges, targets, nets, pubs, lst, ovs_error=ovs_error, only=only)


def lxc_targets(cfg: Config) -> list[CtTarget]:
    """Every container in lxcri's records under ``cfg.root``, with its init's pid (one
    bulk state read for all of them)."""
    from lxcri_core.containers import lxc
    from lxcri_core.containers.record import list_records, lxcpath

    recs = list_records(cfg.root)
    states = lxc.states(lxcpath(cfg), [r.name for r in recs]) if recs else {}
    return [
        CtTarget(
            r.name,
            r.id,
            r.vmid,
            states.get(r.name, ("STOPPED", None))[1],
            r.bridge,
            r.spec.network.firewall,
        )
        for r in recs
    ]


def status_targets(statuses: Iterable[ContainerStatus]) -> list[CtTarget]:
    """The containers of any backend from its bulk ``list`` (a Proxmox CT: its init's
    pid on this host when it runs here; no bridge or firewall record)."""
    return [
        CtTarget(s.name, s.id, s.vmid, s.pid if s.status == "running" else None) for s in statuses
    ]


def inspect_network(
    cfg: Config, only: str | None = None, targets: Sequence[CtTarget] | None = None
) -> NetworkReport:
    """The report ``lxcri inspect-network [NAME]`` shows (``only``: a resolved container
    name); ``targets``: the containers, default lxcri's plain-LXC records."""
    return collect(lxc_targets(cfg) if targets is None else targets, only=only)
