"""The Proxmox VE API as the pve-api backend talks to it: credentials, one error line, tasks.

Credentials, first found wins:

- ``LXCRI_PVE_TOKEN``: ``USER@REALM!TOKENID=SECRET`` in the environment;
- ``pve_token_file`` (``LXCRI_PVE_TOKEN_FILE``): that line in a file no
  other user may read (refused otherwise: a secret other users read is a
  leaked secret);
- ``LXCRI_PVE_PASSWORD`` or ``LXCRI_PVE_PASSWORD_FILE`` with the user
  ``LXCRI_PVE_USER`` (default ``root@pam``): a ticket from ``/access/ticket``.

Secrets never go on a command line and never into a message or a log line:
``Credentials`` hides them from ``repr``, and errors name the file, not its
content. TLS is verified unless ``pve_verify_tls`` is false, against
``pve_ca_file`` when given (PVE's own CA is ``/etc/pve/pve-root-ca.pem`` on
any node), else the system's trust store.

Every failure becomes one ``BackendError`` line saying what to do: 401 (the
credentials), 403 (a privilege the token lacks), a TLS failure (with the CA
hint), a refused or timed-out connection, an offline node (PVE's 595), a
failed worker task (with the last lines of its log).
"""

from __future__ import annotations

import os
import re
import stat
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lxcri_core.errors import BackendError

if TYPE_CHECKING:
    from lxcri_core.config import Config

#: A token line: PVE's userid (``USER@REALM``), the token id, the secret.
_TOKEN_LINE = re.compile(r"^([^\s!@]+@[A-Za-z][A-Za-z0-9.\-_]*)!([A-Za-z][A-Za-z0-9.\-_]*)=(\S+)$")
#: HTTP request timeout (seconds per socket operation; an upload may last longer in total).
REQUEST_TIMEOUT = 60.0
#: Lines of a failed task's log quoted in the error.
LOG_TAIL = 4
#: The local path named whenever the API cannot do something.
LOCAL_HINT = "run this on the node as root with --backend pve-local"


@dataclass(frozen=True)
class Credentials:
    """Who we are to the API; ``secret`` is the token secret or the password."""

    user: str
    token_name: str = ""
    secret: str = field(default="", repr=False)
    #: Where it came from, for messages (a file name or an environment variable).
    source: str = ""

    @property
    def is_token(self) -> bool:
        return bool(self.token_name)

    @property
    def is_root(self) -> bool:
        """root@pam with its password: PVE lets only it set the hookscript, bind mounts, devices."""
        return self.user == "root@pam" and not self.is_token

    @property
    def who(self) -> str:
        return f"{self.user}!{self.token_name}" if self.is_token else self.user


def _parse_token(text: str, source: str) -> Credentials:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    m = _TOKEN_LINE.match(lines[0]) if len(lines) == 1 else None
    if m is None:
        # never quote the content: it is (or holds) the secret
        raise BackendError(f"{source}: expected one line USER@REALM!TOKENID=SECRET")
    return Credentials(m.group(1), m.group(2), m.group(3), source)


def _read_secret_file(path: Path, what: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise BackendError(f"cannot read the Proxmox {what} file {path}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BackendError(f"the Proxmox {what} file {path} is not a regular file")
        if st.st_mode & 0o007:
            raise BackendError(
                f"the Proxmox {what} file {path} is open to every user "
                f"(mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it"
            )
        data = os.read(fd, 64 << 10)
    finally:
        os.close(fd)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise BackendError(f"the Proxmox {what} file {path} is not UTF-8 text") from None


def load_credentials(cfg: Config, environ: Mapping[str, str] | None = None) -> Credentials:
    """The credentials the settings and environment give, else a BackendError saying how."""
    env = os.environ if environ is None else environ
    if env.get("LXCRI_PVE_TOKEN"):
        return _parse_token(env["LXCRI_PVE_TOKEN"], "LXCRI_PVE_TOKEN")
    if cfg.pve_token_file is not None:
        path = Path(cfg.pve_token_file)
        return _parse_token(_read_secret_file(path, "token"), f"token file {path}")
    user = cfg.pve_user
    if env.get("LXCRI_PVE_PASSWORD"):
        return Credentials(user, "", env["LXCRI_PVE_PASSWORD"], "LXCRI_PVE_PASSWORD")
    if cfg.pve_password_file is not None:
        path = Path(cfg.pve_password_file)
        pw = _read_secret_file(path, "password").rstrip("\r\n")
        return Credentials(user, "", pw, f"password file {path}")
    raise BackendError(
        "no Proxmox credentials: set pve_token_file (LXCRI_PVE_TOKEN_FILE, one line "
        "USER@REALM!TOKENID=SECRET), LXCRI_PVE_TOKEN, or pve_password_file "
        "(LXCRI_PVE_PASSWORD_FILE) with pve_user"
    )


def _host_port(url: str) -> tuple[str, int]:
    if not url:
        raise BackendError(
            "pve_url is not set: give the API's address (LXCRI_PVE_URL=https://pve1:8006)"
        )
    u = urllib.parse.urlsplit(url if "://" in url else f"https://{url}")
    if u.scheme != "https":
        raise BackendError(f"pve_url {url!r} must be https:// (the API takes no plain HTTP)")
    if not u.hostname or u.path not in ("", "/") or u.query or u.username:
        raise BackendError(f"pve_url {url!r} must be https://HOST[:PORT], nothing else")
    try:
        port = u.port or 8006
    except ValueError:
        raise BackendError(f"pve_url {url!r} has a bad port") from None
    host = f"[{u.hostname}]" if ":" in u.hostname else u.hostname
    return host, port


#: C0/C1 controls and DEL: a message from the server (task log, error reason) reaches a
#: terminal, where an escape sequence would rewrite what the person reads.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: PVE's node names (pve-node: a DNS label); a name from the server goes into URL paths.
NODE_NAME = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])?$")


