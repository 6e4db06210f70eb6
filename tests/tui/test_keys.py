"""Keys, mouse and the command palette on the recorded source: what each does without
a backend's delays (the backends' own runs are in test_pilot_*)."""

from __future__ import annotations

import threading
import time

from lxcri_tui.app import LxcriApp
from lxcri_tui.rowlist import RowList
from lxcri_tui.screens.detail import DetailScreen
from lxcri_tui.widgets import HelpScreen, SafeTable

from lxcri_core.backend import ContainerStatus
from tests.tui.conftest import SIZE, cells, shown, sync, until
from tests.tui.recorded import RecordedSource


@sync
async def test_palette_mouse_theme_help_and_cursor() -> None:
    src = RecordedSource()
    app = LxcriApp(src, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        await until(pilot, lambda: table.row_count == 5)
        # the mouse: a click on the third row (the header is line 0) selects it
        await pilot.click(RowList, offset=(3, 3))
        assert table.cursor_key == "103"
        # reloads keep the cursor on its container
        loads = app.screen.loads  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.loads > loads + 1)  # type: ignore[attr-defined]
        assert table.cursor_key == "103"
        await pilot.press("x")
        await until(pilot, lambda: ("stop", 103) in src.calls)
        # a double click opens the container's details
        await pilot.click(RowList, offset=(3, 2), times=2)
        detail = await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen)
        assert detail.ct.vmid == 102
        await pilot.press("escape")
        # the command palette reaches every screen
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"show storage")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.current_mode == "storage", what="palette to storage")
        await pilot.press("t")
        assert app.theme == "textual-light"
        await pilot.press("t")
        assert app.theme == "textual-dark"
        # the / filter of the images and stacks tables
        await pilot.press("2")
        images = await shown(pilot, "images", "#images")
        await until(pilot, lambda: images.row_count == 3)
        await pilot.press("slash", *"postg")
        await until(
            pilot, lambda: [r[0] for r in cells(images)] == ["docker.io/library/postgres:17"]
        )
        await pilot.press("escape")
        await until(pilot, lambda: images.row_count == 3)
        await pilot.press("7")
        stacks = await shown(pilot, "stacks", SafeTable)
        await until(pilot, lambda: stacks.row_count == 2)
        await pilot.press("slash", "d", "b")
        await until(pilot, lambda: [r[1] for r in cells(stacks)] == ["db"])
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen))
        await pilot.press("q")
    assert app.return_code == 0


class _Slow(RecordedSource):
    """A backend whose list takes longer than the refresh period (pve-api, many CTs)."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def containers(self) -> list[ContainerStatus]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.6)
        with self.lock:
            self.running -= 1
        return super().containers()


@sync
async def test_a_slow_backend_gets_one_list_at_a_time() -> None:
    src = _Slow()
    app = LxcriApp(src, refresh=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.loads >= 2)  # type: ignore[attr-defined]
        await pilot.press("j", "k")  # input is taken meanwhile
    assert src.most == 1
