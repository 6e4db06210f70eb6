"""Image commands: images, inspect, import, export, rmi and the ``image`` group.

Each command parses its options, calls one function of ``lxcri_core.images``
and renders the result; errors are LxcriErrors that the top-level group turns
into one line on stderr and exit status 1.
"""

from __future__ import annotations

from typing import Any

import click
from lxcri_pve.cli.common import emit_json, get_config, human_size, lxc_name, output_option

_IMAGES_HELP = """List the images in the local store.

\b
Columns, as docker prints them:
  REPOSITORY  the repository (docker.io/library/ omitted)
  TAG         the tag, or <none> for an image stored by digest
  DIGEST      the manifest digest, shortened (--no-trunc for all of it)
  SIZE        bytes in the store: compressed layers, config and manifest
  PLATFORM    OS/ARCH[/VARIANT] of the image

\b
Examples:
  lxcri images
  lxcri images -q
  lxcri images --output json | jq -r '.[].name'
"""


def _columns(headers: list[str], rows: list[list[str]]) -> None:
    """Aligned plain columns like docker's.

    Not ``emit_table``: rich fits tables to 80 columns when stdout is a pipe and
    cuts digests and long repository names short, which --no-trunc must not do.
    """
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        cells = [f"{c!s:<{w}}" for c, w in zip(row, widths, strict=True)]
        click.echo("   ".join(cells).rstrip())


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _images(output: str, no_trunc: bool, quiet: bool = False) -> None:
    from lxcri_core.images import list_images

    images = list_images(get_config())
    if output == "json":
        emit_json([i.to_json() for i in images])
        return
    if quiet:  # one line per image digest (several names of one image: once)
        for digest in dict.fromkeys(i.digest for i in images):
            click.echo(digest if no_trunc else _short(digest))
        return
    _columns(
        ["REPOSITORY", "TAG", "DIGEST", "SIZE", "PLATFORM"],
        [
            [
                i.repository,
                i.tag,
                i.digest if no_trunc else _short(i.digest),
                human_size(i.size),
                i.platform,
            ]
            for i in images
        ],
    )


_no_trunc = click.option("--no-trunc", is_flag=True, help="Show full digests.")
_quiet = click.option(
    "-q", "--quiet", is_flag=True, help="Only digests (short; full with --no-trunc)."
)


@click.command(help=_IMAGES_HELP)
@_no_trunc
@_quiet
@output_option
def images(output: str, no_trunc: bool, quiet: bool) -> None:
    _images(output, no_trunc, quiet)


_IMAGE_INSPECT_HELP = """Show an image's digest, platform, size, config and layers.

REF is any docker form of a reference (busybox, busybox:1.36,
127.0.0.1:5000/team/app@sha256:...), a manifest digest, or a unique prefix of
one (at least 4 hex digits), as `lxcri images` shows it.

\b
Examples:
  lxcri image inspect busybox:1.36
  lxcri image inspect 3f2a9c1b
  lxcri image inspect -o json nginx | jq .config.Env
"""

_INSPECT_HELP = """Show a container's or an image's details.

NAME is a container's name or id (a unique prefix of 4+ characters), or an
image reference or digest (prefix). A name that is both is the container,
as in docker; --type picks. For a container: state, exit code, health, pid,
image and digest, config, mounts, ports, labels, resources and network.
Environment values the image does not set itself (-e, --env-file) are shown
as KEY=*** unless --show-secrets. With --output json a container is a list
of one object, like `docker inspect`'s (keys in snake_case).

\b
Examples:
  lxcri inspect web1
  lxcri inspect --type image busybox:1.36
  lxcri inspect -o json web1 | jq '.[0].state.exit_code'
"""


