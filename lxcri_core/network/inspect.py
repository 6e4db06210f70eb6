"""Read-only view of the host's bridges: their ports and addresses.

For ``lxcri list`` and the dashboard. The command is data (``IP_ADDR``), the
parser is pure and tested from recorded ``ip -j -d addr show`` output; one
call shows every bridge, lxcri's own and the admin's (vmbr0, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from lxcri_core.errors import NetworkError
from lxcri_core.network.command import Runner, checked, run_cmd

#: Every link with its addresses and link details (kind, bridge master).
IP_ADDR = ["ip", "-j", "-d", "addr", "show"]


@dataclass(frozen=True)
class BridgePort:
    """An interface enslaved to a bridge (a container's veth, a NIC)."""

    name: str
    #: Link kind as the kernel names it ("veth", "vxlan"; None for a NIC).
    kind: str | None
    #: Kernel operstate: "UP", "DOWN", "LOWERLAYERDOWN", ...
    state: str


@dataclass(frozen=True)
class Bridge:
    """A Linux bridge with its own addresses and its ports."""

    name: str
    state: str
    mtu: int
    mac: str
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    ports: tuple[BridgePort, ...]

    @property
    def ipv4(self) -> tuple[IPv4Interface, ...]:
        return tuple(a for a in self.addresses if isinstance(a, IPv4Interface))

    @property
    def ipv6(self) -> tuple[IPv6Interface, ...]:
        """Global and ULA IPv6 addresses (link-local ones left out)."""
        return tuple(
            a for a in self.addresses if isinstance(a, IPv6Interface) and not a.is_link_local
        )


def _addresses(link: dict[str, Any]) -> tuple[IPv4Interface | IPv6Interface, ...]:
    out: list[IPv4Interface | IPv6Interface] = []
    for a in link.get("addr_info", []):
        if a.get("family") in ("inet", "inet6") and "local" in a:
            out.append(ip_interface(f"{a['local']}/{a['prefixlen']}"))
    return tuple(out)


def parse_bridges(text: str) -> list[Bridge]:
    """Parse ``ip -j -d addr show`` into the bridges it lists, in kernel order."""
    try:
        links = json.loads(text)
    except ValueError as e:
        raise NetworkError(f"cannot parse `{' '.join(IP_ADDR)}` output: {e}") from None
    if not isinstance(links, list):
        raise NetworkError(f"`{' '.join(IP_ADDR)}` output is not a list of links")
    ports: dict[str, list[BridgePort]] = {}
    for link in links:
        master = link.get("master")
        if master and link.get("linkinfo", {}).get("info_slave_kind") == "bridge":
            kind = link.get("linkinfo", {}).get("info_kind")
            ports.setdefault(master, []).append(
                BridgePort(link["ifname"], kind, link.get("operstate", "UNKNOWN"))
            )
    return [
        Bridge(
            name=link["ifname"],
            state=link.get("operstate", "UNKNOWN"),
            mtu=int(link.get("mtu", 0)),
            mac=link.get("address", ""),
            addresses=_addresses(link),
            ports=tuple(ports.get(link["ifname"], ())),
        )
        for link in links
        if link.get("linkinfo", {}).get("info_kind") == "bridge"
    ]


def read_bridges(run: Runner = run_cmd) -> list[Bridge]:
    """The host's bridges now."""
    return parse_bridges(checked(run(IP_ADDR, None), "listing network links"))
