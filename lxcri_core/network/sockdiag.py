"""Listening TCP sockets from the kernel's sock_diag netlink interface (what ``ss -lt`` uses).

``/proc/net/tcp`` and ``tcp6`` make the kernel walk its whole established-
connection hash to print them: 5-20 ms each on a host with a large hash, at
every container start (``listeners.refuse_in_use``). A sock_diag dump asked
for the LISTEN state only walks the listening hash: well under a millisecond.

``tcp_listeners`` returns (family, address bytes, port) of every TCP socket in
LISTEN in this network namespace, or None where sock_diag is unavailable (a
kernel without inet_diag, a sandbox refusing netlink): the caller reads /proc.
"""

from __future__ import annotations

# The C module under ``socket``: the Python wrapper imports selectors and enum
# machinery (~3 ms of every start) for features a netlink dump does not use.
import _socket as socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
TCP_LISTEN = 10

_NLMSGHDR = struct.Struct("=IHHII")
#: inet_diag_req_v2: family, protocol, ext, pad, states, then the 48-byte inet_diag_sockid.
_REQ = struct.Struct("=BBBxI48x")
#: inet_diag_msg's head: family, state, timer, retrans, then sockid's sport (big-endian),
#: dport, and the 16 bytes of the source address.
_MSG = struct.Struct("=BBBB")
_PORT = struct.Struct("!H")


def _dump(family: int) -> list[tuple[int, bytes, int]] | None:
    req = _REQ.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN)
    seq = 1
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                         NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + req  # fmt: skip
    found: list[tuple[int, bytes, int]] = []
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    try:
        s.settimeout(5)
        s.sendto(msg, (0, 0))
        while True:
            data, sender = s.recvfrom(65536)
            if sender[0] != 0:
                continue  # only the kernel answers a dump
            off = 0
            while off + _NLMSGHDR.size <= len(data):
                length, kind, _flags, rseq, _pid = _NLMSGHDR.unpack_from(data, off)
                if length < _NLMSGHDR.size or off + length > len(data):
                    return None  # a truncated message: do not trust the rest
                body = off + _NLMSGHDR.size
                off += (length + 3) & ~3
                if rseq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    return None
                if kind != SOCK_DIAG_BY_FAMILY or length - _NLMSGHDR.size < 24:
                    continue
                fam, state, _timer, _retrans = _MSG.unpack_from(data, body)
                if state != TCP_LISTEN:
                    continue
                (sport,) = _PORT.unpack_from(data, body + 4)
                size = 4 if fam == socket.AF_INET else 16
                found.append((fam, bytes(data[body + 8 : body + 8 + size]), sport))
            if not data:
                return None
    finally:
        s.close()


def tcp_listeners() -> list[tuple[int, bytes, int]] | None:
    """(address family, address bytes, port) of each listening TCP socket; None: no
    sock_diag here, read /proc/net instead."""
    out: list[tuple[int, bytes, int]] = []
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            got = _dump(family)
        except OSError:
            return None
        if got is None:
            return None
        out += got
    return out
