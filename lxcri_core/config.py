"""lxcri's configuration: ``/etc/lxcri/config.yaml``, then env, then flags.

Precedence is flags > environment > file > defaults. The file's path itself
comes from ``--config``, else ``LXCRI_CONFIG``, else ``/etc/lxcri/config.yaml``;
a missing file at the default path is fine, a missing file that was asked
for explicitly is an error. Every field is documented where it is defined.

Example file::

    root: /var/lib/lxcri
    storage: zfs
    zfs_pool: rpool/data
    registries:
      insecure: ["127.0.0.1:5000"]
      mirrors:
        docker.io: ["mirror.example.lan:5000"]
    auths:
      registry.example.com: {username: bot, password: s3cret}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxcri_core.errors import ConfigError
from lxcri_core.sizes import parse_size

DEFAULT_CONFIG_PATH = Path("/etc/lxcri/config.yaml")
DEFAULT_ROOT = Path("/var/lib/lxcri")


@dataclass(frozen=True)
class Credential:
    """A username/password (or identity token) for one registry."""

    username: str = ""
    #: Never logged; ``repr`` hides it.
    password: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.username or self.password)


@dataclass(frozen=True)
class Config:
    """Settings of one lxcri invocation."""

    #: State root: the image store lives in ``root/images``, layer chains and
    #: container state below it too. Env: ``LXCRI_ROOT``.
    root: Path = DEFAULT_ROOT
    #: Storage backend for root filesystems: ``auto`` (overlay where the
    #: kernel has it, else dir), ``dir``, ``overlay`` or ``zfs``.
    storage: str = "auto"
    #: ZFS dataset under which the zfs backend keeps layer chains and
    #: container volumes (Proxmox's zfspool storage, e.g. ``rpool/data``).
    zfs_pool: str = ""
    #: Registries (``host[:port]``) reached over plain http. Also ``--insecure``.
    insecure_registries: tuple[str, ...] = ()
    #: Pull-through mirrors tried in order before the registry itself:
    #: ``{"docker.io": ("mirror.lan:5000",)}``.
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Credentials per registry host, used after --creds-file and the
    #: auth.json/docker config files.
    auths: Mapping[str, Credential] = field(default_factory=dict)
    #: Where ``lxcri login`` stores credentials (mode 0600). Env: ``LXCRI_AUTH_FILE``.
    auth_file: Path = Path("/etc/lxcri/auth.json")
    #: docker-style certs.d: ``certs_dir/HOST[:PORT]/ca.crt`` is the CA for
    #: that registry.
    certs_dir: Path = Path("/etc/lxcri/certs.d")
    #: The bridge lxcri creates and manages on plain LXC hosts (not on Proxmox,
    #: where containers use the admin's bridges). Env: ``LXCRI_BRIDGE``.
    bridge: str = "lxcri0"
    #: Its IPv4 subnet; lxcri assigns container addresses from it, the first
    #: host address is the gateway. Env: ``LXCRI_BRIDGE_SUBNET``.
    bridge_subnet: str = "10.88.0.0/16"
    #: An IPv6 subnet (a ULA /64, e.g. ``fd88::/64``) for the bridge too; empty
    #: means IPv4 only. Containers then get an address from both, and published
    #: ports answer on IPv6 as well. Env: ``LXCRI_BRIDGE_SUBNET6``.
    bridge_subnet6: str = ""
    #: How the host end of a plain-LXC container's veth is named: ``proxmox``
    #: (``vethVMIDi0``, as Proxmox names it) or ``lxc`` (LXC's random ``vethXXXXXX``,
    #: for hosts where several lxcri roots hand out the same VMIDs: their veth
    #: names would clash). Env: ``LXCRI_VETH_NAMES``.
    veth_names: str = "proxmox"
    #: Parallel layer downloads per pull.
    parallel_downloads: int = 4
    #: Log level: debug, info, warning, error. Env: ``LXCRI_LOG_LEVEL``.
    log_level: str = "warning"
    #: Format of log lines on stderr: ``text`` (one readable line each, for
    #: people) or ``json`` (one JSON object a line, for a collector). Under
    #: systemd (the journal on stderr) records go to the journal with their
    #: fields when python3-systemd is installed, else as JSON lines.
    #: Env: ``LXCRI_LOG_FORMAT``.
    log_format: str = "text"
    #: Where ``lxcri exporter`` listens (``HOST:PORT``, ``[V6]:PORT``); loopback by
    #: default: the metrics name every container. Env: ``LXCRI_EXPORTER_LISTEN``.
    exporter_listen: str = "127.0.0.1:9464"
    #: PEM certificate of the exporter: it then speaks HTTPS only (with exporter_tls_key).
    exporter_tls_cert: Path | None = None
    #: PEM key of exporter_tls_cert (both or neither).
    exporter_tls_key: Path | None = None
    #: Seconds the exporter keeps what it read of storage (``zfs list``, ``pvesm
    #: status`` are processes; sizes change slowly) before reading it again.
    exporter_storage_ttl: float = 60.0
    #: Seconds an operation waits for the image store or storage backend lock
    #: that another lxcri process holds (a long pull, prune or unpack) before it
    #: fails with a LockTimeout naming the lock; after a second it says it waits.
    lock_timeout: float = 300.0
    #: Root filesystems an upgraded container keeps besides its current one, each
    #: with its image and settings, for ``lxcri rollback`` (``lxcri history`` lists
    #: them); older ones are removed by the next upgrade. At least 1: an upgrade
    #: whose new image fails to start rolls back to the one before it.
    keep_generations: int = 2
    #: Space a layer unpack leaves free on the target filesystem: ``auto``
    #: (5 % of the filesystem or 1 GiB, whichever is smaller), ``N%`` of the
    #: filesystem, or a size in bytes (``K``/``M``/``G``/``T`` suffixes, ``0``
    #: for none). An unpack that would go below it stops with an UnpackError
    #: and removes what it wrote, instead of filling the disk the host needs;
    #: so does a blob download or archive import into the image store (a
    #: StoreError; the partial blob is removed).
    unpack_min_free: str = "auto"
    #: Hard cap on the bytes one layer may write (file data), 0 for none: a
    #: small compressed blob can declare files of any size.
    max_layer_bytes: int = 0
    #: Where containers are created: ``lxc`` (plain LXC on this host),
    #: ``pve-local`` (a Proxmox VE host, as root: pct and /etc/pve) or
    #: ``pve-api`` (any Proxmox VE node through its API). Empty: pve-local
    #: where ``pve_root`` exists, else lxc. Env: ``LXCRI_BACKEND``; flag ``--backend``.
    backend: str = ""
    #: The Proxmox cluster file system (``/etc/pve``); another path only for
    #: tests and the simulator. Env: ``LXCRI_PVE_ROOT``.
    pve_root: Path = Path("/etc/pve")
    #: The Proxmox API for pve-api, e.g. ``https://pve1:8006``. Env: ``LXCRI_PVE_URL``.
    pve_url: str = ""
    #: A file holding one line ``USER@REALM!TOKENID=SECRET`` (mode 0600; never
    #: on argv). Env: ``LXCRI_PVE_TOKEN_FILE``.
    pve_token_file: Path | None = None
    #: CA certificate (PEM) that signed the API's certificate. Env: ``LXCRI_PVE_CA``.
    pve_ca_file: Path | None = None
    #: Node to create containers on; empty: this host's node (pve-local) or the
    #: least-loaded online node (pve-api). Env: ``LXCRI_PVE_NODE``.
    pve_node: str = ""
    #: Verify the API's TLS certificate (turn off only for a throw-away lab).
    pve_verify_tls: bool = True
    #: Proxmox storage for container root filesystems (``local-zfs``: the
    #: image's layer datasets are cloned; a dir storage: a subvol directory).
    #: Empty: ``local-zfs`` when it exists, else ``local``. Env: ``LXCRI_PVE_STORAGE``.
    pve_storage: str = ""
    #: Bridge of a container's ``net0`` on Proxmox. Env: ``LXCRI_PVE_BRIDGE``.
    pve_bridge: str = "vmbr0"
    #: Where lxcri installs its Proxmox hookscript (a snippets storage volume).
    pve_hookscript: str = "local:snippets/lxcri-hookscript"
    #: Where pve-container's LXC keeps the running CTs (``lxc-info -P``); another
    #: path only for the simulator. Env: ``LXCRI_PVE_LXCPATH``.
    pve_lxcpath: Path = Path("/var/lib/lxc")
    #: The user (``USER@REALM``) pve-api logs in as with a password, when no
    #: token is given. Env: ``LXCRI_PVE_USER``.
    pve_user: str = "root@pam"
    #: A file (mode 0600) holding that user's password, for pve-api without a
    #: token. Env: ``LXCRI_PVE_PASSWORD_FILE`` (``LXCRI_PVE_PASSWORD``: the password itself).
    pve_password_file: Path | None = None
    #: Storage (content ``vztmpl``) pve-api uploads images to as oci-archives;
    #: empty: ``local`` when it can hold templates, else the first that can.
    #: Env: ``LXCRI_PVE_TEMPLATE_STORAGE``.
    pve_template_storage: str = ""
    #: Size of a CT's root disk on Proxmox, in GiB (the ``size=`` of ``rootfs``).
    #: Env: ``LXCRI_PVE_ROOTFS_SIZE``.
    pve_rootfs_size: int = 8
    #: Seconds a Proxmox worker task (create, start, destroy...) may take before
    #: lxcri gives up on it. Env: ``LXCRI_PVE_TASK_TIMEOUT``.
    pve_task_timeout: float = 900.0
    #: Seconds between two reloads of ``lxcri tui``'s container list (0.2 to 3600);
    #: flag ``lxcri tui --refresh``.
    tui_refresh: float = 2.0
    #: ``lxcri tui``'s colour theme: ``dark`` or ``light``; flag ``--theme``.
    tui_theme: str = "dark"
    #: containerd's configuration directory: ``lxcri containerd-config --write``
    #: puts the drop-in in ``conf.d/`` there and imports it from ``config.toml``.
    #: Env: ``LXCRI_CONTAINERD_CONFIG_DIR``.
    containerd_config_dir: Path = Path("/etc/containerd")
    #: The name lxcri-runtime is registered under in containerd's CRI runtimes
    #: (a pod's RuntimeClass handler). Env: ``LXCRI_RUNTIME_NAME``.
    runtime_name: str = "lxcri"

    @property
    def image_store(self) -> Path:
        """The OCI image layout that holds every pulled or imported image."""
        return self.root / "images"

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with the given fields replaced (``None`` values ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The platform backends ``backend`` may name.
BACKENDS = ("lxc", "pve-local", "pve-api")
#: Environment variables that set string fields (flags > env > file).
_ENV_STRINGS = {
    "LXCRI_BACKEND": "backend",
    "LXCRI_PVE_URL": "pve_url",
    "LXCRI_PVE_NODE": "pve_node",
    "LXCRI_PVE_STORAGE": "pve_storage",
    "LXCRI_PVE_BRIDGE": "pve_bridge",
    "LXCRI_PVE_USER": "pve_user",
    "LXCRI_PVE_TEMPLATE_STORAGE": "pve_template_storage",
    "LXCRI_VETH_NAMES": "veth_names",
    "LXCRI_LOG_FORMAT": "log_format",
    "LXCRI_EXPORTER_LISTEN": "exporter_listen",
    "LXCRI_RUNTIME_NAME": "runtime_name",
}
_ENV_PATHS = {
    "LXCRI_PVE_ROOT": "pve_root",
    "LXCRI_PVE_TOKEN_FILE": "pve_token_file",
    "LXCRI_PVE_CA": "pve_ca_file",
    "LXCRI_PVE_LXCPATH": "pve_lxcpath",
    "LXCRI_PVE_PASSWORD_FILE": "pve_password_file",
    "LXCRI_CONTAINERD_CONFIG_DIR": "containerd_config_dir",
}


def min_free_bytes(spec: str, fs_bytes: int) -> int:
    """The reserve ``unpack_min_free`` asks for on a filesystem of ``fs_bytes``."""
    spec = spec.strip().upper()
    if spec == "AUTO":
        return min(fs_bytes * 5 // 100, 1 << 30)
    if spec.endswith("%"):
        return int(fs_bytes * float(spec[:-1]) / 100)
    return parse_size(spec)


def valid_min_free(spec: str) -> bool:
    try:
        pct = spec.strip().endswith("%")
        n = min_free_bytes(spec, 1 << 40)
    except (ValueError, OverflowError):
        return False
    return n >= 0 and (not pct or n <= 1 << 40)


def _as_path(value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config field {key!r} must be a non-empty path, got {value!r}")
    return Path(value)


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config field {key!r} must be a list of strings")
    return tuple(value)


def _rootfs_size(v: Any, source: str) -> int:
    n = int(v) if isinstance(v, str) and v.isdigit() else v
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 131072:
        raise ConfigError(f"{source}: pve_rootfs_size must be a size in GiB from 1 to 131072")
    return n


def _task_timeout(v: Any, source: str) -> float:
    try:
        t = float(v) if isinstance(v, (str, int, float)) and not isinstance(v, bool) else -1.0
    except ValueError:
        t = -1.0
    if not 0 < t <= 86400:
        raise ConfigError(f"{source}: pve_task_timeout must be a number of seconds from 0 to 86400")
    return t


def parse_config(data: Mapping[str, Any], source: str = "config") -> Config:
    """Build a Config from the mapping a YAML file holds; unknown keys are errors."""
    known = {
        "root",
        "storage",
        "bridge",
        "bridge_subnet",
        "bridge_subnet6",
        "zfs_pool",
        "registries",
        "auths",
        "auth_file",
        "certs_dir",
        "parallel_downloads",
        "log_level",
        "lock_timeout",
        "keep_generations",
        "unpack_min_free",
        "max_layer_bytes",
        "backend",
        "pve_root",
        "pve_url",
        "pve_token_file",
        "pve_ca_file",
        "pve_node",
        "pve_verify_tls",
        "pve_storage",
        "pve_bridge",
        "pve_hookscript",
        "pve_lxcpath",
        "pve_user",
        "pve_password_file",
        "pve_template_storage",
        "pve_rootfs_size",
        "pve_task_timeout",
        "veth_names",
        "log_format",
        "exporter_listen",
        "exporter_tls_cert",
        "exporter_tls_key",
        "exporter_storage_ttl",
        "tui_refresh",
        "tui_theme",
        "containerd_config_dir",
        "runtime_name",
    }
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
    kw: dict[str, Any] = {}
    for key in (
        "root",
        "auth_file",
        "certs_dir",
        "pve_root",
        "pve_token_file",
        "pve_ca_file",
        "pve_lxcpath",
        "pve_password_file",
        "exporter_tls_cert",
        "exporter_tls_key",
        "containerd_config_dir",
    ):
        if key in data:
            kw[key] = _as_path(data[key], key)
    if "backend" in data:
        if data["backend"] not in BACKENDS:
            raise ConfigError(f"{source}: backend must be one of {', '.join(BACKENDS)}")
        kw["backend"] = data["backend"]
    if "pve_verify_tls" in data:
        if not isinstance(data["pve_verify_tls"], bool):
            raise ConfigError(f"{source}: pve_verify_tls must be true or false")
        kw["pve_verify_tls"] = data["pve_verify_tls"]
    if "storage" in data:
        if data["storage"] not in ("auto", "dir", "overlay", "zfs"):
            raise ConfigError(f"{source}: storage must be auto, dir, overlay or zfs")
        kw["storage"] = data["storage"]
    for key in (
        "zfs_pool",
        "log_level",
        "bridge",
        "bridge_subnet",
        "bridge_subnet6",
        "pve_url",
        "pve_node",
        "pve_storage",
        "pve_bridge",
        "pve_hookscript",
        "pve_user",
        "pve_template_storage",
        "veth_names",
        "log_format",
        "exporter_listen",
        "runtime_name",
    ):
        if key in data:
            if not isinstance(data[key], str):
                raise ConfigError(f"{source}: {key} must be a string")
            kw[key] = data[key]
    if "parallel_downloads" in data:
        n = data["parallel_downloads"]
        if not isinstance(n, int) or not 1 <= n <= 64:
            raise ConfigError(f"{source}: parallel_downloads must be an integer from 1 to 64")
        kw["parallel_downloads"] = n
    if "lock_timeout" in data:
        t = data["lock_timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 86400:
            raise ConfigError(f"{source}: lock_timeout must be a number of seconds from 0 to 86400")
        kw["lock_timeout"] = float(t)
    if "keep_generations" in data:
        n = data["keep_generations"]
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
            raise ConfigError(f"{source}: keep_generations must be an integer from 1 to 100")
        kw["keep_generations"] = n
    if "unpack_min_free" in data:
        v = data["unpack_min_free"]
        spec = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
        if not isinstance(spec, str) or not valid_min_free(spec):
            raise ConfigError(
                f"{source}: unpack_min_free must be auto, a percentage like 5% or a size "
                "like 1G or 0"
            )
        kw["unpack_min_free"] = spec
    if "exporter_storage_ttl" in data:
        t = data["exporter_storage_ttl"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 86400:
            raise ConfigError(
                f"{source}: exporter_storage_ttl must be a number of seconds from 0 to 86400"
            )
        kw["exporter_storage_ttl"] = float(t)
    if "pve_rootfs_size" in data:
        kw["pve_rootfs_size"] = _rootfs_size(data["pve_rootfs_size"], source)
    if "pve_task_timeout" in data:
        kw["pve_task_timeout"] = _task_timeout(data["pve_task_timeout"], source)
    if "tui_refresh" in data:
        t = data["tui_refresh"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.2 <= t <= 3600:
            raise ConfigError(f"{source}: tui_refresh must be a number of seconds from 0.2 to 3600")
        kw["tui_refresh"] = float(t)
    if "tui_theme" in data:
        if data["tui_theme"] not in ("dark", "light"):
            raise ConfigError(f"{source}: tui_theme must be dark or light")
        kw["tui_theme"] = data["tui_theme"]
    if "max_layer_bytes" in data:
        n = data["max_layer_bytes"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"{source}: max_layer_bytes must be a byte count, 0 for no limit")
        kw["max_layer_bytes"] = n
    regs = data.get("registries") or {}
    if not isinstance(regs, dict):
        raise ConfigError(f"{source}: registries must be a mapping")
    if "insecure" in regs:
        kw["insecure_registries"] = _str_list(regs["insecure"], "registries.insecure")
    if "mirrors" in regs:
        if not isinstance(regs["mirrors"], dict):
            raise ConfigError(f"{source}: registries.mirrors must be a mapping")
        kw["mirrors"] = {
            k: _str_list(v, f"registries.mirrors.{k}") for k, v in regs["mirrors"].items()
        }
    auths = data.get("auths") or {}
    if not isinstance(auths, dict):
        raise ConfigError(f"{source}: auths must be a mapping of registry to credentials")
    creds: dict[str, Credential] = {}
    for host, entry in auths.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{source}: auths.{host} must have username and password")
        creds[host] = Credential(str(entry.get("username", "")), str(entry.get("password", "")))
    if creds:
        kw["auths"] = creds
    return Config(**kw)


def config_to_dict(cfg: Config) -> dict[str, Any]:
    """``cfg`` as the mapping ``parse_config`` reads back to an equal Config.

    How a process lxcri starts (the container supervisor) gets the very
    config its parent had, ``--config`` file, env and flags included. It holds
    the credentials of ``auths``: write it 0600.
    """
    return {
        "root": str(cfg.root),
        "storage": cfg.storage,
        "zfs_pool": cfg.zfs_pool,
        "registries": {
            "insecure": list(cfg.insecure_registries),
            "mirrors": {k: list(v) for k, v in cfg.mirrors.items()},
        },
        "auths": {
            host: {"username": c.username, "password": c.password} for host, c in cfg.auths.items()
        },
        "auth_file": str(cfg.auth_file),
        "certs_dir": str(cfg.certs_dir),
        "bridge": cfg.bridge,
        "bridge_subnet": cfg.bridge_subnet,
        "bridge_subnet6": cfg.bridge_subnet6,
        "parallel_downloads": cfg.parallel_downloads,
        "log_level": cfg.log_level,
        "log_format": cfg.log_format,
    }


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **flags: Any,
) -> Config:
    """Load the configuration with flags > env > file > defaults precedence."""
    env = os.environ if env is None else env
    explicit = path or env.get("LXCRI_CONFIG")
    cfg_path = Path(explicit) if explicit else DEFAULT_CONFIG_PATH
    data: Mapping[str, Any] = {}
    try:
        text = cfg_path.read_text()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {cfg_path} does not exist") from None
        text = ""
    except OSError as e:
        raise ConfigError(f"cannot read config file {cfg_path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {cfg_path} is not UTF-8 text") from None
    # The shipped file is all comments (every setting commented out): it sets
    # nothing, and costs no YAML import on every start (hooks, completion).
    if any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
        import yaml  # only when there is a file: keeps start-up fast

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(e, "problem", None) or "syntax error"
            raise ConfigError(
                f"config file {cfg_path} is not valid YAML{where}: {problem}"
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {cfg_path} must hold a mapping")
        data = loaded
    cfg = parse_config(data, str(cfg_path))
    env_over: dict[str, Any] = {}
    if env.get("LXCRI_ROOT"):
        env_over["root"] = Path(env["LXCRI_ROOT"])
    if env.get("LXCRI_AUTH_FILE"):
        env_over["auth_file"] = Path(env["LXCRI_AUTH_FILE"])
    if env.get("LXCRI_LOG_LEVEL"):
        env_over["log_level"] = env["LXCRI_LOG_LEVEL"]
    if env.get("LXCRI_BRIDGE"):
        env_over["bridge"] = env["LXCRI_BRIDGE"]
    if env.get("LXCRI_BRIDGE_SUBNET"):
        env_over["bridge_subnet"] = env["LXCRI_BRIDGE_SUBNET"]
    if env.get("LXCRI_BRIDGE_SUBNET6"):
        env_over["bridge_subnet6"] = env["LXCRI_BRIDGE_SUBNET6"]
    if env.get("LXCRI_STORAGE"):
        env_over["storage"] = env["LXCRI_STORAGE"]
    for var, key in _ENV_STRINGS.items():
        if env.get(var):
            env_over[key] = env[var]
    for var, key in _ENV_PATHS.items():
        if env.get(var):
            env_over[key] = Path(env[var])
    if env.get("LXCRI_PVE_ROOTFS_SIZE"):
        env_over["pve_rootfs_size"] = _rootfs_size(
            env["LXCRI_PVE_ROOTFS_SIZE"], "LXCRI_PVE_ROOTFS_SIZE"
        )
    if env.get("LXCRI_PVE_TASK_TIMEOUT"):
        env_over["pve_task_timeout"] = _task_timeout(
            env["LXCRI_PVE_TASK_TIMEOUT"], "LXCRI_PVE_TASK_TIMEOUT"
        )
    cfg = cfg.with_overrides(**env_over).with_overrides(**flags)
    if cfg.veth_names not in ("proxmox", "lxc"):
        raise ConfigError(f"veth_names {cfg.veth_names!r} must be proxmox or lxc")
    if "@" not in cfg.pve_user:
        raise ConfigError(f"pve_user {cfg.pve_user!r} must be USER@REALM, e.g. root@pam")
    if cfg.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log level {cfg.log_level!r} is not debug, info, warning or error")
    if cfg.log_format not in ("text", "json"):
        raise ConfigError(f"log format {cfg.log_format!r} is not text or json")
    if (cfg.exporter_tls_cert is None) != (cfg.exporter_tls_key is None):
        raise ConfigError("exporter_tls_cert and exporter_tls_key go together: set both or neither")
    if cfg.storage not in ("auto", "dir", "overlay", "zfs"):
        raise ConfigError(f"storage must be auto, dir, overlay or zfs, not {cfg.storage!r}")
    if cfg.backend and cfg.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {cfg.backend!r}")
    return cfg
