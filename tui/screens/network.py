"""Network: Linux and Open vSwitch bridges (VLAN tags), each container's veth and
addresses, published ports."""

from __future__ import annotations

from lxcri_tui.screens.base import DashScreen
from lxcri_tui.source import Section
from lxcri_tui.widgets import SectionView
from textual import work
from textual.app import ComposeResult


class NetworkScreen(DashScreen):
    TITLE = "Network"

    def body(self) -> ComposeResult:
        yield SectionView()

    def refresh_data(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="network")
    def load(self) -> None:
        try:
            sections = self.source.network()
        except Exception as e:
            self.failed("reading the network failed", e)
            return
        self.app.call_from_thread(self._show, sections)

    def _show(self, sections: list[Section]) -> None:
        self.query_one(SectionView).show(sections)
