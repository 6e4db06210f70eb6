"""Address assignment without DHCP: a lease file per bridge.

``cfg.root/network/<bridge>.json`` maps container ids to addresses::

    {"subnet": "10.88.0.0/16", "ipv6_subnet": "fd8c:...::/64",
     "leases": {"100": "10.88.0.2"}}

Every change happens under an flock on ``<bridge>.json.lock`` (the data file
itself is replaced by ``atomic_write``, so it cannot carry the lock) and is
written crash-safely: a container keeps its address across restarts and
host reboots until ``release``. The network address, the gateway (the first
host, which the bridge holds) and the broadcast address are never handed out.

IPv6, when the bridge has a ULA subnet, needs no lease of its own: the
container's IPv6 address has the same host offset as its IPv4 address
(10.88.0.7 -> fd..::7), so both stay unique together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_core.errors import NetworkError
from lxcri_core.fsutil import atomic_write, flocked
from lxcri_core.log import get_logger
from lxcri_core.network.bridge import DEFAULT_BRIDGE, DEFAULT_SUBNET
from lxcri_core.network.ports import check_container_id

if TYPE_CHECKING:  # the hooks never need to load the config module for this
    from lxcri_core.config import Config

log = get_logger(__name__)


@dataclass(frozen=True)
class Lease:
    """A container's addresses on one bridge, with the bridge's prefix length."""

    container_id: str
    ipv4: IPv4Interface
    ipv6: IPv6Interface | None = None

    @property
    def gateway(self) -> IPv4Address:
        """The bridge's address, the container's default route."""
        return gateway_of(self.ipv4.network)


def gateway_of(subnet: IPv4Network) -> IPv4Address:
    """The first host address of ``subnet``: the one the bridge holds."""
    return subnet.network_address + 1


def ipv6_for(ipv4: IPv4Interface, ipv6_subnet: IPv6Network) -> IPv6Interface:
    """The IPv6 address paired with ``ipv4``: same host offset in ``ipv6_subnet``."""
    offset = int(ipv4.ip) - int(ipv4.network.network_address)
    if offset >= ipv6_subnet.num_addresses:
        raise NetworkError(f"IPv6 subnet {ipv6_subnet} is smaller than IPv4 subnet {ipv4.network}")
    return IPv6Interface((ipv6_subnet.network_address + offset, ipv6_subnet.prefixlen))


class Ipam:
    """The leases of one bridge. Cheap to create; every call takes the lock."""

    def __init__(
        self,
        root: Path,
        bridge: str = DEFAULT_BRIDGE,
        subnet: IPv4Network | str = DEFAULT_SUBNET,
        ipv6_subnet: IPv6Network | str | None = None,
    ) -> None:
        self.bridge = bridge
        self.subnet = IPv4Network(subnet)
        self.ipv6_subnet = IPv6Network(ipv6_subnet) if ipv6_subnet is not None else None
        if self.subnet.prefixlen > 30:
            raise NetworkError(
                f"subnet {self.subnet} of bridge {bridge} is too small; use /30 or larger"
            )
        self.path = root / "network" / f"{bridge}.json"
        self.lock = self.path.with_name(self.path.name + ".lock")

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        bridge: str = DEFAULT_BRIDGE,
        subnet: IPv4Network | str = DEFAULT_SUBNET,
        ipv6_subnet: IPv6Network | str | None = None,
    ) -> Ipam:
        """The lease file of ``bridge`` under ``cfg.root``."""
        return cls(cfg.root, bridge, subnet, ipv6_subnet)

    # -- file access (caller holds the lock) --

    def _load(self) -> dict[str, str]:
        try:
            data: Any = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise NetworkError(
                f"lease file {self.path} is unreadable ({e}); fix or remove it"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("leases"), dict):
            raise NetworkError(f"lease file {self.path} has no 'leases' mapping; fix or remove it")
        if data.get("subnet") != str(self.subnet):
            raise NetworkError(
                f"bridge {self.bridge} has leases in subnet {data.get('subnet')} but "
                f"{self.subnet} was asked for; stop its containers and remove {self.path} "
                "to renumber"
            )
        return {str(k): str(v) for k, v in data["leases"].items()}

    def _save(self, leases: dict[str, str]) -> None:
        doc = {
            "subnet": str(self.subnet),
            "ipv6_subnet": str(self.ipv6_subnet) if self.ipv6_subnet else None,
            "leases": dict(sorted(leases.items())),
        }
        atomic_write(self.path, (json.dumps(doc, indent=1) + "\n").encode())

    def _lease(self, container_id: str, addr: str) -> Lease:
        v4 = IPv4Interface((addr, self.subnet.prefixlen))
        v6 = ipv6_for(v4, self.ipv6_subnet) if self.ipv6_subnet else None
        return Lease(container_id, v4, v6)

    # -- public API --

    def allocate_lease(self, container_id: str) -> Lease:
        """The container's lease, made on first call; the same one on every later call."""
        check_container_id(container_id)
        with flocked(self.lock):
            leases = self._load()
            if container_id in leases:
                return self._lease(container_id, leases[container_id])
            used = {IPv4Address(a) for a in leases.values()}
            gateway = gateway_of(self.subnet)
            # hosts() already leaves out the network and broadcast addresses.
            for addr in self.subnet.hosts():
                if addr != gateway and addr not in used:
                    break
            else:
                raise NetworkError(
                    f"subnet {self.subnet} of bridge {self.bridge} has no free address; "
                    "release unused containers or use a larger subnet"
                )
            leases[container_id] = str(addr)
            self._save(leases)
        log.info("address leased", bridge=self.bridge, container=container_id, address=str(addr))
        return self._lease(container_id, str(addr))

    def reserve(self, container_id: str, address: IPv4Address | str) -> Lease:
        """Lease a given address (``--ip``) to the container; an error if another has it."""
        check_container_id(container_id)
        addr = IPv4Address(str(address).split("/")[0])
        if addr not in self.subnet or addr in (
            self.subnet.network_address,
            self.subnet.broadcast_address,
            gateway_of(self.subnet),
        ):
            raise NetworkError(
                f"address {addr} is not a usable host address of bridge {self.bridge}'s "
                f"subnet {self.subnet}"
            )
        with flocked(self.lock):
            leases = self._load()
            holder = next((c for c, a in leases.items() if a == str(addr)), None)
            if holder is not None and holder != container_id:
                raise NetworkError(
                    f"address {addr} on bridge {self.bridge} is already leased to container "
                    f"{holder[:12]}; choose another --ip"
                )
            leases[container_id] = str(addr)
            self._save(leases)
        return self._lease(container_id, str(addr))

    def allocate(self, container_id: str) -> IPv4Interface:
        """The container's IPv4 address with the subnet's prefix (see ``allocate_lease``)."""
        return self.allocate_lease(container_id).ipv4

    def release(self, container_id: str) -> None:
        """Give the container's address back; no error when it has none."""
        with flocked(self.lock):
            leases = self._load()
            if leases.pop(container_id, None) is None:
                return
            self._save(leases)
        log.info("address released", bridge=self.bridge, container=container_id)

    def get(self, container_id: str) -> Lease | None:
        """The container's lease, or None; never creates one."""
        with flocked(self.lock, shared=True):
            addr = self._load().get(container_id)
        return self._lease(container_id, addr) if addr else None

    def leases(self) -> list[Lease]:
        """All leases of the bridge, by container id."""
        with flocked(self.lock, shared=True):
            leases = self._load()
        return [self._lease(cid, addr) for cid, addr in sorted(leases.items())]


def allocate(
    container_id: str,
    cfg: Config | None = None,
    bridge: str = DEFAULT_BRIDGE,
    subnet: IPv4Network | str = DEFAULT_SUBNET,
) -> IPv4Interface:
    """Lease an IPv4 address on ``bridge`` for ``container_id`` (stable; see ``Ipam``)."""
    from lxcri_core.config import load_config

    return Ipam.from_config(cfg or load_config(), bridge, subnet).allocate(container_id)


def release(
    container_id: str,
    cfg: Config | None = None,
    bridge: str = DEFAULT_BRIDGE,
    subnet: IPv4Network | str = DEFAULT_SUBNET,
) -> None:
    """Give ``container_id``'s address on ``bridge`` back; no error when it has none."""
    from lxcri_core.config import load_config

    Ipam.from_config(cfg or load_config(), bridge, subnet).release(container_id)
