"""Commands on a container's running process: kill, wait, port, top, stats."""

from __future__ import annotations

import sys
from typing import Any

import click
from lxcri_pve.cli.common import (
    emit_json,
    emit_table,
    get_backend,
    get_config,
    lxc_name,
    output_option,
)
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
@output_option
def kill(containers: tuple[str, ...], sig: str, output: str) -> None:
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
    from lxcri_core.containers.signals import kill as kill_
    from lxcri_core.containers.signals import parse_signal
    from lxcri_core.errors import LxcriError

    signum = parse_signal(sig)
    cfg = get_config()
    failed = False
    done = []
    for c in containers:
        try:
            name = lxc_name(c, "kill")
            pids = kill_(cfg, name, signum)
        except LxcriError as e:
            click.echo(f"lxcri: error: {e}", err=True)
            failed = True
            continue
        done.append({"name": name, "signal": signum.name, "pids": pids})
        if output != "json":
            click.echo(name)
    if output == "json":
        emit_json(done)
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
    from lxcri_core.backend import CtRef
    from lxcri_core.errors import LxcriError

    backend = get_backend()
    results = []
    failed = False
    for c in containers:
        try:
            name = backend.status(CtRef(c)).name
            code = backend.wait(CtRef(c))
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
    from lxcri_core.containers.port_query import bindings
    from lxcri_core.containers.record import load_record

    cfg = get_config()
    found = bindings(load_record(cfg.root, lxc_name(container, "port")), private)
    if output == "json":
        emit_json([b.to_json() for b in found])
        return
    for b in found:
        click.echo(b.public if private else f"{b.private} -> {b.public}")


@click.command()
@click.argument("container", shell_complete=container_names)
@output_option
def top(container: str, output: str) -> None:
    """List the processes running in a container.

    \b
    Read from the host's /proc (nothing runs inside the container):
      PID, PPID  the host's process ids, as docker top shows them
      CPID       the process id inside the container
      UID        the user id inside the container (0 is its root)
      TIME       CPU time used

    \b
    Examples:
      lxcri top web
      lxcri top web --output json | jq '.[].cmd'
    """
    from lxcri_core.backend import CtRef
    from lxcri_core.containers.top import processes
    from lxcri_core.errors import BackendError

    st = get_backend().status(CtRef(lxc_name(container, "top")))
    if st.status != "running" or st.pid is None:
        raise BackendError(f"container {st.name} is not running")
    procs = processes(st.pid)
    if output == "json":
        emit_json([p.to_json() for p in procs])
        return
    rows = [[p.uid, p.pid, p.ppid, p.cpid, _cpu_time(p.cpu_seconds), p.cmd] for p in procs]
    emit_table(["UID", "PID", "PPID", "CPID", "TIME", "CMD"], rows)


def _cpu_time(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"


def _size(n: int | None) -> str:
    from lxcri_pve.cli.common import human_size

    return "-" if n is None else human_size(n)


def _stats_rows(items: list[Any]) -> list[list[str]]:
    rows = []
    for s in items:
        cpu = "-" if s.cpu_percent is None else f"{s.cpu_percent:.2f}%"
        mem = f"{_size(s.memory)} / {_size(s.memory_limit)}"
        mem_pct = "-" if s.memory_percent is None else f"{s.memory_percent:.2f}%"
        pids = "-" if s.pids is None else str(s.pids)
        if s.pids_limit is not None:
            pids += f" / {s.pids_limit}"
        rows.append(
            [
                s.name,
                s.id[:12],
                cpu,
                mem,
                mem_pct,
                f"{_size(s.net_rx)} / {_size(s.net_tx)}",
                f"{_size(s.block_read)} / {_size(s.block_write)}",
                pids,
            ]
        )
    return rows


_STATS_COLUMNS = [
    "NAME",
    "ID",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
]


@click.command()
@click.option("--no-stream", is_flag=True, help="Print one reading and exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=1.0,
    show_default=True,
    help="Seconds between readings when streaming.",
)
@click.argument("containers", metavar="[CONTAINER...]", nargs=-1, shell_complete=container_names)
@output_option
def stats(containers: tuple[str, ...], no_stream: bool, interval: float, output: str) -> None:
    """Show CPU, memory, network, block I/O and process counts of running containers.

    Without names: every running container. Streams a new reading every
    --interval seconds until Ctrl-C; --no-stream prints one. CPU % is
    docker's (100 % = one core); memory leaves out inactive page cache; the
    limit is the container's, or the host's memory when it has none. With
    --output json each reading is one JSON document (one line when streaming).

    \b
    Examples:
      lxcri stats
      lxcri stats --no-stream web db
      lxcri stats --no-stream --output json | jq '.[] | {name, memory}'
    """
    import json
    import time

    from lxcri_core.containers.stats import measure, running_pids

    cfg = get_config()
    targets = running_pids(cfg, list(containers))
    if no_stream:
        items, _ = measure(targets)
        if output == "json":
            emit_json([s.to_json() for s in items])
        else:
            emit_table(_STATS_COLUMNS, _stats_rows(items))
        return
    prev: dict[str, Any] = {}
    tty = sys.stdout.isatty()
    while True:
        if not containers:  # containers started meanwhile join in
            targets = running_pids(cfg, [])
        items, prev = measure(targets, prev)
        if output == "json":
            click.echo(json.dumps([s.to_json() for s in items], sort_keys=True))
        else:
            if tty:
                click.echo("\x1b[2J\x1b[H", nl=False)  # clear the screen, as docker does
            emit_table(_STATS_COLUMNS, _stats_rows(items))
            if not tty:
                click.echo()
        sys.stdout.flush()
        time.sleep(interval)
