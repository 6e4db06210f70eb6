"""Published ports (``-p HOST:CTR``): nftables DNAT in one lxcri-owned table.

Layout. Everything lives in ``table inet lxcri`` (``table=`` to override, the
tests use their own). Each container owns exactly three base chains, named
after its id, and nothing else::

    chain c-<id>-pre   nat prerouting  dstnat   traffic from outside and from other containers
    chain c-<id>-out   nat output      -100     traffic the host itself sends (127.0.0.1, own IPs)
    chain c-<id>-post  nat postrouting srcnat   masquerade for host-local and hairpin clients

Because a container's rules are whole chains, ``unpublish`` is one
transaction that deletes those chains; it cannot touch another container's
rules and needs no rule handles. Every operation is ONE ``nft -j -f -`` call
with a JSON ruleset built by pure functions (``publish_ruleset``,
``unpublish_ruleset``), so the start hook stays fast.

Reaching a port from the host itself needs three things, all handled here or
by ``bridge.ensure_bridge``: DNAT in the ``output`` hook (locally generated
packets never see prerouting); ``route_localnet=1`` on the bridge so a packet
with source 127.0.0.1 may be routed out of it (behind the guard in
``localnet``, which keeps containers off the host's loopback); and masquerade of DNATed
connections whose source is a local address, so the container answers to
the gateway instead of to an address it would consider its own loopback.
IPv6 ``::1`` cannot be DNATed to another host by the kernel at all, so
``[::1]:PORT`` is not published; use the host's IPv6 addresses instead.

Clients from outside keep their source address (no masquerade), like Docker.
A host port a host socket listens on is refused (see ``listeners``), as is
one another container publishes; ``0.0.0.0`` and ``::`` as the host address
mean every address of that family.
"""

from __future__ import annotations

import json
import re

from lxcri_core.errors import NetworkError
from lxcri_core.ids import check_id
from lxcri_core.log import get_logger
from lxcri_core.network.command import checked, run_cmd

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)

# The start/stop hooks import this module at every run: no dataclasses here and
# spec.model (dataclasses: ~13 ms) only where a PortMapping is made.
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
    from typing import Any, Literal

    from lxcri_core.network.command import Runner
    from lxcri_core.network.listeners import Listener
    from lxcri_core.spec.model import PortMapping

log = get_logger(__name__)

#: The nftables table (family ``inet``) lxcri owns; nothing else writes to it.
DEFAULT_TABLE = "lxcri"

if TYPE_CHECKING:
    Proto = Literal["tcp", "udp"]
else:  # the names exist at run time too (importers), without importing typing
    Proto = str
if TYPE_CHECKING:  # ipaddress only where addresses are made: unpublish needs none
    IPAddress = IPv4Address | IPv6Address

_CHAIN = re.compile(r"c-(?P<id>.+)-(?P<kind>pre|out|post)")

#: (suffix, hook, priority) of the chains each container owns.
CHAINS: tuple[tuple[str, str, int], ...] = (
    ("pre", "prerouting", -100),
    ("out", "output", -100),
    ("post", "postrouting", 100),
)


class PublishedPort:
    """A port found in the live ruleset (see ``list_published``); immutable."""

    __slots__ = ("container_id", "container_ip", "mapping")
    container_id: str
    mapping: PortMapping
    container_ip: IPAddress

    def __init__(self, container_id: str, mapping: PortMapping, container_ip: IPAddress) -> None:
        object.__setattr__(self, "container_id", container_id)
        object.__setattr__(self, "mapping", mapping)
        object.__setattr__(self, "container_ip", container_ip)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"PublishedPort is immutable (cannot set {key})")

    def _key(self) -> tuple[str, PortMapping, IPAddress]:
        return (self.container_id, self.mapping, self.container_ip)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublishedPort) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"PublishedPort(container_id={self.container_id!r}, mapping={self.mapping!r}, "
            f"container_ip={self.container_ip!r})"
        )


