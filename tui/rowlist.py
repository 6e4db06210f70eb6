"""``RowList``: a read-only table drawn line by line (Textual's line API).

The Containers screen changes cells of hundreds of rows on every reload. Textual's
DataTable renders each visible cell through rich again after any change (its caches
are keyed by a table-wide update count): ~100 ms per reload at 120x36. Here a row
is one string cut into columns, drawn only when visible: a reload costs the UI
thread a comparison and a few dozen short strings. Cells are plain text by
construction (``fmt.safe_str`` runs on them before they get here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

#: a column is never drawn wider than this (a long image name is cut, not the table)
MAX_WIDTH = 28
#: STATUS cells coloured by their first word
_STATUS = {"running": "green", "exited": "red", "created": "yellow", "paused": "yellow"}


class RowList(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "row-list--header", "row-list--cursor", "row-list--odd",
    }  # fmt: skip
    DEFAULT_CSS = """
    RowList { height: 1fr; }
    RowList > .row-list--header { text-style: bold; color: $primary; background: $panel; }
    RowList > .row-list--cursor { background: $accent 50%; text-style: bold; }
    RowList:focus > .row-list--cursor { background: $accent; color: $text; }
    RowList > .row-list--odd { background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home,g", "edge(0)", show=False),
        Binding("end,G", "edge(1)", show=False),
        Binding("left", "sideways(-4)", show=False),
        Binding("right", "sideways(4)", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        def __init__(self, rowlist: RowList, key: str | None) -> None:
            super().__init__()
            self.rowlist, self.key = rowlist, key

    class Chosen(Message):
        """A row double-clicked."""

        def __init__(self, rowlist: RowList, key: str) -> None:
            super().__init__()
            self.rowlist, self.key = rowlist, key

    def __init__(self, columns: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.keys: list[str] = []
        self.data: list[tuple[str, ...]] = []
        self.widths = [len(c) for c in self.columns]
        self.status_column = self.columns.index("STATUS") if "STATUS" in self.columns else -1

    # -- the DataTable-like API the screens and tests use
    @property
    def row_count(self) -> int:
        return len(self.data)

    def get_row_at(self, index: int) -> list[str]:
        return list(self.data[index])

    def move_cursor(self, *, row: int) -> None:
        self.cursor_row = row

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor_row] if self.data else None

    def set_rows(self, keys: Sequence[str], rows: Sequence[tuple[str, ...]]) -> None:
        """Show ``rows`` (keyed by ``keys``); the cursor stays on its key where it can."""
        if list(keys) == self.keys and list(rows) == self.data:
            return
        old = self.cursor_key
        self.keys, self.data = list(keys), list(rows)
        widths = [len(c) for c in self.columns]
        for r in self.data:
            for i, cell in enumerate(r):
                if len(cell) > widths[i]:
                    widths[i] = len(cell)
        self.widths = [min(w, MAX_WIDTH) for w in widths]
        self.virtual_size = Size(sum(self.widths) + 2 * len(self.widths), len(self.data) + 1)
        if old is not None and old in self.keys:
            self.cursor_row = self.keys.index(old)
        else:
            self.cursor_row = min(self.cursor_row, max(0, len(self.data) - 1))
        self.refresh()

    # -- drawing
    def _cells(self, row: Sequence[str], style: Style, status: bool) -> list[Segment]:
        segs = []
        for i, (cell, w) in enumerate(zip(row, self.widths, strict=False)):
            text = cell if len(cell) <= w else cell[: w - 1] + "…"
            cell_style = style
            if status and i == self.status_column:
                color = _STATUS.get(cell.split(" ", 1)[0])
                cell_style = style + Style(color=color) if color else style
            segs.append(Segment(f" {text:<{w}} ", cell_style))
        return segs

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        index = scroll_y + y - 1
        if y == 0:
            style = self.get_component_rich_style("row-list--header")
            segs = self._cells(self.columns, style, status=False)
        else:
            if index >= len(self.data):
                return Strip.blank(width, self.rich_style)
            style = self.rich_style
            if index == self.cursor_row:
                style = style + self.get_component_rich_style("row-list--cursor")
            elif index % 2:
                style = style + self.get_component_rich_style("row-list--odd")
            segs = self._cells(self.data[index], style, status=index != self.cursor_row)
        fill = segs[0].style if y and index == self.cursor_row else self.rich_style
        return Strip(segs).crop(scroll_x, scroll_x + width).extend_cell_length(width, fill)

    # -- the cursor
    def watch_cursor_row(self, old: int, new: int) -> None:
        if not self.data:
            return
        row = max(0, min(new, len(self.data) - 1))
        if row != new:
            self.cursor_row = row
            return
        body = max(1, self.size.height - 1)
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + body:
            self.scroll_to(y=row - body + 1, animate=False)
        self.refresh()
        self.post_message(self.Highlighted(self, self.keys[row]))

    def action_move(self, n: int) -> None:
        self.cursor_row += n

    def action_page(self, n: int) -> None:
        self.cursor_row += n * max(1, self.size.height - 2)

    def action_edge(self, end: int) -> None:
        self.cursor_row = len(self.data) - 1 if end else 0

    def action_sideways(self, n: int) -> None:
        self.scroll_to(x=self.scroll_offset.x + n, animate=False)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1 and self.data:
            self.cursor_row = self.scroll_offset.y + event.y - 1
            if event.chain >= 2 and (key := self.cursor_key) is not None:
                self.post_message(self.Chosen(self, key))