def one_line(text: object) -> str:
    """``text`` as one printable line (whitespace runs and control characters to a space)."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def checked_node(name: object) -> str:
    """A node name the server gave, refused unless it is one PVE could have."""
    node = str(name)
    if not NODE_NAME.match(node):
        raise BackendError(f"the Proxmox API named a node {one_line(node)[:80]!r}, not a node name")
    return node


def parse_upid(upid: str) -> str:
    """The node a task runs on (``UPID:NODE:...``), checked: it goes into a URL path."""
    m = re.match(r"^UPID:([^:]+):[0-9A-Fa-f]{8}:", upid)
    if not m or not NODE_NAME.match(m.group(1)):
        raise BackendError(
            f"the Proxmox API answered {one_line(upid)[:80]!r} where a task id was expected"
        )
    return m.group(1)


class PveClient:
    """A connection to the API (made on first use), its errors as one line each."""

    def __init__(self, cfg: Config, environ: Mapping[str, str] | None = None) -> None:
        self.url = cfg.pve_url
        self.host, self.port = _host_port(cfg.pve_url)
        self.creds = load_credentials(cfg, environ)
        ca = cfg.pve_ca_file
        if not cfg.pve_verify_tls:
            self.verify: bool | str = False
        elif ca is not None:
            if not Path(ca).is_file():
                raise BackendError(f"pve_ca_file {ca} does not exist (LXCRI_PVE_CA)")
            self.verify = str(ca)
        else:
            self.verify = True
        self._api: Any = None

    # -- the connection and its errors ---------------------------------------------------
    def _connect(self) -> Any:
        if self._api is None:
            from proxmoxer import ProxmoxAPI

            c = self.creds
            kw: dict[str, Any] = {"user": c.user}
            if c.is_token:
                kw.update(token_name=c.token_name, token_value=c.secret)
            else:
                kw["password"] = c.secret
            self._api = self._guard(
                "logging in",
                lambda: ProxmoxAPI(
                    self.host,
                    port=self.port,
                    verify_ssl=self.verify,
                    service="PVE",
                    timeout=REQUEST_TIMEOUT,
                    **kw,
                ),
            )
        return self._api

    def _guard(self, what: str, fn: Any) -> Any:
        import requests
        from proxmoxer import AuthenticationError, ResourceException

        try:
            return fn()
        except ResourceException as e:
            raise self._http_error(what, e) from None
        except AuthenticationError:
            raise self._auth_error(what, "authentication failure") from None
        except requests.exceptions.SSLError as e:
            raise BackendError(
                f"TLS verification of the Proxmox API at {self.url} failed while {what} "
                f"({_tls_reason(e)}): give the CA that signed its certificate with pve_ca_file "
                "(LXCRI_PVE_CA; a node's is /etc/pve/pve-root-ca.pem)"
            ) from None
        except requests.exceptions.Timeout:
            raise BackendError(
                f"the Proxmox API at {self.url} did not answer in {REQUEST_TIMEOUT:g} s "
                f"while {what}"
            ) from None
        except requests.exceptions.ConnectionError as e:
            why = "connection refused" if "refused" in str(e).lower() else _conn_reason(e)
            raise BackendError(
                f"cannot connect to the Proxmox API at {self.url} while {what}: {why}; "
                "check pve_url (LXCRI_PVE_URL) and that pveproxy runs there"
            ) from None
        except requests.exceptions.RequestException as e:
            raise BackendError(f"Proxmox API at {self.url}, {what}: {one_line(e)}") from None

    def _auth_error(self, what: str, msg: str) -> BackendError:
        c = self.creds
        fix = (
            f"check the token in {c.source} (USER@REALM!TOKENID=SECRET; is it expired or deleted?)"
            if c.is_token
            else f"check the user {c.user} and the password from {c.source}"
        )
        return BackendError(
            f"the Proxmox API at {self.url} refused the credentials of {c.who} while {what} "
            f"(401 {one_line(msg)}): {fix}"
        )

    def _http_error(self, what: str, e: Any) -> BackendError:
        code = int(e.status_code)
        msg = one_line(e.content or e.status_message)
        if code == 401:
            return self._auth_error(what, msg)
        if code == 403:
            return BackendError(
                f"Proxmox refused {what} to {self.creds.who} (403 {msg}): the token or user lacks "
                f"the privilege; grant it (Datacenter > Permissions) or {LOCAL_HINT}"
            )
        if code == 595:
            return BackendError(
                f"Proxmox could not reach the node while {what} (595 {msg}): the node is offline "
                "or down; choose another with pve_node (LXCRI_PVE_NODE)"
            )
        errors = e.errors if isinstance(e.errors, dict) else {}
        detail = "; ".join(f"{k}: {one_line(v)}" for k, v in errors.items())
        return BackendError(
            f"Proxmox refused {what} ({code} {msg}{': ' + detail if detail else ''})"
        )

    # -- requests ------------------------------------------------------------------------
    def call(self, method: str, path: str, what: str, **params: Any) -> Any:
        """``method`` on ``path`` (below /api2/json, no leading slash)."""
        api = self._connect()
        res = api(path)
        verb = {"GET": res.get, "POST": res.post, "PUT": res.put, "DELETE": res.delete}[method]
        return self._guard(what, lambda: verb(**params))

    def get(self, path: str, what: str, **params: Any) -> Any:
        return self.call("GET", path, what, **params)

    def upload(
        self, path: str, what: str, fields: Mapping[str, str], filename: str, file: Path
    ) -> Any:
        """POST ``file`` as the multipart part ``filename`` (streamed: ``pve_api_upload``)."""
        import requests
        from lxcri_pve.backends.pve_api_upload import MultipartFile
        from proxmoxer import ResourceException

        api = self._connect()
        # proxmoxer's session carries the auth (token header, or ticket cookie and CSRF
        # token); its own request() would buffer the body, so requests' is called
        session = api._store["session"]
        auth = session.auth
        url = f"{api._store['base_url']}/{path}"

        def send() -> Any:
            body = MultipartFile(fields, "filename", filename, file)
            try:
                resp = requests.Session.request(
                    session,
                    "POST",
                    url,
                    data=body,
                    headers={"Content-Type": body.content_type},
                    cookies=auth.get_cookies(),
                    verify=auth.verify_ssl,
                    timeout=REQUEST_TIMEOUT,
                )
            finally:
                body.close()
            if resp.status_code >= 400:
                try:
                    errors = resp.json().get("errors")
                except ValueError:
                    errors = None
                raise ResourceException(resp.status_code, resp.reason, resp.reason, errors)
            return resp.json()["data"]

        return self._guard(what, send)

    # -- tasks ---------------------------------------------------------------------------
    def wait_task(self, upid: Any, what: str, timeout: float) -> None:
        """Poll task ``upid`` until it ends; a failure or ``timeout`` is a BackendError
        carrying the last lines of the task's log."""
        if upid is None:  # a synchronous call: nothing to wait for
            return
        upid = str(upid)
        node = parse_upid(upid)
        base = f"nodes/{node}/tasks/{urllib.parse.quote(upid, safe='')}"
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            st = self.get(f"{base}/status", f"waiting for {what}")
            if st.get("status") == "stopped":
                exit_status = str(st.get("exitstatus", ""))
                if exit_status == "OK" or exit_status.startswith("WARNINGS"):
                    return
                tail = self._log_tail(base, what)
                raise BackendError(
                    f"{what} failed on node {node}: {one_line(exit_status) or 'unknown error'}"
                    + (f" (task log: {tail})" if tail else "")
                )
            if time.monotonic() > deadline:
                tail = self._log_tail(base, what)
                raise BackendError(
                    f"{what} did not end within {timeout:g} s on node {node} (task {upid})"
                    + (f"; task log so far: {tail}" if tail else "")
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _log_tail(self, base: str, what: str) -> str:
        try:
            entries = self.get(f"{base}/log", f"reading the log of {what}", start=0, limit=1000)
        except BackendError:
            return ""
        lines = [
            one_line(e.get("t", ""))
            for e in entries or []
            if isinstance(e, dict) and e.get("t") not in (None, "", "no content")
        ]
        # the final TASK line repeats the exit status the message already gives
        lines = [ln for ln in lines if not ln.startswith(("TASK ERROR:", "TASK OK"))]
        return " | ".join(lines[-LOG_TAIL:])


def _tls_reason(e: Exception) -> str:
    text = str(e)
    m = re.search(r"certificate verify failed: ([^()'\"]+)", text)
    if m:
        return f"certificate verify failed: {m.group(1).strip()}"
    m = re.search(r"hostname '?[^ ]+'? doesn't match[^'\"()]*", text)
    return m.group(0).strip() if m else "handshake failed"


def _conn_reason(e: Exception) -> str:
    text = str(e)
    for pat in (r"Name or service not known", r"No route to host", r"Network is unreachable"):
        if re.search(pat, text):
            return pat.lower()
    return "connection failed"
