"""pct's ``config`` and ``set``: a container's configuration, in pct's terms."""

from __future__ import annotations

import click
from lxcri_pve.cli.common import emit_json, get_backend, output_option


@click.command()
@output_option
@click.argument("container")
def config(container: str, output: str) -> None:
    """Show a container's configuration as pct config does (key: value lines)."""
    from lxcri_core.backend import CtRef

    doc = get_backend().config_get(CtRef(container))
    if output == "json":
        emit_json(doc)
        return
    for key, value in doc.items():
        click.echo(f"{key}: {value}")


@click.command(name="set")
@click.option("--memory", help="Memory limit in MiB (pct).")
@click.option("--cores", help="Number of CPUs.")
@click.option("--tags", help="Tags: a;b.")
@click.option("--hostname", help="Host name (Proxmox backends).")
@click.option("--delete", "delete", multiple=True, help="Remove a setting (memory, cores, tags).")
@output_option
@click.argument("container")
def set_(
    container: str,
    memory: str | None,
    cores: str | None,
    tags: str | None,
    hostname: str | None,
    delete: tuple[str, ...],
    output: str,
) -> None:
    """Change a container's settings as pct set does.

    On plain LXC the memory and CPU limits (applied now to a running
    container, and at every start) and the tags can change; anything else is
    refused with the reason.
    """
    from lxcri_core.backend import CtRef

    changes: dict[str, str | None] = {
        k: v
        for k, v in (("memory", memory), ("cores", cores), ("tags", tags), ("hostname", hostname))
        if v is not None
    }
    for key in delete:
        for k in key.split(","):
            changes[k.strip()] = None
    if not changes:
        raise click.UsageError("nothing to set: give --memory, --cores, --tags or --delete")
    backend = get_backend()
    ref = CtRef(container)
    backend.config_set(ref, changes)
    if output == "json":
        emit_json(backend.config_get(ref))
