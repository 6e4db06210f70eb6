"""A container's own view of its network: links, addresses and routes in its netns.

One command for all running containers (``ct_nets_cmd``: ``network.nsdump``,
one process entering each netns in turn), parsed by the pure
``parse_ct_nets``. Per container it prints what ``ip -j -d addr show`` and
``ip -j -d route show table all`` print there (``ct_net_cmd`` is that view
through ``nsenter`` and iproute2, for one container: the tests hold the two
equal), and ``parse_ct_net`` reads one container's part; only the main
table's routes are kept. The container owns what it reports: a hostile one may
add, rename or forge addresses, so this is shown, never trusted (published
ports and the firewall use lxcri's own records).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface, ip_interface
from typing import Any

from lxcri_core.errors import NetworkError
from lxcri_core.network.command import Runner, checked, json_lines, run_cmd
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
    docs = json_lines(text, "a container's `ip -j` output")
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


def ct_nets_cmd(pids: Sequence[int]) -> list[str]:
    """argv reading the netns of every process in ``pids`` in one process."""
    return [sys.executable, "-m", "lxcri_core.network.nsdump", *(str(p) for p in pids)]


def parse_ct_nets(text: str) -> dict[int, CtNet | str]:
    """Parse ``ct_nets_cmd``'s output: each pid's CtNet, or why it could not be read."""
    out: dict[int, CtNet | str] = {}
    lines = [ln for ln in text.splitlines() if ln.strip()]
    i = 0
    while i < len(lines):
        try:
            head = json.loads(lines[i])
            pid = int(head["pid"])
        except (ValueError, KeyError, TypeError):
            raise NetworkError(f"nsdump output line {i + 1} is no pid header") from None
        if "error" in head:
            out[pid] = str(head["error"])
            i += 1
            continue
        try:
            out[pid] = parse_ct_net("\n".join(lines[i + 1 : i + 3]))
        except NetworkError as e:
            out[pid] = str(e)
        i += 3
    return out


def read_ct_nets(pids: Sequence[int], run: Runner = run_cmd) -> dict[int, CtNet | str]:
    if not pids:
        return {}
    return parse_ct_nets(checked(run(ct_nets_cmd(pids), None), "reading containers' netns"))
