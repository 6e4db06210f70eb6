"""Images: pull from a real registry (docker-registry on 127.0.0.1) with each layer's
progress bar in the screen, the image then listed with its layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from lxcri_tui.widgets import PromptScreen, SafeTable
from textual.widgets import Input, ProgressBar

from lxcri_core.backend import open_backend
from lxcri_core.config import load_config
from lxcri_core.images import list_images
from tests.support.images import multilayer_image
from tests.support.registry import Registry, push_image, start_registry
from tests.tui.conftest import SIZE, cells, shown, sync, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("tui-registry")
    reg = start_registry(work / "reg")
    try:
        push_image(reg.addr, multilayer_image(), "tui/multi:1.0", work)
        yield reg
    finally:
        reg.stop()


@sync
async def test_pull_shows_each_layers_progress(registry: Registry, tmp_path: Path) -> None:
    cfg = dataclasses.replace(load_config(), insecure_registries=(registry.addr,))
    ref = f"{registry.addr}/tui/multi:1.0"
    app = LxcriApp(LiveSource(cfg, open_backend(cfg, "lxc")), refresh=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        images = await shown(pilot, "images", "#images")
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        box = app.screen.query_one(Input)
        await until(pilot, lambda: box.has_focus)
        await pilot.press(*ref, "enter")
        await until(pilot, lambda: any(m == f"pulled {ref}" for _, m in app.said), what="pull")
        bars = list(app.screen.query("#pull ProgressBar").results(ProgressBar))
        # a bar per blob of the image (3 layers, the config), each at its end
        assert len(bars) >= 4
        assert all(b.total is not None and b.progress == b.total for b in bars)
        await until(pilot, lambda: any(r[0] == ref for r in cells(images)), what="listed")
        assert ref in [i.name for i in list_images(cfg)]
        images.move_cursor(row=[r[0] for r in cells(images)].index(ref))
        layers = app.screen.query_one("#layers", SafeTable)
        await until(pilot, lambda: layers.row_count == 3, what="its three layers")
