"""Proxmox container configs (``/etc/pve/lxc/VMID.conf``): a lossless model and a renderer.

The file format, as pve-container's ``PVE::LXC::Config::parse_pct_config`` reads
it and ``write_pct_config`` writes it:

- ``key: value`` options (key ``[a-z][a-z_]*\\d*``, value not empty); a key
  given twice: the last one wins;
- ``lxc.key: value`` (or ``lxc.key = value``) raw LXC keys, which may repeat;
  PVE writes ``lxc.environment.runtime`` lines (its ``env`` option, NUL-joined)
  first, then the other raw keys, all after the options;
- ``#text`` lines hold the description, URI-escaped (``%3A`` for ``:``), written
  at the top; an old ``description: text`` line is read into it too;
- ``[pve:pending]`` starts the pending changes (``delete:`` is allowed only
  there); ``[name]`` (``[a-z][a-z0-9_-]+``) starts a snapshot, which carries
  ``parent:`` and ``snaptime:``; any other ``[...]`` line is an error.

``PveConfig`` keeps every line as it was read, so ``parse_pve_config(x).render()
== x`` for any file PVE accepts; lines that are set or added are written in
PVE's own form. PVE 9.1 stores an OCI app container's command in
``entrypoint:`` (see ``pve_entrypoint``) and its environment as
``lxc.environment.runtime: K=V`` lines; ``api_params`` turns a config into the
API's parameters (``env`` joined with NUL characters, as the API expects).

Property strings (``net0``, ``mp0``, ``rootfs``, ``features``) are
``key=value,...`` with an optional leading unnamed value for the format's
default key; ``render_property_string`` orders keys as PVE's
``print_property_string`` does: default key, required keys, the rest sorted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from lxcri_core.errors import SpecError
from lxcri_core.spec.lxc_config import (
    DEFAULT_INIT_SHIM,
    STATE_MOUNT,
    fstab_escape,
    tmpfs_options,
)
from lxcri_core.spec.model import DEFAULT_IDMAPS, ContainerSpec
from lxcri_core.spec.options import KNOWN_CAPS
from lxcri_core.spec.pve_entrypoint import PVE_CONTROL_CHARS, pve_entrypoint

#: parse_pct_config's line forms. Option values must not be empty; lxc values may be.
#: ``\s`` is Perl's (ASCII) one.
_OPTION = re.compile(r"^([a-z][a-z_]*\d*):\s*(.*?)\s*$", re.A)
_LXC = re.compile(r"^(lxc\.[a-z0-9_\-.]+)(:|\s*=)\s*(.*?)\s*$", re.A)
_PENDING = re.compile(r"^\[pve:pending\]\s*$", re.I | re.A)
_SNAPSHOT = re.compile(r"^\[([a-z][a-z0-9_\-]+)\]\s*$", re.I | re.A)
_BLANK = re.compile(r"^\s*$", re.A)
_ENV_NAME = re.compile(r"^\w+\Z", re.ASCII)
#: A tag of pve-tag-list (PVE::JSONSchema's pve_verify_tag).
_TAG = re.compile(r"^(?i:[a-z0-9_][a-z0-9_\-+.]*)\Z")
#: Characters left unescaped in description lines: PVE's encode_text keeps \x20-\x7e but
#: ':'; lxcri escapes '%' too, so that a literal "%41" is not read back as "A".
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ":%")
#: The section name of the pending changes, as PVE writes it.
PENDING = "pve:pending"

#: The raw keys pve-container accepts (PVE::LXC::Config's ``$valid_lxc_conf_keys``, 9.1);
#: ``lxc.cgroup.*``, ``lxc.cgroup2.*``, ``lxc.prlimit.*``, ``lxc.net.*`` and
#: ``lxc.limit.*`` are accepted by prefix, the pre-3.0 names with a warning.
VALID_LXC_KEYS = frozenset(
    [
        "apparmor.profile",
        "apparmor.allow_incomplete",
        "apparmor.allow_nesting",
        "apparmor.raw",
        "selinux.context",
        "include",
        "arch",
        "uts.name",
        "signal.halt",
        "signal.reboot",
        "signal.stop",
        "init.cmd",
        "init.cwd",
        "init.uid",
        "init.gid",
        "init.groups",
        "pty.max",
        "console.logfile",
        "console.path",
        "tty.max",
        "devtty.dir",
        "hook.autodev",
        "autodev",
        "kmsg",
        "mount.fstab",
        "mount.entry",
        "mount.auto",
        "rootfs.mount",
        "cap.drop",
        "cap.keep",
        "seccomp.profile",
        "seccomp.notify.proxy",
        "seccomp.notify.cookie",
        "idmap",
        "hook.pre-start",
        "hook.pre-mount",
        "hook.mount",
        "hook.start",
        "hook.stop",
        "hook.post-stop",
        "hook.clone",
        "hook.destroy",
        "hook.version",
        "log.level",
        "log.file",
        "start.auto",
        "start.delay",
        "start.order",
        "group",
        "environment",
        "environment.runtime",
        "environment.hooks",
        "sysctl.fs.mqueue",
        "sysctl.kernel.msgmax",
        "sysctl.kernel.msgmnb",
        "sysctl.kernel.msgmni",
        "sysctl.kernel.sem",
        "sysctl.kernel.shmall",
        "sysctl.kernel.shmmax",
        "sysctl.kernel.shmmni",
        "sysctl.kernel.shm_rmid_forced",
        "aa_profile",
        "aa_allow_incomplete",
        "console",
        "devttydir",
        "haltsignal",
        "rebootsignal",
        "stopsignal",
        "id_map",
        "init_cmd",
        "loglevel",
        "logfile",
        "mount",
        "network.type",
        "network.flags",
        "network.link",
        "network.mtu",
        "network.name",
        "network.hwaddr",
        "network.ipv4",
        "network.ipv4.gateway",
        "network.ipv6",
        "network.ipv6.gateway",
        "network.script.up",
        "network.script.down",
        "pts",
        "se_context",
        "seccomp",
        "tty",
        "utsname",
    ]
)
_LXC_KEY_REFUSED = {
    "lxc.rootfs.path": "lxc.rootfs.path is auto generated from rootfs",
    "lxc.rootfs.options": "lxc.rootfs.options is not supported, use mount point options "
    'in "rootfs"',
}


def lxc_key_problem(key: str) -> str | None:
    """Why pve-container refuses raw key ``key`` (``is_valid_lxc_conf_key``), or None."""
    if key in _LXC_KEY_REFUSED:
        return _LXC_KEY_REFUSED[key]
    name = key.removeprefix("lxc.")
    if name in VALID_LXC_KEYS or name.startswith(
        ("cgroup.", "cgroup2.", "prlimit.", "net.", "limit.")
    ):
        return None
    return f"{key} is not a raw LXC key Proxmox accepts"


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
        first = fmt(items.pop(default_key))
        if "=" in first:  # PVE would read it as key=value
            raise SpecError(f"property value {first!r} cannot contain '=' where it has no key")
        parts.append(first)
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
        """A ``key: value`` option; the old ``description:`` line is description, not one."""
        return self.key not in ("#", "", "description") and not self.is_lxc

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
    """The main config (``name == ""``), a snapshot, or ``pve:pending``; entries in file order."""

    name: str = ""
    entries: list[PveEntry] = field(default_factory=list)
    #: The ``[name]`` header line as read.
    header: str | None = None

    def get(self, key: str) -> str | None:
        """The value of option ``key`` (the last one, as PVE reads a repeated key), or for
        a repeatable ``lxc.*`` key the first; None when absent."""
        values = self.get_all(key)
        if not values:
            return None
        return values[0] if key.startswith("lxc.") else values[-1]

    def get_all(self, key: str) -> list[str]:
        """Every value of ``key`` in order (raw lxc keys repeat)."""
        return [e.value for e in self.entries if e.key == key]

    def options(self) -> dict[str, str]:
        """The ``key: value`` options (no lxc keys, no description) in file order, each key's
        last value."""
        return {e.key: e.value for e in self.entries if e.is_option}

    def lxc(self) -> list[tuple[str, str]]:
        """The raw ``lxc.*`` keys in order."""
        return [(e.key, e.value) for e in self.entries if e.is_lxc]

    def __iter__(self) -> Iterator[PveEntry]:
        return iter(self.entries)

    def set(self, key: str, value: str | int | bool) -> None:
        """Set option ``key``: replace it in place (earlier copies of a repeated key go),
        or insert it in sorted position."""
        text = str(int(value)) if isinstance(value, bool) else str(value)
        if not _OPTION.match(f"{key}: x") or key == "description" or key.startswith("lxc"):
            raise SpecError(f"{key!r} is not a pct.conf option name")
        if "\n" in text or "\r" in text or not text.strip():
            raise SpecError(f"config value for {key} is empty or contains a newline")
        same = [i for i, e in enumerate(self.entries) if e.key == key]
        if same:
            last = self.entries[same[-1]]
            last.value, last.raw = text, None
            drop = set(same[:-1])
            self.entries = [e for i, e in enumerate(self.entries) if i not in drop]
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
        """Append a (repeatable) raw ``lxc.*`` entry after the existing ones; an
        ``lxc.environment.runtime`` one after the last of those, before other raw
        keys, where PVE writes them."""
        if not _LXC.match(f"{key}: x"):
            raise SpecError(f"only lxc.* keys repeat; use set() for {key}")
        if problem := lxc_key_problem(key):
            raise SpecError(problem)
        if "\n" in value or "\r" in value:
            raise SpecError(f"config value for {key} contains a newline")
        pos = len(self.entries)
        while pos > 0 and self.entries[pos - 1].key == "":
            pos -= 1
        if key == "lxc.environment.runtime":
            raw = [i for i, e in enumerate(self.entries) if e.is_lxc]
            env = [i for i in raw if self.entries[i].key == key]
            if env:
                pos = env[-1] + 1
            elif raw:
                pos = raw[0]
        self.entries.insert(pos, PveEntry(key, value))

    def delete(self, key: str) -> None:
        self.entries = [e for e in self.entries if e.key != key]

    @property
    def description(self) -> str:
        """The description, decoded as parse_pct_config does: every ``#`` line and old
        ``description:`` line in order (a ``#`` line ends with a newline, the old form does
        not); without the final newline."""
        text = ""
        for e in self.entries:
            if e.key == "#":
                text += unquote(e.value) + "\n"
            elif e.key == "description":
                text += unquote(e.value)
        return text[:-1] if text.endswith("\n") else text

    @description.setter
    def description(self, text: str) -> None:
        rest = [e for e in self.entries if e.key not in ("#", "description")]
        lines = (
            [PveEntry("#", encode_description_line(ln)) for ln in text.split("\n")] if text else []
        )
        self.entries = lines + rest

    def render_lines(self) -> list[str]:
        out = [] if self.header is None and not self.name else [self.header or f"[{self.name}]"]
        return out + [e.render() for e in self.entries]


@dataclass
class PveConfig:
    """A whole pct.conf: the main section, then pending and snapshot sections in file order."""

    main: PveSection = field(default_factory=PveSection)
    sections: list[PveSection] = field(default_factory=list)
    #: Whether the text ended with a newline (PVE's files do).
    final_newline: bool = True

    @property
    def snapshots(self) -> dict[str, PveSection]:
        """Snapshot sections by name (a later section of the same name wins, as in PVE)."""
        return {s.name: s for s in self.sections if s.name.lower() != PENDING}

    @property
    def pending(self) -> PveSection | None:
        """The ``[pve:pending]`` section (the last one, were there two)."""
        found = [s for s in self.sections if s.name.lower() == PENDING]
        return found[-1] if found else None

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
            if k not in ("parent", "snaptime", "digest", "lock", "snapstate")
        }
        if self.main.description:
            params["description"] = self.main.description
        # as parse_pct_config builds ``env``: an ``env:`` line sets it, each
        # ``lxc.environment.runtime`` line appends to it
        env: str | None = None
        for e in self.main:
            if e.key == "env":
                env = e.value
            elif e.key == "lxc.environment.runtime":
                env = e.value if env is None else f"{env}\0{e.value}"
        if env is not None:
            params["env"] = env
        else:
            params.pop("env", None)
        return params

    def raw_lxc_entries(self) -> list[tuple[str, str]]:
        """``lxc.*`` entries other than the environment, for the local (root) path."""
        return [(k, v) for k, v in self.main.lxc() if k != "lxc.environment.runtime"]


def parse_pve_config(text: str) -> PveConfig:
    """Parse a pct.conf; every line is kept so that ``render()`` gives ``text`` back.

    Raises SpecError, with the line number, for a line parse_pct_config rejects:
    neither an option with a value, an accepted ``lxc.*`` key, a comment, a blank
    line, a ``[pve:pending]`` or ``[snapshot]`` header; ``delete:`` outside
    ``[pve:pending]``. Options unknown to PVE are kept (a newer PVE may know them).
    """
    final_newline = text.endswith("\n")
    lines = text.split("\n")
    if final_newline:
        lines.pop()
    cfg = PveConfig(final_newline=final_newline)
    section = cfg.main

    def fail(lineno: int, line: str, why: str) -> SpecError:
        return SpecError(f"pct.conf line {lineno}: {why}: {line!r}")

    for lineno, line in enumerate(lines, 1):
        if _PENDING.match(line):
            section = PveSection(line[1:].partition("]")[0], [], line)
            cfg.sections.append(section)
        elif m := _SNAPSHOT.match(line):
            section = PveSection(m.group(1), [], line)
            cfg.sections.append(section)
        elif line.startswith("["):
            raise fail(lineno, line, "not a [pve:pending] or [snapshot] section header")
        elif line.startswith("#"):
            section.entries.append(PveEntry("#", line[1:], line))
        elif _BLANK.match(line):
            section.entries.append(PveEntry("", "", line))
        elif m := _LXC.match(line):
            if problem := lxc_key_problem(m.group(1)):
                raise fail(lineno, line, problem)
            section.entries.append(PveEntry(m.group(1), m.group(3), line))
        elif m := _OPTION.match(line):
            key, value = m.group(1), m.group(2)
            if not value:
                raise fail(lineno, line, f"option {key!r} has no value")
            if key == "delete" and section.name.lower() != PENDING:
                raise fail(lineno, line, "'delete' is only allowed in [pve:pending]")
            section.entries.append(PveEntry(key, value, line))
        else:
            raise fail(lineno, line, "not 'key: value'")
    return cfg


# -- rendering a ContainerSpec -----------------------------------------------------------------

_MIB = 1 << 20


def env_line_problem(item: str) -> str | None:
    """Why ``item`` (``NAME=value``) cannot be an ``lxc.environment.runtime`` line, or None.

    PVE's ``env`` pattern wants ``\\w+=`` and no control character but tab
    (restore_oci_archive's ``$has_ctrl_char``: ``\\x00-\\x08``, ``\\x0a-\\x1f``, ``\\x7f``);
    parse_pct_config and LXC both trim trailing blanks, which would change the value.
    """
    name, eq, value = item.partition("=")
    if not eq or not _ENV_NAME.match(name):
        return f"its name {name!r} is not letters, digits and '_'"
    if m := PVE_CONTROL_CHARS.search(value):
        return f"its value contains the control character {m.group(0)!r}, which Proxmox refuses"
    if value != value.rstrip(" \t\v\f"):
        return "its value ends with blanks, which pct.conf and LXC trim"
    return None


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
    tags: Sequence[str] = ("lxcri",),
) -> PveConfig:
    """The Proxmox config for ``spec`` as container ``vmid``.

    ``rootfs_volume`` is the existing root volume (``local-zfs:subvol-100-disk-0``),
    else a new one is requested with PVE's ``STORAGE:SIZE_GB`` syntax. Named
    and anonymous volumes take their volume id from ``volume_ids`` (keyed by
    volume name, or target path for anonymous ones), else are allocated the
    same way. With ``state_dir`` (a host directory holding ``ctr/argv`` and ``ctr/env``)
    the entrypoint is the init shim and the state dir is bind-mounted at
    ``/.lxcri``, so any argv works; without it the argv is written inline as
    PVE 9.1's OCI import does (``pve_entrypoint``: its shell quoting where LXC
    reads that back right). The environment becomes ``lxc.environment.runtime``
    lines, first among the raw keys; the image's USER ``lxc.init.uid``,
    ``lxc.init.gid`` and ``lxc.init.groups`` as restore_oci_archive writes them
    (with the shim and its SETUID/SETGID capabilities, the shim switches from
    ``ctr/user`` instead); no-new-privileges has no PVE key and needs the shim.
    ``--device`` becomes ``devN`` (PVE passes a
    device at its host path only), ``--ulimit`` ``lxc.prlimit.*`` and
    ``--tmpfs`` a raw ``lxc.mount.entry``; ``--read-only`` is refused: PVE's
    ``rootfs`` has no read-only flag and it manages ``lxc.rootfs.*`` itself.
    """
    if not 100 <= vmid <= 999999999:
        raise SpecError(f"VMID {vmid} is out of range 100-999999999")
    if spec.read_only:
        raise SpecError("--read-only cannot be expressed in a Proxmox config (rootfs has no ro)")
    if spec.security.no_new_privileges and not state_dir:
        # lxc.no_new_privs is not among the lxc.* keys PVE accepts; only the shim can set it
        raise SpecError(
            "no-new-privileges cannot be expressed in a Proxmox config; use the init shim "
            "(pass state_dir)"
        )
    if spec.network.mode == "bridge" and spec.network.ip6 == "auto":
        # PVE refuses it (update_pct_config, update_lxc_config): "SLAAC is not supported
        # for host-managed network configuration", and app containers are host-managed
        raise SpecError(
            "IPv6 'auto' (SLAAC) cannot be used: Proxmox does not support it on a "
            "host-managed interface; give an address or dhcp"
        )
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
    m.set("entrypoint", init_shim_path if state_dir else pve_entrypoint(spec.args))
    features = {
        "nesting": True if sec.nesting else None,
        "keyctl": True if sec.keyctl and sec.unprivileged else None,
        "fuse": True if sec.fuse else None,
        "mknod": True if sec.mknod and sec.unprivileged else None,
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
            "trunks": ";".join(map(str, net.trunks)) or None,
            "rate": f"{net.rate:.3f}".rstrip("0").rstrip(".") if net.rate else None,
            "firewall": True if net.firewall else None,
            # app containers have no network manager: the host configures the address
            "host-managed": True,
        }
        m.set("net0", render_property_string(nic, None, ("name",)))
    if spec.restart.name in ("always", "unless-stopped"):
        m.set("onboot", 1)
    m.set("ostype", "unmanaged")
    m.set("rootfs", rootfs_volume or f"{storage}:{rootfs_size_gb}")
    for tag in tags:
        if not _TAG.match(tag):
            raise SpecError(f"tag {tag!r} is not a Proxmox tag (letters, digits, _ - + .)")
    if tags:
        m.set("tags", ";".join(tags))
    if net.dns_search:
        m.set("searchdomain", " ".join(net.dns_search))
    m.set("unprivileged", 1 if sec.unprivileged else 0)
    if sec.unprivileged and tuple(sec.idmaps) != DEFAULT_IDMAPS:  # PVE writes its default itself
        for idm in sec.idmaps:
            m.add("lxc.idmap", f"{idm.kind} {idm.start} {idm.host} {idm.count}")

    # raw lxc keys, written after the options in restore_oci_archive's order: the
    # environment (write_pct_config puts it before the others), user, cwd, stop signal
    for item in spec.env:
        problem = env_line_problem(item)
        if problem is None:
            m.add("lxc.environment.runtime", item)
        elif not state_dir:  # with the shim, it sets the variable from ctr/env instead
            name = item.partition("=")[0]
            raise SpecError(
                f"environment variable {name!r} cannot be stored in pct.conf: {problem}; "
                "use the init shim (pass state_dir)"
            )
    user = spec.user
    if (not state_dir or not sec.shim_sets_ids) and (user.uid, user.gid, user.additional_gids) != (
        0,
        0,
        (),
    ):
        # the image's USER; with the shim and its capabilities, the shim switches (ctr/user)
        m.add("lxc.init.uid", str(user.uid))
        m.add("lxc.init.gid", str(user.gid))
        if user.additional_gids:
            m.add("lxc.init.groups", ",".join(str(g) for g in user.additional_gids))
    m.add("lxc.init.cwd", spec.working_dir)
    m.add("lxc.signal.halt", spec.stop_signal)
    if state_dir:
        state_src = fstab_escape(state_dir)
        m.add(
            "lxc.mount.entry", f"{state_src} {STATE_MOUNT.lstrip('/')} none bind,ro,create=dir 0 0"
        )
    if sec.capabilities is not None:
        dropped = sorted(KNOWN_CAPS - set(sec.capabilities))
        if dropped:
            m.add("lxc.cap.drop", " ".join(c.lower() for c in dropped))
    if sec.seccomp not in ("default", "unconfined"):
        if sec.seccomp_unsupported or (
            sec.seccomp_profile and not _is_lxc_file(sec.seccomp, sec.seccomp_profile)
        ):
            raise SpecError(
                f"--security-opt seccomp={sec.seccomp}: a Proxmox container reads its profile "
                "from the host at each start; give a profile in LXC's format there (Docker/OCI "
                "JSON is translated on the lxc backend only)"
            )
        m.add("lxc.seccomp.profile", sec.seccomp)
    if sec.apparmor_profile:
        m.add("lxc.apparmor.profile", sec.apparmor_profile)
    if sec.selinux_context:
        m.add("lxc.selinux.context", sec.selinux_context)
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


def _is_lxc_file(path: str, profile: str) -> bool:
    """Whether the profile file at ``path`` is the LXC text ``profile`` was read from."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head in (b"1\n", b"2\n") and profile.startswith(head.decode())
