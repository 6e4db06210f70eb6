"""The dashboard on the recorded source, settled on one screen: what the snapshot
tests compare and what ``docs/tui`` shows (``python -m tests.tui.screenshots``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from lxcri_tui.app import LxcriApp
from textual.pilot import Pilot

from tests.tui.recorded import RecordedSource

SIZE = (120, 36)

#: screen name -> the keys that bring it up from the start
SCREENS: dict[str, tuple[str, ...]] = {
    "containers": (),
    "detail": ("enter",),
    "images": ("2",),
    "storage": ("3",),
    "network": ("4",),
    "security": ("5",),
    "logs": ("l",),
    "stacks": ("7",),
    "help": ("question_mark",),
    "confirm-destroy": ("D",),
    "filter": ("slash", "n", "g"),
    "light": ("t",),
}


def app() -> LxcriApp:
    # a long refresh period: the picture is taken before a second load could start
    return LxcriApp(RecordedSource(), refresh=3600)


async def settle(pilot: Pilot[None]) -> None:
    """Until every load has landed (workers, the log reader thread, the redraw)."""
    for _ in range(4):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)


def keys(press: Sequence[str]) -> Callable[[Pilot[None]], Awaitable[None]]:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in press:
            await pilot.press(key)
            await settle(pilot)

    return run
