"""Commands on a container's running process: kill, wait, port, top, stats."""

from __future__ import annotations

import sys

import click
from lxcri_pve.cli.common import emit_json, get_config, output_option
from lxcri_pve.cli.completion import container_names


@click.command()
@click.option(
    "-s",
    "--signal",
    "sig",
    default="KILL",
    show_default=True,
    help="Signal name (TERM, SIGHUP) or number.",
)
@click.argument(
    "containers", metavar="CONTAINER...", nargs=-1, required=True, shell_complete=container_names
)
def kill(containers: tuple[str, ...], sig: str) -> None:
    """Send a signal to the process of running containers.

    The signal goes to the container's process (not LXC's init), as stop
    delivers its stop signal. As with docker, SIGKILL or the container's
    stop signal counts as a stop: no restart follows; any other signal
    that ends the process lets the restart policy apply (on-failure,
    always, unless-stopped restart it).

    \b
    Examples:
      lxcri kill web
      lxcri kill -s HUP web          # e.g. make nginx reload
      lxcri kill --signal 15 web db
    """
    from lxcri_core.containers import engine
    from lxcri_core.containers.signals import kill as kill_
    from lxcri_core.containers.signals import parse_signal
    from lxcri_core.errors import LxcriError

    signum = parse_signal(sig)
    cfg = get_config()
    failed = False
    for c in containers:
        try:
            name = engine.find(cfg, c)
            kill_(cfg, name, signum)
            click.echo(name)
        except LxcriError as e:
            click.echo(f"lxcri: error: {e}", err=True)
            failed = True
    if failed:
        sys.exit(1)


@click.command()
@click.argument(
    "containers", metavar="CONTAINER...", nargs=-1, required=True, shell_complete=container_names
)
@output_option
def wait(containers: tuple[str, ...], output: str) -> None:
    """Block until containers stop; print each one's exit code.

    A container that has already exited prints its last exit code at once;
    one that is only created is waited for until it has run. A process
    killed by signal N reports 128+N.

    \b
    Examples:
      lxcri wait job
      code=$(lxcri wait job) && echo "job exited with $code"
      lxcri wait a b --output json
    """
    from lxcri_core.containers import engine
    from lxcri_core.containers.exitwait import wait_exit
    from lxcri_core.errors import LxcriError

    cfg = get_config()
    results = []
    failed = False
    for c in containers:
        try:
            name = engine.find(cfg, c)
            code = wait_exit(cfg, name)
        except LxcriError as e:
            click.echo(f"lxcri: error: {e}", err=True)
            failed = True
            continue
        results.append({"name": name, "exit_code": code})
        if output != "json":
            click.echo(code)
    if output == "json":
        emit_json(results)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("container", shell_complete=container_names)
@click.argument("private", metavar="[PRIVATE_PORT[/PROTO]]", required=False)
@output_option
def port(container: str, private: str | None, output: str) -> None:
    """List a container's published ports, or the host address of one of them.

    \b
    Examples:
      lxcri port web                 # 80/tcp -> 0.0.0.0:8080
      lxcri port web 80              # 0.0.0.0:8080
      lxcri port web 53/udp --output json
    """
    from lxcri_core.containers import engine
    from lxcri_core.containers.port_query import bindings
    from lxcri_core.containers.record import load_record

    cfg = get_config()
    found = bindings(load_record(cfg.root, engine.find(cfg, container)), private)
    if output == "json":
        emit_json([b.to_json() for b in found])
        return
    for b in found:
        click.echo(b.public if private else f"{b.private} -> {b.public}")
