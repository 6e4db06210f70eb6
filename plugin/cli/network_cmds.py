"""``lxcri inspect-network``: bridges, OVS, veths and their containers, addresses, routes, ports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from lxcri_pve.cli.common import emit_json, get_backend, get_config, lxc_name, output_option
from lxcri_pve.cli.completion import container_names


def _printable(v: Any) -> str:
    """A cell as text with control characters escaped: a container names its own
    interfaces (the kernel allows escape sequences in them) and must not drive the
    terminal of whoever reads the table."""
    text = "" if v is None else str(v)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_sections = [0]


def emit_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str) -> None:
    """``common.emit_table`` with escaped cells, a blank line between sections; an empty
    section is left out."""
    from lxcri_pve.cli import common

    if rows:
        if _sections[0]:
            click.echo()
        _sections[0] += 1
        common.emit_table(columns, [[_printable(c) for c in r] for r in rows], title)


@click.command("inspect-network")
@click.argument("container", required=False, metavar="[VMID|NAME]", shell_complete=container_names)
@output_option
def inspect_network(container: str | None, output: str) -> None:
    """Show the host's network and the containers on it.

    \b
    Bridges and their ports; Open vSwitch bridges, ports, VLAN tags and trunks;
    each host veth with the container owning its peer (by the kernel's peer
    ifindex; the vethVMIDiN name is shown beside it); each container's
    addresses and routes as its own network namespace has them; published
    ports with the host socket each one shadows. With a container, its parts only.

    \b
    Examples:
      lxcri inspect-network
      lxcri inspect-network 101 --output json
    """
    from lxcri_core.backend import CtRef
    from lxcri_core.network.netreport import inspect_network as build
    from lxcri_core.network.netreport import status_targets

    backend = get_backend()
    if backend.name == "lxc":  # lxcri's records add each container's bridge and firewall
        only = lxc_name(container, "inspect-network") if container else None
        report = build(get_config(), only)
    else:
        only = backend.status(CtRef(container)).name if container else None
        report = build(get_config(), only, status_targets(backend.list()))
    if output == "json":
        emit_json(report.to_json())
        return
    emit_table(
        ["BRIDGE", "STATE", "MTU", "ADDRESSES", "PORTS"],
        [
            (
                b.name,
                b.state,
                b.mtu,
                " ".join(map(str, b.addresses)),
                " ".join(p.name for p in b.ports),
            )
            for b in report.bridges
        ],
        "Linux bridges",
    )
    emit_table(
        ["OVS BRIDGE", "DATAPATH", "PORT", "TAG", "TRUNKS"],
        [
            (b.name, b.datapath_type, p.name, p.tag or "", ",".join(map(str, p.trunks)))
            for b in report.ovs_bridges
            for p in b.ports
        ],
        "Open vSwitch" + (f" ({report.ovs_error})" if report.ovs_error else ""),
    )
    emit_table(
        ["VETH", "BRIDGE", "TAG", "TRUNKS", "CONTAINER", "IFNAME", "PEER IFINDEX", "STATE"],
        [
            (
                v.name,
                v.bridge or "",
                v.tag or "",
                ",".join(map(str, v.trunks)),
                v.container or "",
                v.container_ifname or "",
                v.peer_ifindex or "",
                v.state,
            )
            for v in report.veths
        ],
        "Host veths",
    )
    rows = []
    for c in report.containers:
        if c.error:
            rows.append((c.name, c.vmid, "", c.error, ""))
        for i in c.interfaces:
            if i["kind"] is None and i["name"] == "lo":
                continue
            routes = " ".join(
                f"{r['dst']}" + (f" via {r['gateway']}" if r["gateway"] else "")
                for r in c.routes
                if r["dev"] == i["name"]
            )
            rows.append((c.name, c.vmid, i["name"], " ".join(i["addresses"]), routes))
    emit_table(["CONTAINER", "VMID", "IFNAME", "ADDRESSES", "ROUTES"], rows, "Containers")
    emit_table(
        ["CONTAINER", "HOST", "CONTAINER PORT", "TO", "SHADOWS"],
        [
            (
                p.container or p.container_id[:12],
                f"{p.host_ip or '*'}:{p.host_port}/{p.protocol}",
                p.container_port,
                p.container_ip,
                p.shadows or "",
            )
            for p in report.published
        ],
        "Published ports",
    )
