"""Layer-2 probes for the OVS VLAN tests, run inside a namespace with the host's python.

There is no 802.1Q in this kernel (no VLAN sub-interfaces), so a trunk's
tagged frames are made by hand on a packet socket: ``send`` puts a broadcast
frame of a private ethertype carrying a marker on a link, optionally with a
VLAN tag inline; ``listen`` prints every marker that arrives on a link for a
while. ``ping`` is an ICMP echo on a raw socket (no ping binary here).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

ETHERTYPE = 0x88B5  # IEEE 802 local experimental

SEND = r"""
import socket, struct, sys
ifname, marker, vlan = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
src = s.getsockname()[4]
tag = struct.pack("!HH", 0x8100, vlan) if vlan else b""
frame = b"\xff" * 6 + src + tag + struct.pack("!H", 0x88B5) + marker.ljust(46, b"\0")
for _ in range(3):
    s.send(frame)
"""

LISTEN = r"""
import socket, sys, time
ifname, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
s.settimeout(0.2)
print("ready", flush=True)
seen = set()
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    i = data.find(b"LXCRI-")
    if i >= 0:
        seen.add(data[i:].split(b"\0", 1)[0].decode())
print(" ".join(sorted(seen)), flush=True)
"""

PING = r"""
import os, socket, struct, sys, time
dst, seconds = sys.argv[1], float(sys.argv[2])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.3)
ident = os.getpid() & 0xFFFF
end = time.monotonic() + seconds
seq = 0
while time.monotonic() < end:
    seq += 1
    hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"lxcri-ping"
    pkt = struct.pack("!BBHHH", 8, 0, csum(hdr), ident, seq) + b"lxcri-ping"
    s.sendto(pkt, (dst, 0))
    try:
        while True:
            data, addr = s.recvfrom(1500)
            ihl = (data[0] & 0xF) * 4
            t, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if t == 0 and rid == ident and addr[0] == dst:
                print("reply")
                sys.exit(0)
    except socket.timeout:
        pass
print("none")
"""


def in_ns(ns: str, script: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, sys.executable, "-c", script, *args]


def ping(ns: str, dst: str, seconds: float = 3.0) -> str:
    """ "reply" when ``dst`` answered an ICMP echo from namespace ``ns`` in time, else "none"."""
    return subprocess.run(
        in_ns(ns, PING, dst, str(seconds)), capture_output=True, text=True, check=True
    ).stdout.strip()


def send(ns: str, ifname: str, marker: str, vlan: int = 0) -> None:
    subprocess.run(in_ns(ns, SEND, ifname, marker, str(vlan)), check=True)


def listen(ns: str, ifname: str, seconds: float) -> subprocess.Popen[str]:
    """A listener started and ready; ``markers(proc)`` gives what it saw."""
    proc = subprocess.Popen(
        in_ns(ns, LISTEN, ifname, str(seconds)), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def markers(proc: subprocess.Popen[str]) -> set[str]:
    out, _ = proc.communicate(timeout=30)
    return set(out.split())


def run_all(cmds: Sequence[list[str]]) -> None:
    for c in cmds:
        subprocess.run(c, check=True, capture_output=True)
