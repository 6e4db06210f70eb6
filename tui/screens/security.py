"""Security: the host's LSMs, cgroups, seccomp and user namespaces; per container its
privilege and id map, capabilities, seccomp, AppArmor and nesting."""

from __future__ import annotations

from lxcri_tui.fmt import safe
from lxcri_tui.screens.base import DashScreen
from lxcri_tui.source import Section
from lxcri_tui.widgets import SectionView
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable

from lxcri_core.backend import ContainerStatus


class SecurityScreen(DashScreen):
    TITLE = "Security"
    AUTO_FOCUS = "#pick"
    DEFAULT_CSS = """
    SecurityScreen #pick { width: 30; height: 1fr; }
    SecurityScreen SectionView { width: 1fr; height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.cts: list[ContainerStatus] = []

    def body(self) -> ComposeResult:
        with Horizontal():
            pick: DataTable[object] = DataTable(cursor_type="row", id="pick")
            pick.add_column("VMID", width=6)
            pick.add_column("NAME", width=18)
            yield pick
            yield SectionView()

    def refresh_data(self) -> None:
        self.load(self.dash.selected)

    @work(thread=True, exclusive=True, group="security")
    def load(self, vmid: int | None) -> None:
        try:
            cts = self.source.containers()
            sections = [self.source.host_security()]
            if vmid is None and cts:
                vmid = cts[0].vmid
            if vmid is not None and any(c.vmid == vmid for c in cts):
                sections.append(self.source.security(vmid))
        except Exception as e:
            self.failed("reading the security state failed", e)
            return
        self.app.call_from_thread(self._show, cts, sections, vmid)

    def _show(self, cts: list[ContainerStatus], sections: list[Section], vmid: int | None) -> None:
        pick = self.query_one("#pick", DataTable)
        if vmid is not None:
            self.dash.selected = vmid  # the highlight that follows loads nothing again
        if [c.vmid for c in cts] != [c.vmid for c in self.cts]:
            self.cts = cts
            pick.clear()
            for c in cts:
                pick.add_row(safe(c.vmid), safe(c.name), key=str(c.vmid))
        if vmid is not None and str(vmid) in [c.value for c in pick.rows]:
            with pick.prevent(DataTable.RowHighlighted):
                pick.move_cursor(row=pick.get_row_index(str(vmid)))
        self.query_one(SectionView).show(sections)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "pick" and event.row_key.value is not None:
            vmid = int(event.row_key.value)
            if vmid != self.dash.selected:
                self.dash.selected = vmid
                self.load(vmid)
