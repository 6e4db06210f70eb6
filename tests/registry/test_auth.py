"""Credentials: lookup order, auth.json storage, basic auth and the Bearer token flow."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_core.config import Credential
from lxcri_core.errors import AuthError, ConfigError
from lxcri_core.registry import login, logout, pull, push
from lxcri_core.registry.auth import (
    find_credentials,
    normalize_host,
    parse_challenge,
    remove_credentials,
    store_credentials,
)
from lxcri_core.store import Store
from tests.registry.conftest import PASSWORD, USER, AuthRegistry, Populated
from tests.support.registry import FaultProxy, Faults


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- lookup (no daemons) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("https://index.docker.io/v1/", "docker.io"),
        ("registry-1.docker.io", "docker.io"),
        ("http://Reg.Example:5000/v2/", "reg.example:5000"),
        ("quay.io/org", "quay.io/org"),
    ],
)
def test_normalize_host(key: str, host: str) -> None:
    assert normalize_host(key) == host


def test_parse_challenge() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/nginx:pull"'
    )
    assert scheme == "bearer"
    assert params == {
        "realm": "https://auth.docker.io/token",
        "service": "registry.docker.io",
        "scope": "repository:library/nginx:pull",
    }
    assert parse_challenge('Basic realm="r"') == ("basic", {"realm": "r"})


def test_lookup_order(cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = "reg.example:5000"
    docker = tmp_path / "home" / ".docker" / "config.json"
    docker.parent.mkdir(parents=True)
    docker.write_text(json.dumps({"auths": {f"https://{host}": _auth("docker", "d")}}))
    assert find_credentials(cfg, host) == Credential("docker", "d")

    containers = tmp_path / "containers-auth.json"  # $REGISTRY_AUTH_FILE (conftest)
    containers.write_text(json.dumps({"auths": {host: {"username": "podman", "password": "p"}}}))
    assert find_credentials(cfg, host) == Credential("podman", "p")

    cfg2 = cfg.with_overrides(auths={host: Credential("config", "c")})
    assert find_credentials(cfg2, host) == Credential("config", "c")

    store_credentials(cfg.auth_file, host, Credential("lxcri", "l"))
    assert find_credentials(cfg2, host) == Credential("lxcri", "l")

    creds = tmp_path / "creds.txt"
    creds.write_text("flag:f\n")
    assert find_credentials(cfg2, host, creds_file=creds) == Credential("flag", "f")
    assert find_credentials(cfg2, "other.example") is None


def test_docker_hub_legacy_key_and_per_repo_keys(cfg, tmp_path: Path) -> None:
    f = tmp_path / "containers-auth.json"
    f.write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": _auth("hub", "h"),
                    "quay.io": _auth("any", "a"),
                    "quay.io/team": _auth("team", "t"),
                }
            }
        )
    )
    assert find_credentials(cfg, "docker.io", "library/nginx") == Credential("hub", "h")
    assert find_credentials(cfg, "quay.io", "team/app") == Credential("team", "t")
    assert find_credentials(cfg, "quay.io", "other/app") == Credential("any", "a")


def test_xdg_runtime_auth_file(cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    f = tmp_path / "run" / "containers" / "auth.json"
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"auths": {"r.example": _auth("x", "y")}}))
    assert find_credentials(cfg, "r.example") == Credential("x", "y")


def test_bad_creds_file_is_a_config_error(cfg, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("no colon here\n")
    with pytest.raises(ConfigError, match="USER:PASSWORD"):
        find_credentials(cfg, "r.example", creds_file=bad)


def test_store_and_remove_credentials_mode_0600(cfg) -> None:
    store_credentials(cfg.auth_file, "https://r.example/v2/", Credential("u", "p"))
    store_credentials(cfg.auth_file, "other.example", Credential("o", "q"))
    assert stat.S_IMODE(cfg.auth_file.stat().st_mode) == 0o600
    doc = json.loads(cfg.auth_file.read_text())
    assert doc["auths"]["r.example"] == _auth("u", "p")
    assert remove_credentials(cfg.auth_file, "r.example")
    assert not remove_credentials(cfg.auth_file, "r.example")
    assert list(json.loads(cfg.auth_file.read_text())["auths"]) == ["other.example"]
    assert stat.S_IMODE(cfg.auth_file.stat().st_mode) == 0o600


# -- basic auth (htpasswd registry) --------------------------------------------------------
@pytest.mark.slow
def test_pull_without_credentials_is_refused_clearly(auth_registry: AuthRegistry, cfg) -> None:
    with pytest.raises(AuthError, match=rf"requires credentials.*lxcri login {auth_registry.addr}"):
        pull(cfg, f"{auth_registry.addr}/private/bb:1.0", insecure=True)


@pytest.mark.slow
def test_login_bad_password_stores_nothing(auth_registry: AuthRegistry, cfg) -> None:
    with pytest.raises(AuthError, match="refused the credentials"):
        login(cfg, auth_registry.addr, USER, "wrong", insecure=True)
    assert not cfg.auth_file.exists()


@pytest.mark.slow
def test_login_pull_logout(auth_registry: AuthRegistry, cfg) -> None:
    login(cfg, auth_registry.addr, USER, PASSWORD, insecure=True)
    assert stat.S_IMODE(cfg.auth_file.stat().st_mode) == 0o600
    rec = pull(cfg, f"{auth_registry.addr}/private/bb:1.0", insecure=True)
    assert rec.descriptor.digest == auth_registry.bb.manifest_digest
    assert logout(cfg, auth_registry.addr)
    with pytest.raises(AuthError):
        pull(cfg, f"{auth_registry.addr}/private/bb:1.0", insecure=True)


@pytest.mark.slow
def test_wrong_stored_password_is_refused(auth_registry: AuthRegistry, cfg) -> None:
    store_credentials(cfg.auth_file, auth_registry.addr, Credential(USER, "stale"))
    with pytest.raises(AuthError, match=f"refused the credentials of '{USER}'"):
        pull(cfg, f"{auth_registry.addr}/private/bb:1.0", insecure=True)


@pytest.mark.slow
def test_creds_file_and_docker_config(auth_registry: AuthRegistry, cfg, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text(f"{USER}:{PASSWORD}\n")
    ref = f"{auth_registry.addr}/private/bb:1.0"
    assert pull(cfg, ref, insecure=True, creds_file=creds).descriptor.digest
    docker = tmp_path / "home" / ".docker" / "config.json"
    docker.parent.mkdir(parents=True)
    docker.write_text(json.dumps({"auths": {auth_registry.addr: _auth(USER, PASSWORD)}}))
    Store(cfg.image_store).untag(ref)
    assert pull(cfg, ref, insecure=True).name == ref


# -- Bearer token flow (token gate proxy in front of a registry) ----------------------------
@pytest.fixture
def token_proxy(registry: Populated) -> Iterator[FaultProxy]:
    with FaultProxy(registry.addr, Faults(token_users={"bob": "builder"})) as proxy:
        yield proxy


@pytest.mark.slow
def test_token_flow_pull_and_push(token_proxy: FaultProxy, registry: Populated, cfg) -> None:
    login(cfg, token_proxy.addr, "bob", "builder", insecure=True)
    ref = f"{token_proxy.addr}/test/multi:1.0"
    rec = pull(cfg, ref, insecure=True)
    assert rec.descriptor.digest == registry.multi.manifest_digest
    token_reqs = [s for s in token_proxy.log if s.path == "/token"]
    assert token_reqs and all(s.headers["authorization"].startswith("Basic ") for s in token_reqs)
    # Parallel downloads shared one token per scope instead of fetching one per request.
    assert len(token_reqs) <= 3
    assert all(
        s.headers.get("authorization", "").startswith("Bearer ")
        for s in token_proxy.blob_gets()
        if s.status == 200
    )
    digest = push(cfg, ref, f"{token_proxy.addr}/pushed/tok:1", insecure=True)
    assert digest == registry.multi.manifest_digest
    assert any(s.method == "PUT" and s.status == 201 for s in token_proxy.log)


@pytest.mark.slow
def test_token_flow_bad_credentials(token_proxy: FaultProxy, cfg) -> None:
    with pytest.raises(AuthError, match="refused the credentials"):
        login(cfg, token_proxy.addr, "bob", "nope", insecure=True)
    store_credentials(cfg.auth_file, token_proxy.addr, Credential("bob", "nope"))
    with pytest.raises(AuthError, match="refused the credentials of 'bob'"):
        pull(cfg, f"{token_proxy.addr}/test/bb:1.0", insecure=True)
    assert not Store(cfg.image_store).images()


def test_endpoints_docker_hub_insecure_and_mirrors(cfg) -> None:
    from lxcri_core.registry.client import endpoint, endpoints

    assert endpoint(cfg, "docker.io").base == "https://registry-1.docker.io"
    assert endpoint(cfg, "r.lan:5000", insecure=True).base == "http://r.lan:5000"
    c = cfg.with_overrides(
        insecure_registries=("m.lan:5000",), mirrors={"docker.io": ("m.lan:5000", "m2.lan")}
    )
    assert [e.base for e in endpoints(c, "docker.io")] == [
        "http://m.lan:5000",
        "https://m2.lan",
        "https://registry-1.docker.io",
    ]
