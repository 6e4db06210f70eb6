"""Fixtures of the dashboard's tests: real LXC containers (tests/containers' lxenv) and
helpers to drive the app with Textual's Pilot until what a person would see is there."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

from lxcri_tui.rowlist import RowList
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.containers.conftest import cfg, lxcri, lxenv  # noqa: F401 - fixtures

SIZE = (120, 36)


async def until(
    pilot: Pilot[None], pred: Callable[[], Any], timeout: float = 30, what: str = ""
) -> Any:
    """Let the app run until ``pred()`` is true; its value. Fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            said = getattr(pilot.app, "said", [])
            raise AssertionError(f"timed out waiting for {what or pred}; messages: {said}")
        await pilot.pause(0.1)


def cells(table: DataTable[Any] | RowList) -> list[list[str]]:
    """The table's rows as text, as shown."""
    return [
        [c.plain if hasattr(c, "plain") else str(c) for c in table.get_row_at(i)]
        for i in range(table.row_count)
    ]


def row_of(table: DataTable[Any] | RowList, name: str, col: int = 1) -> list[str] | None:
    return next((r for r in cells(table) if r[col] == name), None)


def notes(app: Any) -> list[str]:
    """The notifications shown so far."""
    return [str(n.message) for n in app._notifications]


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body with asyncio (the suite has no async pytest plugin)."""

    @functools.wraps(fn)
    def run(*args: Any, **kw: Any) -> None:
        asyncio.run(fn(*args, **kw))

    return run


async def shown(pilot: Pilot[None], mode: str, widget: Any) -> Any:
    """The ``widget`` (a type or a selector) of screen ``mode`` once it is up."""
    app = pilot.app
    return await until(
        pilot, lambda: app.current_mode == mode and app.screen.query_one(widget), what=mode
    )


def _svg_snapshots() -> None:
    """Snapshots as ``.svg`` files under either syrupy: pytest-textual-snapshot 1.0 names
    its extension the syrupy 4 way (``_file_extension``: Debian trixie's syrupy 4.9);
    syrupy 5 and later read ``file_extension`` and would store ``.raw`` files."""
    from pytest_textual_snapshot import SVGImageExtension

    SVGImageExtension.file_extension = "svg"


_svg_snapshots()
