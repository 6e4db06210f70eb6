"""Each screen at 120x36 against its accepted SVG (tests/tui/__snapshots__); the data
is the recorded source's, so only a change of the dashboard changes a picture.
``make snapshots-update`` accepts new pictures after a person has looked at them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.tui.snapapp import SCREENS, SIZE, app, keys


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_screen_snapshot(screen: str, snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(app(), terminal_size=SIZE, run_before=keys(SCREENS[screen]))
