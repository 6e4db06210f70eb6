"""Host-side veths: Proxmox's naming (``vethVMIDiN``) and the host's links with their peers.

Proxmox names the host end of CT ``VMID``'s interface ``netN`` ``vethVMIDiN``;
lxcri uses the same name on every backend (plain LXC through
``lxc.net.N.veth.pair``), so ``ip link`` and the dashboard show one scheme.

``parse_links`` reads ``ip -j -d link show`` (``IP_LINK``): each link with
its kind, master and, for a veth, the peer's ifindex (``link_index``) and the
peer's namespace id (``link_netnsid``). Everything here reports what the
kernel says; a container can rename or readdress its own end, so nothing
read here is trusted for a security decision.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lxcri_core.errors import NetworkError

#: Every link of the namespace it runs in, with kind and peer details.
IP_LINK = ["ip", "-j", "-d", "link", "show"]

_VETH_NAME = re.compile(r"veth(?P<vmid>[1-9][0-9]{2,8})i(?P<n>[0-9]|[1-2][0-9]|3[01])")
#: IFNAMSIZ - 1
IFNAME_MAX = 15


def host_veth_name(vmid: int, index: int = 0) -> str:
    """``vethVMIDiN``, the host end of CT ``vmid``'s ``net{index}`` (as Proxmox names it)."""
    if not 100 <= vmid <= 999_999_999:
        raise NetworkError(f"VMID {vmid} is outside 100..999999999")
    if not 0 <= index <= 31:
        raise NetworkError(f"net{index}: Proxmox numbers interfaces net0..net31")
    name = f"veth{vmid}i{index}"
    if len(name) > IFNAME_MAX:  # a 9-digit VMID with net10..net31: the kernel refuses it
        raise NetworkError(f"{name}: longer than {IFNAME_MAX} characters, no valid interface name")
    return name


def parse_veth_name(name: str) -> tuple[int, int] | None:
    """``(vmid, index)`` of a ``vethVMIDiN`` name, else None."""
    m = _VETH_NAME.fullmatch(name)
    return (int(m["vmid"]), int(m["n"])) if m else None


@dataclass(frozen=True)
class Link:
    """One network link as ``ip -j -d link`` shows it."""

    ifindex: int
    name: str
    #: "veth", "bridge", "tun", ... (None: a physical NIC or loopback)
    kind: str | None
    state: str
    mtu: int
    mac: str
    #: the bridge (or OVS system datapath) it is enslaved to
    master: str | None
    #: a veth's peer: its ifindex, in namespace ``peer_netnsid`` (None: this namespace)
    peer_ifindex: int | None
    peer_netnsid: int | None

    @property
    def vmid(self) -> int | None:
        """The CT a ``vethVMIDiN`` name says owns this link (only the name's word)."""
        parsed = parse_veth_name(self.name)
        return parsed[0] if parsed else None


def parse_links(text: str, what: str = " ".join(IP_LINK)) -> list[Link]:
    """Parse ``ip -j -d link show`` (or ``addr show``) output into links, in kernel order."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise NetworkError(f"cannot parse `{what}` output: {e}") from None
    if not isinstance(doc, list):
        raise NetworkError(f"`{what}` output is not a list of links")
    try:
        return [_link(x) for x in doc if isinstance(x, dict) and "ifname" in x]
    except (TypeError, ValueError) as e:
        raise NetworkError(f"`{what}` output has a link of unexpected form: {e}") from None


def _link(x: dict[str, Any]) -> Link:
    info = x.get("linkinfo") or {}
    kind = info.get("info_kind")
    peer = x.get("link_index")
    netnsid = x.get("link_netnsid")
    return Link(
        ifindex=int(x.get("ifindex", 0)),
        name=str(x["ifname"]),
        kind=str(kind) if kind else None,
        state=str(x.get("operstate", "UNKNOWN")),
        mtu=int(x.get("mtu", 0)),
        mac=str(x.get("address", "")),
        master=str(x["master"]) if x.get("master") else None,
        peer_ifindex=int(peer) if isinstance(peer, int) else None,
        peer_netnsid=int(netnsid) if isinstance(netnsid, int) else None,
    )
