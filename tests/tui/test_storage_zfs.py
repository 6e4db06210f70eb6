"""Storage on ZFS (a zfs-fuse pool): the tree shows the image's layer chain with the
container's clone under its layer, sizes and compression ratio; the prune estimate."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from textual.widgets import Label, Tree
from textual.widgets.tree import TreeNode

from lxcri_core.backend import open_backend
from tests.support.lxcenv import LxcEnv
from tests.tui.conftest import SIZE, shown, sync, until

pytestmark = pytest.mark.slow


def _labels(node: TreeNode[None], depth: int = 0) -> list[tuple[int, str]]:
    out = [(depth, str(node.label))]
    for child in node.children:
        out += _labels(child, depth + 1)
    return out


@sync
async def test_zfs_tree_shows_layers_and_the_container_clone(
    zfs_dataset: str, lxenv: LxcEnv
) -> None:
    # zfs_dataset first: torn down after lxenv has removed the container on it
    Path(os.environ["LXCRI_CONFIG"]).write_text(f"storage: zfs\nzfs_pool: {zfs_dataset}\n")
    lxenv.start("zct", args=("sleep 300",))
    cfg = lxenv.config()
    app = LxcriApp(LiveSource(cfg, open_backend(cfg, "lxc")), refresh=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        tree = await shown(pilot, "storage", Tree)
        labels = await until(
            pilot,
            lambda: (x := _labels(tree.root)) and any("container" in t for _, t in x) and x,
            what="the container's clone in the tree",
        )
        layer = next((d, t) for d, t in labels if f"{zfs_dataset}/lxcri/layers/" in t)
        clone = next((d, t) for d, t in labels if "container" in t)
        assert clone[0] > layer[0]  # the clone hangs under its layer
        assert "used" in clone[1] and "ratio" in clone[1]
        prune = app.screen.query_one("#prune", Label)
        assert "prune would free" in str(prune.render())
