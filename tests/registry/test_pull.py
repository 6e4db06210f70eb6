"""Pull and push against a real docker-registry on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest

from lxcri_core.digest import sha256_bytes
from lxcri_core.errors import NotFoundError, PlatformError, RegistryError
from lxcri_core.media import Index, Manifest
from lxcri_core.registry import pull, push
from lxcri_core.store import Store
from tests.registry.conftest import Populated, insecure
from tests.support.images import host_arch

pytestmark = pytest.mark.slow


def assert_complete(store: Store, name: str) -> None:
    """The name resolves to a manifest whose every blob is stored and verifies."""
    rec = store.lookup(name)
    man = Manifest.parse(store.read_blob(rec.descriptor.digest))
    for d in (rec.descriptor, man.config, *man.layers):
        assert sha256_bytes(store.read_blob(d.digest)) == d.digest
    assert not list(store.tmp_dir.glob("*.partial"))


def test_pull_by_tag_stores_verified_image_named_in_full(registry: Populated, cfg) -> None:
    rec = pull(cfg, f"{registry.addr}/test/multi:1.0", insecure=True)
    assert rec.name == f"{registry.addr}/test/multi:1.0"
    assert rec.descriptor.digest == registry.multi.manifest_digest
    assert str(rec.descriptor.platform) == "linux/amd64"
    store = Store(cfg.image_store)
    assert_complete(store, rec.name)
    assert len(Manifest.parse(store.read_blob(rec.descriptor.digest)).layers) == 3


def test_store_is_readable_by_skopeo(registry: Populated, cfg) -> None:
    rec = pull(insecure(cfg, registry.addr), f"{registry.addr}/test/bb:1.0")
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{cfg.image_store}:{rec.name}"],
        capture_output=True,
        check=True,
    ).stdout
    assert sha256_bytes(out) == registry.bb.manifest_digest


def test_pull_by_digest(registry: Populated, cfg) -> None:
    ref = f"{registry.addr}/test/bb@{registry.bb.manifest_digest}"
    rec = pull(cfg, ref, insecure=True)
    assert rec.name == ref
    assert_complete(Store(cfg.image_store), ref)


def test_pull_again_is_a_no_op_on_blobs(registry: Populated, cfg) -> None:
    ref = f"{registry.addr}/test/bb:1.0"
    pull(cfg, ref, insecure=True)
    store = Store(cfg.image_store)
    before = {p.name: p.stat().st_mtime_ns for p in store.blobs_dir.iterdir()}
    pull(cfg, ref, insecure=True)
    assert {p.name: p.stat().st_mtime_ns for p in store.blobs_dir.iterdir()} == before


def test_multi_arch_index_with_platform(registry: Populated, cfg) -> None:
    ref = f"{registry.addr}/test/idx:1.0"
    rec = pull(cfg, ref, insecure=True, platform="linux/arm64")
    store = Store(cfg.image_store)
    index = Index.parse(store.read_blob(registry.index.manifest_digest))
    arm = next(d for d in index.manifests if d.platform and d.platform.architecture == "arm64")
    assert rec.descriptor.digest == arm.digest
    assert str(rec.descriptor.platform) == "linux/arm64"
    assert rec.descriptor.annotations["io.lxcri.index.digest"] == registry.index.manifest_digest
    cfg_doc = json.loads(store.read_blob(store.manifest(arm.digest).config.digest))
    assert cfg_doc["architecture"] == "arm64"
    assert_complete(store, ref)


def test_multi_arch_index_defaults_to_host_platform(registry: Populated, cfg) -> None:
    rec = pull(cfg, f"{registry.addr}/test/idx:1.0", insecure=True)
    assert rec.descriptor.platform is not None
    assert rec.descriptor.platform.architecture == host_arch()


def test_missing_platform_names_the_choices(registry: Populated, cfg) -> None:
    with pytest.raises(PlatformError, match=r"linux/s390x.*linux/amd64, linux/arm64"):
        pull(cfg, f"{registry.addr}/test/idx:1.0", insecure=True, platform="linux/s390x")


def test_single_platform_image_refuses_another_platform(registry: Populated, cfg) -> None:
    other = "linux/arm64" if host_arch() != "arm64" else "linux/amd64"
    with pytest.raises(PlatformError, match=f"has no {other} variant"):
        pull(cfg, f"{registry.addr}/test/bb:1.0", insecure=True, platform=other)
    assert not Store(cfg.image_store).images()


def test_unknown_tag_is_not_found(registry: Populated, cfg) -> None:
    with pytest.raises(NotFoundError, match=r"test/bb:nope.*404"):
        pull(cfg, f"{registry.addr}/test/bb:nope", insecure=True)
    assert not Store(cfg.image_store).images()


def test_https_to_plain_http_registry_fails_clearly(registry: Populated, cfg) -> None:
    with pytest.raises(RegistryError, match=registry.addr):
        pull(cfg, f"{registry.addr}/test/bb:1.0")


def test_push_round_trip_keeps_digest(registry: Populated, cfg) -> None:
    src = f"{registry.addr}/test/multi:1.0"
    pull(cfg, src, insecure=True)
    dest = f"{registry.addr}/pushed/multi:copy"
    digest = push(cfg, src, dest, insecure=True)
    assert digest == registry.multi.manifest_digest
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"],
        capture_output=True,
        check=True,
    ).stdout
    assert sha256_bytes(out) == digest
    # and lxcri pulls it back, complete
    rec = pull(cfg, dest, insecure=True)
    assert rec.descriptor.digest == digest
    assert_complete(Store(cfg.image_store), dest)


def test_docker_schema2_manifest_list(registry: Populated, cfg, tmp_path) -> None:
    from lxcri_core.media import DOCKER_LIST, DOCKER_MANIFEST
    from tests.support.images import busybox_image
    from tests.support.registry import push_image

    amd, arm = busybox_image(Cmd=["echo a"]), busybox_image(Cmd=["echo b"])
    arm.architecture = "arm64"
    push_image(registry.addr, [amd, arm], "test/docker:1", tmp_path, docker_format=True)
    ref = f"{registry.addr}/test/docker:1"
    rec = pull(cfg, ref, insecure=True, platform="linux/arm64")
    store = Store(cfg.image_store)
    assert rec.descriptor.media_type == DOCKER_MANIFEST
    assert str(rec.descriptor.platform) == "linux/arm64"
    index_blob = store.read_blob(rec.descriptor.annotations["io.lxcri.index.digest"])
    assert json.loads(index_blob)["mediaType"] == DOCKER_LIST
    assert_complete(store, ref)
    # and it pushes back unchanged
    assert push(cfg, ref, f"{registry.addr}/test/docker-copy:1", insecure=True) == (
        rec.descriptor.digest
    )


def test_push_takes_the_forms_of_every_image_command(registry: Populated, cfg) -> None:
    """push resolves through store.resolve: a digest prefix works as in inspect/unpack."""
    src = f"{registry.addr}/test/multi:1.0"
    digest = pull(cfg, src, insecure=True).descriptor.digest
    for i, form in enumerate((digest, digest[7:19], digest[7:15])):
        got = push(cfg, form, f"{registry.addr}/pushed/forms:{i}", insecure=True)
        assert got == digest, form
