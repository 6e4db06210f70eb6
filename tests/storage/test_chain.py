"""Chain ids, storage keys and reading an image's chain from the store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest

from lxcri_core.errors import StorageError
from lxcri_core.storage import chain_ids, load_chain
from lxcri_core.storage.chain import check_container_id, short_key
from lxcri_core.store.layout import Store
from lxcri_core.unpack import IdMap
from tests.support.images import build, busybox_image, multilayer_image

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64


def test_chain_ids_follow_the_oci_spec() -> None:
    ids = chain_ids([A, B, C])
    assert ids[0] == A
    ab = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    assert ids[1] == ab
    assert ids[2] == "sha256:" + hashlib.sha256(f"{ab} {C}".encode()).hexdigest()
    assert chain_ids([B, A])[1] != ids[1]  # order matters
    assert chain_ids([]) == []


def test_load_chain(store: Store, put_image: Callable[..., str]) -> None:
    digest = put_image(multilayer_image())
    chain = load_chain(store, digest)
    cfg = json.loads(store.read_blob(store.manifest(digest).config.digest))
    assert [la.diff_id for la in chain.layers] == cfg["rootfs"]["diff_ids"]
    assert [la.chain_id for la in chain.layers] == chain_ids(cfg["rootfs"]["diff_ids"])
    assert chain.keys == tuple(la.chain_id for la in chain.layers)
    assert chain.key == chain.top.key == chain.layers[2].key
    assert chain.top.short == chain.key[7:23]
    base = load_chain(store, put_image(busybox_image(), "other:1"))
    assert base.layers[0] == chain.layers[0]


def test_idmap_changes_every_key(store: Store, put_image: Callable[..., str]) -> None:
    digest = put_image(multilayer_image())
    plain = load_chain(store, digest)
    one = load_chain(store, digest, IdMap(100000, 65536))
    two = load_chain(store, digest, IdMap(200000, 65536))
    assert [la.chain_id for la in one.layers] == [la.chain_id for la in plain.layers]
    assert len(set(plain.keys) | set(one.keys) | set(two.keys)) == 9
    assert load_chain(store, digest, IdMap(100000, 65536)) == one


def test_load_chain_rejects_an_index(store: Store) -> None:
    built = build([busybox_image(), busybox_image(Cmd=["x"])])
    for d, data in built.blobs.items():
        store.put_bytes(data, d)
    with pytest.raises(StorageError, match="resolve the platform first"):
        load_chain(store, built.manifest_digest)


def test_load_chain_rejects_mismatched_diff_ids(store: Store) -> None:
    built = build(busybox_image())
    man = json.loads(built.blobs[built.manifest_digest])
    cfg = json.loads(built.blobs[man["config"]["digest"]])
    cfg["rootfs"]["diff_ids"].append(A)
    cfg_bytes = json.dumps(cfg).encode()
    man["config"]["digest"] = store.put_bytes(cfg_bytes)
    man["config"]["size"] = len(cfg_bytes)
    digest = store.put_bytes(json.dumps(man).encode())
    with pytest.raises(StorageError, match="1 layers but its config 2 diff_ids"):
        load_chain(store, digest)


def test_missing_manifest(store: Store) -> None:
    with pytest.raises(StorageError, match=r"missing from the store.*pull or import"):
        load_chain(store, A)


@pytest.mark.parametrize("cid", ["100", "web-1", "a.b_c", "x" * 64])
def test_container_ids_ok(cid: str) -> None:
    assert check_container_id(cid) == cid


@pytest.mark.parametrize("cid", ["", "../x", "a/b", "-x", ".hidden", "x" * 65, "a b"])
def test_container_ids_rejected(cid: str) -> None:
    with pytest.raises(StorageError, match="invalid container id"):
        check_container_id(cid)


def test_short_key() -> None:
    assert short_key(A) == "a" * 16
