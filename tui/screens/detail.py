"""One container in full: its status fields, its configuration, CPU and memory history."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from lxcri_tui.fmt import human_size, percent, safe
from lxcri_tui.widgets import SafeTable
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Sparkline

from lxcri_core.backend import ContainerStatus

if TYPE_CHECKING:
    from lxcri_tui.app import LxcriApp


class DetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Back")]
    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen > Vertical { width: 96%; height: 92%; border: thick $accent;
        background: $surface; padding: 0 1; }
    DetailScreen .spark { height: 3; }
    DetailScreen .spark Label { width: 22; }
    DetailScreen Sparkline { width: 1fr; }
    DetailScreen #fields { height: 1fr; }
    """

    def __init__(self, ct: ContainerStatus) -> None:
        super().__init__()
        self.ct = ct

    @property
    def dash(self) -> LxcriApp:
        return cast("LxcriApp", self.app)

    def compose(self) -> ComposeResult:
        c = self.ct
        with Vertical():
            yield Label(safe(f"{c.name} ({c.vmid}) · {c.status_text or c.status}"), id="title")
            with Horizontal(classes="spark"):
                yield Label("CPU -", id="cpu-label")
                yield Sparkline([], id="cpu")
            with Horizontal(classes="spark"):
                yield Label("memory -", id="mem-label")
                yield Sparkline([], id="mem")
            yield SafeTable(("FIELD", "VALUE"), id="fields")

    def on_mount(self) -> None:
        c = self.ct
        fields: list[tuple[str, object]] = [
            ("id", c.id),
            ("image", c.image),
            ("digest", c.image_digest),
            ("status", c.status_text or c.status),
            ("health", c.health or "-"),
            ("restarts", c.restarts),
            ("IPv4", c.ipv4),
            ("IPv6", c.ipv6),
            (
                "ports",
                " ".join(
                    f"{p.host_ip or '*'}:{p.host_port}->{p.container_port}/{p.protocol}"
                    for p in c.ports
                ),
            ),
            ("created", c.created),
            ("started", c.started_at),
            ("finished", c.finished_at),
            ("pid", c.pid or "-"),
            ("storage", c.storage),
            ("node", c.node),
            ("tags", ";".join(c.tags)),
            ("error", c.error),
            *((f"label {k}", v) for k, v in sorted(c.labels.items())),
        ]
        self.query_one("#fields", SafeTable).set_rows(fields)
        self.draw_history()
        self.set_interval(self.dash.refresh_period, self.draw_history)
        self.load_config()

    def draw_history(self) -> None:
        h = self.dash.history
        cpu, mem = h.cpu.get(self.ct.vmid, []), h.memory.get(self.ct.vmid, [])
        self.query_one("#cpu", Sparkline).data = cpu
        self.query_one("#mem", Sparkline).data = mem
        self.query_one("#cpu-label", Label).update(f"CPU {percent(cpu[-1] if cpu else None)}")
        self.query_one("#mem-label", Label).update(f"memory {human_size(mem[-1]) if mem else '-'}")

    @work(thread=True, group="detail")
    def load_config(self) -> None:
        try:
            conf = self.dash.source.config(self.ct.vmid)
        except Exception as e:
            self.dash.notify_threadsafe(f"configuration: {e}", severity="warning")
            return
        rows = [(f"config {k}", v) for k, v in sorted(conf.items())]
        self.app.call_from_thread(self._add_config, rows)

    def _add_config(self, rows: list[tuple[str, object]]) -> None:
        table = self.query_one("#fields", SafeTable)
        table.add_rows([[safe(k), safe(v)] for k, v in rows])
