"""``lxcri upgrade``, ``rollback``, ``history``, ``auto-update``: the image lifecycle."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_backend, get_config, output_option
from lxcri_pve.cli.completion import container_names

_HEALTH = click.option(
    "--health-timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds the new image has to run (and pass its healthcheck) before it is rolled back.",
)


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _report(
    results: Iterable[Any], output: str, failing: tuple[str, ...] = ("failed", "rolled-back")
) -> None:
    """Print each result as it comes (table), or all of them (json); exit 1 when one
    ended in ``failing`` (an upgrade rolled back by itself is a failed upgrade)."""
    done: list[Any] = []
    for r in results:
        done.append(r)
        if output != "json":
            text = {
                "upgraded": f"{_short(r.old_digest)} -> {_short(r.new_digest)}",
                "unchanged": r.message or "unchanged",
                "would-upgrade": f"would upgrade {_short(r.old_digest)} -> {_short(r.new_digest)}",
                "rolled-back": f"rolled back to {_short(r.new_digest)} ({r.message})",
                "failed": f"failed: {r.message}",
            }[r.outcome]
            if r.outcome == "upgraded" and r.message:
                text += f" ({r.message})"
            click.echo(f"{r.vmid} {r.name}: {text}")
    if output == "json":
        emit_json([r.to_json() for r in done])
    if any(r.outcome in failing for r in done):
        sys.exit(1)


@click.command()
@click.argument("containers", nargs=-1, shell_complete=container_names)
@click.option("--image", help="Move to this image reference (default: the container's own).")
@click.option(
    "--pull",
    type=click.Choice(["always", "missing", "never"]),
    default="always",
    show_default=True,
    help="always: ask the registry; missing/never: the local store's image.",
)
@_HEALTH
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help="A stack file: "
              "upgrade each of its services whose image moved.")  # fmt: skip
@click.option("--insecure", is_flag=True, help="Pull over plain http if needed.")
@output_option
def upgrade(
    containers: tuple[str, ...],
    image: str | None,
    pull: str,
    health_timeout: float,
    file: str | None,
    insecure: bool,
    output: str,
) -> None:
    """Move containers to the current image of their reference, keeping their data.

    \b
    The new image's digest is resolved (the same tag asked again, or --image).
    When it moved, the new rootfs is made from shared layers (zfs: a clone;
    overlay: a new upper dir; dir: a copy), the container is stopped, its
    rootfs swapped and it is started again if it ran. Kept: volumes, network
    and address, published ports, limits, tags and every option given at
    create; settings that came from the old image (entrypoint, cmd, env,
    workdir, user, volumes) follow the new one. The old rootfs is kept for
    `lxcri rollback` (setting keep_generations, default 2). A new image whose
    process exits, or whose healthcheck does not pass within --health-timeout,
    is rolled back by itself; the exit status is then 1.

    \b
    Examples:
      lxcri upgrade web                       # same tag, new digest
      lxcri upgrade 101 --image nginx:1.27
      lxcri upgrade -f stack.yaml
      lxcri upgrade web --output json
    """
    from lxcri_core import lifecycle
    from lxcri_core.backend import CtRef, UpgradeRequest
    from lxcri_core.errors import SpecError

    backend = get_backend()
    base = UpgradeRequest(pull=pull, insecure=insecure, health_timeout=health_timeout)  # type: ignore[arg-type]
    if file is not None:
        if containers or image:
            raise SpecError("give either -f STACK or containers (and --image), not both")
        from lxcri_pve.cli.stack_cmds import _load

        from lxcri_core.stacks.apply import service_container

        st = _load(file)

        def each_service() -> Iterable[Any]:
            for svc in st.services.values():
                ct = service_container(backend, st, svc.name)
                req = UpgradeRequest(svc.image, pull, insecure, health_timeout)  # type: ignore[arg-type]
                yield lifecycle.upgrade(backend, CtRef(str(ct.vmid)), req)

        _report(each_service(), output)
        return
    if not containers:
        raise SpecError("name the containers to upgrade (VMID or name), or a stack with -f")

    def each() -> Iterable[Any]:
        from dataclasses import replace

        for c in containers:
            yield lifecycle.upgrade(backend, CtRef(c), replace(base, image=image))

    _report(each(), output)


@click.command()
@click.argument("containers", nargs=-1, required=True, shell_complete=container_names)
@output_option
def rollback(containers: tuple[str, ...], output: str) -> None:
    """Return containers to the root filesystem they had before their last upgrade.

    \b
    The image, its settings and the rootfs of the newest kept generation come
    back (see `lxcri history`); the current generation is deleted. Volumes,
    network and ports stay. A running container is stopped and started again.

    \b
    Examples:
      lxcri rollback web
      lxcri rollback 101 --output json
    """
    from lxcri_core.backend import CtRef

    backend = get_backend()
    _report((backend.rollback(CtRef(c)) for c in containers), output, failing=())


@click.command()
@click.argument("container", shell_complete=container_names)
@output_option
def history(container: str, output: str) -> None:
    """List a container's generations: the current root filesystem and the kept ones.

    \b
    Examples:
      lxcri history web
      lxcri history 101 --output json | jq '.[0].image_digest'
    """
    from lxcri_core.backend import CtRef

    gens = get_backend().history(CtRef(container))
    if output == "json":
        emit_json([g.to_json() for g in gens])
        return
    rows = [
        ["*" if g.current else "", g.number, g.image, _short(g.image_digest), g.created, g.rootfs]
        for g in gens
    ]
    emit_table(["", "GEN", "IMAGE", "DIGEST", "CREATED", "ROOTFS"], rows)


@click.command("auto-update")
@click.option("--dry-run", is_flag=True, help="Only say which containers would be upgraded.")
@_HEALTH
@click.option("--insecure", is_flag=True, help="Ask registries over plain http if needed.")
@output_option
def auto_update(dry_run: bool, health_timeout: float, insecure: bool, output: str) -> None:
    """Upgrade every container that opted in and whose image moved in its registry.

    \b
    A container opts in with `--auto-update registry` on create/run (or the
    label lxcri.auto-update=registry, e.g. in a stack file). Its reference is
    asked of its registry with one HEAD request: nothing is downloaded when
    nothing changed. A moved image is upgraded as `lxcri upgrade` does; one
    that fails to start or to become healthy within --health-timeout is rolled
    back by itself. Exit status 1 when any container failed or was rolled back.
    Debian's package ships lxcri-auto-update.timer (daily; not enabled).

    \b
    Examples:
      lxcri auto-update --dry-run
      lxcri auto-update --output json
    """
    from lxcri_core.autoupdate import auto_update as run

    results = run(
        get_config(),
        get_backend(),
        dry_run=dry_run,
        insecure=insecure,
        health_timeout=health_timeout,
    )
    _report(results, output)
