"""lxcri's own bridge on plain LXC: ``lxcri0``, a private subnet, NAT to the outside.

``ensure_bridge`` is called on first use (by the start hook or the lxc
backend) and is idempotent and safe to run concurrently: it creates the
bridge if missing, gives it the gateway address (the subnet's first host,
plus an optional IPv6 ULA gateway), brings it up, enables forwarding and
``route_localnet`` (so published ports answer on 127.0.0.1, see
``ports``) behind a guard chain ``b-<bridge>-guard`` that keeps containers
away from the host's loopback services (see ``localnet``), and installs
masquerade for the subnet in lxcri's nftables table (one chain per bridge,
``b-<bridge>-post``).

On Proxmox the admin's bridges (vmbr0, ...) are used instead and are never
created or changed here, except ``enable_route_localnet`` (with its guard)
when ports are published on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network, IPv6Interface, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from lxcri_core.errors import NetworkError
from lxcri_core.log import get_logger
from lxcri_core.network.command import Runner, run_cmd
from lxcri_core.network.localnet import check_ifname as check_ifname
from lxcri_core.network.localnet import set_sysctl as set_sysctl
from lxcri_core.network.ports import DEFAULT_TABLE, nft_apply

log = get_logger(__name__)

#: The bridge lxcri manages on plain LXC hosts.
DEFAULT_BRIDGE = "lxcri0"
#: Its IPv4 subnet unless configured otherwise; the gateway is 10.88.0.1.
DEFAULT_SUBNET = "10.88.0.0/16"

_IFA_F_NODAD = 0x02  # linux/if_addr.h: an address on a carrier-less bridge is usable at once
_EEXIST = 17


@dataclass(frozen=True)
class BridgeInfo:
    """A bridge ready for containers."""

    name: str
    index: int
    subnet: IPv4Network
    #: The bridge's own address: the containers' default gateway.
    gateway: IPv4Interface
    ipv6_subnet: IPv6Network | None = None
    ipv6_gateway: IPv6Interface | None = None
    #: True when this call created the link (first use).
    created: bool = False


def nat_chain(bridge: str) -> str:
    """The nftables chain that masquerades ``bridge``'s subnet(s)."""
    return f"b-{check_ifname(bridge)}-post"


