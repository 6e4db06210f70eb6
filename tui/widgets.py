"""Widgets every screen shares: confirmation and prompt dialogs, the help screen,
section tables, and a DataTable filled only with harmless text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

from lxcri_tui.fmt import safe
from lxcri_tui.source import Section
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Markdown


class SafeTable(DataTable[object]):
    """A DataTable whose cells are always plain text (see ``fmt.safe``)."""

    def __init__(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]] = (),
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.add_columns(*columns)
        self.set_rows(rows)

    def set_rows(self, rows: Iterable[Sequence[object]]) -> None:
        self.clear()
        self.add_rows([[safe(c) for c in r] for r in rows])


class SectionView(VerticalScroll):
    """An inspector's report: each section a title and a table (an empty one says so)."""

    DEFAULT_CSS = """
    SectionView > Label { margin: 1 0 0 1; text-style: bold; color: $accent; }
    SectionView > SafeTable { height: auto; }
    """

    shown: tuple[Section, ...] = ()

    def show(self, sections: Sequence[Section]) -> None:
        if tuple(sections) == self.shown:  # a reload with nothing new: no redraw, no flicker
            return
        self.shown = tuple(sections)
        self.remove_children()
        widgets: list[Label | SafeTable] = []
        for s in sections:
            widgets.append(Label(safe(f"{s.title} ({len(s.rows)})")))
            widgets.append(SafeTable(s.columns, s.rows) if s.rows else Label("  none"))
        self.mount_all(widgets)


class FilterBox(Input):
    """The ``/`` filter of a table: hidden until asked for; Escape empties and hides it."""

    DEFAULT_CSS = "FilterBox { display: none; } FilterBox.shown { display: block; }"

    def __init__(self) -> None:
        super().__init__(placeholder="filter: any part of a row", id="filter")

    def open(self) -> None:
        self.add_class("shown")
        self.focus()

    def close(self) -> None:
        self.value = ""
        self.remove_class("shown")

    @property
    def needle(self) -> str:
        return self.value.strip().lower()


def matching(rows: Sequence[Sequence[str]], needle: str) -> list[int]:
    """The indexes of the rows with a cell holding ``needle`` (case-insensitive)."""
    return [i for i, r in enumerate(rows) if not needle or any(needle in c.lower() for c in r)]


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no for a destructive action; Escape and n say no."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Grid { grid-size: 2; grid-gutter: 1 2; grid-rows: auto 3;
        padding: 1 2; width: 64; height: auto; border: thick $error; background: $surface; }
    ConfirmScreen #question { column-span: 2; width: 100%; }
    ConfirmScreen Button { width: 100%; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label(safe(self.question), id="question")
            yield Button("Yes (y)", variant="error", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str]):
    """One line of input (an image reference, a stack file); Escape gives ''."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    AUTO_FOCUS = "Input"
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { padding: 1 2; width: 72; height: auto;
        border: thick $accent; background: $surface; }
    """

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question, self.placeholder = question, placeholder

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(placeholder=self.placeholder)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss("")


HELP = """\
# lxcri dashboard

| key | what |
| --- | --- |
| `1`-`7` | Containers, Images, Storage, Network, Security, Logs, Stacks |
| `/` | filter the table (Escape clears) |
| `r` | refresh now |
| `ctrl+p` | command palette |
| `t` | light / dark theme |
| `?` | this help |
| `q` | quit |

**Containers**: `enter` or a double click: details (CPU and memory history), `s` start, `x` stop,
`R` restart, `D` destroy, `l` logs, `e` shell (the dashboard returns when it ends),
`U` upgrade, `B` roll back. Destroy, upgrade and roll back ask first.

**Images**: `p` pull (live per-layer progress), `D` remove, `P` prune.
**Logs**: `f` follow on/off, `/` search. **Stacks**: `u` up (a stack file), `D` down.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90; height: 80%; border: thick $accent;
        background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
