"""The ``--network`` option: which network a container joins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lxcri_core.errors import NetworkError
from lxcri_core.network.bridge import check_ifname


@dataclass(frozen=True)
class NetworkMode:
    """Where a container's network goes.

    ``bridge`` with ``bridge=None`` means the platform's default: lxcri's own
    ``lxcri0`` on plain LXC, the admin's ``vmbr0`` on Proxmox.
    """

    kind: Literal["bridge", "none"] = "bridge"
    bridge: str | None = None


def parse_network(text: str | None) -> NetworkMode:
    """Parse ``--network``: ``none``, ``bridge`` or ``bridge=NAME`` (None: the default)."""
    if text is None or text == "bridge":
        return NetworkMode()
    if text == "none":
        return NetworkMode("none")
    key, sep, name = text.partition("=")
    if key == "bridge" and sep:
        return NetworkMode("bridge", check_ifname(name))
    raise NetworkError(f"--network {text!r} is not supported; use none, bridge or bridge=NAME")
