"""The user's ``lxcri run`` options, and parsers for docker-style option strings.

Each ``parse_*`` function takes the string a user typed and returns a typed
value from ``model``; a bad value raises ``SpecError`` naming the flag and the
value, so the CLI can print it as is. ``RunOptions`` holds the options still as
typed (strings); ``build_spec`` parses them.
"""

from __future__ import annotations

import ipaddress
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lxcri_core import sizes
from lxcri_core.errors import SpecError
from lxcri_core.spec.model import (
    TMPFS_DEFAULT_FLAGS,
    Device,
    Mount,
    PortMapping,
    RestartPolicy,
    TmpfsMount,
    Ulimit,
)

_ENV_NAME = re.compile(r"^[^=\s\x00]+\Z")
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
#: docker refuses smaller memory limits; so do we (Proxmox's minimum is 16 MiB anyway).
MIN_MEMORY = 6 << 20


@dataclass(frozen=True)
class RunOptions:
    """Options of ``lxcri run``/``create`` as the user typed them.

    ``None`` means "not given" where docker distinguishes that from empty:
    ``entrypoint=""`` resets the image's ENTRYPOINT, ``entrypoint=None``
    keeps it. ``host_env`` is where ``-e NAME`` (no value) and env-file lines
    without ``=`` take their value from; None means this process's
    ``os.environ``.
    """

    name: str = ""
    entrypoint: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    env_files: tuple[Path, ...] = ()
    workdir: str | None = None
    user: str | None = None
    group_add: tuple[str, ...] = ()
    hostname: str | None = None
    domainname: str | None = None
    volumes: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    stop_signal: str | None = None
    stop_timeout: int | None = None
    labels: tuple[str, ...] = ()
    memory: str | None = None
    swap: str | None = None
    cores: str | None = None
    cpus: str | None = None
    pids_limit: str | None = None
    restart: str | None = None
    health_cmd: str | None = None
    health_interval: str | None = None
    health_timeout: str | None = None
    health_start_period: str | None = None
    health_retries: str | None = None
    no_healthcheck: bool = False
    #: ``bridge`` (default) or ``none``.
    network: str = "bridge"
    bridge: str | None = None
    #: ``dhcp``, ``manual`` or an IPv4 CIDR.
    ip: str | None = None
    gateway: str | None = None
    ip6: str | None = None
    gateway6: str | None = None
    mtu: str | None = None
    vlan: str | None = None
    #: pct's ``trunks=`` / ``rate=`` / ``firewall=`` of ``--net0`` (containers.pct_props)
    trunks: str | None = None
    rate: str | None = None
    firewall: bool = False
    mac_address: str | None = None
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    add_hosts: tuple[str, ...] = ()
    privileged: bool = False
    nesting: bool = False
    keyctl: bool = False
    fuse: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    #: docker's ``--security-opt``: ``seccomp=unconfined|PATH``, ``no-new-privileges[:true]``,
    #: ``apparmor=PROFILE``, ``label=...``.
    security_opts: tuple[str, ...] = ()
    #: pct's ``--features nesting=1,keyctl=1,fuse=1,mknod=1`` (or bare names), each item.
    features: tuple[str, ...] = ()
    #: ``--idmap BASE:COUNT``: container ids 0..COUNT-1 on host ids from BASE (uids and gids).
    idmap: str | None = None
    #: ``-P``: every port the image EXPOSEs, each to a free host port.
    publish_all: bool = False
    #: ``--mount type=bind|volume|tmpfs,source=..,target=..[,readonly]`` (docker's syntax).
    mounts: tuple[str, ...] = ()
    #: ``--tmpfs PATH[:OPTS]``.
    tmpfs: tuple[str, ...] = ()
    read_only: bool = False
    #: ``--ulimit NAME=SOFT[:HARD]``.
    ulimits: tuple[str, ...] = ()
    #: ``--device HOST[:CTR][:PERMS]``.
    devices: tuple[str, ...] = ()
    #: ``--init``: accepted; LXC's init.lxc is PID 1 anyway (reaps, forwards signals).
    init: bool = False
    tty: bool = False
    host_env: Mapping[str, str] | None = None


