"""All three backends on real filesystems: dir and overlay on the host's ext4
(overlayfs mounts), zfs on a zfs-fuse pool."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from lxcri_core.errors import StorageError
from lxcri_core.storage import StorageBackend
from lxcri_core.storage.zfs import ZfsBackend
from lxcri_core.store.layout import Store
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar, multilayer_image

PutImage = Callable[..., str]


def layer_usage(be: StorageBackend) -> dict[str, int]:
    return {u.name: u.bytes for u in be.usage() if u.kind in ("layer", "image")}


def check_multilayer(root: Path) -> None:
    """What multilayer_image() must look like once its layers are applied."""
    assert (root / "bin" / "busybox").is_file()
    assert os.readlink(root / "bin" / "sh") == "busybox"
    assert (root / "data" / "keep.txt").read_text() == "keep\n"
    assert not (root / "data" / "gone.txt").exists(), "whiteout not applied"
    assert (root / "data" / "hard.txt").read_text() == "keep\n"
    assert os.path.samefile(root / "data" / "hard.txt", root / "data" / "keep.txt")
    assert not (root / "opq" / "old.txt").exists(), "opaque dir not applied"
    assert (root / "opq" / "new.txt").read_text() == "new\n"
    assert sorted(os.listdir(root / "opq")) == ["new.txt"]


def test_rootfs_content_and_isolation(
    backend: StorageBackend, store: Store, put_image: PutImage, tmp_path: Path
) -> None:
    digest = put_image(multilayer_image())
    chain = backend.prepare_image(store, digest)
    assert len(chain.layers) == 3
    r1 = backend.create_rootfs(chain, "101")
    r2 = backend.create_rootfs(chain, "web")
    m1, m2 = tmp_path / "m1", tmp_path / "m2"
    r1.mount(m1)
    r2.mount(m2)
    try:
        check_multilayer(m1)
        check_multilayer(m2)
        # Writes and deletions in one container stay there.
        (m1 / "data" / "mine.txt").write_text("only c1\n")
        (m1 / "data" / "keep.txt").unlink()
        (m1 / "bin" / "busybox").write_bytes(b"clobbered")
        check_multilayer(m2)
        assert not (m2 / "data" / "mine.txt").exists()
        assert (m2 / "bin" / "busybox").stat().st_size > 100_000
        # A third container of the same image starts clean.
        r3 = backend.create_rootfs(chain, "third")
        m3 = tmp_path / "m3"
        r3.mount(m3)
        try:
            check_multilayer(m3)
        finally:
            r3.umount(m3)
    finally:
        r1.umount(m1)
        r2.umount(m2)
    assert backend.containers() == ["101", "third", "web"]
    assert backend.rootfs("101") == r1
    backend.remove_rootfs("101")
    assert backend.containers() == ["third", "web"]
    if r1.dataset:
        out = subprocess.run(["zfs", "list", r1.dataset], capture_output=True, text=True)
        assert out.returncode != 0
    else:
        assert not r1.path.exists()
    r2.mount(m2)
    try:
        check_multilayer(m2)
    finally:
        r2.umount(m2)
    with pytest.raises(StorageError, match=r"no .* rootfs"):
        backend.remove_rootfs("101")


def test_prepare_twice_is_same_chain_no_new_space(
    backend: StorageBackend, store: Store, put_image: PutImage
) -> None:
    digest = put_image(multilayer_image())
    c1 = backend.prepare_image(store, digest)
    before = layer_usage(backend)
    c2 = backend.prepare_image(store, digest)
    assert c1 == c2
    assert layer_usage(backend) == before
    expected = 1 if backend.name == "dir" else 3  # dir keeps one flattened template
    assert len(before) == expected


def test_shared_base_layer(backend: StorageBackend, store: Store, put_image: PutImage) -> None:
    a = backend.prepare_image(store, put_image(multilayer_image(), "t/a:1"))
    b = backend.prepare_image(store, put_image(busybox_image(), "t/b:1"))
    assert a.layers[0].key == b.layers[0].key
    if backend.name != "dir":
        assert len(layer_usage(backend)) == 3  # the busybox layer is stored once


def test_prune_keeps_what_is_in_use(
    backend: StorageBackend, store: Store, put_image: PutImage
) -> None:
    img_a = put_image(multilayer_image(), "t/a:1")
    extra = Image([*busybox_image().layers, Layer(make_tar([Entry("b.txt", data=b"b")]))])
    img_b = put_image(extra, "t/b:1")
    a = backend.prepare_image(store, img_a)
    b = backend.prepare_image(store, img_b)
    backend.create_rootfs(a, "200")

    # Both images live: nothing goes.
    res = backend.prune({img_a, img_b})
    assert res.removed == []
    # Image b gone from the store: its own top layer goes, the shared base stays.
    res = backend.prune(store.reachable() - {img_b})
    assert res.removed == [b.key]
    assert b.key not in layer_usage(backend)
    # No image at all, but the container still uses chain a.
    res = backend.prune(set())
    assert res.removed == []
    present = set(layer_usage(backend))
    assert a.key in present
    if backend.name != "dir":
        assert set(a.keys) == present
    # The container is gone: everything goes.
    backend.remove_rootfs("200")
    res = backend.prune(set())
    assert sorted(res.removed) == sorted([a.key] if backend.name == "dir" else a.keys)
    assert res.freed_bytes > 0
    assert layer_usage(backend) == {}
    # And the image can be prepared again afterwards.
    again = backend.prepare_image(store, img_a)
    assert again == a


def test_create_errors(backend: StorageBackend, store: Store, put_image: PutImage) -> None:
    from lxcri_core.storage import load_chain

    digest = put_image(busybox_image())
    with pytest.raises(StorageError, match="prepare it first"):
        backend.create_rootfs(load_chain(store, digest), "1")
    chain = backend.prepare_image(store, digest)
    backend.create_rootfs(chain, "1")
    with pytest.raises(StorageError, match="already has"):
        backend.create_rootfs(chain, "1")
    with pytest.raises(StorageError, match="invalid container id"):
        backend.create_rootfs(chain, "../etc")


def test_longest_container_id_on_every_backend(
    backend: StorageBackend, store: Store, put_image: PutImage
) -> None:
    """The one id rule (lxcri_core.ids): 64 characters fit a directory and a dataset."""
    from lxcri_core.ids import MAX_ID

    chain = backend.prepare_image(store, put_image(busybox_image()))
    longest = "a" * (MAX_ID - 2) + ".9"
    r = backend.create_rootfs(chain, longest)
    assert longest in f"{r.path} {r.dataset}"
    backend.remove_rootfs(longest)
    numeric = "9" * MAX_ID  # a numeric id is a VMID to zfs: subvol-<id>-disk-0
    backend.create_rootfs(chain, numeric)
    backend.remove_rootfs(numeric)
    with pytest.raises(StorageError, match="invalid container id"):
        backend.create_rootfs(chain, "a" * (MAX_ID + 1))


def test_half_built_layer_is_cleaned_up(
    backend: StorageBackend, store: Store, put_image: PutImage
) -> None:
    digest = put_image(busybox_image())
    if isinstance(backend, ZfsBackend):
        backend._ensure_base()
        leftover = f"{backend.layers}/tmp-deadbeefdeadbeef"
        subprocess.run(["zfs", "create", leftover], check=True)
        backend.prepare_image(store, digest)
        out = subprocess.run(["zfs", "list", leftover], capture_output=True, text=True)
        assert out.returncode != 0
    else:
        sub = "images" if backend.name == "dir" else "layers"
        leftover_dir = backend.state / sub / ".tmp-deadbeefdeadbeef"
        (leftover_dir / "diff").mkdir(parents=True)
        (leftover_dir / "diff" / "junk").write_text("half")
        backend.prepare_image(store, digest)
        assert not leftover_dir.exists()
    assert len(layer_usage(backend)) == 1


def test_idmap_shifts_owner_and_changes_key(
    backend: StorageBackend, store: Store, put_image: PutImage, tmp_path: Path
) -> None:
    from lxcri_core.unpack import IdMap

    digest = put_image(busybox_image())
    plain = backend.prepare_image(store, digest)
    shifted = backend.prepare_image(store, digest, IdMap(200000, 65536))
    assert plain.layers[0].chain_id == shifted.layers[0].chain_id
    assert plain.key != shifted.key
    r = backend.create_rootfs(shifted, "300")
    m = tmp_path / "m"
    r.mount(m)
    try:
        assert (m / "bin" / "busybox").stat().st_uid == 200000
        assert m.stat().st_uid == 200000
    finally:
        r.umount(m)


def test_zfs_names_and_compression(zfs_dataset: str, cfg, store: Store, put_image) -> None:
    from lxcri_core.storage import open_backend

    be = open_backend(cfg.with_overrides(zfs_pool=zfs_dataset), "zfs")
    assert isinstance(be, ZfsBackend)
    chain = be.prepare_image(store, put_image(multilayer_image()))
    r = be.create_rootfs(chain, "100")
    assert r.dataset == f"{zfs_dataset}/subvol-100-disk-0"
    assert be.create_rootfs(chain, "app").dataset == f"{zfs_dataset}/lxcri/containers/app"
    # zfs-fuse (pool version 23) has no lz4: the backend falls back to lzjb.
    assert be.compression in ("lz4", "on")
    origin = subprocess.run(
        ["zfs", "get", "-H", "-o", "value", "origin", r.dataset],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert origin == f"{zfs_dataset}/lxcri/layers/{chain.top.short}@layer"
    layers = subprocess.run(
        ["zfs", "list", "-H", "-o", "name", "-r", "-t", "filesystem", f"{be.layers}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(layers[1:]) == sorted(f"{be.layers}/{la.short}" for la in chain.layers)
    assert r.path.is_dir() and (r.path / "opq" / "new.txt").is_file()


def test_zfs_needs_a_pool(cfg) -> None:
    from lxcri_core.storage import open_backend

    with pytest.raises(StorageError, match="zfs_pool"):
        open_backend(cfg, "zfs")


def test_failed_layer_leaves_nothing_visible(
    backend: StorageBackend, store: Store, put_image: PutImage
) -> None:
    import json

    from lxcri_core.errors import LxcriError
    from lxcri_core.media import Descriptor
    from tests.support.images import build

    built = build(multilayer_image())
    man = json.loads(built.blobs[built.manifest_digest])
    cfg = json.loads(built.blobs[man["config"]["digest"]])
    cfg["rootfs"]["diff_ids"][2] = "sha256:" + "0" * 64  # the top layer will not verify
    for d, data in built.blobs.items():
        store.put_bytes(data, d)
    cfg_bytes = json.dumps(cfg).encode()
    man["config"] = {**man["config"], "digest": store.put_bytes(cfg_bytes), "size": len(cfg_bytes)}
    mbytes = json.dumps(man).encode()
    bad = store.put_bytes(mbytes)
    store.tag("t/bad:1", Descriptor(man["mediaType"], bad, len(mbytes)))
    with pytest.raises(LxcriError):
        backend.prepare_image(store, bad)
    # The two good layers may be complete (overlay, zfs), the bad one is not.
    good = backend.prepare_image(store, put_image(multilayer_image()))
    present = set(layer_usage(backend))
    assert present == ({good.key} if backend.name == "dir" else set(good.keys))
    assert backend.refs().images.keys() == {good.manifest_digest}


def test_prune_backends_after_untag(cfg, store: Store, put_image: PutImage) -> None:
    from lxcri_core.storage import open_backend, prune_backends

    assert prune_backends(cfg, store) == {}  # nothing prepared yet: nothing touched
    digest = put_image(busybox_image(), "t/a:1")
    for name in ("dir", "overlay"):
        open_backend(cfg, name).prepare_image(store, digest)
    kept = prune_backends(cfg, store)
    assert {n: r.removed for n, r in kept.items()} == {"dir": [], "overlay": []}
    store.untag("t/a:1")
    gone = prune_backends(cfg, store)
    assert all(len(r.removed) == 1 for r in gone.values())
    assert sorted(gone) == ["dir", "overlay"]
