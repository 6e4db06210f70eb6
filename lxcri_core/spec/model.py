"""The neutral container description: what to run, with which limits, mounts and network.

A ``ContainerSpec`` is built once from an image config and the user's options
(``lxcri_core.spec.build.build_spec``) and then rendered, unchanged, into an
LXC config (``lxc_config``) or a Proxmox ``pct.conf`` (``pve_config``). Every
class here is a frozen dataclass of plain values so that specs compare by
value, serialise with ``dataclasses.asdict`` and can be stored with a
container's state.

Units are fixed so that renderers never guess: memory in bytes, durations in
seconds (floats), signals as ``SIG*`` names, capabilities as upper-case names
without the ``CAP_`` prefix (``NET_ADMIN``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Literal

from lxcri_core.errors import SpecError

#: Where Proxmox maps an unprivileged container's root: host ids 100000..165535.
DEFAULT_UID_BASE = 100000
DEFAULT_ID_COUNT = 65536
#: docker's PATH when neither the image nor the user sets one.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The capabilities docker leaves a container by default (moby's DefaultCapabilities).
DOCKER_DEFAULT_CAPS: tuple[str, ...] = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)

MountKind = Literal["bind", "volume", "anonymous"]
Protocol = Literal["tcp", "udp"]
RestartName = Literal["no", "on-failure", "always", "unless-stopped"]
NetworkMode = Literal["bridge", "none"]


@dataclass(frozen=True)
class IdMap:
    """Container ids ``[start, start+count)`` on host ids ``[host, host+count)``.

    The one id-map class: a spec's ``lxc.idmap`` lines (one per ``kind``, ``u``
    for uids and ``g`` for gids), the unpacker's and the storage's shift of a
    rootfs (one map for uids and gids alike: ``kind`` does not matter there),
    and ``lxcri unpack --idmap BASE:COUNT``. Fields are keyword-stable: a
    record stores them by name. ``IdMap()`` is Proxmox's default map,
    ``IdMap(200000, 65536)`` another host range.
    """

    host: int = DEFAULT_UID_BASE
    count: int = DEFAULT_ID_COUNT
    start: int = 0
    kind: Literal["u", "g"] = "u"

    def __post_init__(self) -> None:
        top = 2**32 - 1  # (uid_t)-1 is "no id": never map onto or over it
        if self.host < 0 or self.start < 0 or self.count < 1 or self.host + self.count > top:
            raise SpecError(
                f"invalid id map {self.host}:{self.count}; need BASE >= 0, COUNT >= 1 "
                "and BASE+COUNT below 2^32-1"
            )
        if self.start + self.count > top or self.kind not in ("u", "g"):
            raise SpecError(f"invalid id map {self.kind} {self.start} {self.host} {self.count}")

    def host_id(self, container_id: int) -> int | None:
        """The host id a container id maps to, or None when outside this map."""
        if self.start <= container_id < self.start + self.count:
            return self.host + container_id - self.start
        return None

    @classmethod
    def parse(cls, text: str) -> IdMap:
        """``BASE:COUNT`` (``lxcri unpack --idmap``): host ids from BASE, container ids from 0."""
        host, sep, count = text.partition(":")
        try:
            if not sep or not host.isdigit() or not count.isdigit():
                raise ValueError
            return cls(int(host), int(count))
        except ValueError:
            raise SpecError(
                f"invalid id map {text!r}: expected BASE:COUNT, e.g. 100000:65536"
            ) from None


#: Proxmox's default map for unprivileged containers.
DEFAULT_IDMAPS: tuple[IdMap, ...] = (IdMap(kind="u"), IdMap(kind="g"))


@dataclass(frozen=True)
class Mount:
    """A filesystem mounted into the container at ``target`` (absolute, inside the container).

    ``kind`` says what ``source`` is: ``bind`` — an absolute host path;
    ``volume`` — the name of a managed volume; ``anonymous`` — a volume with
    no name yet (an image ``VOLUME`` or ``-v /path``), ``source`` is empty and
    the backend creates one per container.
    """

    target: str
    source: str = ""
    kind: MountKind = "anonymous"
    read_only: bool = False


#: What ``--tmpfs`` mounts with unless told otherwise (docker's defaults).
TMPFS_DEFAULT_FLAGS: tuple[str, ...] = ("nosuid", "nodev", "noexec")


@dataclass(frozen=True)
class TmpfsMount:
    """``--tmpfs PATH[:OPTS]`` or ``--mount type=tmpfs``: a fresh tmpfs at ``target``.

    ``flags`` are mount flags without values (``nosuid``, ``noexec``, ``ro``...),
    already validated; ``size`` is in bytes (None: the kernel's default, half
    the RAM), ``mode`` the root directory's permission bits.
    """

    target: str
    size: int | None = None
    mode: int | None = None
    flags: tuple[str, ...] = TMPFS_DEFAULT_FLAGS
    uid: int | None = None
    gid: int | None = None
    nr_inodes: int | None = None


@dataclass(frozen=True)
class Ulimit:
    """``--ulimit NAME=SOFT[:HARD]``: a resource limit of the container's processes; -1 is
    unlimited."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class Device:
    """``--device HOST[:CTR][:PERMS]``: a host device node bind-mounted into the container.

    ``kind``, ``major`` and ``minor`` are those of the host node, filled in
    at create (``""``/-1 until then); ``permissions`` is a subset of ``rwm``
    for the device cgroup rule (privileged containers; an unprivileged one
    uses the node with the host's permissions for its mapped ids).
    """

    path: str
    container_path: str
    permissions: str = "rwm"
    kind: Literal["c", "b", ""] = ""
    major: int = -1
    minor: int = -1


