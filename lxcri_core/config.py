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
    #: Parallel layer downloads per pull.
    parallel_downloads: int = 4
    #: Log level: debug, info, warning, error. Env: ``LXCRI_LOG_LEVEL``.
    log_level: str = "warning"

    @property
    def image_store(self) -> Path:
        """The OCI image layout that holds every pulled or imported image."""
        return self.root / "images"

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with the given fields replaced (``None`` values ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def _as_path(value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"config field {key!r} must be a non-empty path, got {value!r}")
    return Path(value)


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config field {key!r} must be a list of strings")
    return tuple(value)


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
    }
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
    kw: dict[str, Any] = {}
    for key in ("root", "auth_file", "certs_dir"):
        if key in data:
            kw[key] = _as_path(data[key], key)
    if "storage" in data:
        if data["storage"] not in ("auto", "dir", "overlay", "zfs"):
            raise ConfigError(f"{source}: storage must be auto, dir, overlay or zfs")
        kw["storage"] = data["storage"]
    for key in ("zfs_pool", "log_level", "bridge", "bridge_subnet", "bridge_subnet6"):
        if key in data:
            if not isinstance(data[key], str):
                raise ConfigError(f"{source}: {key} must be a string")
            kw[key] = data[key]
    if "parallel_downloads" in data:
        n = data["parallel_downloads"]
        if not isinstance(n, int) or not 1 <= n <= 64:
            raise ConfigError(f"{source}: parallel_downloads must be an integer from 1 to 64")
        kw["parallel_downloads"] = n
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
    if text.strip():
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
    cfg = cfg.with_overrides(**env_over).with_overrides(**flags)
    if cfg.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log level {cfg.log_level!r} is not debug, info, warning or error")
    if cfg.storage not in ("auto", "dir", "overlay", "zfs"):
        raise ConfigError(f"storage must be auto, dir, overlay or zfs, not {cfg.storage!r}")
    return cfg
