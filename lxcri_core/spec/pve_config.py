"""Proxmox container configs (``/etc/pve/lxc/VMID.conf``): a lossless model and a renderer.

The file format (pve-container's ``parse_pct_config``/``write_pct_config``):

- ``key: value`` options; ``lxc.key: value`` (or ``lxc.key = value``) raw
  LXC keys, which may repeat and are written after the options;
- ``#text`` lines hold the description, URI-escaped (``%3A`` for ``:``);
- ``[name]`` starts a snapshot section (``[pending]`` holds pending
  changes); snapshot sections carry ``parent:`` and ``snaptime:``.

``PveConfig`` keeps every line as it was read, so ``parse_pve_config(x).render()
== x`` for any file; lines that are set or added are written in PVE's own
form. PVE 9.1 stores an OCI app container's environment as
``lxc.environment.runtime: K=V`` lines and its command in ``entrypoint:``;
``api_params`` turns a config into the API's parameters (``env`` joined with
NUL characters, as the API expects).

Property strings (``net0``, ``mp0``, ``rootfs``, ``features``) are
``key=value,...`` with an optional leading unnamed value for the format's
default key; ``render_property_string`` orders keys as PVE's
``print_property_string`` does: default key, required keys, the rest sorted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from lxcri_core.errors import SpecError
from lxcri_core.spec.lxc_config import (
    DEFAULT_INIT_SHIM,
    STATE_MOUNT,
    fstab_escape,
    tmpfs_options,
)
from lxcri_core.spec.model import ContainerSpec
from lxcri_core.spec.options import KNOWN_CAPS

_OPTION = re.compile(r"^([a-z][a-z_\-]*\d*):\s*(.*?)\s*$")
_LXC = re.compile(r"^(lxc\.[a-z0-9_\-.]+)(:|\s*=)\s*(.*?)\s*$")
_SECTION = re.compile(r"^\[([a-z][a-z0-9_\-:]*)\]\s*$", re.I)
_ENV_NAME = re.compile(r"^\w+\Z", re.ASCII)
#: Characters PVE leaves unescaped in description lines (encode_text): printable ASCII but ':'.
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ":%")

#: (default key, required keys) per property-string option, from the PVE schema.
PROPERTY_FORMATS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "net": (None, ("name",)),
    "mp": ("volume", ("mp",)),
    "rootfs": ("volume", ()),
    "unused": ("volume", ()),
    "dev": ("path", ()),
    "features": (None, ()),
    "startup": ("order", ()),
}


def property_format(key: str) -> tuple[str | None, tuple[str, ...]] | None:
    """The property-string format of option ``key`` (``net3`` -> ``net``), or None."""
    base = key.rstrip("0123456789")
    return PROPERTY_FORMATS.get(base)


def parse_property_string(text: str, default_key: str | None = None) -> dict[str, str]:
    """``a=1,b=2`` (``value,a=1`` with a default key) -> ordered dict."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq:
            if default_key is None or default_key in out:
                raise SpecError(f"property string {text!r}: {part!r} is not key=value")
            out[default_key] = part
            continue
        if key in out:
            raise SpecError(f"property string {text!r}: {key!r} given twice")
        out[key] = value
    return out


def render_property_string(
    data: Mapping[str, object], default_key: str | None = None, required: tuple[str, ...] = ()
) -> str:
    """The PVE form of ``data``: default key's value first, then required keys, then the rest
    sorted; booleans as 1/0, None values left out."""

    def fmt(v: object) -> str:
        if isinstance(v, bool):
            return "1" if v else "0"
        text = str(v)
        if "," in text or "\n" in text:
            raise SpecError(f"property value {text!r} cannot contain ',' or a newline")
        return text

    items = {k: v for k, v in data.items() if v is not None}
    parts: list[str] = []
    if default_key is not None and default_key in items:
        parts.append(fmt(items.pop(default_key)))
    for key in sorted(k for k in required if k in items):
        parts.append(f"{key}={fmt(items.pop(key))}")
    parts += [f"{k}={fmt(items[k])}" for k in sorted(items)]
    return ",".join(parts)


def encode_description_line(line: str) -> str:
    """PVE's ``encode_text``: %-escape ':' and anything outside printable ASCII."""
    return quote(line, safe=_SAFE)


