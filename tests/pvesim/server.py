"""The simulator's HTTPS API: /api2/json as pveproxy serves it, backed by a state dir.

Every request is appended to DIR/requests.jsonl (method, path without
/api2/json, decoded parameters; passwords redacted), authenticated (API token
header or ticket cookie + CSRF token for writes, else 401), matched against
the schema subset (unknown path or method: 501), validated (PVE's 400 shape:
``{"data": null, "errors": {param: msg}}`` with the status line "Parameter
verification failed."), then handled. Long actions answer a UPID at once and
run in a thread. Error replies carry the message in the status line and in
``message`` as pveproxy does.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.pvesim import schema
from tests.pvesim.routes import ROUTES, STREAM_CHUNK, Ctx, offline_nodes
from tests.pvesim.state import (
    PveError,
    Sim,
)

API = "/api2/json"


# -- HTTP layer ------------------------------------------------------------------------


class Api:
    """Shared state of one running server: the sim, tickets, the request log."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.secret = secrets.token_bytes(32)
        self.log_lock = threading.Lock()

    def ticket(self, user: str) -> tuple[str, str]:
        stamp = f"{int(time.time()):08X}"
        sig = hmac.new(self.secret, f"{user}:{stamp}".encode(), "sha256").hexdigest()
        csrf = hmac.new(self.secret, f"csrf:{user}:{stamp}".encode(), "sha256").hexdigest()
        return f"PVE:{user}:{stamp}::{sig}", f"{stamp}:{csrf}"

    def check_ticket(self, ticket: str) -> tuple[str, str] | None:
        m = re.fullmatch(r"PVE:([^:]+):([0-9A-F]{8})::([0-9a-f]{64})", ticket)
        if not m:
            return None
        user, stamp, sig = m.groups()
        want = hmac.new(self.secret, f"{user}:{stamp}".encode(), "sha256").hexdigest()
        if not hmac.compare_digest(sig, want) or time.time() - int(stamp, 16) > 7200:
            return None
        return user, stamp

    def csrf_ok(self, user: str, stamp: str, token: str) -> bool:
        want = hmac.new(self.secret, f"csrf:{user}:{stamp}".encode(), "sha256").hexdigest()
        return hmac.compare_digest(token, f"{stamp}:{want}")

    def record(self, method: str, path: str, params: dict[str, Any]) -> None:
        shown = {
            k: ("********" if k == "password" else v) for k, v in params.items() if k != "_upload"
        }
        if isinstance(params.get("_upload"), dict):
            shown["filename"] = params["_upload"]["name"]
        line = json.dumps({"method": method, "path": path, "params": shown})
        with self.log_lock, open(self.sim.root / "requests.jsonl", "a") as f:
            f.write(line + "\n")


