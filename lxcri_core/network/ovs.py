"""Open vSwitch: bridges, ports, VLAN tags and trunks, read and set through ``ovs-vsctl``.

The read is one ``ovs-vsctl --format=json`` call listing the Bridge, Port and
Interface tables (``OVS_LIST``), parsed by the pure ``parse_ovs``. The
writes are argv builders (``port_vlan_cmd``): every name and number is
checked before it reaches ``ovs-vsctl``, which runs without a shell.

Which database: ``ovs-vsctl``'s default (``$OVS_RUNDIR/db.sock``, else
``/run/openvswitch/db.sock``); LXC's own ``ovs-vsctl add-port`` for
``lxc.net.N.link=<ovs bridge>`` uses the same.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxcri_core.errors import NetworkError
from lxcri_core.network.command import Runner, checked, json_lines, run_cmd

VSCTL = ["ovs-vsctl", "--timeout=10"]

#: One read of every bridge, port and interface (three JSON documents, one per line).
OVS_LIST = [
    *VSCTL,
    "--format=json",
    "--",
    "--columns=_uuid,name,ports,datapath_type",
    "list",
    "Bridge",
    "--",
    "--columns=_uuid,name,interfaces,tag,trunks,vlan_mode",
    "list",
    "Port",
    "--",
    "--columns=_uuid,name,type,ofport,mtu,ifindex,link_state,ingress_policing_rate",
    "list",
    "Interface",
]

_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
#: an 802.1Q VLAN id a port may carry
VLAN_MIN, VLAN_MAX = 1, 4094


@dataclass(frozen=True)
class OvsInterface:
    name: str
    #: "" (a system device such as a veth), "internal", "patch", ...
    type: str
    ofport: int | None
    mtu: int | None
    ifindex: int | None
    link_state: str
    #: kbit/s, 0 for none
    ingress_policing_rate: int


@dataclass(frozen=True)
class OvsPort:
    name: str
    #: the access VLAN (None: untagged, or a trunk)
    tag: int | None
    #: the VLANs a trunk port carries (empty: all of them when untagged)
    trunks: tuple[int, ...]
    vlan_mode: str | None
    interfaces: tuple[OvsInterface, ...]


@dataclass(frozen=True)
class OvsBridge:
    name: str
    datapath_type: str
    ports: tuple[OvsPort, ...]


def check_name(name: str, what: str = "interface") -> str:
    """``name`` if it can be an interface/bridge name (IFNAMSIZ, no '/', no option), else raise."""
    if not _IFNAME.fullmatch(name) or name.startswith("-") or name in (".", ".."):
        raise NetworkError(
            f"{what} name {name!r} is invalid: use at most 15 letters, digits, '_', '.', '-'"
        )
    return name


def check_vlan(vlan: int, what: str = "tag") -> int:
    if not VLAN_MIN <= vlan <= VLAN_MAX:
        raise NetworkError(f"{what}={vlan}: a VLAN id is {VLAN_MIN}..{VLAN_MAX}")
    return vlan


def parse_trunks(text: str) -> tuple[int, ...]:
    """pct's ``trunks=10;20;30`` (``;`` or ``,`` or spaces) as sorted unique VLAN ids."""
    parts = [p for p in re.split(r"[;,\s]+", text.strip()) if p]
    if not parts:
        raise NetworkError(f"trunks={text!r}: give VLAN ids separated by ';'")
    out: set[int] = set()
    for p in parts:
        if not p.isdigit() or len(p) > 4:
            raise NetworkError(f"trunks={text!r}: {p!r} is no VLAN id")
        out.add(check_vlan(int(p), "trunks"))
    return tuple(sorted(out))


def port_vlan_cmd(port: str, tag: int | None, trunks: Iterable[int] = ()) -> list[str]:
    """``ovs-vsctl`` argv setting ``port``'s access tag and trunks (empty values clear them)."""
    check_name(port, "port")
    trunk_ids = sorted({check_vlan(t, "trunks") for t in trunks})
    tag_v = str(check_vlan(tag)) if tag is not None else "[]"
    trunks_v = "[" + ",".join(str(t) for t in trunk_ids) + "]"
    return [*VSCTL, "--", "set", "Port", port, f"tag={tag_v}", f"trunks={trunks_v}"]


