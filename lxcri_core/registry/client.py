"""One registry endpoint spoken to over the OCI distribution API.

``RegistryClient`` owns a ``requests.Session`` (a connection pool sized for
parallel downloads), answers auth challenges (Bearer tokens per scope, or
Basic), retries 5xx, 429 and dropped connections with backoff, and turns
401/403/404/429 into errors from ``lxcri_core.errors`` that say what to do.

Transport: https, verified with ``certs_dir/HOST[:PORT]/ca.crt`` when that
exists (and ``client.cert``/``client.key`` as docker's certs.d); plain http
only for insecure registries. requests honours ``HTTPS_PROXY``/``NO_PROXY``.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lxcri_core import __version__
from lxcri_core.config import DEFAULT_CONFIG_PATH, Config, Credential
from lxcri_core.errors import (
    AuthError,
    LxcriError,
    NotFoundError,
    RateLimitError,
    RegistryError,
)
from lxcri_core.log import get_logger
from lxcri_core.registry.auth import parse_challenge
from lxcri_core.registry.body import MAX_SMALL_BODY, MAX_TOKEN_REPLY, read_capped, shown_url

if TYPE_CHECKING:
    import requests

log = get_logger(__name__)

DOCKER_HUB_API = "registry-1.docker.io"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_ATTEMPTS = 5
MAX_CONNECT_ATTEMPTS = 3
BACKOFF = 0.25  # seconds, doubled per attempt
MAX_RETRY_AFTER = 10.0
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
#: Redirects followed for one GET/HEAD (blobs are often served from a CDN).
MAX_REDIRECTS = 10


class Readable(Protocol):
    """An upload body read in pieces (a file, or a wrapper counting progress)."""

    def read(self, n: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Endpoint:
    """Where a registry host is reached: ``host`` as in references, ``base`` URL."""

    host: str
    base: str
    insecure: bool


def endpoint(cfg: Config, host: str, *, insecure: bool = False) -> Endpoint:
    """The endpoint for ``host``: http if insecure (flag or config), else https."""
    plain = insecure or host in cfg.insecure_registries
    api_host = DOCKER_HUB_API if host == "docker.io" else host
    return Endpoint(host, f"{'http' if plain else 'https'}://{api_host}", plain)


def endpoints(cfg: Config, host: str, *, insecure: bool = False) -> list[Endpoint]:
    """Configured mirrors of ``host`` (in order), then ``host`` itself."""
    mirrors = [endpoint(cfg, m) for m in cfg.mirrors.get(host, ())]
    return [*mirrors, endpoint(cfg, host, insecure=insecure)]


def _reason(e: BaseException) -> str:
    """The useful tail of a urllib3/requests error ("Connection refused"), not its repr chain."""
    text = str(e)
    for pattern in (r"\[SSL[^\]]*\]\s*([^()'\"]+)", r"\[Errno -?\d+\]\s*([^()'\"]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return text if len(text) < 200 else text[:200] + "..."


#: What OpenSSL says when the "TLS record" it reads is an HTTP reply ("HTTP/1.1 400"):
#: 1.1/3.0 call it a wrong version number, 3.2 and later a record layer failure.
_PLAIN_HTTP_SSL_REASONS = (
    "wrong version number",
    "wrong_version_number",
    "record layer failure",
    "record_layer_failure",
    "unknown protocol",
    "unknown_protocol",
)


def _plain_http_answer(e: BaseException) -> bool:
    """Whether a TLS handshake failed because the server spoke plain HTTP."""
    text = str(e).lower()
    return any(reason in text for reason in _PLAIN_HTTP_SSL_REASONS)


def _origin(url: str) -> tuple[str, str]:
    """``(scheme, host[:port])`` of ``url``, lower case, the default port left out."""
    parts = urllib.parse.urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # not a port: compare it as written
        return scheme, parts.netloc.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}.get(scheme):
        return scheme, host
    return scheme, f"{host}:{port}"


def _ca_for(certs_dir: Path, host: str) -> bool | str:
    """``certs_dir/HOST[:PORT]/ca.crt`` when it exists, else the system's CAs."""
    ca = certs_dir / host / "ca.crt"
    return str(ca) if ca.is_file() else True