def _bad(flag: str, value: str, why: str) -> SpecError:
    return SpecError(f"invalid {flag} value {value!r}: {why}")


# -- environment ---------------------------------------------------------------------------


def parse_env(value: str, host_env: Mapping[str, str], flag: str = "-e") -> str | None:
    """``-e NAME=VALUE`` or ``-e NAME`` (value from ``host_env``; None when unset there)."""
    name, eq, val = value.partition("=")
    if not name or not _ENV_NAME.match(name):
        raise _bad(flag, value, "expected NAME=VALUE with a name without spaces")
    if eq:
        return f"{name}={val}"
    if name in host_env:
        return f"{name}={host_env[name]}"
    return None


def parse_env_file(text: str, host_env: Mapping[str, str], source: str = "--env-file") -> list[str]:
    """An env file as docker reads it: ``NAME=VALUE`` lines, ``#`` comments, blank lines.

    Values are taken literally (no quote removal, trailing spaces kept, as
    docker does); leading whitespace of a line is ignored; a line with just
    ``NAME`` takes the value from ``host_env`` or is dropped.
    """
    out: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        try:
            item = parse_env(line, host_env, flag=f"{source} line {lineno}")
        except SpecError:
            raise _bad(
                f"{source} line {lineno}", raw, "expected NAME=VALUE, no spaces in NAME"
            ) from None
        if item is not None:
            out.append(item)
    return out


def parse_label(value: str) -> tuple[str, str]:
    """``--label KEY=VALUE`` (``KEY`` alone means an empty value, as in docker)."""
    key, _, val = value.partition("=")
    if not key:
        raise _bad("--label", value, "expected KEY=VALUE")
    if not key.isprintable():  # a newline would forge lines of `ps`/`inspect` output
        raise _bad("--label", value, "the key must not contain control characters")
    return key, val


# -- mounts and ports ----------------------------------------------------------------------


def check_ctr_path(flag: str, value: str, path: str) -> str:
    if not path.startswith("/"):
        raise _bad(flag, value, f"container path {path!r} must be absolute")
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise _bad(flag, value, f"container path {path!r} must not contain '..'")
    return "/" + "/".join(parts)


def parse_volume(value: str) -> Mount:
    """``-v HOST:CTR[:ro|rw]``, ``-v NAME:CTR[:ro|rw]`` or ``-v CTR`` (anonymous volume).

    ``HOST`` is a bind mount when it starts with ``/``; otherwise it is the
    name of a managed volume (letters, digits, ``_.-``).
    """
    parts = value.split(":")
    if len(parts) > 3 or not all(parts):
        raise _bad("-v", value, "expected HOST:CTR[:ro], NAME:CTR[:ro] or CTR")
    mode = "rw"
    if len(parts) == 3:
        mode = parts.pop()
    elif len(parts) == 2 and parts[1] in ("ro", "rw") and parts[0].startswith("/"):
        # "-v /data:ro" is an anonymous volume with a mode
        mode = parts.pop()
    if mode not in ("ro", "rw"):
        raise _bad("-v", value, f"unknown mode {mode!r}; use ro or rw")
    read_only = mode == "ro"
    if len(parts) == 1:
        return Mount(check_ctr_path("-v", value, parts[0]), "", "anonymous", read_only)
    src, ctr = parts
    target = check_ctr_path("-v", value, ctr)
    if src.startswith("/"):
        if ".." in src.split("/"):
            raise _bad("-v", value, "host path must not contain '..'")
        return Mount(target, src, "bind", read_only)
    if not _VOLUME_NAME.match(src):
        raise _bad(
            "-v",
            value,
            f"{src!r} is neither an absolute host path nor a volume name ([a-zA-Z0-9_.-])",
        )
    return Mount(target, src, "volume", read_only)


