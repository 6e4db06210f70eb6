"""Containers: every container of the backend with its usage; start, stop, restart,
destroy, upgrade, roll back, logs, a shell, details."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import ClassVar

import lxcri_tui.actions as actions
from lxcri_tui.rowlist import RowList
from lxcri_tui.rows import COLUMNS, Row, matches, row
from lxcri_tui.screens.base import DashScreen
from lxcri_tui.screens.detail import DetailScreen
from lxcri_tui.source import Usage
from lxcri_tui.widgets import ConfirmScreen
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input

from lxcri_core.backend import ContainerStatus


class ContainersScreen(DashScreen):
    TITLE = "Containers"
    AUTO_FOCUS = "#table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Details", show=False),
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("R", "restart", "Restart"),
        Binding("D", "destroy", "Destroy"),
        Binding("l", "logs", "Logs"),
        Binding("e", "shell", "Shell"),
        Binding("U", "upgrade", "Upgrade"),
        Binding("B", "rollback", "Rollback"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", show=False),
    ]
    DEFAULT_CSS = """
    ContainersScreen #filter { display: none; }
    ContainersScreen #filter.shown { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, Row] = {}
        self.statuses: dict[int, ContainerStatus] = {}
        self.needle = ""
        #: seconds the UI thread spent applying each reload (bench/tui reads it)
        self.apply_times: list[float] = []
        self.loads = 0
        #: a load is running: a slow backend (pve-api reads every CT's config) must not
        #: pile up one list() per refresh period
        self.loading = False

    def body(self) -> ComposeResult:
        yield Input(placeholder="filter: any part of a name, image, status, IP…", id="filter")
        yield RowList(COLUMNS, id="table")

    @property
    def table(self) -> RowList:
        return self.query_one("#table", RowList)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.dash.refresh_period, self.refresh_data)
        self.table.focus()

    def refresh_data(self) -> None:
        if not self.loading:
            self.loading = True
            self.load()

    def _loaded(self) -> None:
        self.loading = False

    @work(thread=True, group="containers")
    def load(self) -> None:
        try:
            cts = self.source.containers()
            usage = self.source.usage(cts)
            now = self.source.now()
            rows = {c.vmid: row(c, usage.get(c.vmid), now) for c in cts}
        except Exception as e:
            self.failed("listing the containers failed", e)
        else:
            self.app.call_from_thread(self.apply, cts, rows, usage)
        finally:
            with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
                self.app.call_from_thread(self._loaded)

    def apply(
        self, cts: list[ContainerStatus], rows: dict[int, Row], usage: dict[int, Usage]
    ) -> None:
        t0 = time.perf_counter()
        self.dash.history.add(usage)
        self.statuses = {c.vmid: c for c in cts}
        self.rows = rows
        self.show()
        self.loads += 1
        self.apply_times.append(time.perf_counter() - t0)

    def show(self) -> None:
        """Bring the table to ``rows`` through the filter (RowList redraws what changed)."""
        wanted = [k for k, r in self.rows.items() if matches(r, self.needle)]
        self.table.set_rows([str(k) for k in wanted], [self.rows[k] for k in wanted])

    def selected_vmid(self) -> int | None:
        key = self.table.cursor_key
        return int(key) if key is not None else None

    # -- the filter
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.table.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip().lower()
        self.show()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    # -- actions on the selected container
    def _target(self) -> ContainerStatus | None:
        vmid = self.selected_vmid()
        if vmid is None:
            self.notify("no container selected", severity="warning")
            return None
        self.dash.selected = vmid
        return self.statuses.get(vmid)

    @work(thread=True, group="actions")
    def do_action(self, what: str, vmid: int, call: Callable[[int], object]) -> None:
        try:
            result = call(vmid)
        except Exception as e:
            self.failed(f"{what} {vmid} failed", e)
        else:
            text = result if isinstance(result, str) else f"{what} {vmid}: done"
            self.dash.notify_threadsafe(text)
        self.app.call_from_thread(self.refresh_data)

    def _simple(self, what: str, call: Callable[[int], object]) -> None:
        if (c := self._target()) is not None:
            self.notify(f"{what} {c.name} ({c.vmid})…")
            self.do_action(what, c.vmid, call)

    def action_start(self) -> None:
        self._simple("start", self.source.start)

    def action_stop(self) -> None:
        self._simple("stop", self.source.stop)

    def action_restart(self) -> None:
        self._simple("restart", self.source.restart)

    def _confirmed(self, question: str, what: str, call: Callable[[int], object]) -> None:
        c = self._target()
        if c is None:
            return
        vmid = c.vmid

        def answer(yes: bool | None) -> None:
            if yes:
                self.do_action(what, vmid, call)

        self.app.push_screen(ConfirmScreen(question.format(c=c)), answer)

    def action_destroy(self) -> None:
        self._confirmed(
            "Destroy {c.name} ({c.vmid})? Its rootfs and anonymous volumes go; named "
            "volumes are kept.",
            "destroy",
            self.source.destroy,
        )

    def action_upgrade(self) -> None:
        self._confirmed(
            "Upgrade {c.name} ({c.vmid}) to the newest {c.image}? It is recreated from the "
            "pulled image and rolled back if it does not come up healthy.",
            "upgrade",
            lambda vmid: actions.upgrade(self.source, vmid),
        )

    def action_rollback(self) -> None:
        self._confirmed(
            "Roll {c.name} ({c.vmid}) back to the image it ran before its last upgrade?",
            "rollback",
            lambda vmid: actions.rollback(self.source, vmid),
        )

    def action_logs(self) -> None:
        if self._target() is not None:
            self.app.switch_mode("logs")

    def action_detail(self) -> None:
        if (c := self._target()) is not None:
            self.app.push_screen(DetailScreen(c))

    def on_row_list_chosen(self, event: RowList.Chosen) -> None:
        self.action_detail()

    def action_shell(self) -> None:
        if (c := self._target()) is not None:
            self.open_shell(c.vmid)

    @work(thread=True, group="actions")
    def open_shell(self, vmid: int) -> None:
        try:
            cmd = self.source.shell(vmid)
        except Exception as e:
            self.failed(f"shell in {vmid}", e)
            return
        self.app.call_from_thread(self._run_suspended, cmd.argv, cmd.env)

    def _run_suspended(self, argv: list[str], env: dict[str, str]) -> None:
        """The shell in this terminal, the dashboard suspended until it ends."""
        try:
            with self.app.suspend():
                subprocess.run(argv, env=env, check=False)
        except Exception as e:
            self.notify(f"cannot open a shell here: {e}", severity="error")
        self.refresh_data()
