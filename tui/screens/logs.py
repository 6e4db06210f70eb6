"""Logs: the selected container's output, following, searchable."""

from __future__ import annotations

import threading
from typing import ClassVar

from lxcri_tui.fmt import safe, safe_str
from lxcri_tui.screens.base import DashScreen
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Label, Log

#: lines kept (and read back at the start): a chatty container must not eat the memory
MAX_LINES = 5000
#: bytes of one line kept; a longer one (or output that never ends a line) is cut into
#: lines of this size, so the memory a container's log takes here stays bounded
MAX_LINE = 8192


class LogsScreen(DashScreen):
    TITLE = "Logs"
    AUTO_FOCUS = "#log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "toggle_follow", "Follow"),
        Binding("slash", "search", "Search"),
        Binding("escape", "clear_search", show=False),
    ]
    DEFAULT_CSS = """
    LogsScreen #search { display: none; }
    LogsScreen #search.shown { display: block; }
    LogsScreen #what { padding: 0 1; background: $boost; width: 100%; }
    LogsScreen Log { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.needle = ""
        self.follow = True
        self.vmid: int | None = None
        #: bumped to end a reader thread (it checks between chunks)
        self.generation = 0
        self._partial = b""

    def body(self) -> ComposeResult:
        yield Label("no container selected: pick one on Containers and press l", id="what")
        yield Input(placeholder="search the log", id="search")
        yield Log(max_lines=MAX_LINES, id="log")

    def refresh_data(self) -> None:
        vmid = self.dash.selected
        if vmid is None:
            return
        self.vmid = vmid
        self.generation += 1
        self.lines, self._partial = [], b""
        self.query_one(Log).clear()
        self._describe()
        # a daemon thread, not a worker: a follow can block in a read for as long as the
        # container says nothing, and must never keep the app from quitting
        threading.Thread(
            target=self._read, args=(vmid, self.generation, self.follow), daemon=True
        ).start()

    def _describe(self) -> None:
        what = f"container {self.vmid} · {'following' if self.follow else 'not following'}"
        if self.needle:
            shown = sum(1 for line in self.lines if self.needle in line.lower())
            what += f" · {shown} of {len(self.lines)} lines match {self.needle!r}"
        self.query_one("#what", Label).update(safe(what))

    def _read(self, vmid: int, generation: int, follow: bool) -> None:
        try:
            for chunk in self.source.logs(vmid, follow=follow, tail=MAX_LINES):
                if generation != self.generation:
                    return
                self.app.call_from_thread(self._add, generation, chunk)
        except Exception as e:
            if generation == self.generation:
                self.failed(f"logs of {vmid}", e)

    def _add(self, generation: int, chunk: bytes) -> None:
        if generation != self.generation:
            return
        *whole, self._partial = (self._partial + chunk).split(b"\n")
        while len(self._partial) > MAX_LINE:
            whole.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        # a container writes what it likes: escapes and control characters are shown
        # as text, never sent to the terminal
        new = [safe_str(b[:MAX_LINE].decode(errors="replace")) for b in whole]
        self.lines.extend(new)
        del self.lines[:-MAX_LINES]
        shown = [line for line in new if self.needle in line.lower()] if self.needle else new
        if shown:
            self.query_one(Log).write_lines(shown)
        if self.needle:
            self._describe()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self.refresh_data()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#search", Input)
        box.value = ""
        box.remove_class("shown")
        self.query_one(Log).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip().lower()
        log = self.query_one(Log)
        log.clear()
        log.write_lines([x for x in self.lines if self.needle in x.lower()])
        self._describe()