def _kv(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(str(k) for k in value)
    return str(value)


def _inspect_image(ref: str, output: str) -> None:
    from lxcri_core.images import inspect_image

    d = inspect_image(get_config(), ref)
    if output == "json":
        emit_json(d.to_json())
        return
    rows: list[list[Any]] = [
        ["Name", d.name],
        ["Other names", ", ".join(n for n in d.names if n != d.name)],
        ["Digest", d.digest],
        ["Media type", d.media_type],
        ["Platform", d.platform],
        ["Created", d.created],
        ["Author", d.author],
        ["Size", f"{human_size(d.size)} ({d.size} bytes)"],
        ["Config", f"{d.config_digest} ({d.config_size} bytes)"],
        ["Index", d.index_digest],
    ]
    for key in ("Entrypoint", "Cmd", "Env", "WorkingDir", "User", "ExposedPorts", "Volumes"):
        if d.config.get(key):
            rows.append([key, _kv(d.config[key])])
    # Plain aligned lines, not a table: digests must never be cut to the terminal width.
    rows = [r for r in rows if r[1]]
    width = max(len(str(r[0])) for r in rows) + 2
    for key, value in rows:
        click.echo(f"{key + ':':<{width}}{value}")
    click.echo("Layers:")
    for n, la in enumerate(d.layers):
        click.echo(f"  {n:>2}  {la.digest}  {human_size(la.size):>9}  {la.media_type}")


def _container_name(ref: str, required: bool) -> str | None:
    """The container ``ref`` names, or None (then it is an image) unless ``required``."""
    from lxcri_core.containers.record import load_record
    from lxcri_core.errors import BackendError

    cfg = get_config()
    try:
        name = lxc_name(ref, "inspect")
        load_record(cfg.root, name)  # a half-created one is no container to inspect
        return name
    except BackendError:
        if required:
            raise
        return None


@click.command(help=_INSPECT_HELP)
@click.argument("ref", metavar="NAME")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["container", "image"]),
    help="What NAME is (default: a container if one has that name or id, else an image).",
)
@click.option("--show-secrets", is_flag=True, help="Show a container's environment values.")
@output_option
def inspect(ref: str, kind: str | None, show_secrets: bool, output: str) -> None:
    from lxcri_core.containers.record import NAME_RE
    from lxcri_core.errors import BackendError, ImageNotFound, ReferenceError_

    name = None if kind == "image" else _container_name(ref, required=kind == "container")
    if name is None:
        try:
            _inspect_image(ref, output)
        except (ImageNotFound, ReferenceError_) as e:
            if kind == "image" or not NAME_RE.fullmatch(ref):
                raise  # no container could have that name: the image's error says it all
            raise BackendError(
                f"no such container or image: {ref} (no container of that name or id: "
                f"see `lxcri ps -a`; {e})"
            ) from e
        return
    from lxcri_pve.cli.container_show import render_container

    from lxcri_core.containers.inspect import inspect_container

    doc = inspect_container(get_config(), name, show_secrets=show_secrets)
    if output == "json":
        emit_json([doc])
    else:
        render_container(doc)


@click.command("inspect", help=_IMAGE_INSPECT_HELP)
@click.argument("ref")
@output_option
def image_inspect(ref: str, output: str) -> None:
    _inspect_image(ref, output)


_IMPORT_HELP = """Import an image from an OCI layout, an oci-archive or a docker-archive.

PATH is detected by its content:

\b
  a directory with oci-layout   an OCI image layout (skopeo copy ... oci:DIR:TAG)
  a tar with oci-layout inside  an oci-archive (podman save --format oci-archive,
                                skopeo ... oci-archive:F.tar, Proxmox VE 9.1 templates)
  a tar with manifest.json      a docker-archive (docker save)

When the source holds several images, --name's tag picks one (an OCI ref
name equal to the tag or to the whole reference, or a docker RepoTag);
from a multi-platform index the manifest for --platform (default: this
host) is stored. Every blob is verified against its digest; a corrupt,
truncated or unsafe archive is refused and leaves the store unchanged.

\b
Examples:
  lxcri import ./busybox-oci --name busybox:1.36
  lxcri import app.tar --name registry.lan/team/app:2.1
  docker save nginx:1.27 > nginx.tar && lxcri import nginx.tar
"""