class RequestHandler(BaseHTTPRequestHandler):
    server_version = "pve-api-daemon/3.0"
    timeout = 120  # seconds a connection may idle before its thread gives up
    protocol_version = "HTTP/1.1"
    api: Api

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.handle_api("GET")

    def do_POST(self) -> None:
        self.handle_api("POST")

    def do_PUT(self) -> None:
        self.handle_api("PUT")

    def do_DELETE(self) -> None:
        self.handle_api("DELETE")

    def reply(
        self,
        code: int,
        body: dict[str, Any],
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(code, (reason or "OK").split("\n")[0][:200])
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def error(self, code: int, msg: str, errors: dict[str, str] | None = None) -> None:
        body: dict[str, Any] = {"data": None, "message": msg.rstrip("\n") + "\n"}
        if errors:
            body["errors"] = errors
        self.reply(code, body, msg)

    def read_params(self, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            k: v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
        }
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return params
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            params.update(self.read_multipart(ctype, length))
            return params
        body = self.rfile.read(length)
        if ctype.startswith("application/json"):
            data = json.loads(body or b"{}")
            if isinstance(data, dict):
                params.update(data)
        else:
            params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        return params

    def read_multipart(self, ctype: str, length: int) -> dict[str, Any]:
        # pveproxy streams uploads to /var/tmp/pveupload-HEX; we spool to DIR/tmp likewise.
        tmp = self.api.sim.root / "tmp" / f"pveupload-{secrets.token_hex(16)}"
        with open(tmp, "wb") as f:
            left = length
            while left > 0:
                chunk = self.rfile.read(min(STREAM_CHUNK, left))
                if not chunk:
                    break
                f.write(chunk)
                left -= len(chunk)
        raw = tmp.read_bytes()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
        )
        out: dict[str, Any] = {}
        filetmp = tmp.with_name(tmp.name + ".file")
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            decoded = part.get_payload(decode=True)
            payload = decoded if isinstance(decoded, bytes) else b""
            if part.get_filename() is not None:
                filetmp.write_bytes(payload)
                out["_upload"] = {"name": part.get_filename(), "tmp": str(filetmp)}
                if name and name != "filename":
                    out[str(name)] = part.get_filename()
            elif name:
                out[str(name)] = payload.decode()
        tmp.unlink()
        if "_upload" in out:
            out.setdefault("filename", out["_upload"]["name"])
        return out

    def authenticate(self, method: str) -> tuple[str, bool] | None:
        auth = self.headers.get("Authorization", "")
        if auth:
            m = re.fullmatch(r"PVEAPIToken=([^!\s]+@[^!\s]+)!([^=\s]+)=(\S+)", auth.strip())
            if not m:
                self.error(401, "invalid token value!")
                return None
            tokenid = f"{m.group(1)}!{m.group(2)}"
            secret = self.api.sim.tokens().get(tokenid)
            if secret is None or not hmac.compare_digest(secret, m.group(3)):
                self.error(401, "authentication failure")
                return None
            return tokenid, True
        cookies = {}
        for part in self.headers.get("Cookie", "").split(";"):
            if "=" in part:
                k, v = part.strip().split("=", 1)
                cookies[k] = urllib.parse.unquote(v)
        ticket = cookies.get("PVEAuthCookie")
        if not ticket:
            self.error(401, "No ticket")
            return None
        checked = self.api.check_ticket(ticket)
        if checked is None:
            self.error(401, "authentication failure")
            return None
        user, stamp = checked
        if method != "GET" and not self.api.csrf_ok(
            user, stamp, self.headers.get("CSRFPreventionToken", "")
        ):
            self.error(401, "Permission denied - invalid csrf token")
            return None
        return user, False

    def handle_api(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        if not url.path.startswith(API + "/"):
            self.close_connection = True
            self.error(501, f"Method '{method} {url.path}' not implemented")
            return
        path = urllib.parse.unquote(url.path[len(API) :]).rstrip("/") or "/"
        matched = schema.match(path)
        who: tuple[str, bool] | None = None
        if matched is None or matched[0] != "/access/ticket":
            # Authenticate before reading a body: no upload is spooled for a stranger.
            who = self.authenticate(method)
            if who is None:
                self.close_connection = True
                self.api.record(method, path, dict(urllib.parse.parse_qsl(url.query)))
                return
        try:
            params = self.read_params(url.query)
        except (ValueError, UnicodeDecodeError) as e:
            self.close_connection = True
            self.error(400, f"unable to parse request parameters: {e}")
            return
        self.api.record(method, path, params)
        info = schema.method_info(matched[0], method) if matched else None
        if matched is None or info is None:
            self.error(501, f"Method '{method} {API}{path}' not implemented")
            return
        template, pathvars = matched
        if who is None:
            self.do_ticket(params, info)
            return
        user, is_token = who
        upload = params.pop("_upload", None)
        params.update(pathvars)
        typed, errors = schema.validate(info["parameters"], params)
        if errors:
            if isinstance(upload, dict):
                Path(upload["tmp"]).unlink(missing_ok=True)
            self.error(400, "Parameter verification failed.", errors)
            return
        if upload is not None:
            typed["_upload"] = upload
        node = typed.get("node")
        sim = self.api.sim
        if node is not None and node != sim.node:
            if node in offline_nodes(sim):
                self.error(595, "No route to host")
            else:
                self.error(
                    500,
                    f"hostname lookup '{node}' failed - failed to get address info for:"
                    f" {node}: Name or service not known",
                )
            return
        handler = ROUTES.get((template, method))
        if handler is None:
            self.error(501, f"Method '{method} {API}{path}' not implemented")
            return
        try:
            data = handler(Ctx(sim, user, is_token), typed)
        except Exception as e:
            # An upload the handler refused is dropped, as pveproxy drops its temp file.
            if isinstance(upload, dict):
                Path(upload["tmp"]).unlink(missing_ok=True)
            if isinstance(e, PveError):
                self.error(e.code, str(e), e.errors)
            else:  # a bug in the simulator: PVE's generic 500
                self.error(500, f"internal error: {e.__class__.__name__}: {e}")
            return
        self.reply(200, {"data": data})

    def do_ticket(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        typed, errors = schema.validate(info["parameters"], params)
        if errors:
            self.error(400, "Parameter verification failed.", errors)
            return
        user = str(typed["username"])
        if "@" not in user:
            user = f"{user}@{typed.get('realm', 'pam')}"
        pw = self.api.sim.passwords().get(user)
        if pw is None or not hmac.compare_digest(pw, str(typed["password"])):
            self.error(401, "authentication failure")
            return
        ticket, csrf = self.api.ticket(user)
        self.reply(
            200,
            {"data": {"username": user, "ticket": ticket, "CSRFPreventionToken": csrf, "cap": {}}},
        )


def make_server(
    sim: Sim, port: int, cert: Path, key: Path, host: str = "127.0.0.1"
) -> ThreadingHTTPServer:
    api = Api(sim)
    handler = type("BoundHandler", (RequestHandler,), {"api": api})
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    # The handshake happens in the request's thread: a client that never finishes
    # one cannot stall the accept loop.
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    return httpd
