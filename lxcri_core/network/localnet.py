"""The guard that makes ``route_localnet`` safe on a bridge.

Published ports answer on the host's 127.0.0.1 only if the bridge has
``route_localnet=1`` (see ``ports``). That sysctl also stops the kernel from
dropping packets that arrive on the bridge addressed to 127.0.0.0/8, so a
container with CAP_NET_RAW (docker's default set) could open TCP sessions to
services the host binds to its loopback only, the class of Kubernetes
CVE-2020-8558. Nothing legitimate reaches the host from a bridge with a
loopback address before NAT: replies to host-local clients of a published
port carry the masquerade address (the bridge's own), not 127.0.0.1, until
the conntrack NAT step after this hook.

So each such bridge gets one base chain, ``b-<bridge>-guard`` (filter,
prerouting, priority raw: before conntrack, so a flood of such packets does
not fill the connection table either), dropping from that bridge every
packet to or from 127.0.0.0/8 and ``::1``. The IPv6 rules only repeat what
the kernel already does (it never accepts ``::1`` from a wire); they cost
nothing and keep the guard whole should that change. ``enable_route_localnet``
installs the guard before it sets the sysctl.
"""

from __future__ import annotations

import os
import re

from lxcri_core.errors import NetworkError
from lxcri_core.network.ports import DEFAULT_TABLE

# The Proxmox hookscript's post-start imports this module at every start: the
# interface-name check and the sysctl writer live here, not in bridge (which
# imports dataclasses and pathlib); bridge re-exports them.
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from lxcri_core.network.command import Runner

_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def check_ifname(name: str) -> str:
    """Return ``name`` if it is a valid interface name, else raise NetworkError."""
    if not _IFNAME.fullmatch(name):
        raise NetworkError(
            f"bridge name {name!r} is invalid: use at most 15 letters, digits, '_', '.', '-'"
        )
    return name


def set_sysctl(key: str, value: str, root: str | Path = "/proc/sys") -> None:
    """Write a sysctl (``net/ipv4/ip_forward``) unless it already holds ``value``."""
    path = os.path.join(root, key)
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value + "\n")
    except OSError as e:
        raise NetworkError(
            f"cannot set sysctl {key.replace('/', '.')}={value}: {e.strerror}"
        ) from None


def route_localnet_sysctl(dev: str) -> None:
    """``route_localnet=1`` on ``dev``: only once its guard is in (``guard_ruleset``)."""
    set_sysctl(f"net/ipv4/conf/{check_ifname(dev)}/route_localnet", "1")


#: nftables' "raw" priority: before conntrack (-200) and DNAT (-100).
GUARD_PRIORITY = -300

_LOOPBACK = (
    ("ip", {"prefix": {"addr": "127.0.0.0", "len": 8}}),
    ("ip6", "::1"),
)


def guard_chain(bridge: str) -> str:
    """The chain that drops loopback-addressed packets arriving on ``bridge``."""
    return f"b-{check_ifname(bridge)}-guard"


def _chain(bridge: str, table: str) -> dict[str, Any]:
    return {
        "family": "inet",
        "table": table,
        "name": guard_chain(bridge),
        "type": "filter",
        "hook": "prerouting",
        "prio": GUARD_PRIORITY,
        "policy": "accept",
    }


def guard_ruleset(bridge: str, table: str = DEFAULT_TABLE) -> dict[str, Any]:
    """JSON ruleset: (re)create ``bridge``'s guard chain with its four drop rules (pure)."""
    chain = _chain(bridge, table)
    ref = {k: chain[k] for k in ("family", "table", "name")}
    cmds: list[dict[str, Any]] = [
        {"add": {"table": {"family": "inet", "name": table}}},
        {"add": {"chain": chain}},
        {"flush": {"chain": ref}},
    ]
    iif = {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": bridge}}
    for proto, loopback in _LOOPBACK:
        for field in ("daddr", "saddr"):
            addr = {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": proto, "field": field}},
                    "right": loopback,
                }
            }
            rule = {
                "family": "inet",
                "table": table,
                "chain": ref["name"],
                "expr": [iif, addr, {"counter": None}, {"drop": None}],
            }
            cmds.append({"add": {"rule": rule}})
    return {"nftables": cmds}


def _rule_key(expr: list[Any]) -> str:
    """A rule's expressions as text, its counter's values left out."""
    import json

    return json.dumps([e for e in expr if "counter" not in e], sort_keys=True)


def guard_in_place(listing: dict[str, Any], bridge: str, table: str = DEFAULT_TABLE) -> bool:
    """Whether ``listing`` (``nft -j list chain inet TABLE b-BRIDGE-guard``) shows the
    guard exactly as ``guard_ruleset`` makes it: the chain's type, hook, priority and
    policy, and its drop rules, no more, no fewer (pure)."""
    want = guard_ruleset(bridge, table)["nftables"]
    chain = _chain(bridge, table)
    rules = sorted(_rule_key(c["add"]["rule"]["expr"]) for c in want if "rule" in c.get("add", {}))
    seen_chain = False
    have: list[str] = []
    for item in listing.get("nftables", []):
        if not isinstance(item, dict):
            continue
        if "chain" in item:
            c = item["chain"]
            seen_chain = all(c.get(k) == chain[k] for k in chain)
        elif "rule" in item:
            have.append(_rule_key(item["rule"].get("expr", [])))
    return seen_chain and sorted(have) == rules


def guard_commands(bridge: str, table: str = DEFAULT_TABLE, run: Runner | None = None) -> list[Any]:
    """The nft commands that put ``bridge``'s guard in place: none when it is already
    (a hooked chain's rules replaced cost the kernel ~15 ms at every CT start)."""
    import json

    from lxcri_core.network.command import run_cmd

    res = (run or run_cmd)(["nft", "-j", "list", "chain", "inet", table, guard_chain(bridge)])
    try:
        if res.returncode == 0 and guard_in_place(json.loads(res.stdout), bridge, table):
            return []
    except (ValueError, AttributeError, TypeError, KeyError):
        pass  # not what nft lists: put the guard in again
    return list(guard_ruleset(bridge, table)["nftables"])


def drop_guard_ruleset(bridge: str, table: str = DEFAULT_TABLE) -> dict[str, Any]:
    """JSON ruleset that removes ``bridge``'s guard chain; idempotent (pure)."""
    chain = _chain(bridge, table)
    return {
        "nftables": [
            {"add": {"table": {"family": "inet", "name": table}}},
            {"add": {"chain": chain}},
            {"delete": {"chain": {k: chain[k] for k in ("family", "table", "name")}}},
        ]
    }