class _Token:
    def __init__(self, value: str, expires_in: float) -> None:
        self.value = value
        # Refresh a little early so a long download does not start with a stale token.
        self.expires = time.monotonic() + max(expires_in - 10, 10)


def _retry_delay(resp: requests.Response | None, attempt: int) -> float:
    if resp is not None and resp.status_code == 429:
        try:
            return min(float(resp.headers.get("Retry-After", "")), MAX_RETRY_AFTER)
        except ValueError:
            pass
    return float(BACKOFF * (2**attempt))


@functools.cache
def _session_class() -> type[requests.Session]:
    import requests

    class Session(requests.Session):
        """A session that leaves redirects alone: requests reads a redirect's body
        whole to compute its next hop (even with ``allow_redirects=False``), and an
        endless body fills memory. ``RegistryClient._send`` follows them instead."""

        def resolve_redirects(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
            return iter(())

    return Session


class RegistryClient:
    """HTTP client for one registry endpoint; thread-safe for parallel blob transfers."""

    def __init__(
        self,
        cfg: Config,
        ep: Endpoint,
        credential: Credential | None = None,
        *,
        pool_size: int = 8,
    ) -> None:
        from requests.adapters import HTTPAdapter

        self.ep = ep
        self.credential = credential
        self.session = _session_class()()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 2), max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"lxcri/{__version__}"
        certs = cfg.certs_dir / ep.host
        self._certs_dir = cfg.certs_dir
        # Passed on every request: a session-level verify loses to $REQUESTS_CA_BUNDLE.
        self._verify = _ca_for(cfg.certs_dir, ep.host)
        if (certs / "client.cert").is_file() and (certs / "client.key").is_file():
            self.session.cert = (str(certs / "client.cert"), str(certs / "client.key"))
        self._lock = threading.Lock()
        self._scheme: str | None = None  # "bearer" or "basic", learnt from a challenge
        self._challenge: dict[str, str] = {}
        self._tokens: dict[str, _Token] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def auth_scheme(self) -> str | None:
        """``bearer`` or ``basic`` once the registry challenged us, else None."""
        return self._scheme

    # -- auth -------------------------------------------------------------------
    def _basic(self) -> str:
        import base64

        assert self.credential
        raw = f"{self.credential.username}:{self.credential.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _auth_header(self, scope: str) -> str | None:
        if self._scheme == "basic" and self.credential:
            return self._basic()
        if self._scheme == "bearer":
            with self._lock:
                tok = self._tokens.get(scope)
                if tok is None or tok.expires < time.monotonic():
                    tok = self._fetch_token(scope)
                    self._tokens[scope] = tok
            return f"Bearer {tok.value}"
        return None

    def _learn(self, resp: requests.Response, scope: str, sent: str | None) -> bool:
        """Take in a 401's challenge; True if a retry with new credentials makes sense."""
        scheme, params = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        with self._lock:
            if scheme == "bearer" and params.get("realm"):
                # A refused token may have expired server-side: fetch a fresh one
                # (the caller bounds how often).
                self._scheme, self._challenge = "bearer", params
                self._tokens.pop(scope, None)
                return True
            if scheme == "basic":
                self._scheme = "basic"
                return bool(self.credential) and sent is None
        return False

    def _fetch_token(self, scope: str) -> _Token:
        realm = self._challenge["realm"]
        params = {"service": self._challenge.get("service", "")}
        if scope:
            params["scope"] = scope
        auth = (self.credential.username, self.credential.password) if self.credential else None
        if auth and not self.ep.insecure and not realm.lower().startswith("https://"):
            # an https registry sending us to a plain-http token service would
            # put the password on the wire in clear text
            raise AuthError(
                f"registry {self.ep.host} names a plain-http token service ({realm}); "
                "refusing to send credentials there (list the registry as insecure to allow it)"
            )
        try:
            resp = self.session.get(
                realm,
                params=params,
                auth=auth,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                # The token service may live elsewhere (auth.docker.io): its own CA.
                verify=_ca_for(self._certs_dir, urllib.parse.urlsplit(realm).netloc),
                # never read whole: requests would hold an endless reply in memory
                stream=True,
                # requests reads a redirect's body whole; a token service does not redirect
                allow_redirects=False,
            )
        except OSError as e:
            raise RegistryError(
                f"cannot reach the token service {realm} of {self.ep.host}: {e}"
            ) from None
        if resp.status_code in (401, 403):
            resp.close()
            raise AuthError(self._denied_msg(scope, resp.status_code))
        if resp.status_code != 200:
            resp.close()
            raise RegistryError(
                f"token service {realm} of {self.ep.host} answered HTTP {resp.status_code}"
            )
        body = read_capped(resp, MAX_TOKEN_REPLY, f"the token reply of {self.ep.host}")
        try:
            doc = json.loads(body)
            value = str(doc.get("token") or doc.get("access_token") or "")
            expires_in = float(doc.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError):
            value, expires_in = "", 0.0
        if not value:
            raise RegistryError(f"token service {realm} of {self.ep.host} returned no token")
        log.debug("token fetched", registry=self.ep.host, scope=scope)
        return _Token(value, expires_in)

    def _denied_msg(self, scope: str, status: int) -> str:
        what = scope.split(":")[1] if scope.count(":") >= 2 else "the registry"
        if self.credential:
            return (
                f"registry {self.ep.host} refused the credentials of {self.credential.username!r}"
                f" for {what} (HTTP {status}); check them with `lxcri login {self.ep.host}`"
            )
        return (
            f"registry {self.ep.host} requires credentials for {what} (HTTP {status});"
            f" run `lxcri login {self.ep.host}` or pass --creds-file"
        )

    # -- requests ---------------------------------------------------------------
    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.ep.base + path

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: Callable[[], bytes | Readable] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one request, answering auth challenges and retrying transient failures.

        ``body`` is a factory so a retried upload starts from fresh data. The
        response is returned whatever its status, its body unread (read it with
        ``body.read_capped`` or ``body.iter_body``); use ``check`` next.
        """
        import requests

        url = self.url(path)
        # Credentials go to the registry's own origin only, as docker's per-host
        # authorizer does: an upload Location on another host (or plain http) gets none.
        own = _origin(url) == _origin(self.ep.base)
        reauth = 0
        attempt = 0
        while True:
            hdrs = dict(headers or {})
            sent = self._auth_header(scope) if own else None
            if sent:
                hdrs["Authorization"] = sent
            resp: requests.Response | None = None
            try:
                resp = self._send(method, url, hdrs, body, params)
            except requests.exceptions.SSLError as e:
                if _plain_http_answer(e):
                    raise RegistryError(
                        f"{self.ep.host} answered plain HTTP to a TLS connection: use --insecure"
                        f" or add it to registries.insecure in {DEFAULT_CONFIG_PATH}"
                    ) from None
                raise RegistryError(
                    f"TLS verification of registry {self.ep.host} failed ({_reason(e)}); put its CA"
                    f" certificate in certs.d/{self.ep.host}/ca.crt, or use --insecure for"
                    " a plain-http registry"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                # Fewer tries than for HTTP errors: an endpoint that refuses
                # connections rarely comes back within seconds, and a mirror
                # that is down should not delay the fallback for long.
                if attempt + 1 >= MAX_CONNECT_ATTEMPTS:
                    raise RegistryError(
                        f"cannot reach registry {self.ep.host} at {self.ep.base}: {_reason(e)}"
                    ) from None
                log.info("connection failed, retrying", registry=self.ep.host, error=_reason(e))
            if resp is not None:
                if (
                    resp.status_code == 401
                    and own
                    and reauth < 2
                    and self._learn(resp, scope, sent)
                ):
                    resp.close()
                    reauth += 1
                    continue
                if resp.status_code not in RETRY_STATUS or attempt + 1 >= MAX_ATTEMPTS:
                    return resp
                log.info("transient HTTP status, retrying", status=resp.status_code, url=url)
                resp.close()
            time.sleep(_retry_delay(resp, attempt))
            attempt += 1

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Callable[[], bytes | Readable] | None,
        params: Mapping[str, str] | None,
    ) -> requests.Response:
        """One request, its body unread; redirects of a GET or HEAD are followed here.

        requests would read each redirect's body whole (an endless one fills
        memory) and verify a CDN against the registry's own CA.
        """
        base = urllib.parse.urlsplit(self.ep.base).netloc
        for _ in range(MAX_REDIRECTS + 1):
            here = urllib.parse.urlsplit(url)
            resp = self.session.request(
                method,
                url,
                headers=headers,
                data=body() if body else None,
                stream=True,
                allow_redirects=False,
                params=params,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
                verify=self._verify
                if here.netloc == base
                else _ca_for(self._certs_dir, here.netloc),
            )
            target = self.session.get_redirect_target(resp) if method in ("GET", "HEAD") else None
            if not target:
                return resp
            resp.close()
            url = urllib.parse.urljoin(resp.url, target)
            params = None  # the Location carries its own query
            there = urllib.parse.urlsplit(url)
            if there.scheme not in ("http", "https"):
                raise RegistryError(
                    f"registry {self.ep.host} redirected to {shown_url(url)!r},"
                    " which is not http(s)"
                )
            if (there.scheme, there.netloc) != (here.scheme, here.netloc):
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        raise RegistryError(
            f"registry {self.ep.host} redirected {method} {shown_url(url)}"
            f" more than {MAX_REDIRECTS} times"
        )

    def check(self, resp: requests.Response, what: str, scope: str, ok: tuple[int, ...]) -> None:
        """Raise the right error unless ``resp``'s status is in ``ok``."""
        code = resp.status_code
        if code in ok:
            return
        detail = _error_detail(resp)
        resp.close()
        if code in (401, 403):
            raise AuthError(self._denied_msg(scope, code) + detail)
        if code == 404:
            raise NotFoundError(f"{what} not found on registry {self.ep.host} (HTTP 404){detail}")
        if code == 429:
            raise RateLimitError(
                f"registry {self.ep.host} is rate-limiting requests (HTTP 429) for {what};"
                f" wait and retry, or log in for a higher limit{detail}"
            )
        raise RegistryError(f"registry {self.ep.host} answered HTTP {code} for {what}{detail}")

    def ping(self) -> None:
        """``GET /v2/``: checks that this is a registry and learns its auth scheme."""
        resp = self.request("GET", "/v2/", scope="")
        code = resp.status_code
        if code in (200, 401, 404):
            resp.close()  # its body is not needed: never read
        if code in (200, 401):
            return  # 401 even after the challenge: scope-less access may still be refused
        if code == 404:
            raise RegistryError(
                f"{self.ep.base} does not speak the registry API v2 (GET /v2/ gave HTTP 404)"
            )
        self.check(resp, "the API root /v2/", "", (200,))


