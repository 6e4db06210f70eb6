"""Transport: a private CA from certs.d, HTTP(S)_PROXY / NO_PROXY, no secrets in logs,
and progress reporting."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.errors import RegistryError
from lxcri_core.registry import pull
from lxcri_core.store import Store
from tests.conftest import run_lxcri
from tests.registry.conftest import PASSWORD, USER, AuthRegistry, Populated
from tests.registry.test_pull import assert_complete
from tests.support.images import busybox_image
from tests.support.registry import FaultProxy, Registry, make_tls, start_registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    work = tmp_path_factory.mktemp("tls")
    ca, crt, key = make_tls(work / "pki")
    reg = start_registry(work / "reg", tls=(crt, key))
    try:
        # skopeo trusts the CA through its own certs.d-style directory.
        certs = work / "skopeo-certs"
        certs.mkdir()
        shutil.copy(ca, certs / "ca.crt")
        layout = work / "layout"
        from tests.support.images import write_layout

        write_layout(layout, busybox_image(), "t")
        import subprocess

        subprocess.run(
            ["skopeo", "copy", "--dest-cert-dir", str(certs), f"oci:{layout}:t",
             f"docker://{reg.addr}/tls/bb:1"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield reg, ca
    finally:
        reg.stop()


def test_private_ca_from_certs_d(tls_registry: tuple[Registry, Path], cfg, tmp_path) -> None:
    reg, ca = tls_registry
    ref = f"{reg.addr}/tls/bb:1"
    with pytest.raises(RegistryError, match=rf"TLS verification.*certs.d/{reg.addr}/ca.crt"):
        pull(cfg, ref)
    certs = tmp_path / "certs.d"
    (certs / reg.addr).mkdir(parents=True)
    shutil.copy(ca, certs / reg.addr / "ca.crt")
    rec = pull(cfg.with_overrides(certs_dir=certs), ref)
    assert_complete(Store(cfg.image_store), rec.name)


def test_http_proxy_and_no_proxy(registry: Populated, cfg, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = f"{registry.addr}/test/bb:1.0"
    with FaultProxy(registry.addr) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.addr}")
        monkeypatch.setenv("NO_PROXY", "example.invalid")
        pull(cfg, ref, insecure=True)
        assert proxy.log
        assert all(s.target.startswith(f"http://{registry.addr}/v2/") for s in proxy.log)
        seen = len(proxy.log)
        Store(cfg.image_store).untag(ref)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        pull(cfg, ref, insecure=True)
        assert len(proxy.log) == seen


def test_debug_log_has_no_secrets(auth_registry: AuthRegistry, tmp_path) -> None:
    proc = run_lxcri(
        "--log-level", "debug", "login", "--insecure", "-u", USER, "--password-stdin",
        auth_registry.addr, input=PASSWORD,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc2 = run_lxcri("--log-level", "debug", "pull", "--insecure",
                      f"{auth_registry.addr}/private/bb:1.0")  # fmt: skip
    assert proc2.returncode == 0, proc2.stderr
    assert "credentials found" in proc2.stderr  # debug logging was on
    for text in (proc.stdout, proc.stderr, proc2.stdout, proc2.stderr):
        assert PASSWORD not in text
        assert "Basic " not in text.replace("Basic ***", "")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = {}
        self.finished: set[str] = set()

    def start(self, key: str, total: int | None, description: str) -> None:
        with self.lock:
            self.totals[key], self.done[key] = total, 0

    def advance(self, key: str, n: int) -> None:
        with self.lock:
            self.done[key] += n

    def finish(self, key: str) -> None:
        with self.lock:
            self.finished.add(key)


def test_progress_reports_every_blob(registry: Populated, cfg) -> None:
    rec_prog = Recorder()
    rec = pull(cfg, f"{registry.addr}/test/multi:1.0", insecure=True, progress=rec_prog)
    man = Store(cfg.image_store).manifest(rec.descriptor.digest)
    blobs = {d.digest: d.size for d in (man.config, *man.layers)}
    assert rec_prog.totals == blobs
    assert rec_prog.done == blobs
    assert rec_prog.finished == set(blobs)


def test_credentials_never_go_to_a_plain_http_token_service(
    tls_registry: tuple[Registry, Path], cfg, tmp_path
) -> None:
    from lxcri_core.config import Credential
    from lxcri_core.errors import AuthError
    from tests.support.registry import Faults

    reg, _ = tls_registry
    ca_dir, crt, key = make_tls(tmp_path / "pki2")
    gate = Faults(token_users={USER: PASSWORD})
    with FaultProxy(reg.addr, gate, tls=(crt, key)) as proxy:
        certs = tmp_path / "certs.d"
        (certs / proxy.addr).mkdir(parents=True)
        shutil.copy(ca_dir, certs / proxy.addr / "ca.crt")
        c = cfg.with_overrides(certs_dir=certs, auths={proxy.addr: Credential(USER, PASSWORD)})
        with pytest.raises(AuthError, match="plain-http token service"):
            pull(c, f"{proxy.addr}/tls/bb:1")
        assert not [s for s in proxy.log if s.path.startswith("/token")]


@pytest.mark.parametrize(
    ("reason", "plain_http"),
    [
        ("[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:992)", True),  # OpenSSL 3.0
        ("[SSL] record layer failure (_ssl.c:1029)", True),  # OpenSSL 3.2+ (trixie)
        ("[SSL: UNKNOWN_PROTOCOL] unknown protocol (_ssl.c:600)", True),  # OpenSSL 1.0
        ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", False),
        ("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version", False),
    ],
)
def test_plain_http_answer_is_told_apart_from_other_tls_failures(
    reason: str, plain_http: bool
) -> None:
    from lxcri_core.registry.client import _plain_http_answer

    wrapped = f"Max retries exceeded with url: /v2/ (Caused by SSLError(SSLError(1, {reason!r})))"
    assert _plain_http_answer(OSError(wrapped)) is plain_http
