"""``lxcri inspect-storage``: ZFS pools and layer chains, overlay/dir layers, Proxmox storages."""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING, Any

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_backend, get_config, output_option

if TYPE_CHECKING:
    from lxcri_core.storage.storage_report import StorageReport, ZfsReport

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\[\]]")


def _safe(text: object) -> str:
    """A cell for a person's terminal: no control characters, no rich markup."""
    return _CONTROL.sub("?", str(text))


def _size(n: int | None) -> str:
    from lxcri_pve.cli.common import human_size

    return "-" if n is None else human_size(n)


@click.command("inspect-storage")
@click.option(
    "--pool",
    metavar="POOL[/DATASET]",
    help="Only this ZFS pool or dataset (default: zfs_pool from the config, else every pool).",
)
@output_option
def inspect_storage(pool: str | None, output: str) -> None:
    """Show storage: ZFS pools, layer chains and clones, overlay/dir layers, Proxmox storages.

    \b
    ZFS: pool health, size, free and fragmentation; every lxcri layer chain
    with the containers (and their snapshots and linked clones) holding it;
    the space `lxcri image prune` would free. Overlay and dir: each stored
    layer or image with its size and users. On pve-local / pve-api: the
    node's storages with lxcri's volumes on each.
    \b
    Examples:
      lxcri inspect-storage
      lxcri inspect-storage --pool rpool/data --output json
    """
    from lxcri_core.storage.storage_report import storage_report

    report = storage_report(get_config(), pool)
    storages = _pve_storages() if not pool else None
    if output == "json":
        doc: dict[str, Any] = dataclasses.asdict(report)
        doc["pve_storages"] = (
            None if storages is None else [dataclasses.asdict(s) for s in storages]
        )
        emit_json(doc)
        return
    _render(report, storages)


def _pve_storages() -> list[Any] | None:
    """The backend's storages, where it has any (pve-local, pve-api; lxc has none)."""
    storages = getattr(get_backend(), "storages", None)
    return None if storages is None else list(storages())


def _render(report: StorageReport, storages: list[Any] | None) -> None:
    if report.zfs is not None:
        _render_zfs(report.zfs)
    elif report.zfs_error:
        click.echo(f"ZFS: not available ({_safe(report.zfs_error)})")
    if report.dirs:
        click.echo()
        emit_table(
            ["BACKEND", "KIND", "KEY", "SIZE", "CONTAINERS", "IMAGES", "PATH"],
            [
                [
                    d.backend,
                    d.kind,
                    _safe(d.key.split(":", 1)[-1][:16]),
                    _size(d.bytes),
                    _safe(", ".join(d.containers) or "-"),
                    len(d.images),
                    _safe(d.path),
                ]
                for d in report.dirs
            ],
        )
    if storages:
        click.echo()
        emit_table(
            ["STORAGE", "TYPE", "STATUS", "TOTAL", "USED", "AVAIL", "LXCRI VOLUMES"],
            [
                [
                    _safe(s.id),
                    _safe(s.type),
                    _safe(s.status),
                    _size(s.total),
                    _size(s.used),
                    _size(s.avail),
                    _safe(", ".join(s.volumes) or "-"),
                ]
                for s in storages
            ],
        )


def _render_zfs(z: ZfsReport) -> None:
    if z.skipped_lines:
        click.echo(f"warning: {z.skipped_lines} lines of zfs output did not parse", err=True)
    status = {s.name: s for s in z.status}
    emit_table(
        ["POOL", "HEALTH", "SIZE", "ALLOC", "FREE", "FRAG", "CAP", "SCAN", "ERRORS"],
        [
            [
                _safe(p.name),
                _safe(p.health),
                _size(p.size) if p.exact else f"~{_size(p.size)}",
                _size(p.allocated) if p.exact else f"~{_size(p.allocated)}",
                _size(p.free) if p.exact else f"~{_size(p.free)}",
                "-" if p.fragmentation is None else f"{p.fragmentation}%",
                "-" if p.capacity is None else f"{p.capacity}%",
                _safe(status[p.name].scan if p.name in status else ""),
                _safe(status[p.name].errors if p.name in status else ""),
            ]
            for p in z.pools
        ],
    )
    click.echo()
    if not z.tree.layers:
        click.echo(f"No lxcri layer chains under {_safe(z.root or 'any pool')}.")
    layers = {n.dataset: n for n in z.tree.layers}
    clones: dict[str, list[str]] = {}
    for c in z.tree.clones:
        clones.setdefault(c.layer, []).append(f"{c.dataset} (container {c.container or '-'})")
    todo = [(n.dataset, 0) for n in reversed(z.tree.layers) if n.parent is None]
    while todo:  # depth first, each chain under its bottom layer
        name, depth = todo.pop()
        layer, indent = layers[name], "  " * depth
        click.echo(
            f"{indent}{_safe(layer.dataset)}  used {_size(layer.used)}  "
            f"refer {_size(layer.referenced)}  images {len(layer.images)}  "
            f"containers {len(layer.containers)}"
        )
        for line in clones.get(name, []):
            click.echo(f"{indent}  └ {_safe(line)}")
        todo.extend((a, depth + 1) for a in reversed(layer.layers_above) if a in layers)
    if z.tree.clones:
        click.echo()
        emit_table(
            [
                "CONTAINER",
                "DATASET",
                "LAYER",
                "DEPTH",
                "USED",
                "REFER",
                "WRITTEN",
                "RATIO",
                "SNAPS",
            ],
            [
                [
                    _safe(c.container or "-"),
                    _safe(c.dataset),
                    _safe(c.layer.rsplit("/", 1)[-1]),
                    len(c.chain),
                    _size(c.used),
                    _size(c.referenced),
                    _size(c.written),
                    "-" if c.compressratio is None else f"{c.compressratio:.2f}x",
                    len(c.snapshots),
                ]
                for c in z.tree.clones
            ],
        )
    click.echo()
    if not z.prune_root:
        click.echo("`lxcri image prune` prunes no ZFS layers: zfs_pool is not configured")
        return
    click.echo(
        f"A prune would free {_size(z.prune.bytes)} ({len(z.prune.datasets)} layer datasets)"
        + (f"; {len(z.prune.blocked)} unused layers are still cloned" if z.prune.blocked else "")
    )
