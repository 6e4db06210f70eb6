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

from typing import Any

from lxcri_core.network.bridge import check_ifname
from lxcri_core.network.ports import DEFAULT_TABLE

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
