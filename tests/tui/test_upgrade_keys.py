"""Upgrade (U) and roll back (B) on the Containers screen: asked first, then done as
``lxcri upgrade``/``rollback`` do it, on a real container whose tag moved in a real
registry; the answer is a message with the outcome."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from lxcri_tui.rowlist import RowList
from lxcri_tui.widgets import ConfirmScreen

from lxcri_core.backend import CreateRequest, CtRef, open_backend
from lxcri_core.config import Config
from lxcri_core.spec.options import RunOptions
from tests.containers.test_upgrade import app_image
from tests.support.lxcenv import LxcEnv
from tests.support.registry import push_image, start_registry
from tests.tui.conftest import SIZE, row_of, sync, until

pytestmark = pytest.mark.slow


@sync
async def test_upgrade_and_rollback_are_confirmed(
    lxenv: LxcEnv, cfg: Config, tmp_path: Path
) -> None:
    reg = start_registry(tmp_path / "reg")
    try:
        ref = f"{reg.addr}/tui/app:1"
        push_image(reg.addr, app_image("1"), "tui/app:1", tmp_path)
        cfg = dataclasses.replace(cfg, insecure_registries=(reg.addr,))
        backend = open_backend(cfg, "lxc")
        ct = backend.create(CreateRequest(ref, RunOptions(name="up")))
        backend.start(CtRef(str(ct.vmid)))
        lxenv.remember("up")
        first = backend.status(CtRef("100")).image_digest
        second = push_image(reg.addr, app_image("2"), "tui/app:1", tmp_path).manifest_digest
        app = LxcriApp(LiveSource(cfg, backend), refresh=3600)
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one("#table", RowList)
            await until(pilot, lambda: row_of(table, "up"))
            steps = (("U", "upgrade", "upgraded", second), ("B", "roll", "rolled-back", first))
            for key, what, outcome, digest in steps:
                await pilot.press(key)
                dialog = await until(
                    pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen
                )
                assert what in dialog.question.lower() and "up (100)" in dialog.question
                await pilot.press("n")
                await pilot.pause(0.3)
                assert not isinstance(app.screen, ConfirmScreen)
                assert not any(f"(100): {outcome}" in m for _, m in app.said)
                await pilot.press(key, "y")
                said = f"(100): {outcome}"
                await until(pilot, lambda s=said: any(s in m for _, m in app.said))  # type: ignore[misc]
                assert backend.status(CtRef("100")).image_digest == digest
            [st] = backend.list()
            assert st.status == "running"
            assert [g.number for g in backend.history(CtRef("100"))] == [1]
    finally:
        reg.stop()
