"""Real registries for the tests, and small proxies that misbehave on purpose.

``start_registry`` runs Debian's ``docker-registry`` (distribution 2.8) on a
free loopback port, optionally with htpasswd basic auth; ``push_image``
puts an image built by ``tests.support.images`` into it with skopeo.

``FaultProxy`` sits in front of a real registry and can corrupt blobs,
drop a connection mid-blob, answer 503 or 429, slow blobs down, and act as
a Bearer-token gate with its own token endpoint (the registry behind it
runs without auth). As a hostile registry it streams endless bodies
(manifests, token replies, error replies, redirects) and blobs longer than
their descriptors. Every request it sees is recorded in ``log``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.images import Built, Image, write_layout

#: What an "endless" body sends at most, so that a client without a cap ends
#: (with hundreds of MB in memory) instead of the test machine running out.
ENDLESS_BUDGET = 256 << 20
#: Ways of sending an endless body: without Content-Length and closing the
#: connection at the end, chunked, with a Content-Length as large as the budget,
#: and as a small gzip body that inflates to the budget.
ENDLESS_MODES = ("close", "chunked", "length", "gzip")

BLOB_GET = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
REPO_PATH = re.compile(r"^/v2/(.+?)/(blobs|manifests|tags)/")


@functools.cache
def _gzip_bomb(head: bytes) -> bytes:
    """``head`` and ENDLESS_BUDGET bytes of filler, gzipped (about 250 KiB)."""
    z = zlib.compressobj(9, wbits=31)
    piece = b"A" * (1 << 20)
    out = [z.compress(head)]
    out += [z.compress(piece) for _ in range(ENDLESS_BUDGET >> 20)]
    return b"".join([*out, z.flush()])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15) -> None:
    """Wait until ``url`` answers at all (any HTTP status)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Registry:
    """A running docker-registry; ``addr`` is ``127.0.0.1:PORT``."""

    addr: str
    proc: subprocess.Popen[bytes]
    root: Path
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def htpasswd_file(path: Path, users: dict[str, str]) -> Path:
    """A bcrypt htpasswd file (passwords go to htpasswd on stdin, not argv)."""
    lines = []
    for user, password in users.items():
        out = subprocess.run(
            ["htpasswd", "-Bin", user], input=password.encode(), capture_output=True, check=True
        ).stdout.decode()
        lines.append(out.strip())
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_port(addr: str, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    host, port = addr.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode} before {addr} listened")
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_tls(workdir: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for ``ip``: (ca.crt, server.crt, server.key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    key, csr, crt = workdir / "server.key", workdir / "server.csr", workdir / "server.crt"
    ext = workdir / "san.ext"
    ext.write_text(f"subjectAltName=IP:{ip}\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_crt, "-days", "2",
         "-subj", "/CN=lxcri test CA"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={ip}"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext],
    ]  # fmt: skip
    for cmd in run:
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return ca_crt, crt, key


def start_registry(
    workdir: Path,
    *,
    users: dict[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Registry:
    """Start docker-registry on a free port; ``users``: htpasswd basic auth;
    ``tls``: (certificate, key) to serve https."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if users:
        cfg["auth"] = {
            "htpasswd": {"realm": "lxcri-test", "path": str(htpasswd_file(workdir / "htp", users))}
        }
    if tls:
        cfg["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    conf = workdir / "config.yml"
    conf.write_text(json.dumps(cfg))  # JSON is YAML
    log_path = workdir / "registry.log"
    with open(log_path, "wb") as logf:
        # docker-registry takes REGISTRY_* variables as config overrides: the tests'
        # REGISTRY_AUTH_FILE (skopeo's) would be read as its auth section
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(conf)],
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
        )
    reg = Registry(f"127.0.0.1:{port}", proc, workdir, log_path)
    try:
        if tls:
            wait_port(reg.addr, proc)
        else:
            wait_http(f"http://{reg.addr}/v2/", proc)
    except BaseException:
        reg.stop()
        raise
    return reg


def push_image(
    addr: str,
    img: Image | list[Image],
    repo_tag: str,
    workdir: Path,
    *,
    authfile: Path | None = None,
    docker_format: bool = False,
) -> Built:
    """Write ``img`` (or an index of images) as an OCI layout and skopeo-copy it to ``addr``.

    ``docker_format`` converts to Docker schema 2 (manifest list for an index);
    the registry's digests then differ from ``Built``'s.
    """
    layout = workdir / f"layout-{secrets.token_hex(4)}"
    built = write_layout(layout, img, "t")
    cmd = [
        "skopeo",
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:t",
        f"docker://{addr}/{repo_tag}",
    ]
    if authfile is not None:
        cmd[2:2] = ["--dest-authfile", str(authfile)]
    if docker_format:
        cmd.remove("--preserve-digests")
        cmd[2:2] = ["--format", "v2s2"]
    subprocess.run(cmd, check=True, capture_output=True)
    return built


def write_authfile(path: Path, host: str, user: str, password: str) -> Path:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    target: str = ""  # the raw request target: absolute when used as a forward proxy


@dataclass
class Faults:
    """What the proxy does wrong; counters count down to zero."""

    corrupt_blobs: bool = False
    drop_blobs: int = 0  # connections to drop halfway through a blob
    fail_503: int = 0  # requests to answer with 503
    always_429: bool = False
    blob_delay: float = 0.0  # seconds slept per 64 KiB of blob
    token_users: dict[str, str] = field(default_factory=dict)  # non-empty: Bearer gate
    endless_manifests: str = ""  # an ENDLESS_MODES entry: manifest GETs never end
    endless_errors: bool = False  # manifest GETs answer 404 with an endless body
    endless_redirect: bool = False  # manifest GETs are redirected with an endless body first
    manifest_redirect: str = ""  # manifest GETs are always redirected there
    endless_token: bool = False  # the token endpoint's reply never ends
    oversize_blobs: str = ""  # "length" or "endless": blobs longer than their descriptor
    gzip_encoding: bool = False  # 200 replies to GETs are sent with Content-Encoding: gzip
    upload_location: str = ""  # HOST:PORT: blob upload sessions are sent there


class FaultProxy:
    """A threaded HTTP proxy in front of ``upstream`` (``127.0.0.1:PORT``)."""

    def __init__(
        self, upstream: str, faults: Faults | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        self.upstream = upstream
        self.faults = faults or Faults()
        self.log: list[Seen] = []
        self.tokens: dict[str, tuple[str, set[str]]] = {}  # token -> (user, scopes)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls:  # https in front (its token realm stays plain http)
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.addr = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------
    def blob_gets(self) -> list[Seen]:
        return [s for s in self.log if s.method == "GET" and BLOB_GET.match(s.path)]

    def _take(self, name: str) -> bool:
        with self.lock:
            n = getattr(self.faults, name)
            if n > 0:
                setattr(self.faults, name, n - 1)
                return True
            return False

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    @staticmethod
    def _endless(
        h: BaseHTTPRequestHandler, mode: str, status: int, headers: dict[str, str], head: bytes
    ) -> None:
        """Answer with ``head`` and then filler, up to ENDLESS_BUDGET bytes, sent as ``mode``."""
        piece = b"A" * (64 << 10)
        h.close_connection = True
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if mode == "gzip":
            z = _gzip_bomb(head)
            h.send_header("Content-Encoding", "gzip")
            h.send_header("Content-Length", str(len(z)))
            h.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                h.wfile.write(z)
            return
        if mode == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        elif mode == "length":
            h.send_header("Content-Length", str(len(head) + ENDLESS_BUDGET))
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sent = 0
            for data in (head, *(piece for _ in range(ENDLESS_BUDGET // len(piece)))):
                if mode == "chunked":
                    data = b"%x\r\n%s\r\n" % (len(data), data)
                h.wfile.write(data)
                sent += len(data)
            if mode == "chunked":
                h.wfile.write(b"0\r\n\r\n")

    def _hostile(self, h: BaseHTTPRequestHandler, url: urllib.parse.SplitResult) -> bool:
        """Answer as a hostile registry would; False when this request is passed on."""
        f = self.faults
        if url.path == "/token" and f.endless_token:
            head = b'{"token":"'
            self._endless(h, "close", 200, {"Content-Type": "application/json"}, head)
            return True
        if h.command != "GET" or "/manifests/" not in url.path:
            return False
        manifest = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if f.endless_manifests:
            head = b'{"schemaVersion":2,"pad":"'
            self._endless(h, f.endless_manifests, 200, manifest, head)
            return True
        if f.endless_errors:
            head = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"'
            self._endless(h, "close", 404, {"Content-Type": "application/json"}, head)
            return True
        if f.manifest_redirect:
            self._reply(h, 302, b"", {"Location": f.manifest_redirect})
            return True
        if f.endless_redirect and "hop=1" not in url.query:
            location = {"Location": f"{url.path}?hop=1", **manifest}
            self._endless(h, "close", 302, location, b"")
            return True
        return False

    def _token_endpoint(self, h: BaseHTTPRequestHandler, query: str) -> None:
        auth = h.headers.get("Authorization", "")
        user = ""
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if self.faults.token_users.get(u) == p:
                user = u
        if not user:
            self._reply(h, 401, b'{"details":"bad credentials"}', {})
            return
        scopes = set(urllib.parse.parse_qs(query).get("scope", []))
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.tokens[token] = (user, scopes)
        body = json.dumps({"token": token, "expires_in": 300}).encode()
        self._reply(h, 200, body, {"Content-Type": "application/json"})

    def _authorized(self, h: BaseHTTPRequestHandler, path: str) -> bool:
        m = REPO_PATH.match(path)
        need = ""
        if m:
            action = "pull" if h.command in ("GET", "HEAD") else "push"
            need = f"repository:{m.group(1)}:{action}"
        auth = h.headers.get("Authorization", "")
        granted = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if granted is not None:
            ok = not need or any(
                s.rsplit(":", 1)[0] == need.rsplit(":", 1)[0]
                and need.rsplit(":", 1)[1] in s.rsplit(":", 1)[1].split(",")
                for s in granted[1]
            )
            if ok:
                return True
        realm = f"http://{self.addr}/token"
        challenge = f'Bearer realm="{realm}",service="lxcri-test"'
        if need:
            challenge += f',scope="{need}"'
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        self._reply(h, 401, body, {"WWW-Authenticate": challenge})
        return False

    # -- the proxy ----------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(h.path)
        seen = Seen(h.command, url.path, {k.lower(): v for k, v in h.headers.items()}, 0, h.path)
        with self.lock:
            self.log.append(seen)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        f = self.faults
        if self._hostile(h, url):
            return None
        if url.path == "/token" and f.token_users:
            return self._token_endpoint(h, url.query)
        if f.token_users and not self._authorized(h, url.path):
            seen.status = 401
            return None
        if f.always_429:
            seen.status = 429
            return self._reply(
                h, 429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', {"Retry-After": "0"}
            )
        if self._take("fail_503"):
            seen.status = 503
            return self._reply(h, 503, b"unavailable", {})
        headers = {
            k: v for k, v in h.headers.items() if k.lower() not in ("authorization", "connection")
        }
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            target = urllib.parse.urlunsplit(("", "", url.path, url.query, ""))
            conn.request(h.command, target, body=body, headers=headers)
            resp = conn.getresponse()
            seen.status = resp.status
            data = resp.read()
            is_blob = h.command == "GET" and BLOB_GET.match(url.path) and resp.status in (200, 206)
            out_headers = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() not in ("connection", "transfer-encoding", "content-length")
            }
            if f.upload_location and h.command == "POST" and "/blobs/uploads/" in url.path:
                for k, v in out_headers.items():
                    if k.lower() == "location":
                        loc = urllib.parse.urlsplit(v)
                        out_headers[k] = f"http://{f.upload_location}{loc.path}?{loc.query}"
            if f.gzip_encoding and h.command == "GET" and resp.status == 200:
                data = zlib.compress(data, wbits=31)  # gzip, whatever Accept-Encoding said
                out_headers["Content-Encoding"] = "gzip"
            if not is_blob:
                return self._reply(h, resp.status, data, out_headers)
            if f.corrupt_blobs and data:
                i = len(data) // 2
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
            if f.oversize_blobs == "endless":
                self._endless(h, "close", resp.status, out_headers, data)
                return None
            if f.oversize_blobs == "length":
                data += b"\0" * (1 << 20)
            drop = len(data) > 1024 and self._take("drop_blobs")
            h.send_response(resp.status)
            for k, v in out_headers.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            limit = len(data) // 2 if drop else len(data)
            step = 64 << 10
            for off in range(0, limit, step):
                h.wfile.write(data[off : min(off + step, limit)])
                if f.blob_delay:
                    h.wfile.flush()
                    time.sleep(f.blob_delay)
            if drop:
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
            return None
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
            return None
        finally:
            conn.close()
