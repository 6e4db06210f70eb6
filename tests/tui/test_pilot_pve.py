"""The dashboard on both Proxmox backends against the simulator: the CT made by the
installed CLI, then listed, stopped, started, its logs, security and network shown, and
destroyed from the dashboard's keys; pve-api's missing logs are a message, not a crash."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from lxcri_pve.demo_image import DEMO_REF
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from lxcri_tui.rowlist import RowList
from lxcri_tui.widgets import ConfirmScreen, SafeTable, SectionView
from textual.widgets import Log

from lxcri_core.backend import open_backend
from lxcri_core.config import Config, load_config
from tests.pve.test_cli_backends import Cli
from tests.pvesim.fixtures import PveSim, free_port, start_sim
from tests.tui.conftest import SIZE, cells, row_of, sync, until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim() -> Iterator[PveSim]:
    s = start_sim()
    try:
        yield s
    finally:
        s.close()


def _setup(sim: PveSim, backend: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, Config]:
    cli = Cli(sim, backend)
    for k, v in cli.env.items():
        monkeypatch.setenv(k, v)
    return cli, load_config()


def _status(cfg: Config, vmid: int) -> str | None:
    return next((c.status for c in open_backend(cfg).list() if c.vmid == vmid), None)


def _texts(view: SectionView) -> str:
    return "\n".join(" | ".join(r) for t in view.query(SafeTable) for r in cells(t))


@sync
async def test_pve_local_containers_logs_security_network_destroy(
    sim: PveSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, cfg = _setup(sim, "pve-local", monkeypatch)
    port = free_port()
    vmid = int(
        cli.ok(
            "run", "-d", "--name", "tuiweb", "-p", f"{port}:80", "--ip", f"{sim.ip(40)}/24",
            "--gateway", sim.gateway, DEMO_REF,
        ).strip()
    )  # fmt: skip
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
        app = LxcriApp(LiveSource(cfg, open_backend(cfg)), refresh=0.5)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#table", RowList)
            row = await until(pilot, lambda: row_of(table, "tuiweb"), what="the CT listed")
            assert row[0] == str(vmid) and row[3] == "running" and row[7] == sim.ip(40)
            assert row[8] == f"{port}->80/tcp"
            table.move_cursor(row=[r[1] for r in cells(table)].index("tuiweb"))
            await pilot.press("l")
            log = await until(
                pilot, lambda: app.current_mode == "logs" and app.screen.query_one(Log)
            )
            await until(pilot, lambda: any("response:200" in x for x in log.lines), what="its log")
            await pilot.press("5")
            view = await until(
                pilot, lambda: app.current_mode == "security" and app.screen.query_one(SectionView)
            )
            await until(pilot, lambda: "unprivileged" in _texts(view), what="its security")
            assert "unprivileged | yes" in _texts(view)
            await pilot.press("4")
            view = await until(
                pilot, lambda: app.current_mode == "network" and app.screen.query_one(SectionView)
            )
            await until(pilot, lambda: f"veth{vmid}i0" in _texts(view), what="its veth")
            await pilot.press("1")
            await pilot.press("x")
            await until(pilot, lambda: _status(cfg, vmid) == "exited", timeout=60)
            await pilot.press("s")
            await until(pilot, lambda: _status(cfg, vmid) == "running", timeout=60)
            await pilot.press("D")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: _status(cfg, vmid) is None, timeout=90)
            await until(pilot, lambda: row_of(table, "tuiweb") is None)
    finally:
        cli("destroy", "--force", str(vmid))


@sync
async def test_pve_api_list_stop_and_logs_refused(
    sim: PveSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, cfg = _setup(sim, "pve-api", monkeypatch)
    vmid = int(
        cli.ok(
            "run", "-d", "--name", "tuiapi", "--ip", f"{sim.ip(41)}/24", "--gateway",
            sim.gateway, DEMO_REF,
        ).strip()
    )  # fmt: skip
    try:
        app = LxcriApp(LiveSource(cfg, open_backend(cfg)), refresh=0.5)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#table", RowList)
            row = await until(pilot, lambda: row_of(table, "tuiapi"), what="the CT listed")
            assert row[3] == "running" and row[5] == "-"  # no CPU read for another node's pid
            table.move_cursor(row=[r[1] for r in cells(table)].index("tuiapi"))
            await pilot.press("l")
            await until(
                pilot,
                lambda: any("--backend pve-local" in m for _, m in app.said),
                what="the logs refusal as a message",
            )
            assert app.is_running
            await pilot.press("1", "x")
            await until(pilot, lambda: _status(cfg, vmid) == "exited", timeout=60)
            await until(pilot, lambda: (r := row_of(table, "tuiapi")) and r[3] == "exited")
    finally:
        cli("destroy", "--force", str(vmid))
