"""``lxcri tui``: the Textual dashboard (textual is imported only here, when it runs)."""

from __future__ import annotations

import click
from lxcri_pve.cli.common import get_config


@click.command("tui")
@click.option(
    "--backend",
    type=click.Choice(["lxc", "pve-local", "pve-api"]),
    help="Where the containers live (as lxcri --backend) [default: the configured one].",
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.2, max=3600),
    metavar="SECONDS",
    help="Seconds between two reloads of the container list [default: tui_refresh, 2].",
)
@click.option(
    "--theme",
    type=click.Choice(["light", "dark"]),
    help="Colour theme [default: tui_theme, dark]; t switches it while running.",
)
def tui(backend: str | None, refresh: float | None, theme: str | None) -> None:
    """Open the dashboard: containers, images, storage, network, security, logs, stacks.

    \b
    Keys: 1-7 switch screens, / filters, ? shows every key, ctrl+p the command
    palette, q quits. Data loads in the background; input never waits for it.
    \b
    Examples:
      lxcri tui
      lxcri tui --backend pve-api --refresh 5 --theme light
    """
    import dataclasses

    from lxcri_core.backend import open_backend

    cfg = get_config()
    if backend:
        cfg = dataclasses.replace(cfg, backend=backend)
    be = open_backend(cfg, cfg.backend or None)

    from lxcri_tui.app import LxcriApp
    from lxcri_tui.live import LiveSource

    app = LxcriApp(
        LiveSource(cfg, be),
        refresh=refresh if refresh is not None else cfg.tui_refresh,
        theme="light" if (theme or cfg.tui_theme) == "light" else "dark",
    )
    app.run()
