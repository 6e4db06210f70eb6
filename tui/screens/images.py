"""Images: the store's images with the containers using each, a selected image's layers;
pull (each layer's progress live), remove, prune."""

from __future__ import annotations

import time
from typing import ClassVar

from lxcri_tui.fmt import human_size, safe
from lxcri_tui.screens.base import DashScreen
from lxcri_tui.widgets import ConfirmScreen, FilterBox, PromptScreen, SafeTable, matching
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Label, ProgressBar

from lxcri_core.backend import ContainerStatus
from lxcri_core.images import ImageDetails, ImageSummary

#: at most this often per layer does a pull's progress reach the UI thread
_PROGRESS_EVERY = 0.1


def users(img: ImageSummary, cts: list[ContainerStatus]) -> list[str]:
    """The containers made from ``img`` (by manifest digest, else by name)."""
    return [
        c.name
        for c in cts
        if (c.image_digest and c.image_digest == img.digest) or c.image == img.name
    ]


class ImagesScreen(DashScreen):
    TITLE = "Images"
    AUTO_FOCUS = "#images"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "pull", "Pull"),
        Binding("D", "remove", "Remove"),
        Binding("P", "prune", "Prune"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", show=False),
    ]
    DEFAULT_CSS = """
    ImagesScreen #images { height: 1fr; }
    ImagesScreen #layers { height: 1fr; }
    ImagesScreen #pull { height: auto; max-height: 12; display: none; padding: 0 1; }
    ImagesScreen #pull.shown { display: block; }
    ImagesScreen Label.heading { padding: 0 1; text-style: bold; color: $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        #: every image and its row; ``images``: those the filter lets through, as shown
        self.all: list[tuple[ImageSummary, tuple[str, ...]]] = []
        self.images: list[ImageSummary] = []
        self.bars: dict[str, ProgressBar] = {}

    def body(self) -> ComposeResult:
        yield FilterBox()
        yield SafeTable(("NAME", "DIGEST", "SIZE", "PLATFORM", "CREATED", "USED BY"), id="images")
        yield Label("Layers", classes="heading", id="layers-title")
        yield SafeTable(("DIGEST", "SIZE", "MEDIA TYPE"), id="layers")
        yield Vertical(id="pull")

    def refresh_data(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="images")
    def load(self) -> None:
        try:
            images = self.source.images()
            cts = self.source.containers()
        except Exception as e:
            self.failed("listing the images failed", e)
            return
        rows = [
            (
                i.name,
                i.digest.split(":", 1)[-1][:12],
                human_size(i.size),
                i.platform,
                i.created[:19].replace("T", " "),
                ", ".join(users(i, cts)) or "-",
            )
            for i in images
        ]
        self.app.call_from_thread(self._show, images, rows)

    def _show(self, images: list[ImageSummary], rows: list[tuple[str, ...]]) -> None:
        self.all = list(zip(images, rows, strict=True))
        self._filter()

    def _filter(self) -> None:
        keep = matching([r for _, r in self.all], self.query_one(FilterBox).needle)
        self.images = [self.all[i][0] for i in keep]
        self.query_one("#images", SafeTable).set_rows(self.all[i][1] for i in keep)
        if not self.images:
            self.query_one("#layers", SafeTable).clear()

    def action_filter(self) -> None:
        self.query_one(FilterBox).open()

    def action_clear_filter(self) -> None:
        self.query_one(FilterBox).close()
        self.query_one("#images", SafeTable).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if isinstance(event.input, FilterBox):
            self._filter()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#images", SafeTable).focus()

    def selected(self) -> ImageSummary | None:
        table = self.query_one("#images", SafeTable)
        if not self.images or not table.row_count:
            return None
        return self.images[min(table.cursor_row, len(self.images) - 1)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "images" and (img := self.selected()) is not None:
            self.load_layers(img.name)

    @work(thread=True, exclusive=True, group="layers")
    def load_layers(self, name: str) -> None:
        try:
            details = self.source.image(name)
        except Exception as e:
            self.failed(f"layers of {name}", e)
            return
        self.app.call_from_thread(self._show_layers, details)

    def _show_layers(self, d: ImageDetails) -> None:
        total = sum(x.size for x in d.layers)
        self.query_one("#layers-title", Label).update(
            safe(f"Layers of {d.name}: {len(d.layers)}, {human_size(total)}")
        )
        self.query_one("#layers", SafeTable).set_rows(
            (x.digest.split(":", 1)[-1][:16], human_size(x.size), x.media_type) for x in d.layers
        )

    # -- pull
    def action_pull(self) -> None:
        def go(ref: str | None) -> None:
            if ref:
                box = self.query_one("#pull", Vertical)
                box.remove_children()
                box.add_class("shown")
                self.bars = {}
                box.mount(Label(safe(f"pulling {ref}"), classes="heading"))
                self.pull(ref)

        self.app.push_screen(PromptScreen("Pull which image?", "docker.io/library/alpine:3"), go)

    @work(thread=True, group="pull")
    def pull(self, ref: str) -> None:
        last: dict[str, float] = {}

        def report(key: str, done: int, total: int | None) -> None:
            now = time.monotonic()
            if done != total and now - last.get(key, 0.0) < _PROGRESS_EVERY:
                return
            last[key] = now
            self.app.call_from_thread(self._progress, key, done, total)

        try:
            name = self.source.pull(ref, report)
        except Exception as e:
            self.failed(f"pull {ref}", e)
            return
        self.dash.notify_threadsafe(f"pulled {name}")
        self.app.call_from_thread(self.refresh_data)

    def _progress(self, key: str, done: int, total: int | None) -> None:
        bar = self.bars.get(key)
        if bar is None:
            box = self.query_one("#pull", Vertical)
            box.mount(Label(safe(key.split(":", 1)[-1][:16])))
            bar = self.bars[key] = ProgressBar(total=total, show_eta=False)
            box.mount(bar)
        bar.update(total=total, progress=done)

    # -- remove, prune
    def action_remove(self) -> None:
        img = self.selected()
        if img is None:
            return

        def go(yes: bool | None) -> None:
            if yes:
                self.change(f"removed {img.name}", lambda: self.source.remove_image(img.name))

        self.app.push_screen(ConfirmScreen(f"Remove the image {img.name}?"), go)

    def action_prune(self) -> None:
        def go(yes: bool | None) -> None:
            if yes:
                self.change("prune", self.source.prune)

        self.app.push_screen(
            ConfirmScreen("Prune: delete blobs and layer chains no image or container uses?"),
            go,
        )

    @work(thread=True, group="image-actions")
    def change(self, what: str, call: object) -> None:
        try:
            result = call()  # type: ignore[operator]
        except Exception as e:
            self.failed(what, e)
            return
        self.dash.notify_threadsafe(result if isinstance(result, str) else what)
        self.app.call_from_thread(self.refresh_data)
