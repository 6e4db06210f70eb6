"""The dashboard application: seven screens (Textual modes), switched with 1-7."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal

from lxcri_tui.fmt import safe_str
from lxcri_tui.screens.containers import ContainersScreen
from lxcri_tui.screens.images import ImagesScreen
from lxcri_tui.screens.logs import LogsScreen
from lxcri_tui.screens.network import NetworkScreen
from lxcri_tui.screens.security import SecurityScreen
from lxcri_tui.screens.stacks import StacksScreen
from lxcri_tui.screens.storage import StorageScreen
from lxcri_tui.source import History, Source
from lxcri_tui.widgets import HelpScreen
from rich.markup import escape
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen

Theme = Literal["light", "dark"]
_THEMES = {"light": "textual-light", "dark": "textual-dark"}

#: mode name -> (key, screen class), in the order of the keys
SCREENS: dict[str, tuple[str, type[Screen[None]]]] = {
    "containers": ("1", ContainersScreen),
    "images": ("2", ImagesScreen),
    "storage": ("3", StorageScreen),
    "network": ("4", NetworkScreen),
    "security": ("5", SecurityScreen),
    "logs": ("6", LogsScreen),
    "stacks": ("7", StacksScreen),
}


class LxcriApp(App[None]):
    TITLE = "lxcri"
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {
        name: cls for name, (_, cls) in SCREENS.items()
    }
    DEFAULT_MODE = "containers"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"switch_mode('{name}')", name.capitalize(), show=False)
            for name, (key, _) in SCREENS.items()
        ),
        Binding("question_mark", "help", "Help"),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("r", "reload", "Refresh", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, source: Source, *, refresh: float = 2.0, theme: Theme = "dark") -> None:
        super().__init__()
        self.source = source
        #: seconds between two reloads of the container list
        self.refresh_period = refresh
        self.history = History()
        #: the container the Logs, Security and detail screens show (a VMID)
        self.selected: int | None = None
        self.theme = _THEMES[theme]
        self._ui_thread = threading.get_ident()
        self.said: list[tuple[SeverityLevel, str]] = []

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
    ) -> None:
        """A toast; kept in ``said`` too, the session's last 200 messages. Textual 2.1's
        toasts parse markup: a message carries names and errors a container controls
        (``[/x]`` would end the app with a MarkupError), so it is escaped first."""
        text = safe_str(message)
        self.said.append((severity, text))
        del self.said[:-200]
        super().notify(escape(text), title=escape(title), severity=severity, timeout=timeout)

    def notify_threadsafe(self, message: str, *, severity: SeverityLevel = "information") -> None:
        """``notify`` from a worker thread or the UI thread."""
        if threading.get_ident() == self._ui_thread:
            self.notify(message, severity=severity)
        else:
            with contextlib.suppress(RuntimeError):  # the app has ended meanwhile
                self.call_from_thread(self.notify, message, severity=severity)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_reload(self) -> None:
        refresh = getattr(self.screen, "refresh_data", None)
        if refresh is not None:
            refresh()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, (key, _) in SCREENS.items():
            yield SystemCommand(
                f"Show {name}", f"the {name} screen (key {key})", lambda n=name: self._go(n)
            )
        yield SystemCommand("Refresh", "load the current screen again (r)", self.action_reload)

    def _go(self, mode: str) -> None:
        self.switch_mode(mode)