@dataclass(frozen=True)
class PortMapping:
    """``-p [IP:]HOST:CTR[/proto]``: host ``host_ip:host_port`` forwards to ``container_port``.

    ``host_port == 0`` means "any free port" (docker's ``-p 80``; create picks
    one before anything is published); an empty ``host_ip`` means every local
    address of the host (of either family), ``0.0.0.0`` / ``::`` every local
    address of that family. The one class for ``-p``: the spec, the container
    record (these field names are its on-disk keys), the network layer and the
    hooks all use it; ``spec.options.parse_port`` is its one parser.
    """

    container_port: int
    host_port: int = 0
    protocol: Protocol = "tcp"
    host_ip: str = ""

    @property
    def address(self) -> IPv4Address | IPv6Address | None:
        """``host_ip`` as an address object (None for every address), for the rulesets."""
        return ip_address(self.host_ip) if self.host_ip else None

    def __str__(self) -> str:
        """``[IP:]HOST:CTR/PROTO`` (IPv6 in brackets), as ``-p`` takes it back."""
        ip = (
            f"[{self.host_ip}]:"
            if ":" in self.host_ip
            else f"{self.host_ip}:"
            if self.host_ip
            else ""
        )
        return f"{ip}{self.host_port}:{self.container_port}/{self.protocol}"


@dataclass(frozen=True)
class Resources:
    """Limits; ``None`` means unlimited (or the platform's default)."""

    #: Memory limit in bytes (``--memory 512m``).
    memory: int | None = None
    #: Number of CPUs the container may use (``--cores``; Proxmox ``cores``).
    cores: int | None = None
    #: CPU time limit in CPUs, may be fractional (``--cpus 1.5``; Proxmox ``cpulimit``).
    cpus: float | None = None
    #: Maximum number of processes (``--pids-limit``).
    pids_limit: int | None = None
    #: Swap in bytes on top of ``memory`` (Proxmox ``swap``); None: platform default.
    swap: int | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """docker's ``--restart``: ``no``, ``on-failure[:N]``, ``always`` or ``unless-stopped``."""

    name: RestartName = "no"
    #: Only for ``on-failure``: give up after this many restarts; 0 means never give up.
    max_retries: int = 0

    def __str__(self) -> str:
        if self.name == "on-failure" and self.max_retries:
            return f"on-failure:{self.max_retries}"
        return self.name


@dataclass(frozen=True)
class Healthcheck:
    """docker's HEALTHCHECK. ``test`` is ``("CMD", arg...)`` or ``("CMD-SHELL", command)``.

    A disabled check (``HEALTHCHECK NONE`` or ``--no-healthcheck``) is
    represented by ``ContainerSpec.healthcheck is None``, never by this class.
    """

    test: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 30.0
    start_period: float = 0.0
    retries: int = 3

    @property
    def argv(self) -> tuple[str, ...]:
        """The command to run inside the container."""
        if self.test[0] == "CMD-SHELL":
            return ("/bin/sh", "-c", self.test[1])
        return self.test[1:]


