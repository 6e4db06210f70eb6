"""A hostile registry: endless manifests, token replies, error replies and redirects,
gzip bombs, and blobs longer than their descriptors. Each reply is cut off at its cap,
quickly, and the pulling process's memory stays small (measured in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from lxcri_core.errors import DigestMismatch, RegistryError
from lxcri_core.registry import login, pull, push
from lxcri_core.store import Store
from tests.registry.conftest import Populated
from tests.registry.test_pull import assert_complete
from tests.support.registry import ENDLESS_MODES, FaultProxy, Faults

pytestmark = pytest.mark.slow

#: Peak RSS a pull may add; the endless bodies are 256 MiB, a manifest cap 4 MiB.
MAX_GROWTH = 64 << 20

# Imports done before the baseline is taken, so only the pull itself is measured.
PROBE = r"""
import json, resource, sys, time
import requests, urllib3
from lxcri_core.config import load_config
from lxcri_core.errors import LxcriError
from lxcri_core.registry import login, pull, push

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10

base = peak()
t0 = time.monotonic()
try:
    pull(load_config(), sys.argv[1], insecure=True)
    error = ""
except LxcriError as e:
    # the most general lxcri error class it is, and its message
    kind = next(c for c in type(e).__mro__ if c.__name__ in ("NotFoundError", "RegistryError"))
    error = f"{kind.__name__}: {e}"
print(json.dumps({"grew": peak() - base, "seconds": time.monotonic() - t0, "error": error}))
"""


def probe_pull(ref: str) -> dict[str, Any]:
    """Pull ``ref`` in a fresh interpreter: its error, time taken and peak RSS growth."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, ref], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


@pytest.fixture
def proxy(registry: Populated) -> Iterator[FaultProxy]:
    with FaultProxy(registry.addr) as p:
        yield p


@pytest.mark.parametrize("mode", ENDLESS_MODES)
def test_endless_manifest_is_cut_off_at_4_mib(proxy: FaultProxy, mode: str, cfg) -> None:
    proxy.faults.endless_manifests = mode
    got = probe_pull(f"{proxy.addr}/test/bb:1.0")
    assert got["grew"] < MAX_GROWTH, got
    assert got["seconds"] < 30, got
    url = f"http://{proxy.addr}/v2/test/bb/manifests/1.0"
    assert got["error"].startswith("RegistryError: ")
    assert f"from {url} is larger than 4 MiB; stopped reading it" in got["error"]
    assert not Store(cfg.image_store).images()


def test_endless_token_reply_is_cut_off_at_1_mib(proxy: FaultProxy, cfg) -> None:
    proxy.faults.token_users = {"alice": "x"}
    proxy.faults.endless_token = True
    got = probe_pull(f"{proxy.addr}/test/bb:1.0")
    assert got["grew"] < MAX_GROWTH, got
    assert got["seconds"] < 30, got
    assert got["error"].startswith("RegistryError: ")
    assert "the token reply of" in got["error"]
    assert f"from http://{proxy.addr}/token is" in got["error"]  # no query: it may hold secrets
    assert "is larger than 1 MiB; stopped reading it" in got["error"]


def test_endless_error_reply_gives_the_status_without_reading_it_all(
    proxy: FaultProxy, cfg
) -> None:
    proxy.faults.endless_errors = True
    got = probe_pull(f"{proxy.addr}/test/bb:1.0")
    assert got["grew"] < MAX_GROWTH, got
    assert got["seconds"] < 30, got
    assert got["error"].startswith("NotFoundError: ")
    assert "not found on registry" in got["error"] and "(HTTP 404)" in got["error"]


def test_redirect_with_an_endless_body_is_followed_without_reading_it(
    proxy: FaultProxy, cfg
) -> None:
    proxy.faults.endless_redirect = True
    ref = f"{proxy.addr}/test/bb:1.0"
    got = probe_pull(ref)
    assert got["grew"] < MAX_GROWTH, got
    assert got["seconds"] < 30, got
    assert got["error"] == ""
    assert any(s.path.endswith("/manifests/1.0") and s.status == 200 for s in proxy.log)
    assert_complete(Store(cfg.image_store), ref)


def test_gzip_content_encoding_is_undone_under_the_cap(
    proxy: FaultProxy, registry: Populated, cfg
) -> None:
    # not hostile: a registry (or a proxy before it) compressing in spite of
    # "Accept-Encoding: identity"; digests are of the decoded bytes
    proxy.faults.gzip_encoding = True
    ref = f"{proxy.addr}/test/multi:1.0"
    assert pull(cfg, ref, insecure=True).descriptor.digest == registry.multi.manifest_digest
    assert_complete(Store(cfg.image_store), ref)
    assert proxy.blob_gets() and all(s.status == 200 for s in proxy.blob_gets())


@pytest.mark.parametrize("mode", ["length", "endless"])
def test_blob_longer_than_its_descriptor_is_cut_off_and_discarded(
    proxy: FaultProxy, mode: str, cfg
) -> None:
    proxy.faults.oversize_blobs = mode
    with pytest.raises(DigestMismatch, match=r"is corrupt: it is longer than the \d+ bytes its"):
        pull(cfg, f"{proxy.addr}/test/bb:1.0", insecure=True)
    store = Store(cfg.image_store)
    assert not store.images()
    assert not list(store.blobs_dir.iterdir())
    assert not list(store.tmp_dir.glob("*.partial"))


def test_credentials_stay_with_the_registry_when_an_upload_goes_elsewhere(
    registry: Populated, cfg
) -> None:
    src = f"{registry.addr}/test/bb:1.0"
    pull(cfg, src, insecure=True)
    with (
        FaultProxy(registry.addr) as elsewhere,
        FaultProxy(
            registry.addr, Faults(token_users={"bob": "builder"}, upload_location=elsewhere.addr)
        ) as gate,
    ):
        login(cfg, gate.addr, "bob", "builder", insecure=True)
        assert push(cfg, src, f"{gate.addr}/moved/bb:1", insecure=True)
    uploads = [s for s in elsewhere.log if s.method in ("PATCH", "PUT")]
    assert uploads and all(s.status in (201, 202, 204) for s in uploads)
    assert not [s.headers["authorization"] for s in elsewhere.log if "authorization" in s.headers]
    # the registry itself still got its token: the manifest went there
    manifest_puts = [s for s in gate.log if s.method == "PUT" and "/manifests/" in s.path]
    assert manifest_puts[-1].status == 201
    assert manifest_puts[-1].headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("location", "error"),
    [
        ("/v2/test/bb/manifests/1.0", r"redirected GET http://\S+/v2/test/bb/manifests/1.0 more"),
        ("file:///etc/passwd", "redirected to 'file:///etc/passwd', which is not http"),
        ("ftp://127.0.0.1/x?secret=1", "redirected to 'ftp://127.0.0.1/x', which is not http"),
    ],
)
def test_redirect_loops_and_other_schemes_are_one_clear_error(
    proxy: FaultProxy, location: str, error: str, cfg
) -> None:
    proxy.faults.manifest_redirect = location
    with pytest.raises(RegistryError, match=error):
        pull(cfg, f"{proxy.addr}/test/bb:1.0", insecure=True)
    manifest_gets = [s for s in proxy.log if "/manifests/" in s.path]
    assert len(manifest_gets) <= 11
