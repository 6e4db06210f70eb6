"""What every dashboard screen has: header, footer, the app's source, a refresh hook."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

if TYPE_CHECKING:
    from lxcri_tui.app import LxcriApp
    from lxcri_tui.source import Source


class DashScreen(Screen[None]):
    #: the screen's name in the header and the command palette
    TITLE = ""

    @property
    def dash(self) -> LxcriApp:
        return cast("LxcriApp", self.app)

    @property
    def source(self) -> Source:
        return self.dash.source

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.sub_title = f"{self.source.backend_name} backend"

    def on_screen_resume(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        """Load the screen's data again (in a worker)."""

    def failed(self, what: str, err: BaseException) -> None:
        """Report a failed load or action (from any thread) as a notification."""
        self.dash.notify_threadsafe(f"{what}: {err}", severity="error")