@dataclass
class PveEntry:
    """One line: an option (``key``), a raw ``lxc.*`` key, a comment (``#``) or a blank ("")."""

    key: str
    value: str = ""
    #: The line as read; None for lines created in code (written in PVE's form).
    raw: str | None = None

    @property
    def is_lxc(self) -> bool:
        return self.key.startswith("lxc.")

    @property
    def is_option(self) -> bool:
        return self.key not in ("#", "") and not self.is_lxc

    def render(self) -> str:
        if self.raw is not None:
            return self.raw
        if self.key == "#":
            return "#" + self.value
        if self.key == "":
            return ""
        return f"{self.key}: {self.value}"


@dataclass
class PveSection:
    """The main config (``name == ""``), a snapshot, or ``pending``; entries in file order."""

    name: str = ""
    entries: list[PveEntry] = field(default_factory=list)
    #: The ``[name]`` header line as read.
    header: str | None = None

    def get(self, key: str) -> str | None:
        """The value of option or lxc key ``key`` (the first one), or None."""
        for e in self.entries:
            if e.key == key:
                return e.value
        return None

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` in order (raw lxc keys repeat)."""
        return [e.value for e in self.entries if e.key == key]

    def options(self) -> dict[str, str]:
        """The ``key: value`` options (no lxc keys, no comments) in file order."""
        return {e.key: e.value for e in self.entries if e.is_option}

    def lxc(self) -> list[tuple[str, str]]:
        """The raw ``lxc.*`` keys in order."""
        return [(e.key, e.value) for e in self.entries if e.is_lxc]

    def __iter__(self) -> Iterator[PveEntry]:
        return iter(self.entries)

    def set(self, key: str, value: str | int | bool) -> None:
        """Set option ``key``: replace it in place, or insert it in sorted position."""
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if "\n" in text:
            raise SpecError(f"config value for {key} contains a newline")
        for e in self.entries:
            if e.key == key:
                e.value, e.raw = text, None
                return
        pos = len(self.entries)
        for i, e in enumerate(self.entries):
            if e.is_lxc or (e.is_option and e.key > key):
                pos = i
                break
        if pos == len(self.entries):
            # keep a trailing blank line (before the next section) last
            while pos > 0 and self.entries[pos - 1].key == "":
                pos -= 1
        self.entries.insert(pos, PveEntry(key, text))

    def add(self, key: str, value: str) -> None:
        """Append a (repeatable) raw ``lxc.*`` entry after the existing ones."""
        if not key.startswith("lxc."):
            raise SpecError(f"only lxc.* keys repeat; use set() for {key}")
        if "\n" in value:
            raise SpecError(f"config value for {key} contains a newline")
        pos = len(self.entries)
        while pos > 0 and self.entries[pos - 1].key == "":
            pos -= 1
        self.entries.insert(pos, PveEntry(key, value))

    def delete(self, key: str) -> None:
        self.entries = [e for e in self.entries if e.key != key]

    @property
    def description(self) -> str:
        """The comment lines, decoded, joined with newlines."""
        return "\n".join(unquote(e.value) for e in self.entries if e.key == "#")

    @description.setter
    def description(self, text: str) -> None:
        rest = [e for e in self.entries if e.key != "#"]
        lines = (
            [PveEntry("#", encode_description_line(ln)) for ln in text.split("\n")] if text else []
        )
        self.entries = lines + rest

    def render_lines(self) -> list[str]:
        out = [] if self.header is None and not self.name else [self.header or f"[{self.name}]"]
        return out + [e.render() for e in self.entries]


@dataclass
class PveConfig:
    """A whole pct.conf: the main section, then snapshot (and pending) sections in file order."""

    main: PveSection = field(default_factory=PveSection)
    sections: list[PveSection] = field(default_factory=list)
    #: Whether the text ended with a newline (PVE's files do).
    final_newline: bool = True

    @property
    def snapshots(self) -> dict[str, PveSection]:
        return {s.name: s for s in self.sections if s.name != "pending"}

    @property
    def pending(self) -> PveSection | None:
        return next((s for s in self.sections if s.name == "pending"), None)

    def render(self) -> str:
        lines = self.main.render_lines()
        for s in self.sections:
            lines += s.render_lines()
        text = "\n".join(lines)
        return text + "\n" if self.final_newline and lines else text

    def api_params(self) -> dict[str, str]:
        """The main section as parameters of ``POST /nodes/{node}/lxc`` or ``PUT .../config``.

        Options are passed as they are; ``lxc.environment.runtime`` lines
        become ``env`` (NUL-separated); other ``lxc.*`` keys are left out:
        only root@pam may set them, through the config file
        (``raw_lxc_entries``). Snapshot bookkeeping keys are left out too.
        """
        params = {
            k: v
            for k, v in self.main.options().items()
            if k not in ("parent", "snaptime", "digest", "lock")
        }
        if self.main.description:
            params["description"] = self.main.description
        env = self.main.get_all("lxc.environment.runtime")
        if env:
            params["env"] = "\0".join(env)
        return params

    def raw_lxc_entries(self) -> list[tuple[str, str]]:
        """``lxc.*`` entries other than the environment, for the local (root) path."""
        return [(k, v) for k, v in self.main.lxc() if k != "lxc.environment.runtime"]


def parse_pve_config(text: str) -> PveConfig:
    """Parse a pct.conf; every line is kept so that ``render()`` gives ``text`` back.

    Raises SpecError, with the line number, for a line that is neither an
    option, an ``lxc.*`` key, a comment, a blank line nor a section header.
    """
    final_newline = text.endswith("\n")
    lines = text.split("\n")
    if final_newline:
        lines.pop()
    cfg = PveConfig(final_newline=final_newline)
    section = cfg.main
    for lineno, line in enumerate(lines, 1):
        if m := _SECTION.match(line):
            section = PveSection(m.group(1), [], line)
            cfg.sections.append(section)
        elif line.startswith("#"):
            section.entries.append(PveEntry("#", line[1:], line))
        elif not line.strip():
            section.entries.append(PveEntry("", "", line))
        elif m := _LXC.match(line):
            section.entries.append(PveEntry(m.group(1), m.group(3), line))
        elif m := _OPTION.match(line):
            section.entries.append(PveEntry(m.group(1), m.group(2), line))
        else:
            raise SpecError(f"pct.conf line {lineno} is not 'key: value': {line!r}")
    return cfg


# -- rendering a ContainerSpec -----------------------------------------------------------------

_MIB = 1 << 20


def _entrypoint_inline(spec: ContainerSpec) -> str:
    for arg in spec.args:
        if not arg or re.search(r"[\s\"'\\]", arg) or re.search(r"[\x00-\x1f\x7f]", arg):
            raise SpecError(
                f"argument {arg!r} of {list(spec.args)!r} cannot be written to pct.conf's "
                "entrypoint (it is split on spaces); use the init shim (pass state_dir)"
            )
    return " ".join(spec.args)


def render_pve_config(
    spec: ContainerSpec,
    vmid: int,
    *,
    storage: str = "local-lvm",
    rootfs_volume: str | None = None,
    rootfs_size_gb: int = 8,
    volume_ids: Mapping[str, str] | None = None,
    volume_size_gb: int = 1,
    state_dir: str | None = None,
    init_shim_path: str = DEFAULT_INIT_SHIM,
    hookscript: str | None = None,
    arch: str = "amd64",
    description: str | None = None,
) -> PveConfig:
    """The Proxmox config for ``spec`` as container ``vmid``.

    ``rootfs_volume`` is the existing root volume (``local-zfs:subvol-100-disk-0``),
    else a new one is requested with PVE's ``STORAGE:SIZE_GB`` syntax. Named
    and anonymous volumes take their volume id from ``volume_ids`` (keyed by
    volume name, or target path for anonymous ones), else are allocated the
    same way. With ``state_dir`` (a host directory holding ``ctr/argv`` and ``ctr/env``)
    the entrypoint is the init shim and the state dir is bind-mounted at
    ``/.lxcri``, so any argv works; without it the argv is written inline
    and must not need quoting. Settings PVE has no option or allowed
    ``lxc.*`` key for (user, supplementary groups, no-new-privileges) are left
    to the shim (``ctr/user``). ``--device`` becomes ``devN`` (PVE passes a
    device at its host path only), ``--ulimit`` ``lxc.prlimit.*`` and
    ``--tmpfs`` a raw ``lxc.mount.entry``; ``--read-only`` is refused: PVE's
    ``rootfs`` has no read-only flag and it manages ``lxc.rootfs.*`` itself.
    """
    if not 100 <= vmid <= 999999999:
        raise SpecError(f"VMID {vmid} is out of range 100-999999999")
    if spec.read_only:
        raise SpecError("--read-only cannot be expressed in a Proxmox config (rootfs has no ro)")
    sec, res, net = spec.security, spec.resources, spec.network
    cfg = PveConfig()
    m = cfg.main
    m.description = description if description is not None else f"lxcri image {spec.image}"
    m.set("arch", arch)
    m.set("cmode", "console")
    if res.cores is not None:
        m.set("cores", res.cores)
    if res.cpus is not None:
        m.set("cpulimit", f"{res.cpus:g}")
    m.set("entrypoint", init_shim_path if state_dir else _entrypoint_inline(spec))
    features = {
        "nesting": True if sec.nesting else None,
        "keyctl": True if sec.keyctl and sec.unprivileged else None,
        "fuse": True if sec.fuse else None,
    }
    if any(v is not None for v in features.values()):
        m.set("features", render_property_string(features))
    if hookscript:
        m.set("hookscript", hookscript)
    m.set("hostname", spec.hostname)
    if res.memory is not None:
        mem_mb = max(16, math.ceil(res.memory / _MIB))
        m.set("memory", mem_mb)
        # docker's default: as much swap as memory (--memory-swap = 2 x --memory)
        m.set("swap", math.ceil(res.swap / _MIB) if res.swap is not None else mem_mb)
    elif res.swap is not None:
        m.set("swap", math.ceil(res.swap / _MIB))
    ids = volume_ids or {}
    for i, mnt in enumerate(sorted(spec.mounts, key=lambda x: x.target)):
        if mnt.kind == "bind":
            volume, backup = mnt.source, None
        else:
            key = mnt.source if mnt.kind == "volume" else mnt.target
            volume, backup = ids.get(key, f"{storage}:{volume_size_gb}"), True
        mp = {"volume": volume, "mp": mnt.target, "ro": True if mnt.read_only else None}
        mp["backup"] = backup
        m.set(f"mp{i}", render_property_string(mp, "volume", ("mp",)))
    for i, dev in enumerate(spec.devices):
        if dev.container_path != dev.path:
            raise SpecError(
                f"--device {dev.path}:{dev.container_path}: Proxmox passes a device at its "
                "host path only"
            )
        deny_write = True if "w" not in dev.permissions else None
        m.set(
            f"dev{i}", render_property_string({"path": dev.path, "deny-write": deny_write}, "path")
        )
    if net.dns:
        m.set("nameserver", " ".join(net.dns))
    if net.mode == "bridge":
        nic: dict[str, object] = {
            "name": net.name,
            "bridge": net.bridge,
            "type": "veth",
            "ip": net.ip,
            "gw": net.gateway or None,
            "ip6": net.ip6 or None,
            "gw6": net.gateway6 or None,
            "hwaddr": net.hwaddr or None,
            "mtu": net.mtu,
            "tag": net.vlan,
            # app containers have no network manager: the host configures the address
            "host-managed": True,
        }
        m.set("net0", render_property_string(nic, None, ("name",)))
    if spec.restart.name in ("always", "unless-stopped"):
        m.set("onboot", 1)
    m.set("ostype", "unmanaged")
    m.set("rootfs", rootfs_volume or f"{storage}:{rootfs_size_gb}")
    if net.dns_search:
        m.set("searchdomain", " ".join(net.dns_search))
    m.set("unprivileged", 1 if sec.unprivileged else 0)

    # raw lxc keys, written after the options as PVE does
    if state_dir:
        m.add(
            "lxc.mount.entry", f"{state_dir} {STATE_MOUNT.lstrip('/')} none bind,ro,create=dir 0 0"
        )
    for item in spec.env:
        name, _, value = item.partition("=")
        if not _ENV_NAME.match(name) or re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
            if state_dir:
                continue  # the shim sets it from ctr/env
            raise SpecError(
                f"environment variable {name!r} cannot be stored in pct.conf; "
                "use the init shim (pass state_dir)"
            )
        m.add("lxc.environment.runtime", item)
    m.add("lxc.init.cwd", spec.working_dir)
    m.add("lxc.signal.halt", spec.stop_signal)
    if sec.capabilities is not None:
        dropped = sorted(KNOWN_CAPS - set(sec.capabilities))
        if dropped:
            m.add("lxc.cap.drop", " ".join(c.lower() for c in dropped))
    if sec.seccomp not in ("default", "unconfined"):
        m.add("lxc.seccomp.profile", sec.seccomp)
    if res.pids_limit is not None:
        m.add("lxc.cgroup2.pids.max", str(res.pids_limit))
    for u in spec.ulimits:
        m.add(
            f"lxc.prlimit.{u.name}",
            ":".join("unlimited" if v < 0 else str(v) for v in (u.soft, u.hard)),
        )
    for t in spec.tmpfs:
        # as the state dir above, LXC creates the target (create=dir); lxcri's own LXC
        # backend prepares targets in the rootfs instead, links resolved inside it
        m.add(
            "lxc.mount.entry",
            f"tmpfs {fstab_escape(t.target.lstrip('/'))} tmpfs {tmpfs_options(t)},create=dir 0 0",
        )
    return cfg