def _error_detail(resp: requests.Response) -> str:
    """The registry's own error message (``{"errors":[{"code","message"}]}``), if any."""
    if resp.request.method == "HEAD":
        return ""
    try:
        doc: Any = json.loads(read_capped(resp, MAX_SMALL_BODY, "an error reply"))
        errs = doc.get("errors") or []
        msgs = [
            _printable(f"{e.get('code', '')}: {e.get('message', '')}"[:300])
            for e in errs
            if isinstance(e, dict)
        ][:5]
    except (LxcriError, ValueError, AttributeError, TypeError):
        return ""
    return f" [{'; '.join(msgs)}]" if msgs else ""


def _printable(text: str) -> str:
    """A registry's text made safe for one line of a message (no control characters)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def repo_scope(repository: str, actions: str = "pull") -> str:
    return f"repository:{repository}:{actions}"


def connect(
    cfg: Config,
    ep: Endpoint,
    repository: str,
    *,
    creds_file: Path | None = None,
    pool_size: int = 8,
) -> RegistryClient:
    """A pinged client for ``ep`` carrying the credentials found for it."""
    from lxcri_core.registry.auth import find_credentials

    cred = find_credentials(cfg, ep.host, repository, creds_file=creds_file)
    client = RegistryClient(cfg, ep, cred, pool_size=pool_size)
    try:
        client.ping()
    except BaseException:
        client.close()
        raise
    return client
