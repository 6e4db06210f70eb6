"""``login`` / ``logout``: verify credentials against a registry, keep them in auth.json."""

from __future__ import annotations

import re

from lxcri_core.config import Config, Credential
from lxcri_core.errors import AuthError, ConfigError, RegistryError
from lxcri_core.log import get_logger
from lxcri_core.registry.auth import normalize_host, remove_credentials, store_credentials
from lxcri_core.registry.client import RegistryClient, endpoint

log = get_logger(__name__)


def registry_host(registry: str) -> str:
    """``https://Host:5000/v2/`` -> ``host:5000``; docker.io spellings -> ``docker.io``."""
    host = normalize_host(registry).split("/", 1)[0]
    # normalize_host strips edge whitespace; a control character is a typo or a trick
    if (
        not registry.isprintable()
        or not host
        or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]+)?|\[[0-9a-fA-F:]+\](:[0-9]+)?", host)
    ):
        raise ConfigError(f"invalid registry {registry!r}: expected HOST[:PORT]")
    return host


def verify_credentials(cfg: Config, host: str, cred: Credential, *, insecure: bool) -> None:
    """Raise AuthError unless the registry accepts ``cred``."""
    with RegistryClient(cfg, endpoint(cfg, host, insecure=insecure), cred) as client:
        # The first request learns the challenge; a token (or Basic) request
        # then proves the credentials. Scope-less tokens are what docker asks for.
        resp = client.request("GET", "/v2/", scope="")
        code = resp.status_code
        if code in (200, 401, 403):
            resp.close()  # its body is not needed: never read
        if code == 200 and client.auth_scheme is None:
            log.warning("registry needs no credentials; storing them anyway", registry=host)
            return
        if code in (401, 403):
            raise AuthError(
                f"registry {host} refused the credentials of {cred.username!r} (HTTP {code});"
                " check the username and password"
            )
        client.check(resp, "the API root /v2/", "", (200,))


def login(
    cfg: Config, registry: str, username: str, password: str, *, insecure: bool = False
) -> None:
    """Check ``username``/``password`` against ``registry``, then store them (mode 0600)."""
    host = registry_host(registry)
    if not username or not password:
        raise AuthError(f"login to {host} needs a username and a password")
    cred = Credential(username, password)
    try:
        verify_credentials(cfg, host, cred, insecure=insecure)
    except AuthError:
        raise
    except RegistryError as e:
        raise RegistryError(f"cannot log in to {host}: {e}") from None
    store_credentials(cfg.auth_file, host, cred)
    log.info("logged in", registry=host, username=username)


def logout(cfg: Config, registry: str) -> bool:
    """Forget the stored credentials for ``registry``; False if there were none."""
    return remove_credentials(cfg.auth_file, registry_host(registry))
