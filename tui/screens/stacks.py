"""Stacks: each stack's services (found by their containers' labels) with their state and
health; up (from a stack file) and down."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from lxcri_tui.screens.base import DashScreen
from lxcri_tui.widgets import ConfirmScreen, FilterBox, PromptScreen, SafeTable, matching
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input

from lxcri_core.backend import ContainerStatus
from lxcri_core.stacks.plan import SERVICE_LABEL, STACK_LABEL


def stack_rows(cts: list[ContainerStatus]) -> list[tuple[str, ...]]:
    rows = [
        (
            c.labels[STACK_LABEL],
            c.labels.get(SERVICE_LABEL, "-"),
            c.name,
            str(c.vmid),
            c.status,
            c.health or "-",
            c.ipv4 or "-",
            ",".join(f"{p.host_port}->{p.container_port}/{p.protocol}" for p in c.ports) or "-",
        )
        for c in cts
        if c.labels.get(STACK_LABEL)
    ]
    return sorted(rows)


class StacksScreen(DashScreen):
    TITLE = "Stacks"
    AUTO_FOCUS = "SafeTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "up", "Up"),
        Binding("D", "down", "Down"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", show=False),
    ]
    DEFAULT_CSS = "StacksScreen SafeTable { height: 1fr; max-height: 100%; }"

    def __init__(self) -> None:
        super().__init__()
        self.all: list[tuple[str, ...]] = []
        #: the rows the filter lets through, as shown
        self.rows: list[tuple[str, ...]] = []

    def body(self) -> ComposeResult:
        yield FilterBox()
        yield SafeTable(
            ("STACK", "SERVICE", "CONTAINER", "VMID", "STATUS", "HEALTH", "IP", "PORTS")
        )

    def refresh_data(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="stacks")
    def load(self) -> None:
        try:
            rows = stack_rows(self.source.containers())
        except Exception as e:
            self.failed("listing the stacks failed", e)
            return
        self.app.call_from_thread(self._show, rows)

    def _show(self, rows: list[tuple[str, ...]]) -> None:
        self.all = rows
        self._filter()

    def _filter(self) -> None:
        self.rows = [self.all[i] for i in matching(self.all, self.query_one(FilterBox).needle)]
        self.query_one(SafeTable).set_rows(self.rows)

    def action_filter(self) -> None:
        self.query_one(FilterBox).open()

    def action_clear_filter(self) -> None:
        self.query_one(FilterBox).close()
        self.query_one(SafeTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterBox):
            self._filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one(SafeTable).focus()

    def action_up(self) -> None:
        def go(path: str | None) -> None:
            if path:
                say: Callable[[str], None] = self.dash.notify_threadsafe
                self.change(f"up {path}", lambda: self.source.stack_up(path, say))

        self.app.push_screen(PromptScreen("Stack file to bring up", "/srv/app/compose.yaml"), go)

    def action_down(self) -> None:
        table = self.query_one(SafeTable)
        if not self.rows:
            return
        name = self.rows[min(table.cursor_row, len(self.rows) - 1)][0]

        def go(yes: bool | None) -> None:
            if yes:
                self.change(f"down {name}", lambda: self.source.stack_down(name))

        self.app.push_screen(
            ConfirmScreen(f"Bring stack {name} down? Its containers are removed."), go
        )

    @work(thread=True, group="stack-actions")
    def change(self, what: str, call: Callable[[], list[str]]) -> None:
        try:
            names = call()
        except Exception as e:
            self.failed(what, e)
            return
        self.dash.notify_threadsafe(f"{what}: {', '.join(names) or 'nothing to do'}")
        self.app.call_from_thread(self.refresh_data)
