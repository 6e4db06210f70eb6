"""``lxcri volume ls|inspect|rm|prune``: the volumes under ``$LXCRI_ROOT/volumes``."""

from __future__ import annotations

import sys

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_config, human_size, output_option
from lxcri_pve.cli.completion import volume_names


@click.group()
def volume() -> None:
    """Manage volumes: named ones (-v NAME:/path) and anonymous ones (image VOLUMEs, -v /path).

    \b
    Named volumes outlive their containers; anonymous ones are removed with
    their container.
    \b
    Examples:
      lxcri volume ls
      lxcri volume inspect data
      lxcri volume rm data
      lxcri volume prune -f
    """


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only the names.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="dangling=true|false",
    help="Only volumes no container uses (true) or that some container uses (false).",
)
@output_option
def volume_ls(quiet: bool, filters: tuple[str, ...], output: str) -> None:
    """List volumes and the containers that use them.

    \b
    Examples:
      lxcri volume ls
      lxcri volume ls --filter dangling=true -q
      lxcri volume ls --output json
    """
    from lxcri_core.containers.volume_ops import list_volumes
    from lxcri_core.errors import BackendError

    dangling: bool | None = None
    for f in filters:
        key, _, value = f.partition("=")
        if key != "dangling" or value not in ("true", "false", "1", "0"):
            raise BackendError(f"--filter {f!r}: only dangling=true|false is known")
        dangling = value in ("true", "1")
    vols = [
        v for v in list_volumes(get_config().root) if dangling is None or v.dangling == dangling
    ]
    if output == "json":
        emit_json([v.to_json() for v in vols])
        return
    if quiet:
        for v in vols:
            click.echo(v.name)
        return
    rows = [
        [
            v.name,
            "anonymous" if v.anonymous else "named",
            ", ".join(sorted({u.container for u in v.users})) or "-",
            v.path,
        ]
        for v in vols
    ]
    emit_table(["NAME", "KIND", "USED BY", "PATH"], rows)


@volume.command("inspect")
@click.argument("names", metavar="NAME...", nargs=-1, required=True, shell_complete=volume_names)
@output_option
def volume_inspect(names: tuple[str, ...], output: str) -> None:
    """Show a volume's host path, size and users.

    \b
    Examples:
      lxcri volume inspect data
      lxcri volume inspect data --output json | jq -r '.[0].path'
    """
    from lxcri_core.containers.volume_ops import inspect_volume

    cfg = get_config()
    vols = [inspect_volume(cfg.root, n) for n in names]
    if output == "json":
        emit_json([v.to_json() for v in vols])
        return
    for i, v in enumerate(vols):
        if i:
            click.echo()
        click.echo(f"name: {v.name}")
        click.echo(f"kind: {'anonymous' if v.anonymous else 'named'}")
        click.echo(f"path: {v.path}")
        click.echo(f"size: {human_size(v.size or 0)}")
        click.echo(f"created: {v.created}")
        if not v.users:
            click.echo("used by: -")
        for u in v.users:
            mode = "ro" if u.read_only else "rw"
            click.echo(f"used by: {u.container} at {u.target} ({mode})")


@volume.command("rm")
@click.option(
    "-f", "--force", is_flag=True, help="Also remove a volume that stopped containers use."
)
@click.argument("names", metavar="NAME...", nargs=-1, required=True, shell_complete=volume_names)
@output_option
def volume_rm(names: tuple[str, ...], force: bool, output: str) -> None:
    """Remove volumes. A volume a container uses is kept unless --force;
    one a running container has mounted is always kept.

    \b
    Examples:
      lxcri volume rm data
      lxcri volume rm -f data cache
    """
    from lxcri_core.containers.volume_ops import remove_volume
    from lxcri_core.errors import LxcriError

    cfg = get_config()
    failed = False
    removed = []
    for n in names:
        try:
            remove_volume(cfg.root, n, force=force)
        except LxcriError as e:
            click.echo(f"lxcri: error: {e}", err=True)
            failed = True
            continue
        removed.append(n)
        if output != "json":
            click.echo(n)
    if output == "json":
        emit_json({"removed": removed})
    if failed:
        sys.exit(1)


@volume.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@output_option
def volume_prune(force: bool, output: str) -> None:
    """Remove every volume no container uses (named and anonymous).

    \b
    Examples:
      lxcri volume prune
      lxcri volume prune -f --output json
    """
    from lxcri_core.containers.volume_ops import prune_volumes

    if not force and not click.confirm(
        "This removes every volume no container uses. Continue?", default=False, err=True
    ):
        click.echo("lxcri: nothing removed", err=True)
        sys.exit(1)
    removed = prune_volumes(get_config().root)
    total = sum(v.size or 0 for v in removed)
    if output == "json":
        emit_json({"removed": [v.name for v in removed], "reclaimed_bytes": total})
        return
    for v in removed:
        click.echo(v.name)
    click.echo(f"reclaimed: {human_size(total)}")
