"""`lxcri image prune` also removes unpacked layer chains nothing uses."""

from __future__ import annotations

from lxcri_core.config import load_config
from lxcri_core.images import import_image, prune_images, remove_image
from lxcri_core.storage import open_backend
from lxcri_core.store import Store
from tests.support.images import busybox_image, multilayer_image, write_layout


def test_prune_removes_chains_of_removed_images_only(tmp_path):
    cfg = load_config()
    write_layout(tmp_path / "a", busybox_image())
    write_layout(tmp_path / "b", multilayer_image())
    keep = import_image(cfg, tmp_path / "a", "localhost/keep:1")
    gone = import_image(cfg, tmp_path / "b", "localhost/gone:1")
    backend = open_backend(cfg, "dir")
    store = Store(cfg.image_store)
    backend.prepare_image(store, keep.descriptor.digest)
    backend.prepare_image(store, gone.descriptor.digest)
    before = {u.name for u in backend.usage()}
    remove_image(cfg, "localhost/gone:1")
    result = prune_images(cfg)
    kinds = {i.kind for i in result.items}
    assert "dir layer" in kinds
    after = {u.name for u in backend.usage()}
    assert after < before and after
    # the kept image's chain is still usable for new containers
    chain = backend.prepare_image(store, keep.descriptor.digest)
    rootfs = backend.create_rootfs(chain, "c1")
    assert (rootfs.path / "bin" / "busybox").is_file()
    backend.remove_rootfs("c1")
