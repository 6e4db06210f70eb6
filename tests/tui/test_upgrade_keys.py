"""Upgrade (U) and roll back (B) on the Containers screen: asked first, then the
backend's ``upgrade``/``rollback`` (lxcri_tui.actions). Until the backends have them,
the answer is a message naming what is missing, and the container is untouched.
When Backend.upgrade/rollback land, this test is to assert their outcome instead."""

from __future__ import annotations

import pytest
from lxcri_tui.app import LxcriApp
from lxcri_tui.live import LiveSource
from lxcri_tui.rowlist import RowList
from lxcri_tui.widgets import ConfirmScreen

from lxcri_core.backend import open_backend
from lxcri_core.config import Config
from tests.support.lxcenv import LxcEnv
from tests.tui.conftest import SIZE, row_of, sync, until

pytestmark = pytest.mark.slow


@sync
async def test_upgrade_and_rollback_are_confirmed(lxenv: LxcEnv, cfg: Config) -> None:
    pid = lxenv.start("up", args=("sleep 300",))
    backend = open_backend(cfg, "lxc")
    app = LxcriApp(LiveSource(cfg, backend), refresh=3600)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#table", RowList)
        await until(pilot, lambda: row_of(table, "up"))
        for key, what in (("U", "upgrade"), ("B", "roll")):
            await pilot.press(key)
            dialog = await until(
                pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen
            )
            assert what in dialog.question.lower() and "up (100)" in dialog.question
            await pilot.press("n")
            await pilot.pause(0.3)
            assert not isinstance(app.screen, ConfirmScreen)
            assert not any(what in m for _, m in app.said)
            await pilot.press(key, "y")
            if hasattr(backend, "upgrade"):
                await until(pilot, lambda: any("(100): " in m for _, m in app.said))
            else:
                await until(
                    pilot,
                    lambda: any("cannot upgrade" in m or "cannot roll" in m for _, m in app.said),
                )
        [ct] = backend.list()
        assert ct.status == "running" and ct.pid == pid