def bridge_exists_cmd(bridge: str) -> list[str]:
    """``ovs-vsctl br-exists``: exit 0 when ``bridge`` is an OVS bridge, 2 when not."""
    return [*VSCTL, "br-exists", check_name(bridge, "bridge")]


def is_ovs_bridge(bridge: str, run: Runner = run_cmd) -> bool:
    """Whether ``bridge`` is an Open vSwitch bridge (False when OVS is absent or not running)."""
    try:
        return run(bridge_exists_cmd(bridge), None).returncode == 0
    except NetworkError:  # ovs-vsctl not installed
        return False


def set_port_vlan(
    port: str, tag: int | None, trunks: Iterable[int] = (), run: Runner = run_cmd
) -> None:
    checked(run(port_vlan_cmd(port, tag, trunks), None), f"setting VLANs of OVS port {port}")


# --- the read ---------------------------------------------------------------------


def _atom(v: Any) -> Any:
    """An OVSDB JSON value as Python: uuid -> str, set -> list, map -> dict."""
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
        tag, body = v
        if tag == "uuid" or tag == "named-uuid":
            return str(body)
        if tag == "set":
            return [_atom(x) for x in body]
        if tag == "map":
            return {str(_atom(k)): _atom(x) for k, x in body}
    return v


def _one(v: Any) -> Any:
    """An optional column ("set" of zero or one) as the value or None."""
    if isinstance(v, list):
        return v[0] if v else None
    return v


def _int(v: Any) -> int | None:
    v = _one(v)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _table(doc: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("headings"), list):
        raise NetworkError(f"ovs-vsctl {what} listing is not a table")
    heads = [str(h) for h in doc["headings"]]
    rows = doc.get("data") or []
    return [dict(zip(heads, (_atom(c) for c in row), strict=False)) for row in rows]


def parse_ovs(text: str) -> list[OvsBridge]:
    """Parse ``OVS_LIST``'s output (Bridge, Port, Interface tables) into bridges, by name."""
    try:
        return _parse_ovs(text)
    except (KeyError, TypeError, ValueError) as e:
        raise NetworkError(f"ovs-vsctl output of unexpected form: {e!r}") from None


def _parse_ovs(text: str) -> list[OvsBridge]:
    docs = json_lines(text, "ovs-vsctl output")
    if len(docs) != 3:
        raise NetworkError(f"ovs-vsctl printed {len(docs)} tables, expected 3")
    bridges, ports, ifaces = (
        _table(d, w) for d, w in zip(docs, ("Bridge", "Port", "Interface"), strict=True)
    )
    iface_by = {
        r["_uuid"]: OvsInterface(
            name=str(r.get("name", "")),
            type=str(r.get("type", "")),
            ofport=_int(r.get("ofport")),
            mtu=_int(r.get("mtu")),
            ifindex=_int(r.get("ifindex")),
            link_state=str(_one(r.get("link_state")) or ""),
            ingress_policing_rate=_int(r.get("ingress_policing_rate")) or 0,
        )
        for r in ifaces
    }
    port_by = {}
    for r in ports:
        members = r.get("interfaces")
        ids = members if isinstance(members, list) else [members]
        trunks = r.get("trunks")
        port_by[r["_uuid"]] = OvsPort(
            name=str(r.get("name", "")),
            tag=_int(r.get("tag")),
            trunks=tuple(
                sorted(
                    t
                    for t in (trunks if isinstance(trunks, list) else [trunks])
                    if isinstance(t, int)
                )
            ),
            vlan_mode=_one(r.get("vlan_mode")),
            interfaces=tuple(
                sorted((iface_by[i] for i in ids if i in iface_by), key=lambda i: i.name)
            ),
        )
    out = []
    for r in bridges:
        members = r.get("ports")
        ids = members if isinstance(members, list) else [members]
        out.append(
            OvsBridge(
                name=str(r.get("name", "")),
                datapath_type=str(r.get("datapath_type", "")),
                ports=tuple(
                    sorted((port_by[i] for i in ids if i in port_by), key=lambda p: p.name)
                ),
            )
        )
    return sorted(out, key=lambda b: b.name)


def read_ovs(run: Runner = run_cmd) -> list[OvsBridge]:
    """Every OVS bridge now; raises NetworkError when ovs-vsctl is missing or OVS is down."""
    return parse_ovs(checked(run(OVS_LIST, None), "listing Open vSwitch bridges"))
