"""What the CLI commands share: the config, the --output option, rendering."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lxcri_core.config import Config

if TYPE_CHECKING:
    from lxcri_core.backend import Backend

F = TypeVar("F", bound=Callable[..., Any])


def get_config() -> Config:
    """The Config loaded by the top-level group."""
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    assert isinstance(obj, Config)
    return obj


def get_backend() -> Backend:
    """The backend chosen by ``--backend`` / ``LXCRI_BACKEND`` / the config, else the default."""
    from lxcri_core.backend import open_backend

    cfg = get_config()
    return open_backend(cfg, cfg.backend or None)


def lxc_name(ref: str, command: str) -> str:
    """The plain-LXC name of container ``ref`` (a VMID, name or id prefix), for the
    commands the ``Backend`` protocol has no operation for (kill, cp, top...)."""
    from lxcri_core.backend import CtRef
    from lxcri_core.errors import BackendError

    backend = get_backend()
    resolve = getattr(backend, "resolve", None)
    if backend.name != "lxc" or resolve is None:
        raise BackendError(f"`lxcri {command}` works on plain LXC containers only (--backend lxc)")
    name: str = resolve(CtRef(ref))
    return name


def output_option(f: F) -> F:
    """``--output/-o json|table``: json is for scripts, table for people."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(f)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def emit_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    """An aligned table: rich on a terminal, plain columns (never cut short) when piped."""
    import sys

    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    if not sys.stdout.isatty():
        widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(columns)]
        for line in [list(columns), *cells]:
            click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title or None, box=None, pad_edge=False, header_style="bold")
    for row in cells:
        table.add_row(*row)
    Console(soft_wrap=True).print(table)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
