"""``lxcri stack up|down|ps|logs`` (``lxcri up`` and ``lxcri down`` too): compose-like stacks.

Why the file option is spelled as it is: ``-f`` already means ``--filter`` in
``lxcri ps`` and ``--follow`` in ``lxcri logs`` (as in docker), so the stack
commands live in their own group. There ``up``, ``down`` and ``ps`` take the
file as ``-f/--file`` (docker compose's spelling) and ``stack logs`` keeps
``-f`` for ``--follow`` (as ``lxcri logs`` and ``docker compose logs`` have it),
taking the file as ``--file`` only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_backend, get_config, output_option

if TYPE_CHECKING:
    from lxcri_core.stacks.model import Stack

#: looked for in the current folder when no file is named, in docker compose's order
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")

_FILE_HELP = "The stack file [default: compose.yaml, compose.yml, docker-compose.y(a)ml here]."


def _load(file: str | None) -> Stack:
    from lxcri_core.errors import SpecError
    from lxcri_core.stacks.parse import load_stack

    if file is None:
        for name in DEFAULT_FILES:
            if Path(name).is_file():
                file = name
                break
        else:
            raise SpecError(f"no stack file here ({', '.join(DEFAULT_FILES)}); name one with -f")
    return load_stack(Path(file))


def _say(text: str) -> None:
    click.echo(text, err=True)


def _port_text(p: Any) -> str:
    host = f"[{p.host_ip}]" if ":" in p.host_ip else p.host_ip
    return f"{host or '0.0.0.0'}:{p.host_port}->{p.container_port}/{p.protocol}"


def _write(svc: str, width: int, line: bytes) -> None:
    out = sys.stdout.buffer
    out.write(f"{svc:<{width}} | ".encode() + line)
    out.flush()


@click.group()
def stack() -> None:
    """Run several containers from one compose-like YAML file.

    \b
    The file is a subset of docker compose's: services with image, command,
    entrypoint, environment, env_file, ports, volumes, depends_on (conditions
    service_started and service_healthy), restart, healthcheck, hostname,
    user, working_dir, labels, mem_limit and cpus; top-level name, version
    and volumes. Any other key is an error naming it. Containers are named
    STACK-SERVICE-1 and volumes STACK_VOLUME, STACK being the name: key or
    the file's folder; a service reaches the ones it depends on by their
    service names (/etc/hosts).
    \b
    -f: in `stack up`, `stack down` and `stack ps` (and `lxcri up`/`lxcri
    down`) it names the file, as in docker compose; in `stack logs` it is
    --follow, as in `lxcri logs` and `docker compose logs` (name the file
    with --file there). `lxcri ps -f` stays --filter.
    \b
    Examples:
      lxcri up -d -f stack.yaml
      lxcri stack ps -f stack.yaml
      lxcri stack logs --file stack.yaml -f web
      lxcri down -f stack.yaml --volumes
    """


@stack.command("up")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help=_FILE_HELP)
@click.option("-d", "--detach", is_flag=True, help="Return once started (else: follow the logs).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="Seconds to wait for a service_healthy dependency.",
)
def up(file: str | None, detach: bool, timeout: float) -> None:
    """Create and start the stack's services, each after those it depends on.

    \b
    A service whose container runs with the same settings is left alone; a
    stopped one is started; a changed one is recreated. Without -d the
    services' output follows, each line after its service's name; Ctrl-C
    stops the stack (`lxcri down` removes it).
    \b
    Examples:
      lxcri up -d -f stack.yaml
      lxcri up -f stack.yaml
    """
    from lxcri_core.stacks import apply

    st = _load(file)
    backend = get_backend()
    key = apply.stack_key(get_config().root)
    apply.up(backend, st, health_timeout=timeout, progress=_say, key=key)
    if detach:
        return
    services = list(st.services)
    width = max(len(s) for s in services)
    try:
        for svc, line in apply.logs(backend, st, services, follow=True):
            _write(svc, width, line)
    except KeyboardInterrupt:
        _say("stopping the stack")
        for name in apply.stop(backend, st):
            _say(f"stopped {name}")
        raise


@stack.command("down")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help=_FILE_HELP)
@click.option("-v", "--volumes", is_flag=True, help="Remove the named volumes of the stack too.")
def down(file: str | None, volumes: bool) -> None:
    """Remove the stack's containers (found by their io.lxcri.stack label).

    \b
    Containers of services since removed from the file go too; the stack's
    named volumes only with --volumes; nothing else is touched.
    \b
    Examples:
      lxcri down -f stack.yaml
      lxcri down -f stack.yaml --volumes
    """
    from lxcri_core.stacks import apply

    st = _load(file)
    backend = get_backend()
    remover = apply.volume_remover(get_config(), backend) if volumes else None
    apply.down(backend, st, remove_volume=remover, progress=_say)


@stack.command("ps")
@click.option("-f", "--file", "file", type=click.Path(dir_okay=False), help=_FILE_HELP)
@output_option
def ps(file: str | None, output: str) -> None:
    """List the stack's containers.

    \b
    Examples:
      lxcri stack ps -f stack.yaml
      lxcri stack ps -f stack.yaml --output json
    """
    from lxcri_core.stacks import apply
    from lxcri_core.stacks.plan import SERVICE_LABEL

    st = _load(file)
    rows = apply.ps(get_backend(), st)
    if output == "json":
        emit_json([{"service": c.labels.get(SERVICE_LABEL, ""), **c.to_json()} for c in rows])
        return
    emit_table(
        ["SERVICE", "NAME", "VMID", "STATUS", "PORTS"],
        [
            [
                c.labels.get(SERVICE_LABEL, ""),
                c.name,
                c.vmid,
                c.status_text or c.status,
                ", ".join(_port_text(p) for p in c.ports),
            ]
            for c in rows
        ],
    )


@stack.command("logs")
@click.option("--file", "file", type=click.Path(dir_okay=False), help=_FILE_HELP)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
@click.option("-n", "--tail", type=click.IntRange(min=0), help="Only the last N lines of each.")
@click.argument("services", nargs=-1, metavar="[SERVICE]...")
def logs(file: str | None, follow: bool, tail: int | None, services: tuple[str, ...]) -> None:
    """Print the output of the stack's services (all of them unless named).

    \b
    -f is --follow here, as in `lxcri logs`; the file is --file.
    \b
    Examples:
      lxcri stack logs --file stack.yaml
      lxcri stack logs --file stack.yaml -f --tail 20 web
    """
    from lxcri_core.stacks import apply

    st = _load(file)
    names = list(services) or list(st.services)
    width = max(len(s) for s in names)
    for svc, line in apply.logs(get_backend(), st, names, follow=follow, tail=tail):
        _write(svc, width, line)