@click.command("import", help=_IMPORT_HELP)
@click.argument("path", type=click.Path(exists=True))
@click.option(
    "--name",
    "-n",
    metavar="REF",
    help="Store the image as REF (REPO[:TAG]); optional when the source names it.",
)
@click.option("--platform", metavar="OS/ARCH[/VARIANT]", help="Platform to take from an index.")
@output_option
def import_(path: str, name: str | None, platform: str | None, output: str) -> None:
    from lxcri_core.images import import_image

    rec = import_image(get_config(), path, name, platform=platform)
    if output == "json":
        emit_json(
            {
                "name": rec.name,
                "digest": rec.descriptor.digest,
                "platform": str(rec.descriptor.platform or ""),
            }
        )
    else:
        click.echo(f"Imported {rec.name} ({rec.descriptor.digest})")


_EXPORT_HELP = """Export an image as an oci-archive tar that Proxmox VE 9.1 reads.

The archive holds one image (index.json names it with its full reference)
and is what `skopeo copy oci-archive:FILE ...` and Proxmox VE 9.1's
`pct create` read. FILE must end in .tar (PVE detects OCI archives only by
that suffix). An image with Docker media types is written with OCI ones,
which gives it a new manifest digest; the index entry's
io.lxcri.source.digest annotation (and this command's output) names the
original. The image must be for --platform (default: this host's): give the
target node's. The file is written to a temporary file and renamed, so FILE
is either complete or untouched.

\b
Examples:
  lxcri export busybox:1.36 busybox.tar
  lxcri export --platform linux/arm64 nginx /var/lib/vz/template/cache/nginx-oci.tar
"""


@click.command(help=_EXPORT_HELP)
@click.argument("ref")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--platform", metavar="OS/ARCH[/VARIANT]", help="The target node's platform (default: host's)."
)
@output_option
def export(ref: str, file: str, platform: str | None, output: str) -> None:
    from lxcri_core.images import export_image

    r = export_image(get_config(), ref, file, platform=platform)
    if output == "json":
        emit_json(r.to_json())
        return
    if r.converted:
        click.echo(
            f"Converted {r.name} to OCI media types: {r.digest} (from {r.source_digest})",
            err=True,
        )
    click.echo(f"Exported {r.name} ({r.digest[:19]}) to {file}, {human_size(r.size)}")


_RMI_HELP = """Remove images from the store and delete blobs no other image uses.

REF is a name in any docker form, a digest or a unique digest prefix. A
digest shared by several names is refused unless --force removes them all.

\b
Examples:
  lxcri rmi busybox:1.36
  lxcri rmi --force 3f2a9c1b
"""


def _rmi(refs: tuple[str, ...], force: bool, output: str) -> None:
    from lxcri_core.images import remove_image

    cfg = get_config()
    results = [remove_image(cfg, r, force=force) for r in refs]
    if output == "json":
        emit_json([r.to_json() for r in results])
        return
    for r in results:
        for n in r.untagged:
            click.echo(f"Untagged: {n}")
        for d in r.deleted:
            click.echo(f"Deleted: {d}")


_force = click.option("--force", "-f", is_flag=True, help="Remove every name of a shared digest.")


@click.command(help=_RMI_HELP)
@click.argument("refs", metavar="REF...", nargs=-1, required=True)
@_force
@output_option
def rmi(refs: tuple[str, ...], force: bool, output: str) -> None:
    _rmi(refs, force, output)


@click.group()
def image() -> None:
    """Manage images in the local store (ls, inspect, rm, prune)."""


@image.command("ls", help=_IMAGES_HELP.replace("lxcri images", "lxcri image ls"))
@_no_trunc
@_quiet
@output_option
def image_ls(output: str, no_trunc: bool, quiet: bool) -> None:
    _images(output, no_trunc, quiet)


image.add_command(image_inspect, "inspect")


@image.command("rm", help=_RMI_HELP.replace("lxcri rmi", "lxcri image rm"))
@click.argument("refs", metavar="REF...", nargs=-1, required=True)
@_force
@output_option
def image_rm(refs: tuple[str, ...], force: bool, output: str) -> None:
    _rmi(refs, force, output)


