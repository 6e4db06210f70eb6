"""Every screen and action of the dashboard, driven by Textual's Pilot as a person's keys
would, against the plain-LXC backend with real containers."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from lxcri_tui.rowlist import RowList
from lxcri_tui.screens.detail import DetailScreen
from lxcri_tui.widgets import ConfirmScreen, PromptScreen, SafeTable, SectionView
from textual.widgets import Input, Log, Sparkline, Tree

from lxcri_core.backend import open_backend
from lxcri_core.config import Config
from lxcri_core.images import list_images
from tests.support.lxcenv import BUSYBOX_REF, PROBE_REF, LxcEnv
from tests.tui.conftest import SIZE, cells, row_of, shown, sync, until

pytestmark = pytest.mark.slow


def _app(cfg: Config) -> LxcriApp:
    return LxcriApp(LiveSource(cfg, open_backend(cfg, "lxc")), refresh=0.5)


def _status(cfg: Config, name: str) -> str | None:
    return next((c.status for c in open_backend(cfg, "lxc").list() if c.name == name), None)


def _texts(view: SectionView) -> str:
    return "\n".join(" | ".join(r) for t in view.query(SafeTable) for r in cells(t))


@sync
async def test_containers_table_usage_and_lifecycle_keys(lxenv: LxcEnv, cfg: Config) -> None:
    lxenv.start("web", args=("sleep 300",))
    lxenv.start("other", args=("sleep 300",))
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        row = await until(pilot, lambda: row_of(table, "web"), what="web in the table")
        assert row[3] == "running" and row[2].startswith("lxt-busybox:latest@")
        assert row[7].startswith(cfg.bridge_subnet.split(".")[0] + ".")  # an IPv4 of the bridge
        # CPU % needs two readings; memory comes from the container's cgroup
        row = await until(pilot, lambda: (r := row_of(table, "web")) and r[5].endswith("%") and r)
        assert row[6].endswith("B")
        table.move_cursor(row=[r[1] for r in cells(table)].index("web"))
        await pilot.press("x")
        await until(pilot, lambda: _status(cfg, "web") == "exited", what="web stopped")
        await until(pilot, lambda: (r := row_of(table, "web")) and r[3].startswith("exited"))
        await pilot.press("s")
        await until(pilot, lambda: _status(cfg, "web") == "running", what="web started")
        pid = next(c.pid for c in open_backend(cfg, "lxc").list() if c.name == "web")
        await pilot.press("R")
        await until(
            pilot,
            lambda: any(
                c.name == "web" and c.status == "running" and c.pid != pid
                for c in open_backend(cfg, "lxc").list()
            ),
            what="web restarted with a new init",
        )
        # destroy asks first: "n" keeps the container, "y" removes it
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause(0.5)
        assert _status(cfg, "web") == "running"
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: _status(cfg, "web") is None, what="web destroyed")
        await until(pilot, lambda: row_of(table, "web") is None, what="web gone from the table")
        assert row_of(table, "other") is not None


@sync
async def test_filter_detail_and_history(lxenv: LxcEnv, cfg: Config) -> None:
    lxenv.start("alpha", args=("sleep 300",))
    lxenv.start("beta", args=("sleep 300",))
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("slash", *"bet")
        assert [r[1] for r in cells(table)] == ["beta"]
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=[r[1] for r in cells(table)].index("alpha"))
        await pilot.press("enter")
        detail = await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen)
        fields = detail.query_one("#fields", SafeTable)
        await until(pilot, lambda: any(r[0] == "config hostname" for r in cells(fields)))
        assert ["id", lxenv.ids["alpha"]] in cells(fields)
        # the sparklines fill as readings come in
        await until(pilot, lambda: len(detail.query_one("#mem", Sparkline).data or []) >= 2)
        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


@sync
async def test_logs_follow_and_search(lxenv: LxcEnv, cfg: Config) -> None:
    script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"
    lxenv.start("talker", args=(script,))
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        await until(pilot, lambda: row_of(table, "talker"))
        await pilot.press("l")
        log = await shown(pilot, "logs", Log)
        await until(pilot, lambda: any(line.startswith("tick 13") for line in log.lines))
        # following: new lines keep coming
        n = len(app.screen.lines)  # type: ignore[attr-defined]
        await until(pilot, lambda: len(app.screen.lines) > n + 2)  # type: ignore[attr-defined]
        await pilot.press("slash", "1", "2")
        assert app.screen.query_one("#search", Input).value == "12"
        visible = list(log.lines)
        assert visible and all("12" in line for line in visible)
        await pilot.press("escape")
        await until(pilot, lambda: any(x == "tick 0" for x in log.lines))


@sync
async def test_images_screen_users_layers_remove_prune(lxenv: LxcEnv, cfg: Config) -> None:
    lxenv.start("user", args=("sleep 300",))
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        images = await until(
            pilot,
            lambda: app.current_mode == "images" and app.screen.query_one("#images", SafeTable),
        )
        await until(pilot, lambda: images.row_count == 2)
        rows = {r[0]: r for r in cells(images)}
        assert rows[BUSYBOX_REF][5] == "user" and rows[PROBE_REF][5] == "-"
        layers = app.screen.query_one("#layers", SafeTable)
        await until(pilot, lambda: layers.row_count >= 1)
        images.move_cursor(row=[r[0] for r in cells(images)].index(PROBE_REF))
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: PROBE_REF not in [i.name for i in list_images(cfg)])
        await until(pilot, lambda: images.row_count == 1)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: any(m.startswith("pruned") for _, m in app.said))
        assert BUSYBOX_REF in [i.name for i in list_images(cfg)]  # in use: kept


@sync
async def test_inspector_screens(lxenv: LxcEnv, cfg: Config) -> None:
    lxenv.start("inspected", args=("sleep 300",))
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: row_of(app.screen.query_one("#table", RowList), "inspected"))
        await pilot.press("4")
        await until(pilot, lambda: app.current_mode == "network")
        view = app.screen.query_one(SectionView)
        await until(pilot, lambda: "inspected" in _texts(view), what="the container's network")
        assert cfg.bridge in _texts(view)
        await pilot.press("5")
        await until(pilot, lambda: app.current_mode == "security")
        view = app.screen.query_one(SectionView)
        await until(pilot, lambda: "unprivileged | yes" in _texts(view), what="security rows")
        assert "LSMs" in _texts(view) and "capabilities" in _texts(view)
        await pilot.press("3")
        await until(pilot, lambda: app.current_mode == "storage")
        view = app.screen.query_one(SectionView)
        await until(pilot, lambda: "inspected" in _texts(view) or "layer" in _texts(view))
        assert app.screen.query_one(Tree).root.children


@sync
async def test_stacks_up_and_down(lxenv: LxcEnv, cfg: Config, tmp_path: Path) -> None:
    folder = Path(lxenv.root) / "stackdir"
    folder.mkdir()
    stack = folder / "compose.yaml"
    stack.write_text(
        f"name: tuishop\nservices:\n  web:\n    image: {BUSYBOX_REF}\n    command: ['sleep 300']\n"
    )
    app = _app(cfg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("7")
        table = await until(
            pilot, lambda: app.current_mode == "stacks" and app.screen.query_one(SafeTable)
        )
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        box = app.screen.query_one(Input)
        await until(pilot, lambda: box.has_focus)
        await pilot.press(*str(stack))
        assert box.value == str(stack)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: _status(cfg, "tuishop-web-1") == "running",
            timeout=90,
            what="the stack's container running",
        )
        lxenv.remember("tuishop-web-1")
        await pilot.press("r")
        await until(
            pilot,
            lambda: cells(table) and cells(table)[0][:3] == ["tuishop", "web", "tuishop-web-1"],
        )
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: _status(cfg, "tuishop-web-1") is None, timeout=60)
        await until(pilot, lambda: table.row_count == 0)
