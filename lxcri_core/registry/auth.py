"""Registry credentials: where they are found, and how ``lxcri login`` stores them.

Lookup order (first hit wins), as the issue asks:

1. ``--creds-file``: an auth.json / docker ``config.json``, or a one-line
   ``USER:PASSWORD`` file that applies to whatever registry is contacted;
2. lxcri's own auth file (``cfg.auth_file``, env ``LXCRI_AUTH_FILE``), written
   by ``lxcri login``;
3. ``auths:`` in lxcri's config file;
4. containers' auth.json: ``$REGISTRY_AUTH_FILE``, else
   ``$XDG_RUNTIME_DIR/containers/auth.json``;
5. docker's ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``.

Keys in those files may carry a scheme and a path (docker stores docker.io
as ``https://index.docker.io/v1/``); podman allows ``host/namespace`` keys
for per-repository credentials, so the most specific key wins. Credential
helpers (``credsStore``) are not run.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lxcri_core.config import Config, Credential
from lxcri_core.errors import ConfigError
from lxcri_core.fsutil import atomic_write, flocked
from lxcri_core.log import get_logger

log = get_logger(__name__)

#: Spellings of Docker Hub in credential files; all mean ``docker.io``.
DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")
#: The key docker itself writes for Docker Hub.
DOCKER_HUB_LEGACY_KEY = "https://index.docker.io/v1/"


def normalize_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; ``host:5000/ns`` kept as is."""
    key = re.sub(r"^[a-z]+://", "", key.strip()).rstrip("/")
    host, sep, path = key.partition("/")
    if path in ("v1", "v2"):
        path, sep = "", ""
    host = host.lower()
    if host in DOCKER_HUB_ALIASES:
        host = "docker.io"
    return host + sep + path


def _decode_entry(entry: Any, source: str) -> Credential | None:
    if isinstance(entry, Credential):  # from the config's ``auths``
        return entry or None
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"])).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{source}: an 'auth' entry is not base64 of user:password") from None
        return Credential(user, password)
    if entry.get("username") or entry.get("password"):
        return Credential(str(entry.get("username", "")), str(entry.get("password", "")))
    return None


def _match(auths: Mapping[str, Any], host: str, repository: str, source: str) -> Credential | None:
    """The entry for the most specific key covering ``host/repository``."""
    by_key = {normalize_host(k): v for k, v in auths.items()}
    parts = repository.split("/") if repository else []
    for n in range(len(parts), -1, -1):
        key = "/".join([host, *parts[:n]])
        if key in by_key:
            cred = _decode_entry(by_key[key], source)
            if cred:
                return cred
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ConfigError(f"cannot read credentials file {path}: {e.strerror}") from None
    if not text.strip():
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"credentials file {path} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"credentials file {path} must hold a JSON object")
    return doc


def _from_file(path: Path, host: str, repository: str) -> Credential | None:
    doc = _read_json(path)
    if doc is None:
        return None
    auths = doc.get("auths") or {}
    if not isinstance(auths, dict):
        raise ConfigError(f"credentials file {path}: 'auths' must be an object")
    return _match(auths, host, repository, str(path))


def read_creds_file(path: Path, host: str, repository: str = "") -> Credential | None:
    """Credentials from a ``--creds-file``: auth.json format, or one ``USER:PASSWORD`` line."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read --creds-file {path}: {e.strerror}") from None
    if text.lstrip().startswith("{"):
        return _from_file(path, host, repository)
    line = text.strip().splitlines()[0] if text.strip() else ""
    user, sep, password = line.partition(":")
    if not sep or not user:
        raise ConfigError(
            f"--creds-file {path} must be an auth.json or hold one line USER:PASSWORD"
        )
    return Credential(user, password)


def _containers_auth_file(env: Mapping[str, str]) -> Path | None:
    if env.get("REGISTRY_AUTH_FILE"):
        return Path(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        return Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return None


def _docker_config_file(env: Mapping[str, str]) -> Path:
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]) / "config.json"
    return Path(env.get("HOME") or Path.home()) / ".docker" / "config.json"


def _sources(cfg: Config, env: Mapping[str, str]) -> Iterator[tuple[str, Path | None]]:
    yield "lxcri auth file", cfg.auth_file
    yield "config auths", None
    containers = _containers_auth_file(env)
    if containers is not None:
        yield "containers auth.json", containers
    yield "docker config", _docker_config_file(env)


def find_credentials(
    cfg: Config,
    host: str,
    repository: str = "",
    *,
    creds_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Credential | None:
    """The credentials for ``host`` (and ``repository``), or None for anonymous access."""
    env = os.environ if env is None else env
    host = normalize_host(host)
    if creds_file is not None:
        cred = read_creds_file(creds_file, host, repository)
        if cred:
            return cred
    for what, path in _sources(cfg, env):
        if path is None:
            cred = _match(cfg.auths, host, repository, "config auths")
        else:
            cred = _from_file(path, host, repository)
        if cred:
            log.debug("credentials found", registry=host, source=what)
            return cred
    return None


def _auth_lock(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


def store_credentials(path: Path, host: str, cred: Credential) -> None:
    """Add or replace ``host``'s entry in the auth.json at ``path`` (mode 0600)."""
    host = normalize_host(host)
    with flocked(_auth_lock(path)):
        doc = _read_json(path) or {}
        auths = doc.setdefault("auths", {})
        if not isinstance(auths, dict):
            raise ConfigError(f"credentials file {path}: 'auths' must be an object")
        for key in [k for k in auths if normalize_host(k) == host]:
            del auths[key]
        token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode()
        auths[host] = {"auth": token}
        atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)


def remove_credentials(path: Path, host: str) -> bool:
    """Drop ``host``'s entry from the auth.json at ``path``; False if there was none."""
    host = normalize_host(host)
    with flocked(_auth_lock(path)):
        doc = _read_json(path)
        auths = (doc or {}).get("auths")
        if not isinstance(auths, dict):
            return False
        keys = [k for k in auths if normalize_host(k) == host]
        if not keys:
            return False
        for key in keys:
            del auths[key]
        atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode(), mode=0o600)
    return True


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split ``WWW-Authenticate: Bearer realm="..",service=".."`` into scheme and params."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^\s,]*))', rest)
    }
    return scheme.lower(), params
