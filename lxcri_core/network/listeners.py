"""Sockets the host listens on, and the host ports ``-p`` must therefore not take.

A published port is a DNAT rule, not a socket: nothing stops it from
shadowing sshd on 22 or pveproxy on 8006, for outside clients and for the
host itself. So before a port is published (at create and again in the
start hook: a service may have appeared in between) the host's listening
sockets are read from ``/proc/net/{tcp,tcp6,udp,udp6}`` and a clash is
refused with docker's words. Only the host's network namespace is read:
containers' own sockets live in theirs, and their published ports are
rules, so a restart never clashes with itself.

What counts as a listener: a TCP socket in LISTEN; a UDP socket bound and
not connected (a connected UDP socket is a client; its replies are not new
connections and never hit a DNAT rule).

What clashes (``covers``): a mapping for every address clashes with any
listener on its port; ``0.0.0.0``/``::`` with every listener of their family;
a listener on ``::`` with every mapping (it may be dual-stack, as pveproxy's
is, and /proc does not say); a listener on ``0.0.0.0`` with every IPv4
mapping; otherwise only the same address.
"""

from __future__ import annotations

import os
import sys
from ipaddress import IPv6Address, ip_address

from lxcri_core.errors import NetworkError
from lxcri_core.network.ports import list_published

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)

# The start hook checks listeners at every start: no dataclasses, socket or
# spec.model at import (free_host_port, run at create, imports what it needs).
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from lxcri_core.network.ports import AnyPort, IPAddress, Proto

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"  # TCP_CLOSE: bound, no peer
#: Files under /proc/net and the protocol each holds.
PROC_FILES: tuple[tuple[str, Proto], ...] = (
    ("tcp", "tcp"),
    ("tcp6", "tcp"),
    ("udp", "udp"),
    ("udp6", "udp"),
)


class Listener:
    """A host socket that accepts new connections (TCP) or datagrams (UDP); immutable."""

    __slots__ = ("address", "port", "proto")
    proto: Proto
    address: IPAddress
    port: int

    def __init__(self, proto: Proto, address: IPAddress, port: int) -> None:
        object.__setattr__(self, "proto", proto)
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "port", port)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Listener is immutable (cannot set {key})")

    def _key(self) -> tuple[str, IPAddress, int]:
        return (self.proto, self.address, self.port)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Listener) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Listener(proto={self.proto!r}, address={self.address!r}, port={self.port!r})"


def _address(hexaddr: str, byteorder: str) -> IPAddress:
    """Decode /proc/net's address: 32-bit words in the kernel's byte order."""
    raw = bytes.fromhex(hexaddr)
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return _packed(raw)


def _packed(raw: bytes) -> IPAddress:
    """An address from its network-order bytes (IPv4-mapped IPv6 as IPv4)."""
    addr = ip_address(raw)
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped  # a v6 socket bound to ::ffff:a.b.c.d serves IPv4 only
    return addr


def parse_proc_net(
    text: str,
    proto: Proto,
    byteorder: str = sys.byteorder,
    ports: frozenset[int] | None = None,
) -> list[Listener]:
    """The listeners in the text of ``/proc/net/tcp`` (or tcp6, udp, udp6) (pure);
    only those on ``ports`` when given (the start hook's check: fewer addresses decoded).

    Lines that do not parse are skipped: the file is the kernel's, and a
    format change must not stop every container from starting.
    """
    found: list[Listener] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        local, remote, state = fields[1], fields[2], fields[3]
        if proto == "tcp" and state != _TCP_LISTEN:
            continue
        if proto == "udp" and (state != _UDP_UNCONNECTED or not remote.endswith(":0000")):
            continue
        hexaddr, _, hexport = local.partition(":")
        try:
            port = int(hexport, 16)
            if ports is not None and port not in ports:
                continue
            found.append(Listener(proto, _address(hexaddr, byteorder), port))
        except ValueError:
            continue
    return found


