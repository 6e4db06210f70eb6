"""The storage backends unpack under the configured limits, and a refused layer's
half-built directory is removed at once (its space may be what the host needs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxcri_core.config import Config
from lxcri_core.errors import UnpackError
from lxcri_core.storage import open_backend
from lxcri_core.store.layout import Store
from tests.support.images import Entry, Image, Layer, make_tar


@pytest.mark.parametrize("name", ["dir", "overlay"])
def test_backend_honours_max_layer_bytes_and_cleans_up(
    cfg: Config, store: Store, put_image, name: str
) -> None:
    tar = make_tar([Entry("a", data=b"a" * (700 << 10)), Entry("b", data=b"b" * (700 << 10))])
    digest = put_image(Image([Layer(tar, "zstd")]))
    be = open_backend(cfg.with_overrides(max_layer_bytes=1 << 20), name)
    with pytest.raises(UnpackError, match="max_layer_bytes"):
        be.prepare_image(store, digest)
    left = [
        str(p.relative_to(be.state))
        for p in Path(be.state).rglob("*")
        if p.name not in ("lock", "refs.json") and not p.is_dir()
    ]
    assert left == []
    for sub in ("images", "layers"):
        if (be.state / sub).is_dir():
            assert os.listdir(be.state / sub) == []
    open_backend(cfg, name).prepare_image(store, digest)  # fine without the cap