@dataclass(frozen=True)
class NetworkSpec:
    """One network interface (``eth0``) on a host bridge, or no network at all."""

    mode: NetworkMode = "bridge"
    bridge: str = "vmbr0"
    #: ``dhcp``, ``manual`` or an IPv4 address in CIDR form (``10.0.0.5/24``).
    ip: str = "dhcp"
    gateway: str = ""
    #: ``""``, ``auto``, ``dhcp``, ``manual`` or an IPv6 CIDR.
    ip6: str = ""
    gateway6: str = ""
    mtu: int | None = None
    #: VLAN tag on the bridge port (pct's ``tag=``; an OVS bridge only on this kernel).
    vlan: int | None = None
    #: VLANs the bridge port carries tagged (pct's ``trunks=``; OVS only).
    trunks: tuple[int, ...] = ()
    #: Rate limit in MB/s (pct's ``rate=``), tc on the host-side veth.
    rate: float | None = None
    #: pct's ``firewall=1``: kept and reported; Proxmox's firewall applies it there.
    firewall: bool = False
    #: The host end's name (``vethVMIDiN`` as Proxmox names it); "" lets LXC pick.
    host_veth: str = ""
    hwaddr: str = ""
    name: str = "eth0"
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    #: ``--add-host NAME:IP`` entries, in order.
    extra_hosts: tuple[tuple[str, str], ...] = ()

    @property
    def static_ipv4(self) -> str:
        """The address without prefix when ``ip`` is a CIDR, else ``""``."""
        return self.ip.split("/", 1)[0] if "/" in self.ip else ""


@dataclass(frozen=True)
class SecuritySpec:
    """Isolation settings. Unprivileged with Proxmox's id map unless asked otherwise."""

    privileged: bool = False
    idmaps: tuple[IdMap, ...] = DEFAULT_IDMAPS
    nesting: bool = False
    keyctl: bool = False
    fuse: bool = False
    #: Capabilities the container keeps (after ``--cap-add``/``--cap-drop``);
    #: None means every capability (``--cap-add ALL``).
    capabilities: tuple[str, ...] | None = DOCKER_DEFAULT_CAPS
    #: ``default`` (lxcri's profile), ``unconfined``, or the path of the profile the user gave.
    seccomp: str = "default"
    no_new_privileges: bool = False
    #: pct's ``features: mknod=1`` (device nodes through Proxmox's lxc-syscalld)
    mknod: bool = False
    #: The user's seccomp profile in LXC's format, read (and translated from JSON) at
    #: create, so a later change of the file does not change the container.
    seccomp_profile: str = ""
    #: What of the user's JSON profile LXC cannot express (``security.seccomp.Translation``).
    seccomp_unsupported: tuple[str, ...] = ()
    #: ``--security-opt apparmor=``; ``""`` is the backend's default (``generated``).
    apparmor_profile: str = ""
    #: ``--security-opt label=``: the SELinux context (``lxc.selinux.context``); ``""``: none.
    selinux_context: str = ""

    @property
    def unprivileged(self) -> bool:
        return not self.privileged

    @property
    def shim_sets_ids(self) -> bool:
        """Whether the init shim can set uid, gid and groups (it needs CAP_SETUID/SETGID)."""
        caps = self.capabilities
        return caps is None or {"SETUID", "SETGID"} <= set(caps)


@dataclass(frozen=True)
class User:
    """The identity the container's process runs as, already resolved to numbers."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    #: The user name when one was found in /etc/passwd.
    name: str = ""
    #: Home directory from /etc/passwd, ``/`` when unknown (docker's rule).
    home: str = "/"
    #: The ``--group-add`` part of ``additional_gids`` (``exec -u`` adds them too, as docker).
    group_add_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create and run one container, independent of the platform.

    ``args`` is the exact argv (entrypoint followed by cmd, after docker's
    override rules); ``entrypoint`` and ``cmd`` are kept for display and for
    ``upgrade``, which re-applies the user's flags to a new image.
    ``env`` is ordered ``KEY=VALUE`` strings as the process will see them.
    """

    image: str
    args: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = "/"
    user: User = field(default_factory=User)
    hostname: str = "lxcri"
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    #: The image's EXPOSE list (``80/tcp``), informational unless published.
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    labels: Mapping[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    healthcheck: Healthcheck | None = None
    network: NetworkSpec = field(default_factory=NetworkSpec)
    security: SecuritySpec = field(default_factory=SecuritySpec)
    tty: bool = False
    tmpfs: tuple[TmpfsMount, ...] = ()
    #: ``--read-only``: the root filesystem is mounted read-only (volumes and tmpfs are not).
    read_only: bool = False
    ulimits: tuple[Ulimit, ...] = ()
    devices: tuple[Device, ...] = ()
    #: ``--init``: accepted for docker parity; LXC's init.lxc is always PID 1 and reaps.
    init: bool = False

    def env_dict(self) -> dict[str, str]:
        """``env`` as a mapping (later duplicates win, as in execve's consumers)."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out
