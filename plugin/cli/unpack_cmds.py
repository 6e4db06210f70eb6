"""``lxcri unpack``: write an image's flattened root filesystem into a directory."""

from __future__ import annotations

from pathlib import Path

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_config, human_size, output_option


@click.command()
@click.option(
    "--unprivileged",
    is_flag=True,
    help="Shift owners for an unprivileged container (Proxmox's map 100000:65536).",
)
@click.option(
    "--idmap",
    metavar="BASE:COUNT",
    help="Shift owners: container id 0..COUNT-1 becomes host id BASE..BASE+COUNT-1.",
)
@click.argument("ref")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@output_option
def unpack(unprivileged: bool, idmap: str | None, ref: str, directory: Path, output: str) -> None:
    """Write the flattened root filesystem of image REF into DIRECTORY.

    DIRECTORY must not exist; it appears only when every layer was applied
    and verified against the image's diff_ids.
    """
    from lxcri_core.signals import term_raises
    from lxcri_core.store import Store
    from lxcri_core.unpack import IdMap, WriteLimits, unpack_rootfs

    if unprivileged and idmap:
        raise click.UsageError("give either --unprivileged or --idmap, not both")
    mapping = IdMap.parse(idmap) if idmap else IdMap() if unprivileged else None
    cfg = get_config()
    store = Store(cfg.image_store, lock_timeout=cfg.lock_timeout)
    # A SIGTERM unwinds like an error: the staging tree is removed, nothing is left.
    with term_raises():
        stats = unpack_rootfs(
            store, ref, directory, idmap=mapping, limits=WriteLimits.from_config(cfg)
        )
    if output == "json":
        emit_json(
            {
                "image": ref,
                "target": str(directory),
                "idmap": {"base": mapping.host, "count": mapping.count} if mapping else None,
                "files": sum(s.files for s in stats),
                "bytes": sum(s.bytes for s in stats),
                "layers": [
                    {"diff_id": s.diff_id, "files": s.files, "bytes": s.bytes} for s in stats
                ],
            }
        )
    else:
        rows = [(s.diff_id[:19], s.files, human_size(s.bytes)) for s in stats]
        emit_table(("DIFF_ID", "FILES", "SIZE"), rows, title=f"{ref} -> {directory}")