@image.command("prune")
@output_option
def prune(output: str) -> None:
    """Delete blobs no image references and partial downloads left by crashes.

    Waits for running pulls and imports to finish first, so it never deletes
    what they are writing.

    \b
    Examples:
      lxcri rmi busybox:1.36 && lxcri image prune
      lxcri image prune -o json | jq .freed
    """
    from lxcri_core.images import prune_images

    result = prune_images(get_config())
    if output == "json":
        emit_json(result.to_json())
        return
    for item in result.items:
        click.echo(f"Deleted {item.kind}: {item.id}")
    click.echo(f"Total reclaimed space: {human_size(result.freed)}")


_DISTRIBUTE_HELP = """Send an image's unpacked layers to other cluster nodes by zfs replication.

\b
The image's layer chain is prepared here (zfs backend), then each node gets
only the layer datasets it lacks, as incremental zfs streams over root SSH
(as Proxmox's storage replication), into the zfspool of the same name. A
node whose own layer datasets do not match is left alone: it pulls the
image itself when a container needs it.

\b
NODES: NAME or NAME=ADDRESS, repeated or comma separated; default: every
other node of the cluster (/etc/pve/nodes, addresses from /etc/pve/.members).

\b
Examples:
  lxcri image distribute nginx:1.27
  lxcri image distribute nginx:1.27 --nodes pve2,pve3 --bwlimit 50m
"""


@image.command("distribute", help=_DISTRIBUTE_HELP)
@click.argument("ref")
@click.option("--nodes", "node_specs", multiple=True, metavar="NODES", help="Nodes to send to.")
@click.option("--bwlimit", metavar="RATE", help="Bytes per second per stream, e.g. 50m.")
@click.option(
    "--identity",
    type=click.Path(dir_okay=False, exists=True),
    help="SSH private key (default: root's, as Proxmox's).",
)
@click.option("--target-pool", metavar="POOL", help="The nodes' zfs pool (default: zfs_pool).")
@click.option(
    "--no-compress", is_flag=True, help="Send the zfs streams as they are (no zstd on the wire)."
)
@output_option
def distribute(
    ref: str,
    node_specs: tuple[str, ...],
    bwlimit: str | None,
    identity: str | None,
    target_pool: str | None,
    no_compress: bool,
    output: str,
) -> None:
    from pathlib import Path

    from lxcri_core.cluster.distribute import distribute as run
    from lxcri_core.cluster.nodes import cluster_nodes, local_node, parse_node
    from lxcri_core.errors import ConfigError, LxcriError
    from lxcri_core.sizes import parse_size

    cfg = get_config()
    rate = None
    if bwlimit is not None:
        try:
            rate = parse_size(bwlimit)
        except ValueError as e:
            raise ConfigError(f"--bwlimit: {e}") from None
        if rate <= 0:
            raise ConfigError("--bwlimit must be more than 0 bytes per second")
    known = cluster_nodes(cfg.pve_root)
    specs = [s for spec in node_specs for s in spec.split(",") if s.strip()]
    if specs:
        nodes = [parse_node(s, known) for s in specs]
    else:
        me = local_node(cfg.pve_root)
        nodes = [n for n in known if n.name != me and n.online]
        if not nodes:
            raise ConfigError(
                f"no other cluster node found in {cfg.pve_root}; name them with --nodes"
            )
    results = run(
        cfg,
        ref,
        nodes,
        bwlimit=rate,
        identity=Path(identity) if identity else None,
        target_pool=target_pool,
        compress=not no_compress,
    )
    if output == "json":
        emit_json([r.to_json() for r in results])
    else:
        for r in results:
            if r.error is not None:
                click.echo(f"{r.node}: failed: {r.error}")
            elif r.replication is not None and r.replication.fallback is not None:
                click.echo(f"{r.node}: refused, the node pulls instead: {r.replication.fallback}")
            elif r.replication is not None:
                rep = r.replication
                click.echo(
                    f"{r.node}: {len(rep.sent)} layer(s) sent ({human_size(rep.wire_bytes)}), "
                    f"{len(rep.present)} present"
                )
    failed = [r.node for r in results if not r.ok]
    if failed:
        raise LxcriError(f"the image did not reach {', '.join(failed)}")