def _port_range(flag: str, value: str, text: str, allow_zero: bool) -> list[int]:
    lo_s, dash, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
    except ValueError:
        raise _bad(flag, value, f"{text!r} is not a port or port range") from None
    low_limit = 0 if allow_zero else 1
    if not (low_limit <= lo <= 65535 and low_limit <= hi <= 65535 and lo <= hi):
        raise _bad(flag, value, f"port {text!r} is out of range 1-65535")
    return list(range(lo, hi + 1))


def parse_port(value: str) -> list[PortMapping]:
    """``-p [IP:][HOST:]CTR[/tcp|udp]``; ranges (``8000-8002:80-82``); IPv6 as ``[::1]:80:80``.

    One mapping per port; ``-p 80`` (no host port) gives ``host_port=0``.
    """
    rest, _, proto = value.partition("/")
    proto = proto.lower() or "tcp"  # docker takes 53/UDP too
    if proto not in ("tcp", "udp"):
        raise _bad("-p", value, f"protocol {proto!r} must be tcp or udp")
    host_ip = ""
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0 or rest[end + 1 : end + 2] != ":":
            raise _bad("-p", value, "expected [IPv6]:HOST:CTR")
        host_ip, rest = rest[1:end], rest[end + 2 :]
    parts = rest.split(":")
    if len(parts) == 3:
        if host_ip:
            raise _bad("-p", value, "too many ':' separated fields")
        host_ip = parts.pop(0)
    if len(parts) not in (1, 2) or not parts[-1]:
        raise _bad("-p", value, "expected [IP:][HOST:]CTR[/PROTO]")
    if host_ip:
        try:
            addr = ipaddress.ip_address(host_ip)
        except ValueError:
            raise _bad("-p", value, f"{host_ip!r} is not an IP address") from None
        if getattr(addr, "scope_id", None) is not None:
            raise _bad("-p", value, "a host address with a %zone cannot be published")
    ctr = _port_range("-p", value, parts[-1], allow_zero=False)
    host = (
        _port_range("-p", value, parts[0], allow_zero=False)
        if len(parts) == 2 and parts[0]
        else [0] * len(ctr)
    )
    if len(host) != len(ctr):
        raise _bad("-p", value, "host and container port ranges differ in length")
    return [
        PortMapping(c, h, "udp" if proto == "udp" else "tcp", host_ip)
        for h, c in zip(host, ctr, strict=True)
    ]