def nat_ruleset(
    bridge: str,
    subnet: IPv4Network,
    ipv6_subnet: IPv6Network | None = None,
    table: str = DEFAULT_TABLE,
) -> dict[str, Any]:
    """JSON ruleset: masquerade traffic from the bridge's subnets to anywhere else (pure)."""
    chain = {
        "family": "inet",
        "table": table,
        "name": nat_chain(bridge),
        "type": "nat",
        "hook": "postrouting",
        "prio": 100,
        "policy": "accept",
    }
    ref = {k: chain[k] for k in ("family", "table", "name")}
    cmds: list[dict[str, Any]] = [
        {"add": {"table": {"family": "inet", "name": table}}},
        {"add": {"chain": chain}},
        {"flush": {"chain": ref}},
    ]
    nets: list[IPv4Network | IPv6Network] = [subnet]
    if ipv6_subnet is not None:
        nets.append(ipv6_subnet)
    for net in nets:
        proto = "ip" if net.version == 4 else "ip6"
        prefix = {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
        expr = [
            _m({"payload": {"protocol": proto, "field": "saddr"}}, prefix, "=="),
            _m({"payload": {"protocol": proto, "field": "daddr"}}, prefix, "!="),
            {"masquerade": None},
        ]
        rule = {"family": "inet", "table": table, "chain": ref["name"], "expr": expr}
        cmds.append({"add": {"rule": rule}})
    return {"nftables": cmds}


def _m(left: Any, right: Any, op: str) -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def drop_nat_ruleset(bridge: str, table: str = DEFAULT_TABLE) -> dict[str, Any]:
    """JSON ruleset that removes the bridge's masquerade chain; idempotent (pure)."""
    ref = {"family": "inet", "table": table, "name": nat_chain(bridge)}
    return {
        "nftables": [
            {"add": {"table": {"family": "inet", "name": table}}},
            {"add": {"chain": {**ref, "type": "nat", "hook": "postrouting", "prio": 100}}},
            {"delete": {"chain": ref}},
        ]
    }


def enable_route_localnet(dev: str, *, table: str = DEFAULT_TABLE, run: Runner = run_cmd) -> None:
    """Let packets from 127.0.0.1 (DNATed published ports) be routed out of ``dev``.

    The guard that drops loopback-addressed packets arriving on ``dev`` goes
    in first: the sysctl alone would open the host's 127.0.0.1 services to
    everything on that link.
    """
    from lxcri_core.network.localnet import guard_ruleset, route_localnet_sysctl

    check_ifname(dev)
    nft_apply(guard_ruleset(dev, table), f"installing the loopback guard of {dev}", run)
    route_localnet_sysctl(dev)


def _overlapping(ipr: Any, bridge: str, nets: list[IPv4Network | IPv6Network]) -> str | None:
    """Name an address on another interface that lies in one of ``nets``, if any."""
    from pyroute2.netlink.exceptions import NetlinkDumpInterrupted

    for attempt in range(10):
        try:
            # addresses first: a link another process creates meanwhile (our
            # bridge, racing us) then appears in the link list too, not as "None"
            addrs = ipr.get_addr()
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            break
        except NetlinkDumpInterrupted:
            # links or addresses changed during the dump (other containers
            # starting): the kernel asks for a fresh one
            if attempt == 9:
                raise NetworkError("the host's interfaces keep changing; try again") from None
    for a in addrs:
        dev = names.get(a["index"])
        if dev is None or dev == bridge:  # gone meanwhile, or the one we configure
            continue
        addr = a.get_attr("IFA_ADDRESS")
        net = ip_network(f"{addr}/{a['prefixlen']}", strict=False)
        for want in nets:
            if net.version == want.version and net.overlaps(want):
                return f"{addr}/{a['prefixlen']} on {dev}"
    return None


def bridge_ready(
    name: str = DEFAULT_BRIDGE,
    subnet: IPv4Network | str = DEFAULT_SUBNET,
    *,
    table: str = DEFAULT_TABLE,
    run: Runner = run_cmd,
) -> BridgeInfo | None:
    """The bridge as ``ensure_bridge`` leaves it, if it already is so; else None.

    The fast path of every container create: two cheap commands instead of
    importing a netlink library (~120 ms) to change nothing. Checks that the
    link is a bridge, is up, holds the gateway address and that the NAT and
    loopback guard chains exist; IPv4 only (a bridge with an IPv6 subnet goes
    the slow way).
    """
    from lxcri_core.network.localnet import guard_chain

    v4 = IPv4Network(subnet)
    gw4 = IPv4Interface((v4.network_address + 1, v4.prefixlen))
    sysdir = Path("/sys/class/net") / check_ifname(name)
    try:
        index = int((sysdir / "ifindex").read_text())
        up = int((sysdir / "flags").read_text(), 16) & 1
    except (OSError, ValueError):
        return None
    if not (sysdir / "bridge").is_dir() or not up:
        return None
    own = run is run_cmd  # in-process where nothing is injected: no ip, no nft process
    if not (own and _primary_ipv4(name) == gw4):  # else any address of the link will do
        addrs = run(["ip", "-4", "-o", "addr", "show", "dev", name], None)
        if addrs.returncode != 0 or f" {gw4} " not in addrs.stdout:
            return None
    if not _NFT_NAME.fullmatch(table):  # nft joins its argv into one script: one command
        return None
    # one listing for both chains (nft 1.0.6 cannot list two chains in one batch)
    listing = _nft_list_table(table) if own else None
    if listing is None:
        proc = run(["nft", "list", "table", "inet", table], None)
        if proc.returncode != 0:
            return None
        listing = proc.stdout
    nat = _chain_text(listing, nat_chain(name))
    guard = _chain_text(listing, guard_chain(name))
    if str(v4) not in nat or f'iifname "{name}" ip daddr 127.0.0.0/8' not in guard:
        return None
    return BridgeInfo(name, index, v4, gw4)


_SIOCGIFADDR = 0x8915
_SIOCGIFNETMASK = 0x891B
_NFT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _primary_ipv4(name: str) -> IPv4Interface | None:
    """The link's primary IPv4 address with its prefix (two ioctls), None if it has none."""
    import fcntl
    import socket
    import struct

    req = struct.pack("16s24x", check_ifname(name).encode())
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            addr = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, req)[20:24]
            mask = fcntl.ioctl(s.fileno(), _SIOCGIFNETMASK, req)[20:24]
    except OSError:
        return None
    return IPv4Interface(f"{socket.inet_ntoa(addr)}/{socket.inet_ntoa(mask)}")


def _nft_list_table(table: str) -> str | None:
    """``nft list table inet TABLE`` through libnftables in this process (the text nft
    prints; a fork of this process and nft's exec less); None when the table is missing
    or libnftables cannot be loaded (the caller asks nft, which then says why)."""
    if not _NFT_NAME.fullmatch(table):  # one command in the buffer, never more (libnftables
        return None  # 1.0.6 even crashes on "list table inet T; delete table inet T")
    import ctypes

    try:
        lib = ctypes.CDLL("libnftables.so.1")
    except OSError:
        return None
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
    for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error", "nft_ctx_free"):
        getattr(lib, fn).argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        return None
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)  # its errors stay here, as nft's on a pipe would
        if lib.nft_run_cmd_from_buffer(ctx, f"list table inet {table}".encode()) != 0:
            return None
        out: bytes | None = lib.nft_ctx_get_output_buffer(ctx)
        return (out or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)


