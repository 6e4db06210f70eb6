"""Shell completion of container and volume names.

Completion runs without the top-level group's callback (click parses with
``resilient_parsing``), so the config is loaded here from ``--config`` and
``--root`` as typed, else the environment. A failure completes nothing:
a broken config must not print a traceback into the user's shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from lxcri_core.config import Config


def _config(ctx: click.Context) -> Config:
    from lxcri_core.config import load_config

    params = ctx.find_root().params
    root = params.get("root")
    return load_config(params.get("config_path"), root=Path(root) if root else None)


def container_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    try:
        from lxcri_core.containers.record import list_records

        names = [r.name for r in list_records(_config(ctx).root)]
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def volume_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    try:
        from lxcri_core.containers.volume_ops import list_volumes

        names = [v.name for v in list_volumes(_config(ctx).root)]
    except Exception:
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]