#: An IPv6 zone (``fe80::1%eth0``): an interface name or index. Python's
#: ipaddress takes any text after ``%``, newlines included.
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def _check_zone(flag: str, value: str, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    zone = getattr(addr, "scope_id", None)
    if zone is not None and not _ZONE.fullmatch(zone):
        raise _bad(flag, value, f"{zone!r} is not an interface name")


def parse_add_host(value: str) -> tuple[str, str]:
    """``--add-host NAME:IP`` (``NAME=IP`` too, as newer docker accepts) -> (name, address).

    Both end up as a line of the container's /etc/hosts: the name must be a
    DNS name (RFC 1123 labels) and the address is written as parsed, so
    nothing typed here can add a line or a comment there.
    """
    sep = "=" if "=" in value else ":"
    name, _, ip = value.partition(sep)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise _bad("--add-host", value, "expected NAME:IP with an IPv4 or IPv6 address") from None
    _check_zone("--add-host", value, addr)
    if not is_hostname(name):
        raise _bad(
            "--add-host",
            value,
            f"{name!r} is not a host name (letters, digits and inner '-', dot-separated)",
        )
    return name, str(addr)


# -- resources -----------------------------------------------------------------------------


def parse_size(value: str, flag: str) -> int:
    """A byte size as docker reads it: ``512m``, ``1g``, ``1.5GiB``, ``1048576``, binary units."""
    try:
        return sizes.parse_size(value)
    except ValueError:
        raise _bad(flag, value, "expected a size such as 512m or 2g") from None


def parse_memory(value: str, flag: str = "--memory") -> int:
    """``--memory 512m`` in bytes; at least 6 MiB like docker."""
    size = parse_size(value, flag)
    if size < MIN_MEMORY:
        raise _bad(flag, value, "the minimum memory limit is 6m")
    return size


def parse_int(value: str, flag: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _bad(flag, value, "expected an integer") from None
    if not lo <= n <= hi:
        raise _bad(flag, value, f"must be between {lo} and {hi}")
    return n


def parse_cores(value: str) -> int:
    """``--cores N``: 1 to 8192 (Proxmox's range)."""
    return parse_int(value, "--cores", 1, 8192)


def parse_cpus(value: str) -> float:
    """``--cpus 1.5``: CPU time as a number of CPUs, > 0 and <= 8192."""
    try:
        n = float(value)
    except ValueError:
        raise _bad("--cpus", value, "expected a number such as 0.5 or 2") from None
    if not 0.01 <= n <= 8192:
        raise _bad("--cpus", value, "must be between 0.01 and 8192")
    return n


def parse_pids_limit(value: str) -> int | None:
    """``--pids-limit N``; ``0`` and ``-1`` mean unlimited (None), as in docker."""
    n = parse_int(value, "--pids-limit", -1, 1 << 22)
    return None if n <= 0 else n


def parse_restart(value: str) -> RestartPolicy:
    """``--restart no|on-failure[:N]|always|unless-stopped``."""
    name, colon, count = value.partition(":")
    if name == "on-failure":
        n = parse_int(count, "--restart", 0, 1 << 31) if colon else 0
        return RestartPolicy("on-failure", n)
    if colon:
        raise _bad("--restart", value, "only on-failure takes a :MAX_RETRIES count")
    if name == "no":
        return RestartPolicy("no")
    if name == "always":
        return RestartPolicy("always")
    if name == "unless-stopped":
        return RestartPolicy("unless-stopped")
    raise _bad("--restart", value, "expected no, on-failure[:N], always or unless-stopped")


def parse_duration(value: str, flag: str) -> float:
    """A Go duration as docker takes it (``30s``, ``1m30s``, ``500ms``), in seconds (>= 0)."""
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise _bad(flag, value, "expected a duration such as 30s, 1m30s or 500ms")
    return total


# -- signals, capabilities, users ----------------------------------------------------------


def parse_signal(value: str, flag: str = "--stop-signal") -> str:
    """A signal as a name (``TERM``, ``SIGTERM``, ``sigterm``) or number; returns ``SIGTERM``."""
    text = value.strip().upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            raise _bad(flag, value, "no such signal number") from None
    name = text if text.startswith("SIG") else f"SIG{text}"
    if name in signal.Signals.__members__:
        return name
    raise _bad(flag, value, "expected a signal name such as SIGTERM or a number")


#: Capabilities Linux knows (capabilities(7)), without the ``CAP_`` prefix.
KNOWN_CAPS = frozenset(
    """AUDIT_CONTROL AUDIT_READ AUDIT_WRITE BLOCK_SUSPEND BPF CHECKPOINT_RESTORE CHOWN
    DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID IPC_LOCK IPC_OWNER KILL LEASE LINUX_IMMUTABLE
    MAC_ADMIN MAC_OVERRIDE MKNOD NET_ADMIN NET_BIND_SERVICE NET_BROADCAST NET_RAW PERFMON
    SETFCAP SETGID SETPCAP SETUID SYS_ADMIN SYS_BOOT SYS_CHROOT SYS_MODULE SYS_NICE SYS_PACCT
    SYS_PTRACE SYS_RAWIO SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG SYSLOG WAKE_ALARM""".split()  # noqa: SIM905
)


def parse_capability(value: str, flag: str) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``CAP_NET_ADMIN`` -> ``NET_ADMIN``; ``ALL`` stays ``ALL``."""
    name = value.strip().upper()
    name = name.removeprefix("CAP_")
    if name == "ALL" or name in KNOWN_CAPS:
        return name
    raise _bad(flag, value, "not a Linux capability (see capabilities(7))")


def apply_capabilities(
    base: tuple[str, ...], add: tuple[str, ...], drop: tuple[str, ...]
) -> tuple[str, ...] | None:
    """docker's rule: start from ``base``, drop ``--cap-drop``, then add ``--cap-add``.

    ``ALL`` in add means every capability (None); ``ALL`` in drop empties the
    base first. The result is sorted.
    """
    adds = {parse_capability(c, "--cap-add") for c in add}
    drops = {parse_capability(c, "--cap-drop") for c in drop}
    if "ALL" in adds:
        if "ALL" in drops or drops:
            return tuple(sorted(KNOWN_CAPS - (drops - {"ALL"})))
        return None
    caps = set() if "ALL" in drops else set(base) - drops
    return tuple(sorted(caps | adds))


def parse_user(value: str) -> tuple[str, str]:
    """``--user NAME|UID[:GROUP|GID]`` -> (user, group); group ``""`` when not given."""
    user, colon, group = value.partition(":")
    if not user or (colon and not group) or ":" in group:
        raise _bad("--user", value, "expected NAME|UID[:GROUP|GID]")
    return user, group


def parse_security_opt(value: str) -> tuple[str, str]:
    """``--security-opt`` items lxcri understands: (``seccomp``, PROFILE),
    (``no-new-privileges``, ``true``/``false``), (``apparmor``, PROFILE) or
    (``label``, SELinux context; ``""`` for ``label=disable``)."""
    key, val = re.split(r"[=:]", value, maxsplit=1) if re.search(r"[=:]", value) else (value, "")
    if key == "seccomp" and val:
        return key, val
    if key in ("apparmor", "label") and val:
        from lxcri_core.security.lsm import parse_apparmor_opt, parse_label_opt

        return key, parse_apparmor_opt(val) if key == "apparmor" else parse_label_opt(val)
    if key == "no-new-privileges":
        val = val or "true"
        if val not in ("true", "false"):
            raise _bad("--security-opt", value, "no-new-privileges takes true or false")
        return key, val
    raise _bad(
        "--security-opt",
        value,
        "supported: seccomp=unconfined|PATH, no-new-privileges[:true], apparmor=PROFILE, "
        "label=user:U|role:R|type:T|level:L|disable",
    )


#: pct's ``features:`` keys lxcri sets (``mount`` and ``force_rw_sys`` are not offered).
FEATURES = ("nesting", "keyctl", "fuse", "mknod")


def parse_features(items: tuple[str, ...]) -> dict[str, bool]:
    """``--features nesting=1,keyctl=1`` (pct) or ``--features nesting,fuse`` -> {name: on}."""
    out: dict[str, bool] = {}
    for item in items:
        for part in item.split(","):
            name, eq, val = part.strip().partition("=")
            if name not in FEATURES:
                raise _bad("--features", item, f"{name!r} is not one of {', '.join(FEATURES)}")
            if eq and val not in ("0", "1"):
                raise _bad("--features", item, f"{name} takes 0 or 1")
            out[name] = not eq or val == "1"
    return out


# -- network ------------------------------------------------------------------------------


def parse_ipv4_config(value: str, flag: str = "--ip") -> str:
    """``dhcp``, ``manual`` or an IPv4 CIDR (``10.0.0.5/24``), normalised."""
    if value in ("dhcp", "manual"):
        return value
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError:
        raise _bad(flag, value, "expected dhcp, manual or an IPv4 address/prefix") from None
    if "/" not in value:
        raise _bad(flag, value, "give the prefix length too, e.g. 10.0.0.5/24")
    return str(iface)


def parse_ipv6_config(value: str, flag: str = "--ip6") -> str:
    """``auto``, ``dhcp``, ``manual`` or an IPv6 CIDR."""
    if value in ("auto", "dhcp", "manual"):
        return value
    try:
        iface = ipaddress.IPv6Interface(value)
    except ValueError:
        raise _bad(flag, value, "expected auto, dhcp, manual or an IPv6 address/prefix") from None
    if "/" not in value:
        raise _bad(flag, value, "give the prefix length too, e.g. fd00::5/64")
    if iface.scope_id is not None:  # the zone is kept on the interface, not on .ip
        raise _bad(flag, value, "a container address takes no %zone")
    return str(iface)


def parse_gateway(value: str, flag: str = "--gateway", version: int = 4) -> str:
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        raise _bad(flag, value, f"expected an IPv{version} address") from None
    if addr.version != version:
        raise _bad(flag, value, f"expected an IPv{version} address")
    _check_zone(flag, value, addr)
    return str(addr)


_BRIDGE = re.compile(r"^[-_.\w]+\Z", re.ASCII)
_MAC = re.compile(r"^(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}\Z")


def parse_bridge(value: str) -> str:
    if not _BRIDGE.match(value) or len(value) > 15:
        raise _bad("--bridge", value, "expected a bridge name such as vmbr0 (letters, digits, -_.)")
    return value


def parse_mac(value: str) -> str:
    """A unicast MAC address, upper case as Proxmox writes it."""
    if not _MAC.match(value):
        raise _bad("--mac-address", value, "expected XX:XX:XX:XX:XX:XX")
    if int(value[:2], 16) & 1:
        raise _bad("--mac-address", value, "a multicast address cannot be an interface address")
    return value.upper()


_HOSTNAME_LABEL = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def is_hostname(value: str) -> bool:
    """A DNS name: RFC 1123 labels (letters, digits, inner hyphens), at most 253 characters.

    ``fullmatch``: a ``$`` anchor would let a trailing newline through.
    """
    return 0 < len(value) <= 253 and all(_HOSTNAME_LABEL.fullmatch(p) for p in value.split("."))


def parse_hostname(value: str, flag: str = "--hostname") -> str:
    """A DNS name (labels of letters, digits and inner hyphens), at most 253 characters."""
    if not is_hostname(value):
        raise _bad(flag, value, "expected a DNS name such as web or web.example.lan")
    return value


# -- tmpfs, --mount, --ulimit, --device, -P -----------------------------------------------

#: tmpfs flags a user may give; ``suid`` and ``dev`` are refused (no use in a container,
#: and on a privileged one ``dev`` would let root make host disk nodes there).
_TMPFS_FLAGS = {
    "ro": "rw",
    "rw": "ro",
    "exec": "noexec",
    "noexec": "exec",
    "nosuid": "",
    "nodev": "",
    "noatime": "",
    "relatime": "",
    "strictatime": "",
    "nodiratime": "",
}
_TMPFS_DENIED = ("suid", "dev")
_ID_MAX = (1 << 32) - 2


def _tmpfs_items(flag: str, value: str, target: str, items: list[str]) -> TmpfsMount:
    """A TmpfsMount from ``size=64m``, ``mode=1770``, ``uid=``, ``gid=``, ``nr_inodes=``
    and flag items; every value is parsed to a number, so nothing is passed through."""
    flags = list(TMPFS_DEFAULT_FLAGS)
    nums: dict[str, int] = {}
    for item in items:
        if not item:
            continue
        key, eq, val = item.partition("=")
        if not eq:
            if key in _TMPFS_DENIED:
                raise _bad(flag, value, f"tmpfs option {key!r} is not allowed")
            if key not in _TMPFS_FLAGS:
                raise _bad(
                    flag,
                    value,
                    f"unknown tmpfs option {key!r}; use size=, mode=, uid=, gid=, nr_inodes=, "
                    + ", ".join(sorted(_TMPFS_FLAGS)),
                )
            flags = [f for f in flags if f != _TMPFS_FLAGS[key]]
            if key not in flags:
                flags.append(key)
        elif key in ("size", "tmpfs-size"):
            nums["size"] = parse_size(val, flag)
            if nums["size"] <= 0:
                raise _bad(flag, value, "the tmpfs size must be more than 0")
        elif key in ("mode", "tmpfs-mode"):
            try:
                mode = int(val, 8)
            except ValueError:
                raise _bad(
                    flag, value, f"mode {val!r} is not an octal number such as 1777"
                ) from None
            if not 0 <= mode <= 0o7777:
                raise _bad(flag, value, f"mode {val!r} is out of range 0-7777")
            nums["mode"] = mode
        elif key in ("uid", "gid"):
            nums[key] = parse_int(val, flag, 0, _ID_MAX)
        elif key == "nr_inodes":
            nums[key] = parse_size(val, flag)
        else:
            raise _bad(flag, value, f"unknown tmpfs option {key!r}")
    return TmpfsMount(
        target,
        size=nums.get("size"),
        mode=nums.get("mode"),
        flags=tuple(flags),
        uid=nums.get("uid"),
        gid=nums.get("gid"),
        nr_inodes=nums.get("nr_inodes"),
    )


def parse_tmpfs(value: str) -> TmpfsMount:
    """``--tmpfs PATH[:OPTS]``: OPTS as ``mount -o`` (``size=64m,mode=1770,exec``);
    nosuid, nodev and noexec unless told otherwise, as docker does."""
    path, _, opts = value.partition(":")
    target = check_ctr_path("--tmpfs", value, path)
    return _tmpfs_items("--tmpfs", value, target, opts.split(",") if opts else [])


_MOUNT_KEYS = {
    "type": "type",
    "source": "source",
    "src": "source",
    "target": "target",
    "destination": "target",
    "dst": "target",
    "readonly": "readonly",
    "ro": "readonly",
    "tmpfs-size": "tmpfs-size",
    "tmpfs-mode": "tmpfs-mode",
}


def parse_mount(value: str) -> Mount | TmpfsMount:
    """``--mount type=bind|volume|tmpfs,source=SRC,target=DST[,readonly]`` (docker's keys:
    ``src``, ``dst``/``destination``, ``ro``, ``tmpfs-size``, ``tmpfs-mode``); type volume
    without a source is an anonymous volume."""
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, eq, val = item.partition("=")
        name = _MOUNT_KEYS.get(key.strip().lower())
        if name is None:
            raise _bad(
                "--mount",
                value,
                f"unknown key {key!r}; use type, source, target, readonly, tmpfs-size, tmpfs-mode",
            )
        if name in fields:
            raise _bad("--mount", value, f"{key!r} is given twice")
        fields[name] = val if eq else ("true" if name == "readonly" else "")
    kind = fields.get("type", "volume")
    if kind not in ("bind", "volume", "tmpfs"):
        raise _bad("--mount", value, f"type {kind!r} must be bind, volume or tmpfs")
    if not fields.get("target"):
        raise _bad("--mount", value, "a target= (the path in the container) is required")
    target = check_ctr_path("--mount", value, fields["target"])
    ro_text = fields.get("readonly", "false").lower()
    if ro_text not in ("true", "1", "false", "0"):
        raise _bad("--mount", value, "readonly takes true or false")
    read_only = ro_text in ("true", "1")
    source = fields.get("source", "")
    if kind == "tmpfs":
        if source:
            raise _bad("--mount", value, "a tmpfs mount has no source")
        items = [f"{k}={fields[k]}" for k in ("tmpfs-size", "tmpfs-mode") if k in fields]
        return _tmpfs_items("--mount", value, target, [*items, "ro" if read_only else ""])
    if "tmpfs-size" in fields or "tmpfs-mode" in fields:
        raise _bad("--mount", value, "tmpfs-size and tmpfs-mode are for type=tmpfs")
    if kind == "bind":
        if not source.startswith("/"):
            raise _bad("--mount", value, "a bind mount needs an absolute source= host path")
        if ".." in source.split("/"):
            raise _bad("--mount", value, "host path must not contain '..'")
        return Mount(target, source, "bind", read_only)
    if not source:
        return Mount(target, "", "anonymous", read_only)
    if not _VOLUME_NAME.match(source):
        raise _bad("--mount", value, f"{source!r} is not a volume name ([a-zA-Z0-9_.-])")
    return Mount(target, source, "volume", read_only)


#: The limits ``--ulimit`` knows (setrlimit(2) names, as docker and lxc.prlimit use them).
ULIMIT_NAMES = frozenset(
    """as core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime
    sigpending stack""".split()  # noqa: SIM905
)
_RLIM_MAX = (1 << 63) - 1


_ULIMIT_FORM = "expected NAME=SOFT[:HARD] with numbers (-1: unlimited)"


def _rlimit(value: str, text: str) -> int:
    if text in ("-1", "unlimited"):
        return -1
    if not text.isdigit():
        raise _bad("--ulimit", value, _ULIMIT_FORM)
    return parse_int(text, "--ulimit", 0, _RLIM_MAX)


def parse_ulimit(value: str) -> Ulimit:
    """``--ulimit nofile=1024:2048`` (one number sets both; -1 means unlimited)."""
    name, eq, limits = value.partition("=")
    if not eq or not limits:
        raise _bad("--ulimit", value, _ULIMIT_FORM)
    if name not in ULIMIT_NAMES:
        raise _bad(
            "--ulimit", value, f"unknown limit {name!r}; one of {', '.join(sorted(ULIMIT_NAMES))}"
        )
    soft_s, colon, hard_s = limits.partition(":")
    soft = _rlimit(value, soft_s)
    hard = _rlimit(value, hard_s) if colon else soft
    if hard != -1 and (soft == -1 or soft > hard):
        raise _bad("--ulimit", value, "the soft limit must not exceed the hard limit")
    return Ulimit(name, soft, hard)


_DEV_COMPONENT = re.compile(r"[A-Za-z0-9._+-]+")
#: Entries of a container's /dev that LXC makes itself (links to /proc, the console, ptys):
#: never mount over them or through them.
_DEV_RESERVED = frozenset(
    {"fd", "stdin", "stdout", "stderr", "pts", "ptmx", "console", "shm", "mqueue"}
)


def _dev_path(value: str, path: str, what: str) -> str:
    parts = path.split("/")
    if (
        len(parts) < 3
        or parts[:2] != ["", "dev"]
        or not all(_DEV_COMPONENT.fullmatch(p) and p not in (".", "..") for p in parts[2:])
    ):
        raise _bad("--device", value, f"{what} {path!r} must be a path below /dev/")
    if parts[2] in _DEV_RESERVED:
        raise _bad(
            "--device", value, f"{what} {path!r}: /dev/{parts[2]} is not a device of its own"
        )
    return path


def parse_device(value: str) -> Device:
    """``--device /dev/fuse[:/dev/fuse][:rwm]``: both paths below /dev (checked at create:
    the host path must be a device node, no symbolic link on the way)."""
    parts = value.split(":")
    perms = "rwm"
    if len(parts) > 1 and parts[-1] and not parts[-1].startswith("/"):
        perms = parts.pop()
        if not set(perms) <= set("rwm") or len(set(perms)) != len(perms):
            raise _bad("--device", value, f"permissions {perms!r} must be letters of rwm")
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise _bad("--device", value, "expected HOST[:CONTAINER][:PERMISSIONS]")
    host = _dev_path(value, parts[0], "host path")
    ctr = _dev_path(value, parts[1], "container path") if len(parts) == 2 else host
    return Device(host, ctr, "".join(c for c in "rwm" if c in perms))


#: ``-P`` refuses an image that exposes more ports than this (a hostile EXPOSE 1-65535).
MAX_PUBLISH_ALL = 1024


def parse_exposed(key: str) -> list[tuple[int, str]]:
    """An image's ExposedPorts key (``80/tcp``, ``53/udp``, ``8000-8002``) as (port, protocol)
    pairs; sctp ports are left out (lxcri publishes tcp and udp)."""
    port, _, proto = key.partition("/")
    proto = proto.lower() or "tcp"
    flag = "image EXPOSE"
    if proto == "sctp":
        return []
    if proto not in ("tcp", "udp"):
        raise _bad(flag, key, f"protocol {proto!r} must be tcp or udp")
    return [(p, proto) for p in _port_range(flag, key, port, allow_zero=False)]