def _chain_text(listing: str, chain: str) -> str:
    """The body of ``chain`` in ``nft list table`` output ('' when it is not there)."""
    start = listing.find(f"\tchain {chain} {{\n")
    if start < 0:
        return ""
    end = listing.find("\n\t}", start)
    return listing[start:end]


def ensure_bridge(
    name: str = DEFAULT_BRIDGE,
    subnet: IPv4Network | str = DEFAULT_SUBNET,
    ipv6_subnet: IPv6Network | str | None = None,
    *,
    table: str = DEFAULT_TABLE,
    nat: bool = True,
    run: Runner = run_cmd,
) -> BridgeInfo:
    """Create (if needed) and configure bridge ``name`` for ``subnet``; idempotent.

    Refuses a subnet that overlaps an address on another interface (it would
    steal the host's routes). ``ipv6_subnet`` (a ULA /64, say) gives the
    bridge an IPv6 gateway too and turns on IPv6 forwarding.
    """
    from pyroute2 import IPRoute  # lazy: a netlink library is not needed by most commands
    from pyroute2.netlink.exceptions import NetlinkError

    check_ifname(name)
    v4 = IPv4Network(subnet)
    v6 = IPv6Network(ipv6_subnet) if ipv6_subnet is not None else None
    if v4.prefixlen > 30:
        raise NetworkError(f"subnet {v4} for bridge {name} is too small; use /30 or larger")
    gw4 = IPv4Interface((v4.network_address + 1, v4.prefixlen))
    gw6 = IPv6Interface((v6.network_address + 1, v6.prefixlen)) if v6 else None
    created = False
    with IPRoute() as ipr:
        nets: list[IPv4Network | IPv6Network] = [v4] if v6 is None else [v4, v6]
        clash = _overlapping(ipr, name, nets)
        if clash:
            raise NetworkError(
                f"subnet {', '.join(map(str, nets))} for bridge {name} overlaps {clash}; "
                "choose another subnet"
            )
        found = ipr.link_lookup(ifname=name)
        if not found:
            try:
                ipr.link("add", ifname=name, kind="bridge")
                created = True
            except NetlinkError as e:
                if e.code != _EEXIST:  # another start hook won the race: fine
                    raise NetworkError(f"cannot create bridge {name}: {e}") from None
            found = ipr.link_lookup(ifname=name)
        index = found[0]
        kind = ipr.get_links(index)[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
        if kind != "bridge":
            raise NetworkError(
                f"interface {name} exists but is a {kind or 'plain'} link, not a bridge"
            )
        if v6 is not None:
            set_sysctl(f"net/ipv6/conf/{name}/disable_ipv6", "0")
        try:
            ipr.addr("replace", index=index, address=str(gw4.ip), prefixlen=v4.prefixlen)
            if gw6 is not None:
                ipr.addr(
                    "replace",
                    index=index,
                    address=str(gw6.ip),
                    prefixlen=v6.prefixlen if v6 else 64,
                    flags=_IFA_F_NODAD,
                )
            ipr.link("set", index=index, state="up")
        except NetlinkError as e:
            raise NetworkError(f"cannot configure bridge {name}: {e}") from None
    set_sysctl("net/ipv4/ip_forward", "1")
    enable_route_localnet(name, table=table, run=run)
    if v6 is not None:
        set_sysctl("net/ipv6/conf/all/forwarding", "1")
    if nat:
        nft_apply(nat_ruleset(name, v4, v6, table), f"installing NAT for bridge {name}", run)
    if created:
        log.info("bridge created", bridge=name, subnet=str(v4), ipv6_subnet=str(v6) if v6 else None)
    return BridgeInfo(name, index, v4, gw4, v6, gw6, created)


def remove_bridge(name: str, *, table: str = DEFAULT_TABLE, run: Runner = run_cmd) -> None:
    """Delete bridge ``name`` and its NAT chain; no error when they are gone already."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    check_ifname(name)
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=name):
            try:
                ipr.link("del", index=index)
            except NetlinkError as e:
                if e.code != 19:  # ENODEV: removed meanwhile
                    raise NetworkError(f"cannot delete bridge {name}: {e}") from None
    from lxcri_core.network.localnet import drop_guard_ruleset

    nft_apply(drop_nat_ruleset(name, table), f"removing NAT of bridge {name}", run)
    nft_apply(drop_guard_ruleset(name, table), f"removing the loopback guard of {name}", run)
