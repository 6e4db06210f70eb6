"""A container's own view of its network: links, addresses and routes in its netns.

One command per running container (``ct_net_cmd``): ``nsenter`` into the
netns of its init and one ``ip -j -batch`` printing three JSON documents
(links with addresses, then the routes of every table and family; the main
table's are kept: with no table given ``ip route`` would show IPv4 only), parsed by the pure
``parse_ct_net``. The container owns what it reports: a hostile one may
add, rename or forge addresses, so this is shown, never trusted (published
ports and the firewall use lxcri's own records).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from lxcri_core.errors import NetworkError
from lxcri_core.network.command import Runner, checked, run_cmd
from lxcri_core.network.veth import Link, parse_links

#: What ``ip -batch`` runs inside: links + addresses, then routes of both families.
BATCH = "addr show\nroute show table all\n"
#: Bounds what a container can make us hold: interfaces, addresses and routes.
MAX_ITEMS = 4096


def ct_net_cmd(pid: int) -> list[str]:
    """argv reading the netns of process ``pid`` (feed ``BATCH`` on stdin)."""
    if pid <= 1:
        raise NetworkError(f"pid {pid} is no container's init")
    return ["nsenter", "-t", str(pid), "-n", "ip", "-j", "-d", "-batch", "-"]


@dataclass(frozen=True)
class Route:
    dst: str
    gateway: str | None
    dev: str | None
    protocol: str | None
    scope: str | None


@dataclass(frozen=True)
class CtInterface:
    link: Link
    addresses: tuple[IPv4Interface | IPv6Interface, ...]


@dataclass(frozen=True)
class CtNet:
    interfaces: tuple[CtInterface, ...]
    routes: tuple[Route, ...]


def _addresses(x: dict[str, Any]) -> tuple[IPv4Interface | IPv6Interface, ...]:
    out: list[IPv4Interface | IPv6Interface] = []
    for a in (x.get("addr_info") or [])[:MAX_ITEMS]:
        if isinstance(a, dict) and a.get("family") in ("inet", "inet6") and "local" in a:
            try:
                out.append(ip_interface(f"{a['local']}/{a['prefixlen']}"))
            except ValueError:
                continue
    return tuple(out)


def _route(r: dict[str, Any]) -> Route:
    def s(k: str) -> str | None:
        v = r.get(k)
        return str(v) if v is not None else None

    return Route(str(r.get("dst", "")), s("gateway"), s("dev"), s("protocol"), s("scope"))


def parse_ct_net(text: str) -> CtNet:
    """Parse the output of ``ct_net_cmd`` fed ``BATCH``."""
    docs: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            try:
                docs.append(json.loads(line))
            except ValueError as e:
                raise NetworkError(f"cannot parse a container's `ip -j` output: {e}") from None
    if len(docs) != 2 or not all(isinstance(d, list) for d in docs):
        raise NetworkError(f"a container's `ip -j -batch` printed {len(docs)} lists, expected 2")
    links_doc = [x for x in docs[0][:MAX_ITEMS] if isinstance(x, dict) and "ifname" in x]
    links = parse_links(json.dumps(links_doc))
    ifaces = tuple(
        CtInterface(link, _addresses(x)) for link, x in zip(links, links_doc, strict=True)
    )
    routes = tuple(
        _route(r)
        for r in docs[1][:MAX_ITEMS]
        if isinstance(r, dict) and r.get("table", "main") == "main"  # main has no "table" key
    )
    return CtNet(ifaces, routes)


def read_ct_net(pid: int, run: Runner = run_cmd) -> CtNet:
    return parse_ct_net(checked(run(ct_net_cmd(pid), BATCH), f"reading the netns of pid {pid}"))