def read_listeners(
    root: str | Path = "/proc/net",
    protos: Iterable[str] | None = None,
    ports: Iterable[int] | None = None,
) -> list[Listener]:
    """Every listening socket of this network namespace (no IPv6: no tcp6 file, skipped),
    or only those of ``protos`` on ``ports`` (files of other protocols are not read)."""
    want = {"tcp", "udp"} if protos is None else set(protos)
    on = None if ports is None else frozenset(ports)
    found: list[Listener] = []
    if "tcp" in want and os.fspath(root) == "/proc/net":
        # this namespace's own sockets: sock_diag (the kernel's /proc/net/tcp* walk every
        # connection: 5-20 ms at every start); the files where it is unavailable
        from lxcri_core.network.sockdiag import tcp_listeners

        tcp = tcp_listeners()
        if tcp is not None:
            want.discard("tcp")
            found += [
                Listener("tcp", _packed(raw), port)
                for _fam, raw, port in tcp
                if on is None or port in on
            ]
    for name, proto in PROC_FILES:
        if proto not in want:
            continue
        path = os.path.join(root, name)
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            continue
        except OSError as e:
            raise NetworkError(f"cannot read {path}: {e.strerror}") from None
        found += parse_proc_net(text, proto, ports=on)
    return found


def covers(host_ip: IPAddress | None, listener: IPAddress) -> bool:
    """Whether DNAT for ``host_ip`` (None: every address) catches traffic ``listener`` serves."""
    if host_ip is None or listener == IPv6Address("::"):
        return True
    if listener.is_unspecified or host_ip.is_unspecified:
        return listener.version == host_ip.version
    return listener == host_ip


def in_use(mapping: AnyPort, listeners: Iterable[Listener]) -> Listener | None:
    """The host listener that publishing ``mapping`` would take over, if any."""
    for lst in listeners:
        if (
            lst.proto == mapping.protocol
            and lst.port == mapping.host_port
            and covers(mapping.address, lst.address)
        ):
            return lst
    return None


def in_use_error(port: int, proto: str) -> NetworkError:
    """docker's words for a host port a host process holds."""
    return NetworkError(
        f"host port {port}/{proto} is already in use by a host process (address already in use)"
    )


def refuse_in_use(mappings: Iterable[AnyPort], listeners: Sequence[Listener] | None = None) -> None:
    """Raise ``in_use_error`` for the first mapping a host socket already serves
    (``listeners`` None: the host's, read for these mappings' protocols and ports)."""
    mappings = list(mappings)
    found = (
        read_listeners(protos={m.protocol for m in mappings}, ports={m.host_port for m in mappings})
        if listeners is None
        else listeners
    )
    for m in mappings:
        if in_use(m, found) is not None:
            raise in_use_error(m.host_port, m.protocol)


def free_host_port(
    proto: Proto, host_ip: IPAddress | None, taken: Iterable[int] = (), tries: int = 64
) -> int:
    """A host port for ``-p CTR`` (docker's random port): free for a bind, not listened on
    by any host socket of any family, and not in ``taken`` (ports other containers publish).

    The kernel picks each candidate (bind to port 0); the probes stay open until
    the end so every try yields a new port.
    """
    import errno
    import socket

    from lxcri_core.spec.model import PortMapping

    listeners = read_listeners()
    avoid = set(taken)
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    fam = socket.AF_INET6 if isinstance(host_ip, IPv6Address) else socket.AF_INET
    addr = str(host_ip) if host_ip is not None else ""
    probes: list[socket.socket] = []
    try:
        for _ in range(tries):
            probe = socket.socket(fam, kind)
            probes.append(probe)
            try:
                probe.bind((addr, 0))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:  # the ephemeral range is used up
                    break
                raise NetworkError(
                    f"cannot bind a {proto} port on {addr or '*'}: {e.strerror}"
                ) from None
            port = int(probe.getsockname()[1])
            mapping = PortMapping(1, port, proto, addr)
            if port not in avoid and in_use(mapping, listeners) is None:
                return port
    finally:
        for probe in probes:
            probe.close()
    raise NetworkError(f"found no free host port for {proto}: every candidate is in use")


def host_port_for(proto: str, host_ip: str, host_port: int, chosen: Iterable[int] = ()) -> int:
    """``host_port`` if no host socket serves it, a free one for 0 (``-p 80``); else an error.

    What ``create`` checks (the start hook checks again in ``ports.publish``):
    ``host_ip`` as the user typed it, ``""`` for every address; ``chosen``:
    the container's other host ports of this protocol, never picked again.
    """
    if proto not in ("tcp", "udp"):
        raise NetworkError(f"protocol {proto!r} must be tcp or udp")
    kind: Proto = "udp" if proto == "udp" else "tcp"
    addr = ip_address(host_ip) if host_ip else None
    if host_port == 0:
        taken = [p.mapping.host_port for p in list_published() if p.mapping.protocol == kind]
        return free_host_port(kind, addr, [*taken, *chosen])
    from lxcri_core.spec.model import PortMapping

    refuse_in_use([PortMapping(1, host_port, kind, host_ip)])
    return host_port
