"""``python -m lxcri_core.network.nsdump PID...``: every container's links, addresses and
routes in ONE process, for ``inspect-network`` (``ctnet.ct_nets_cmd``).

For each PID the thread enters the network namespace of that process, opens a
netlink socket there (a socket stays in the namespace it was made in), comes
back and dumps through it; so no process per container. The output is what
``ctnet.parse_ct_nets`` reads: per PID a line ``{"pid": N}`` (or ``{"pid": N,
"error": "..."}``) followed by two lines shaped as ``ip -j -d addr show`` and
``ip -j -d route show table all`` print them (the main table only).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
from typing import Any

_CLONE_NEWNET = 0x40000000
_RT_TABLE_MAIN = 254
_PROTOS = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp"}
_SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _ipr_in(pid: int) -> Any:
    """An IPRoute whose socket lives in the netns of ``pid``; this thread is back home after."""
    from pyroute2 import IPRoute

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                return IPRoute()
            finally:
                _setns(home)
        finally:
            os.close(target)
    finally:
        os.close(home)


def _links(ipr: Any) -> list[dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for m in ipr.get_links():
        link: dict[str, Any] = {"ifindex": m["index"], "ifname": m.get_attr("IFLA_IFNAME")}
        peer = m.get_attr("IFLA_LINK")
        if peer is not None and peer != m["index"]:
            link["link_index"] = peer
        nsid = m.get_attr("IFLA_LINK_NETNSID")
        if nsid is not None:
            link["link_netnsid"] = nsid
        link["mtu"] = m.get_attr("IFLA_MTU")
        state = m.get_attr("IFLA_OPERSTATE")
        link["operstate"] = state if isinstance(state, str) else _OPERSTATES[state or 0]
        link["address"] = m.get_attr("IFLA_ADDRESS") or ""
        info = m.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        if kind:
            link["linkinfo"] = {"info_kind": kind}
        link["addr_info"] = []
        out[m["index"]] = link
    for a in ipr.get_addr():
        owner = out.get(a["index"])
        local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
        if owner is None or local is None:
            continue
        fam = "inet" if a["family"] == socket.AF_INET else "inet6"
        owner["addr_info"].append({"family": fam, "local": local, "prefixlen": a["prefixlen"]})
    return list(out.values())


def _routes(ipr: Any, names: dict[int, str]) -> list[dict[str, Any]]:
    out = []
    for family, full in ((socket.AF_INET, 32), (socket.AF_INET6, 128)):
        for r in ipr.get_routes(family=family):
            table = r.get_attr("RTA_TABLE") or r["table"]
            if table != _RT_TABLE_MAIN or r["type"] != 1:  # unicast routes of main
                continue
            dst = r.get_attr("RTA_DST")
            n = r["dst_len"]
            text = "default" if not n else (dst if n == full else f"{dst}/{n}")
            route: dict[str, Any] = {"dst": text, "table": "main"}
            gw = r.get_attr("RTA_GATEWAY")
            if gw:
                route["gateway"] = gw
            oif = r.get_attr("RTA_OIF")
            if oif is not None:
                route["dev"] = names.get(oif, f"if{oif}")
            route["protocol"] = _PROTOS.get(r["proto"], str(r["proto"]))
            route["scope"] = _SCOPES.get(r["scope"], str(r["scope"]))
            out.append(route)
    return out


def dump(pid: int) -> list[str]:
    """The three output lines for ``pid``."""
    ipr = _ipr_in(pid)
    try:
        links = _links(ipr)
        routes = _routes(ipr, {x["ifindex"]: x["ifname"] for x in links})
    finally:
        ipr.close()
    return [json.dumps({"pid": pid}), json.dumps(links), json.dumps(routes)]


def main(argv: list[str]) -> int:
    for arg in argv:
        if not arg.isdigit() or int(arg) <= 1:
            print(json.dumps({"pid": 0, "error": f"not a container's pid: {arg!r}"}))
            continue
        try:
            lines = dump(int(arg))
        except Exception as e:  # one container's trouble is its own line, not the refresh's
            print(json.dumps({"pid": int(arg), "error": f"{type(e).__name__}: {e}"}))
            continue
        print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