class RecordPort:
    """A ``-p`` mapping as the container record stores it (PortMapping's fields, names and
    text), for the hooks: reading it needs no spec.model. Equal to the PortMapping of the
    same fields; the network layer takes either."""

    __slots__ = ("container_port", "host_ip", "host_port", "protocol")
    container_port: int
    host_port: int
    protocol: Proto
    host_ip: str

    def __init__(
        self, container_port: int, host_port: int = 0, protocol: Proto = "tcp", host_ip: str = ""
    ) -> None:
        object.__setattr__(self, "container_port", container_port)
        object.__setattr__(self, "host_port", host_port)
        object.__setattr__(self, "protocol", protocol)
        object.__setattr__(self, "host_ip", host_ip)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RecordPort:
        """One entry of a record's ``spec.ports`` (the keys are PortMapping's fields)."""
        return cls(
            container_port=int(d["container_port"]),
            host_port=int(d["host_port"]),
            protocol="udp" if d.get("protocol") == "udp" else "tcp",
            host_ip=d.get("host_ip") or "",
        )

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"RecordPort is immutable (cannot set {key})")

    @property
    def address(self) -> IPv4Address | IPv6Address | None:
        if not self.host_ip:
            return None
        from ipaddress import ip_address

        return ip_address(self.host_ip)

    def _key(self) -> tuple[int, int, str, str]:
        return (self.container_port, self.host_port, self.protocol, self.host_ip)

    def __eq__(self, other: object) -> bool:
        try:
            theirs = (other.container_port, other.host_port, other.protocol, other.host_ip)  # type: ignore[attr-defined]
        except AttributeError:
            return NotImplemented
        return self._key() == theirs

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            "RecordPort(container_port={!r}, host_port={!r}, protocol={!r}, host_ip={!r})".format(
                *self._key()
            )
        )

    def __str__(self) -> str:
        """PortMapping's text: ``[IP:]HOST:CTR/PROTO`` (IPv6 in brackets)."""
        h = self.host_ip
        ip = f"[{h}]:" if ":" in h else f"{h}:" if h else ""
        return f"{ip}{self.host_port}:{self.container_port}/{self.protocol}"


if TYPE_CHECKING:
    #: What the rulesets take: the spec's PortMapping or a record's RecordPort.
    AnyPort = PortMapping | RecordPort


def check_container_id(container_id: str) -> str:
    """Return ``container_id`` if it can name nftables chains (the one id rule), else raise."""
    return check_id(container_id, "container id", NetworkError)


def chain_name(container_id: str, kind: str) -> str:
    """The chain of ``kind`` (pre, out, post) that holds ``container_id``'s rules."""
    return f"c-{check_container_id(container_id)}-{kind}"


# --- JSON ruleset builders (pure) -------------------------------------------


