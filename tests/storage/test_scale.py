"""Twenty containers from one image: the extra space each one takes.

Run with ``-s`` to see the table; the assertions check that overlay and zfs
share the image's layers (one lower dir / dataset per layer, whatever the
number of containers) and that a container costs a small fraction of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lxcri_core.storage import StorageBackend
from lxcri_core.store.layout import Store
from tests.support.images import multilayer_image

N = 20


def test_twenty_containers_from_one_image(
    backend: StorageBackend, store: Store, put_image: Callable[..., str], tmp_path: Path
) -> None:
    chain = backend.prepare_image(store, put_image(multilayer_image()))
    ids = [str(200 + i) for i in range(N)]
    for cid in ids:
        backend.create_rootfs(chain, cid)
    usage = backend.usage()
    shared = [u for u in usage if u.kind in ("layer", "image")]
    per_ct = {u.name: u.bytes for u in usage if u.kind == "container"}
    image_bytes = sum(u.bytes for u in shared)
    assert sorted(per_ct) == ids
    print(
        f"\n[{backend.name}] image: {len(shared)} shared objects, {image_bytes} bytes; "
        f"{N} containers: extra bytes each min {min(per_ct.values())} "
        f"max {max(per_ct.values())} total {sum(per_ct.values())}"
    )
    for u in shared:
        assert u.users == N
    if backend.name == "dir":
        # Full copies: each container holds about a whole image.
        assert len(shared) == 1
        assert all(b >= image_bytes // 2 for b in per_ct.values())
    else:
        assert len(shared) == len(chain.layers)  # one lower dir / dataset per layer
        assert all(b <= image_bytes // 10 for b in per_ct.values())
    # Every container mounts and sees the image.
    for cid in (ids[0], ids[-1]):
        r = backend.rootfs(cid)
        m = tmp_path / cid
        r.mount(m)
        try:
            assert (m / "opq" / "new.txt").read_text() == "new\n"
        finally:
            r.umount(m)
    for cid in ids:
        backend.remove_rootfs(cid)
    assert backend.containers() == []
