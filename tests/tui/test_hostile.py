"""Text a container controls (its name, interface names, log lines, labels) reaches the
terminal as text: never parsed as markup, never as escape sequences."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from lxcri_tui.app import LxcriApp
from lxcri_tui.fmt import safe, safe_str
from lxcri_tui.rowlist import RowList
from lxcri_tui.screens.logs import MAX_LINE, LogsScreen
from lxcri_tui.widgets import SafeTable, SectionView
from textual.widgets import Log

from tests.tui.conftest import SIZE, cells, row_of, shown, sync, until
from tests.tui.recorded import CONTAINERS, RecordedSource


def test_safe_escapes_control_characters_and_keeps_markup_as_text() -> None:
    assert safe_str("a\x1b]0;title\x07b\x9bc\td") == "a\\x1b]0;title\\x07b\\x9bc\td"
    t = safe("[bold]x[/bold]")
    assert t.plain == "[bold]x[/bold]" and not t.spans


@sync
async def test_a_name_with_markup_in_a_message_does_not_end_the_app() -> None:
    """Textual 2.1's toasts parse markup: ``[/x]`` (a closing tag never opened) in a
    container's name raised a MarkupError that ended the dashboard when it was named
    in a message (start, stop...). Messages are escaped now."""
    evil = dataclasses.replace(CONTAINERS[0], vmid=110, name="[/x]web[link=file:///]")
    src = RecordedSource([evil])
    app = LxcriApp(src, refresh=3600)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        table = app.screen.query_one("#table", RowList)
        await until(pilot, lambda: row_of(table, "[/x]web[link=file:///]"))
        await pilot.press("s")
        await until(pilot, lambda: ("start", 110) in src.calls)
        await until(pilot, lambda: any("start 110: done" in m for _, m in app.said))
        await pilot.pause(0.3)
        assert app.is_running
        assert any("[/x]web[link=file:///]" in m for _, m in app.said)


@sync
async def test_hostile_cells_and_log_lines_are_shown_escaped() -> None:
    app = LxcriApp(RecordedSource(), refresh=3600)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        row = await until(pilot, lambda: row_of(table, "[b]evil[/b]\\x1b[2J"))
        assert all("\x1b" not in c for c in row)
        await pilot.press("4")
        view = await shown(pilot, "network", SectionView)
        rows = await until(pilot, lambda: [r for t in view.query(SafeTable) for r in cells(t)])
        assert ["veth105i0", "lxcri0", "", "105", "[red]eth0\\x1b]0;pwn\\x07", "UP"] in rows
        await pilot.press("1")
        table.move_cursor(row=0)
        await pilot.press("l")
        log = await shown(pilot, "logs", Log)
        await until(pilot, lambda: any("not markup" in x for x in log.lines))
        last = next(x for x in log.lines if "not markup" in x)
        assert last.startswith("\\x1b]0;owned\\x07\\x1b[31mred?")
        assert "\x1b" not in "".join(log.lines)
        # what a person searches for is text too: a closing tag ended the app through
        # the search summary's label
        await pilot.press("slash", *"[/bold]")
        await until(pilot, lambda: len(log.lines) == 1, what="the one line holding [/bold]")
        await pilot.pause(0.2)
        assert app.is_running


class _Flood(RecordedSource):
    """A container whose output never ends a line."""

    def logs(self, vmid: int, *, follow: bool, tail: int | None) -> Iterator[bytes]:
        for _ in range(64):
            yield b"A" * 65536


@sync
async def test_output_without_newlines_stays_bounded() -> None:
    app = LxcriApp(_Flood(), refresh=3600)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(RowList).row_count)
        await pilot.press("l")
        log = await shown(pilot, "logs", Log)
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await until(pilot, lambda: len(screen.lines) >= 4 * 1024 * 1024 // MAX_LINE - 1)
        assert all(len(x) <= MAX_LINE for x in screen.lines)
        assert len(screen._partial) <= MAX_LINE
        assert log.line_count >= 500
