"""Write an SVG of each dashboard screen into docs/tui/ (``make tui-screenshots``): the
snapshot tests' app and data, so the docs show what the tests accept."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.tui.snapapp import SCREENS, SIZE, app, keys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tui"


async def shoot(name: str, out: Path) -> None:
    a = app()
    async with a.run_test(size=SIZE) as pilot:
        await keys(SCREENS[name])(pilot)
        a.save_screenshot(filename=f"{name}.svg", path=str(out))


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS
    out.mkdir(parents=True, exist_ok=True)
    for name in SCREENS:
        asyncio.run(shoot(name, out))
        print(out / f"{name}.svg")


if __name__ == "__main__":
    main()
