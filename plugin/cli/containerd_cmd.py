"""``lxcri containerd-config``: register lxcri-runtime with containerd."""

from __future__ import annotations

import click
from lxcri_pve.cli.common import get_config

_HELP = """Print (or, with --write, install) containerd's drop-in registering
lxcri-runtime as a CRI runtime of type io.containerd.runc.v2.

\b
--version 2: containerd 1.6/1.7 (config version 2; the default)
--version 3: containerd 2.x (config version 3)

With --write the drop-in goes to DIR/conf.d/lxcri.toml (DIR: containerd_config_dir,
default /etc/containerd) and DIR/config.toml gets the `imports` line that loads
it (created when missing); restart containerd afterwards. ctr needs no drop-in:
`ctr run --runc-binary $(command -v lxcri-runtime) IMAGE ID`.
"""


def _binary() -> str:
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.argv[0]).absolute().parent / "lxcri-runtime"
    if beside.is_file():
        return str(beside)
    return shutil.which("lxcri-runtime") or "/usr/bin/lxcri-runtime"


@click.command(help=_HELP)
@click.option("--version", "version", type=click.Choice(["2", "3"]), default="2")
@click.option("--write", is_flag=True, help="Install it instead of printing it.")
@click.option("--binary", help="lxcri-runtime's path [default: the installed one].")
@click.option(
    "--pve-register",
    is_flag=True,
    help="Let pods ask (annotation org.lxcri.pve-register=true) to appear as Proxmox CTs.",
)
def containerd_config(version: str, write: bool, binary: str | None, pve_register: bool) -> None:
    from lxcri_core.runtime.containerd import DROPIN_NAME, render_dropin, with_import

    cfg = get_config()
    text = render_dropin(int(version), cfg.runtime_name, binary or _binary(), pve_register)
    if not write:
        click.echo(text, nl=False)
        return
    from lxcri_core.fsutil import atomic_write

    conf_d = cfg.containerd_config_dir / "conf.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    dropin = conf_d / DROPIN_NAME
    atomic_write(dropin, text.encode(), 0o644)
    click.echo(f"wrote {dropin}")
    main = cfg.containerd_config_dir / "config.toml"
    try:
        current: str | None = main.read_text()
    except FileNotFoundError:
        current = None
    new = with_import(current, str(dropin), int(version))
    if new is None:
        click.echo(f"{main} imports it already")
    else:
        atomic_write(main, new.encode(), 0o644)
        click.echo(f"{'created' if current is None else 'updated'} {main}: imports {dropin}")
    click.echo("restart containerd to load it")