def _match(left: Any, right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _fib_local(which: str) -> dict[str, Any]:
    return _match({"fib": {"result": "type", "flags": [which]}}, "local")


def _fam(addr: IPAddress) -> tuple[str, str]:
    """(nfproto, payload protocol) of an address: ("ipv4", "ip") or ("ipv6", "ip6")."""
    return ("ipv4", "ip") if addr.version == 4 else ("ipv6", "ip6")


def _table_cmds(table: str) -> list[dict[str, Any]]:
    return [{"add": {"table": {"family": "inet", "name": table}}}]


def _chain(table: str, name: str, hook: str, prio: int) -> dict[str, Any]:
    return {
        "family": "inet",
        "table": table,
        "name": name,
        "type": "nat",
        "hook": hook,
        "prio": prio,
        "policy": "accept",
    }


def _rule(table: str, chain: str, expr: list[dict[str, Any]], comment: str) -> dict[str, Any]:
    return {
        "add": {
            "rule": {
                "family": "inet",
                "table": table,
                "chain": chain,
                "expr": expr,
                "comment": comment,
            }
        }
    }


def unpublish_ruleset(container_id: str, table: str = DEFAULT_TABLE) -> dict[str, Any]:
    """The JSON ruleset that removes every rule of ``container_id``.

    nft 1.0.6 has no ``destroy``; ``add chain`` first makes the ``delete``
    succeed when the chain is missing, so the whole batch is idempotent.
    """
    cmds = _table_cmds(table)
    for kind, hook, prio in CHAINS:
        chain = _chain(table, chain_name(container_id, kind), hook, prio)
        cmds.append({"add": {"chain": chain}})
        cmds.append({"delete": {"chain": {k: chain[k] for k in ("family", "table", "name")}}})
    return {"nftables": cmds}


def publish_ruleset(
    container_id: str,
    ports: Sequence[AnyPort],
    ipv4: IPv4Interface | IPv4Address | None,
    ipv6: IPv6Interface | IPv6Address | None = None,
    table: str = DEFAULT_TABLE,
) -> dict[str, Any]:
    """The JSON ruleset that makes ``ports`` of ``container_id`` (and only those) live.

    ``ipv4``/``ipv6`` are the container's addresses; given as interfaces
    (address with prefix) they also enable hairpin NAT for clients in the same
    subnet. A mapping without a host IP is published for each family the
    container has; one with a host IP only for that family.
    """
    if not ports:
        return unpublish_ruleset(container_id, table)
    from ipaddress import IPv4Interface, IPv6Interface

    targets: dict[int, tuple[IPAddress, IPv4Interface | IPv6Interface | None]] = {}
    for a in (ipv4, ipv6):
        if a is None:
            continue
        if isinstance(a, IPv4Interface | IPv6Interface):
            targets[a.version] = (a.ip, a)
        else:
            targets[a.version] = (a, None)
    if not targets:
        raise NetworkError(
            f"container {container_id} has no IPv4 or IPv6 address; ports can only be "
            "published for a container on a bridge (not --network none)"
        )
    seen: set[tuple[str, int, IPAddress | None]] = set()
    for m in ports:
        if not 1 <= m.host_port <= 65535 or not 1 <= m.container_port <= 65535:
            # host port 0 (-p 80) is create's to choose; it never reaches a rule
            raise NetworkError(f"container {container_id}: -p {m} needs ports from 1 to 65535")
        key = (m.protocol, m.host_port, m.address)
        if key in seen:
            raise NetworkError(f"container {container_id}: port {m} is published twice")
        seen.add(key)
        host_ip = m.address
        if host_ip is not None and host_ip.version not in targets:
            raise NetworkError(
                f"container {container_id}: -p {m} binds an IPv{host_ip.version} host "
                f"address but the container has no IPv{host_ip.version} address"
            )
    cmds = _table_cmds(table)
    names = {kind: chain_name(container_id, kind) for kind, _, _ in CHAINS}
    for kind, hook, prio in CHAINS:
        chain = _chain(table, names[kind], hook, prio)
        cmds.append({"add": {"chain": chain}})
        cmds.append({"flush": {"chain": {k: chain[k] for k in ("family", "table", "name")}}})
    comment = f"lxcri {container_id}"
    for m in ports:
        host_ip = m.address
        for version, (addr, _) in sorted(targets.items()):
            if host_ip is not None and host_ip.version != version:
                continue
            nfproto, proto = _fam(addr)
            dest: list[dict[str, Any]] = [_match({"meta": {"key": "nfproto"}}, nfproto)]
            if host_ip is not None and not host_ip.is_unspecified:
                dest.append(_match(_payload(proto, "daddr"), str(host_ip)))
            else:  # every address (0.0.0.0 and :: too: all of their family, as in docker)
                dest.append(_fib_local("daddr"))
                if version == 6:
                    # The kernel refuses to route ::1 anywhere; leave it to the host.
                    dest.append(_match(_payload("ip6", "daddr"), "::1", op="!="))
            dnat = [
                _match(_payload(m.protocol, "dport"), m.host_port),
                {"dnat": {"family": proto, "addr": str(addr), "port": m.container_port}},
            ]
            for kind in ("pre", "out"):
                cmds.append(_rule(table, names[kind], [*dest, *dnat], comment))
    for _, (addr, iface) in sorted(targets.items()):
        nfproto, proto = _fam(addr)
        to_ctr = [
            _match({"meta": {"key": "nfproto"}}, nfproto),
            _match(_payload(proto, "daddr"), str(addr)),
            _match({"ct": {"key": "status"}}, "dnat", op="in"),
        ]
        # Clients on the host itself (127.0.0.1, the host's own addresses).
        cmds.append(_rule(table, names["post"], [*to_ctr, _fib_local("saddr"), _masq()], comment))
        if iface is not None and iface.network.prefixlen < iface.max_prefixlen:
            # Hairpin: a container reaching a published port of its own subnet
            # would get the answer straight from the peer, not via the DNAT.
            net = {
                "prefix": {
                    "addr": str(iface.network.network_address),
                    "len": iface.network.prefixlen,
                }
            }
            cmds.append(
                _rule(
                    table,
                    names["post"],
                    [*to_ctr, _match(_payload(proto, "saddr"), net), _masq()],
                    comment,
                )
            )
    return {"nftables": cmds}


def _masq() -> dict[str, Any]:
    return {"masquerade": None}


# --- applying and reading -----------------------------------------------------


def nft_apply(ruleset: dict[str, Any], what: str, run: Runner = run_cmd) -> None:
    """Apply a JSON ruleset atomically with one ``nft -j -f -`` call."""
    checked(run(["nft", "-j", "-f", "-"], json.dumps(ruleset)), what)


def nft_list_table_cmd(table: str = DEFAULT_TABLE) -> list[str]:
    """The read-only command whose output ``parse_published`` understands."""
    return ["nft", "-j", "list", "table", "inet", table]


def publish(
    container_id: str,
    ports: Sequence[AnyPort],
    ipv4: IPv4Interface | IPv4Address | None,
    ipv6: IPv6Interface | IPv6Address | None = None,
    *,
    table: str = DEFAULT_TABLE,
    check_conflicts: bool = True,
    listeners: Sequence[Listener] | None = None,
    run: Runner = run_cmd,
    name_of: Callable[[str], str] | None = None,
    before: Sequence[dict[str, Any]] = (),
) -> None:
    """Make exactly ``ports`` of ``container_id`` live, replacing what it had.

    ``before``: nft commands applied in the same transaction, ahead of the
    ports' (the Proxmox hookscript's loopback guard of the bridge: one
    transaction instead of two).

    Called by the start hook. With ``check_conflicts`` the other containers'
    chains are read first (``_other_rules``) and a host port already published by
    another container, or one a host socket listens on (``listeners``, read
    from /proc/net when None), is refused instead of silently shadowed;
    ``name_of`` turns that container's id into the name people know it by.
    """
    ruleset = publish_ruleset(container_id, ports, ipv4, ipv6, table)
    if before:
        ruleset = {"nftables": [*before, *ruleset["nftables"]]}
    if check_conflicts and ports:
        taken: dict[tuple[str, int], list[_Rule]] = {}
        for r in _other_rules(table, run):
            if r.container_id != container_id:
                taken.setdefault((r.proto, r.host_port), []).append(r)
        for m in ports:
            for other in taken.get((m.protocol, m.host_port), []):
                if _overlaps(m.address, other.host_ip, other.container_ip):
                    who = name_of(other.container_id) if name_of else other.container_id
                    raise NetworkError(
                        f"host port {m.host_port}/{m.protocol} is already published by container "
                        f"{who}; choose another host port or stop that container"
                    )
        # a host service on the port would be taken over silently (for outside
        # clients and the host itself): refuse, as docker's bind would fail
        from lxcri_core.network.listeners import refuse_in_use

        refuse_in_use(ports, listeners)
    nft_apply(ruleset, f"publishing ports {', '.join(map(str, ports))} of {container_id}", run)
    log.info("ports published", container=container_id, ports=[str(p) for p in ports])


def _overlaps(mine: IPAddress | None, host_ip: IPAddress | None, container_ip: IPAddress) -> bool:
    """Whether ``mine`` would catch traffic a rule for ``host_ip`` (None: every address)
    to ``container_ip`` already forwards."""
    if mine is None:
        return True
    # a rule without an address forwards every address of its container's family
    from ipaddress import ip_address

    theirs = host_ip or ip_address("::" if container_ip.version == 6 else "0.0.0.0")
    if mine.version != theirs.version:
        return False
    return mine.is_unspecified or theirs.is_unspecified or mine == theirs


def unpublish(container_id: str, *, table: str = DEFAULT_TABLE, run: Runner = run_cmd) -> None:
    """Remove every published port of ``container_id``; no error when none are there.

    Needs nothing from the container (its init may be long dead): the rules
    are found by the container id alone.
    """
    nft_apply(unpublish_ruleset(container_id, table), f"unpublishing ports of {container_id}", run)
    log.info("ports unpublished", container=container_id)


def list_published(*, table: str = DEFAULT_TABLE, run: Runner = run_cmd) -> list[PublishedPort]:
    """Every port published in ``table`` now (an empty list when there is no table)."""
    return [_published_port(r) for r in _published_rules(table, run)]


#: Up to this many containers' ``pre`` chains, the conflict check lists them one by one.
LIST_CHAINS_MAX = 32


def _other_rules(table: str, run: Runner) -> list[_Rule]:
    """The rules the start hook's conflict check needs: those of the ``pre`` chains.

    Listing the whole table makes nft fetch and print every chain's rules (the
    out/post chains, every bridge's chains: 20 ms and more on a busy host); the
    chain names, then each ``pre`` chain, cost a few. A chain that is gone when
    its turn comes was unpublished meanwhile: nothing of it can clash. Many
    containers, or a listing nft will not give: the whole table, as before.
    """
    res = run(["nft", "-j", "list", "chains", "inet"], None)
    names: list[str] | None = None
    if res.returncode == 0:
        try:
            names = [
                item["chain"]["name"]
                for item in json.loads(res.stdout).get("nftables", [])
                if isinstance(item, dict)
                and "chain" in item
                and item["chain"].get("table") == table
            ]
        except (ValueError, AttributeError, KeyError, TypeError):
            names = None
    if names is None:
        return _published_rules(table, run)
    pre = [n for n in names if (m := _CHAIN.fullmatch(n)) and m["kind"] == "pre"]
    if len(pre) > LIST_CHAINS_MAX:
        return _published_rules(table, run)
    found: list[_Rule] = []
    for name in pre:
        one = run(["nft", "-j", "list", "chain", "inet", table, name], None)
        if one.returncode != 0 and "No such file or directory" in one.stderr:
            continue
        found += _parse_rules(checked(one, f"listing nftables chain {name} of inet {table}"))
    return found


def _published_rules(table: str, run: Runner) -> list[_Rule]:
    result = run(nft_list_table_cmd(table), None)
    if result.returncode != 0 and "No such file or directory" in result.stderr:
        return []
    return _parse_rules(checked(result, f"listing nftables table inet {table}"))


def parse_published(text: str) -> list[PublishedPort]:
    """Parse ``nft -j list table inet TABLE`` into the ports it publishes.

    Only ``c-<id>-pre`` chains are read (the ``out`` chains mirror them).
    """
    return [_published_port(r) for r in _parse_rules(text)]


class _Rule:
    """One DNAT rule of a ``pre`` chain, as parsed (the hook's conflict check needs no
    PortMapping, so no spec.model)."""

    __slots__ = ("container_id", "container_ip", "container_port", "host_ip", "host_port", "proto")

    def __init__(
        self,
        container_id: str,
        proto: Proto,
        host_port: int,
        host_ip: IPAddress | None,
        container_port: int,
        container_ip: IPAddress,
    ) -> None:
        self.container_id, self.proto, self.host_port = container_id, proto, host_port
        self.host_ip, self.container_port, self.container_ip = host_ip, container_port, container_ip


def _published_port(r: _Rule) -> PublishedPort:
    from lxcri_core.spec.model import PortMapping

    mapping = PortMapping(
        r.container_port, r.host_port, r.proto, str(r.host_ip) if r.host_ip is not None else ""
    )
    return PublishedPort(r.container_id, mapping, r.container_ip)


def _parse_rules(text: str) -> list[_Rule]:
    data = json.loads(text)
    return list(_rules(data))


def _rules(data: dict[str, Any]) -> Iterator[_Rule]:
    for item in data.get("nftables", []):
        rule = item.get("rule") if isinstance(item, dict) else None
        if not rule:
            continue
        m = _CHAIN.fullmatch(rule.get("chain", ""))
        if not m or m["kind"] != "pre":
            continue
        found = _parse_rule(m["id"], rule.get("expr", []))
        if found is not None:
            yield found


def _parse_rule(container_id: str, exprs: Iterable[Any]) -> _Rule | None:
    from ipaddress import ip_address

    host_ip: IPAddress | None = None
    proto: str | None = None
    host_port: int | None = None
    dnat: dict[str, Any] | None = None
    for e in exprs:
        if "dnat" in e:
            dnat = e["dnat"]
            continue
        match = e.get("match")
        if not match or match.get("op") != "==":
            continue
        payload = (
            match.get("left", {}).get("payload") if isinstance(match.get("left"), dict) else None
        )
        if not payload:
            continue
        if payload.get("field") == "daddr" and isinstance(match.get("right"), str):
            host_ip = ip_address(match["right"])
        elif payload.get("field") == "dport" and payload.get("protocol") in ("tcp", "udp"):
            proto = payload["protocol"]
            host_port = int(match["right"])
    if dnat is None or proto is None or host_port is None or "addr" not in dnat:
        return None
    return _Rule(
        container_id,
        "udp" if proto == "udp" else "tcp",
        host_port,
        host_ip,
        int(dnat.get("port", host_port)),
        ip_address(dnat["addr"]),
    )
