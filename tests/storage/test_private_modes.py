"""Layer chains are no other user's business: the backends' state is 0700 and
zfs's lxcri datasets are mounted under a 0700 directory (a privileged image's
setuid binaries and device nodes are in there). Containers reach their rootfs
through a mount in their own state directory instead (tests/containers/
test_private_root.py runs them)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from lxcri_core.storage import StorageBackend
from lxcri_core.storage.zfs import ZfsBackend
from lxcri_core.storage.zfscli import get_prop
from lxcri_core.store.layout import Store
from tests.support.images import busybox_image


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_backend_state_is_private_and_an_older_one_is_tightened(
    backend: StorageBackend, store: Store, put_image: Callable[..., str]
) -> None:
    from lxcri_core.storage.chain import load_chain

    digest = put_image(busybox_image())
    chain = backend.prepare_image(store, digest)
    backend.create_rootfs(chain, "c1")
    storage = backend.cfg.root / "storage"
    assert mode(storage) == 0o700 and mode(backend.state) == 0o700
    if isinstance(backend, ZfsBackend):
        for ds in (backend.base, backend.layers, backend.cts):
            assert mode(get_prop(ds, "mountpoint")) == 0o700, ds
    # what an older lxcri left: world-traversable
    os.chmod(storage, 0o755)
    os.chmod(backend.state, 0o755)
    if isinstance(backend, ZfsBackend):
        os.chmod(get_prop(backend.base, "mountpoint"), 0o755)
    backend.prepare_image(store, digest)
    assert load_chain(store, digest, None).key == chain.key
    assert mode(storage) == 0o700 and mode(backend.state) == 0o700
    if isinstance(backend, ZfsBackend):
        assert mode(get_prop(backend.base, "mountpoint")) == 0o700
    backend.remove_rootfs("c1")
