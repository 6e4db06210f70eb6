"""``lxcri port``: a container's published ports, as ``docker port`` prints them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxcri_core.containers.record import ContainerRecord
from lxcri_core.errors import BackendError


@dataclass(frozen=True)
class Binding:
    container_port: int
    protocol: str
    host_ip: str
    host_port: int

    @property
    def private(self) -> str:
        return f"{self.container_port}/{self.protocol}"

    @property
    def public(self) -> str:
        ip = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{ip}:{self.host_port}"

    def to_json(self) -> dict[str, Any]:
        return {
            "container_port": self.container_port,
            "protocol": self.protocol,
            "host_ip": self.host_ip,
            "host_port": self.host_port,
        }


def parse_private(value: str) -> tuple[int, str | None]:
    """``80``, ``80/tcp`` or ``53/udp``; one clear error otherwise."""
    port, _, proto = value.partition("/")
    if not port.isdigit() or not 0 < int(port) < 65536 or proto not in ("", "tcp", "udp"):
        raise BackendError(f"invalid port {value!r}: give PORT or PORT/tcp|udp (1-65535)")
    return int(port), proto or None


def bindings(rec: ContainerRecord, private: str | None = None) -> list[Binding]:
    """The published ports, one per host address (no address: 0.0.0.0, and [::] with IPv6)."""
    want = parse_private(private) if private else None
    out = []
    for p in rec.spec.ports:
        if want and (p.container_port != want[0] or (want[1] and p.protocol != want[1])):
            continue
        ips = [p.host_ip] if p.host_ip else ["0.0.0.0"] + (["::"] if rec.ipv6 else [])
        out += [Binding(p.container_port, p.protocol, ip, p.host_port) for ip in ips]
    if private and not out:
        raise BackendError(f"no public port {private} published for container {rec.name}")
    return out
