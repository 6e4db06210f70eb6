"""Container commands: run, create, start, stop, restart, destroy, exec, logs, list, status."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_backend, get_config, output_option
from lxcri_pve.cli.output import stdout_to_stderr

F = Callable[..., Any]

_RUN_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--name",), {"help": "Container name (default ct-<id>)."}),
    (("--entrypoint",), {"help": "Override the image's ENTRYPOINT (resets its CMD)."}),
    (("-e", "--env"), {"multiple": True, "help": "Set KEY=VALUE (or pass KEY from here)."}),
    (("--env-file",), {"multiple": True, "type": click.Path(dir_okay=False)}),
    (("-w", "--workdir"), {"help": "Working directory inside the container."}),
    (("-u", "--user"), {"help": "NAME|UID[:GROUP|GID] to run as."}),
    (("--group-add",), {"multiple": True, "help": "Additional group."}),
    (("-h", "--hostname"), {"help": "Container host name."}),
    (("-v", "--volume"), {"multiple": True, "help": "HOST:CTR[:ro], NAME:CTR or CTR."}),
    (("-p", "--publish"), {"multiple": True, "help": "[IP:]HOST:CTR[/tcp|udp]"}),
    (
        ("-P", "--publish-all"),
        {"is_flag": True, "help": "Publish every EXPOSEd port to a free host port."},
    ),
    (
        ("--mount",),
        {"multiple": True, "help": "type=bind|volume|tmpfs,source=SRC,target=DST[,readonly]"},
    ),
    (
        ("--tmpfs",),
        {"multiple": True, "help": "PATH[:size=64m,mode=1777,...] (nosuid,nodev,noexec)."},
    ),
    (("--read-only",), {"is_flag": True, "help": "Mount the root filesystem read-only."}),
    (("--ulimit",), {"multiple": True, "help": "NAME=SOFT[:HARD], e.g. nofile=1024:2048."}),
    (("--device",), {"multiple": True, "help": "/dev/HOST[:/dev/CTR][:rwm] device node."}),
    (
        ("--init",),
        {"is_flag": True, "help": "Accepted: LXC's init is always PID 1 (reaps zombies)."},
    ),
    (("--stop-signal",), {"help": "Signal that stops the process (default: image's)."}),
    (("--stop-timeout",), {"type": int, "help": "Seconds before SIGKILL on stop."}),
    (("-l", "--label"), {"multiple": True, "help": "KEY=VALUE label."}),
    (
        ("--auto-update",),
        {
            "type": click.Choice(["registry", "disabled"]),
            "help": "registry: `lxcri auto-update` upgrades it when its tag moves.",
        },
    ),
    (("-m", "--memory"), {"help": "Memory limit: MiB as pct (512), or a size (512m, 1g)."}),
    (("--cores",), {"help": "Number of CPUs."}),
    (("--tags",), {"help": "pct tags: a;b (kept with the container)."}),
    (("--vmid",), {"type": click.IntRange(100, 999_999_999), "help": "VMID (default: next)."}),
    *(
        (
            (f"--net{i}",),
            {"help": "pct network: name=eth0,bridge=BR,ip=dhcp|CIDR[,gw=IP]"} if i == 0 else {},
        )
        for i in range(4)
    ),
    *(
        (
            (f"--mp{i}",),
            {"help": "pct mount point: VOLUME_OR_PATH,mp=/path[,ro=1]"} if i == 0 else {},
        )
        for i in range(10)
    ),
    (("--cpus",), {"help": "CPU time limit (1.5)."}),
    (("--pids-limit",), {"help": "Maximum number of processes."}),
    (("--restart",), {"help": "no | on-failure[:N] | always | unless-stopped"}),
    (("--health-cmd",), {"help": "Command for the healthcheck (run by /bin/sh -c)."}),
    (("--health-interval",), {"help": "Time between checks (30s)."}),
    (("--health-timeout",), {"help": "Time a check may take (30s)."}),
    (("--health-start-period",), {"help": "Grace period after start."}),
    (("--health-retries",), {"help": "Failures before unhealthy."}),
    (("--no-healthcheck",), {"is_flag": True, "help": "Disable the image's HEALTHCHECK."}),
    (("--network",), {"default": "bridge", "help": "bridge | none | bridge=NAME"}),
    (("--ip",), {"help": "IPv4 address in CIDR form."}),
    (("--gateway",), {"help": "IPv4 gateway."}),
    (("--mtu",), {"help": "Interface MTU."}),
    (("--dns",), {"multiple": True}),
    (("--add-host",), {"multiple": True, "help": "NAME:IP line for /etc/hosts."}),
    (("--privileged",), {"is_flag": True, "help": "No id mapping, all capabilities."}),
    (("--nesting",), {"is_flag": True, "help": "Allow nested containers."}),
    (("--cap-add",), {"multiple": True}),
    (("--cap-drop",), {"multiple": True}),
    (
        ("--security-opt",),
        {
            "multiple": True,
            "help": "seccomp=PROFILE|unconfined (LXC or Docker JSON), no-new-privileges, "
            "apparmor=PROFILE, label=type:T|...|disable",
        },
    ),
    (("--idmap",), {"help": "BASE:COUNT: host ids of the container's ids 0..COUNT-1."}),
    (
        ("--features",),
        {"multiple": True, "help": "pct features: nesting=1,keyctl=1,fuse=1,mknod=1"},
    ),
    (("--storage",), {"type": click.Choice(["dir", "overlay", "zfs"]), "help": "Rootfs backend."}),
    (("--insecure",), {"is_flag": True, "help": "Pull over plain http if needed."}),
]


def run_options(f: F) -> F:
    for decls, kw in reversed(_RUN_OPTIONS):
        f = click.option(*decls, **kw)(f)
    return f


def _auto_update_label(policy: str | None) -> tuple[str, ...]:
    from lxcri_core.autoupdate import LABEL

    return (f"{LABEL}={policy}",) if policy == "registry" else ()


def _build_opts(image_args: tuple[str, ...], kw: dict[str, Any]) -> Any:
    from lxcri_core.spec.options import RunOptions

    network, bridge = kw["network"], None
    if network.startswith("bridge="):
        network, bridge = "bridge", network.split("=", 1)[1]
    return RunOptions(
        name=kw["name"] or "",
        entrypoint=kw["entrypoint"],
        args=tuple(image_args),
        env=kw["env"],
        env_files=tuple(kw["env_file"]),
        workdir=kw["workdir"],
        user=kw["user"],
        group_add=kw["group_add"],
        hostname=kw["hostname"],
        volumes=kw["volume"],
        publish=kw["publish"],
        stop_signal=kw["stop_signal"],
        stop_timeout=kw["stop_timeout"],
        labels=(*kw["label"], *_auto_update_label(kw.get("auto_update"))),
        memory=kw["memory"],
        cores=kw["cores"],
        cpus=kw["cpus"],
        pids_limit=kw["pids_limit"],
        restart=kw["restart"],
        health_cmd=kw["health_cmd"],
        health_interval=kw["health_interval"],
        health_timeout=kw["health_timeout"],
        health_start_period=kw["health_start_period"],
        health_retries=kw["health_retries"],
        no_healthcheck=kw["no_healthcheck"],
        network=network,
        bridge=bridge,
        ip=kw["ip"],
        gateway=kw["gateway"],
        mtu=kw["mtu"],
        dns=kw["dns"],
        add_hosts=kw["add_host"],
        privileged=kw["privileged"],
        nesting=kw["nesting"],
        cap_add=kw["cap_add"],
        cap_drop=kw["cap_drop"],
        security_opts=kw["security_opt"],
        features=kw["features"],
        idmap=kw["idmap"],
        publish_all=kw["publish_all"],
        mounts=kw["mount"],
        tmpfs=kw["tmpfs"],
        read_only=kw["read_only"],
        ulimits=kw["ulimit"],
        devices=kw["device"],
        init=kw["init"],
        tty=bool(kw.get("tty", False)),  # run -t: TERM=xterm, as docker sets it
    )


CTX = {"help_option_names": ["--help"], "allow_interspersed_args": False}

#: pct's properties among the run options: passed as ``CreateRequest.pct``.
_PCT_KEYS = ("tags", *(f"net{i}" for i in range(4)), *(f"mp{i}" for i in range(10)))


def _request(image: str, args: tuple[str, ...], kw: dict[str, Any], auto_remove: bool) -> Any:
    from lxcri_core.backend import CreateRequest

    pct = {k: str(kw[k]) for k in _PCT_KEYS if kw.get(k) is not None}
    if kw["memory"] is not None and kw["memory"].isdigit():
        pct["memory"] = kw["memory"]  # pct's MiB
        kw = {**kw, "memory": None}
    if kw["cores"] is not None:
        pct["cores"] = kw["cores"]
    if kw["hostname"] is not None:
        pct["hostname"] = kw["hostname"]
    return CreateRequest(
        image=image,
        options=_build_opts(args, kw),
        vmid=kw["vmid"],
        pct=pct,
        insecure=kw["insecure"],
        auto_remove=auto_remove,
        storage=kw["storage"],
    )


@click.command(context_settings=CTX)
@run_options
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the id.")
@click.option("--rm", "auto_remove", is_flag=True, help="Remove the container when it exits.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal (accepted for docker parity).")
@output_option
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(
    image: str,
    args: tuple[str, ...],
    detach: bool,
    auto_remove: bool,
    interactive: bool,
    tty: bool,
    output: str,
    **kw: Any,
) -> None:
    """Create and start a container from IMAGE, pulling it if needed.

    In the foreground the process's output streams here and lxcri exits
    with its exit status; with -d it runs under a supervisor (restart
    policy, healthcheck) and the container id is printed.

    \b
    Examples:
      lxcri run --rm --entrypoint /bin/sh localhost/lxcri-demo -c 'echo hi'
      lxcri run -d --name web -p 8080:80 --restart always nginx:1.27
      lxcri run -d --vmid 200 --memory 256 --net0 name=eth0,bridge=lxcri0,ip=dhcp nginx:1.27
    """
    from lxcri_core import lifecycle
    from lxcri_core.errors import SpecError

    req = _request(image, args, {**kw, "tty": tty}, auto_remove)
    try:  # refused before anything is created (see lifecycle.check_run)
        lifecycle.check_run(req.options, detach=detach, auto_remove=auto_remove)
    except SpecError as e:
        raise click.UsageError(str(e)) from None
    backend = get_backend()
    # with json, the process's output goes to stderr: stdout is the document only
    quiet = stdout_to_stderr() if output == "json" and not detach else contextlib.nullcontext()
    with quiet:
        res = lifecycle.run(backend, req, detach=detach, stdin=interactive)
    ct = res.container
    if detach:
        if output == "json":
            emit_json({"id": ct.id, "name": ct.name, "vmid": ct.vmid, "status": "running"})
        else:
            click.echo(ct.id)
        return
    rc = res.exit_code or 0
    if output == "json":
        emit_json(
            {"id": ct.id, "name": ct.name, "vmid": ct.vmid, "exit_code": rc, "removed": res.removed}
        )
    sys.exit(rc)


@click.command(context_settings=CTX)
@run_options
@output_option
@click.argument("image")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def create(image: str, args: tuple[str, ...], output: str, **kw: Any) -> None:
    """Create a container from IMAGE without starting it; print its id."""
    ct = get_backend().create(_request(image, args, kw, False))
    if output == "json":
        emit_json({"id": ct.id, "name": ct.name, "vmid": ct.vmid, "status": "created"})
    else:
        click.echo(ct.id)


def _ident(backend: Any, ref: Any) -> tuple[str, str, int]:
    """(name, id, vmid) of ``ref``; ``container`` where the backend has it (no status read)."""
    container = getattr(backend, "container", None)
    if container is not None:
        ct = container(ref)
        return ct.name, ct.id, ct.vmid
    st = backend.status(ref)
    return st.name, st.id, st.vmid


def _each(
    containers: tuple[str, ...], action: Callable[[Any, Any], None], output: str = "table"
) -> None:
    """Apply ``action(backend, ref)`` to every container; report each failure, exit 1 if any
    failed. Prints each name done (table) or a list of ``{name, id, vmid, error}`` (json)."""
    from lxcri_core.backend import CtRef
    from lxcri_core.errors import LxcriError

    backend = get_backend()
    failed = False
    results: list[dict[str, Any]] = []
    for c in containers:
        name, cid, vmid = c, "", 0
        try:
            ref = CtRef(c)
            try:  # before the action: rm removes it
                name, cid, vmid = _ident(backend, ref)
                ref = CtRef(str(vmid))  # unambiguous from here on
            except LxcriError:
                pass  # half-created or unreadable: the action says what it can do (rm)
            action(backend, ref)
            results.append({"name": name, "id": cid, "vmid": vmid, "error": ""})
            if output != "json":
                click.echo(name)
        except LxcriError as e:
            click.echo(f"lxcri: error: {e}", err=True)
            results.append({"name": name, "id": cid, "vmid": vmid, "error": str(e)})
            failed = True
    if output == "json":
        emit_json(results)
    if failed:
        sys.exit(1)


@click.command()
@output_option
@click.argument("containers", nargs=-1, required=True)
def start(containers: tuple[str, ...], output: str) -> None:
    """Start one or more stopped containers (VMID, name or id; detached, supervised)."""
    _each(containers, lambda b, ref: b.start(ref), output)


@click.command()
@click.option("-t", "--timeout", type=int, help="Seconds to wait before SIGKILL.")
@output_option
@click.argument("containers", nargs=-1, required=True)
def stop(containers: tuple[str, ...], timeout: int | None, output: str) -> None:
    """Stop running containers: the stop signal, then SIGKILL after the timeout.

    A process that is SIGKILLed records exit code 137; a container in a restart
    back-off stops at once and is not restarted.
    """
    _each(containers, lambda b, ref: b.stop(ref, timeout), output)


@click.command()
@click.option("-t", "--timeout", type=int, help="Seconds to wait before SIGKILL.")
@output_option
@click.argument("containers", nargs=-1, required=True)
def shutdown(containers: tuple[str, ...], timeout: int | None, output: str) -> None:
    """Ask containers to shut down (pct shutdown): for an app container, its stop signal,
    then SIGKILL after the timeout."""
    _each(containers, lambda b, ref: b.shutdown(ref, timeout), output)


@click.command()
@click.option("-t", "--timeout", type=int, help="Seconds to wait before SIGKILL.")
@output_option
@click.argument("containers", nargs=-1, required=True)
def restart(containers: tuple[str, ...], timeout: int | None, output: str) -> None:
    """Stop and start containers."""

    def again(b: Any, ref: Any) -> None:
        b.stop(ref, timeout)
        b.start(ref)

    _each(containers, again, output)


@click.command()
@output_option
@click.argument("containers", nargs=-1, required=True)
def reboot(containers: tuple[str, ...], output: str) -> None:
    """Reboot containers (pct reboot): stop, then start again."""
    _each(containers, lambda b, ref: b.reboot(ref), output)


@click.command()
@click.option("-f", "--force", is_flag=True, help="Stop a running container first.")
@output_option
@click.argument("containers", nargs=-1, required=True)
def destroy(containers: tuple[str, ...], force: bool, output: str) -> None:
    """Remove containers: rootfs, address, anonymous volumes. Named volumes are kept.

    A container whose state cannot be read is refused without --force (it may run)."""
    _each(containers, lambda b, ref: b.remove(ref, force=force), output)


@click.command(name="exec", context_settings={"allow_interspersed_args": False})
@click.option("-e", "--env", multiple=True, help="Set KEY=VALUE (or pass KEY from here).")
@click.option("-u", "--user", default="", help="NAME|UID[:GROUP|GID] to run as.")
@click.option("-w", "--workdir", help="Working directory (default: the container's).")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Set TERM=xterm (a terminal on stdin gets a pty).")
@output_option
@click.argument("container")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(
    container: str,
    argv: tuple[str, ...],
    env: tuple[str, ...],
    user: str,
    workdir: str | None,
    interactive: bool,
    tty: bool,
    output: str,
) -> None:
    """Run a command in a running container; exit with its status (126/127 if it cannot run).

    With --output json the command's output goes to stderr and stdout holds
    {"name", "id", "vmid", "exit_code"} once it has ended.
    """
    from lxcri_core.backend import ExecOptions

    _exec(container, list(argv), ExecOptions(user, workdir, env, tty, interactive), output)


@click.command()
@click.argument("container")
def enter(container: str) -> None:
    """Open a shell in a running container (pct enter): exec -it /bin/sh."""
    from lxcri_core.backend import ExecOptions

    tty = sys.stdin.isatty()
    _exec(container, ["/bin/sh"], ExecOptions(tty=tty, interactive=True), "table")


def _exec(container: str, argv: list[str], opts: Any, output: str) -> None:
    from lxcri_core.backend import CtRef

    backend = get_backend()
    ref = CtRef(container)
    cmd = backend.exec_command(ref, argv, opts)
    sys.stdout.flush()
    if output == "json":
        import subprocess

        stdin = None if opts.interactive or opts.tty else subprocess.DEVNULL
        rc = subprocess.run(
            cmd.argv, stdin=stdin, stdout=sys.stderr.fileno(), env=cmd.env, check=False
        ).returncode
        rc = 128 - rc if rc < 0 else rc
        name, cid, vmid = _ident(backend, ref)
        emit_json({"name": name, "id": cid, "vmid": vmid, "exit_code": rc})
        sys.exit(rc)
    if not opts.interactive and not opts.tty:  # as docker exec: no input without -i
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        os.close(fd)
    os.execvpe(cmd.argv[0], cmd.argv, cmd.env)


def _since(c: Any) -> str:
    """How long ago the container started (running) or ended (otherwise)."""
    from datetime import UTC, datetime

    from lxcri_core.containers.status import human_duration

    stamp = c.started_at if c.status in ("running", "paused") else c.finished_at or c.started_at
    try:
        secs = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return ""
    return human_duration(secs) + ("" if c.status in ("running", "paused") else " ago")


def _list_status(c: Any) -> str:
    """pct's lower-case state, then what docker adds: health, or the last exit code."""
    if c.health:
        return f"{c.status} ({c.health})"
    if c.status == "exited" and c.exit_code is None:
        return "stopped"  # pct's word: Proxmox keeps no exit status
    if c.status in ("exited", "restarting"):
        return f"{c.status} ({'unknown' if c.exit_code is None else c.exit_code})"
    return str(c.status)


def port_text(p: Any) -> str:
    """``127.0.0.1:8080->80/tcp``, as docker ps shows a published port."""
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}->{p.container_port}/{p.protocol}"


@click.command(name="list")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@output_option
def list_(quiet: bool, output: str) -> None:
    """List all containers (running or not), as pct list: VMID, status (with health or
    exit code), lock, name, then image and ports. `ps` is docker's view."""
    backend = get_backend()
    items = backend.list()
    if output == "json":
        emit_json([c.to_json() for c in items])
        return
    if quiet:
        for c in items:
            click.echo(c.name)
        return
    rows = [
        [
            c.vmid,
            _list_status(c),
            c.lock,
            c.name,
            c.image,
            ", ".join(port_text(p) for p in c.ports),
        ]
        for c in items
    ]
    emit_table(["VMID", "STATUS", "LOCK", "NAME", "IMAGE", "PORTS"], rows)
    if backend.name == "lxc":
        _bridge_line()


_PS_HELP = """List containers as docker ps does: only running ones unless -a.

\b
Filters (--filter KEY=VALUE, repeatable; one key's values: any; keys: all):
  name=TEXT        the name contains TEXT
  id=PREFIX        the id starts with PREFIX
  status=STATE     created | running | paused | restarting | exited
                   (a status filter also looks at stopped containers)
  label=KEY        the label is set; label=KEY=VALUE: set to VALUE
  ancestor=IMAGE   made from IMAGE (a reference, or a digest prefix)

\b
Examples:
  lxcri ps -a
  lxcri ps -q --filter label=app=web
  lxcri ps -a --filter status=exited --filter ancestor=nginx:1.27
  lxcri ps -a -o json | jq '.[] | {name, labels}'
"""


@click.command(help=_PS_HELP)
@click.option("-a", "--all", "all_", is_flag=True, help="Also stopped and created containers.")
@click.option("-q", "--quiet", is_flag=True, help="Only ids.")
@click.option("-f", "--filter", "filters", multiple=True, metavar="KEY=VALUE", help="Filter.")
@click.option("--no-trunc", is_flag=True, help="Show full ids.")
@output_option
def ps(all_: bool, quiet: bool, filters: tuple[str, ...], no_trunc: bool, output: str) -> None:
    from lxcri_core.containers.filters import matches, parse_filters
    from lxcri_core.errors import SpecError

    try:
        wanted = parse_filters(filters)
    except SpecError as e:
        raise click.BadParameter(str(e).removeprefix("--filter "), param_hint="--filter") from None
    show_all = all_ or "status" in wanted
    items = [
        c
        for c in get_backend().list()
        if (show_all or c.status in ("running", "paused", "restarting")) and matches(c, wanted)
    ]
    if output == "json":
        emit_json([c.to_json() for c in items])
        return
    if quiet:
        for c in items:
            click.echo(c.id if no_trunc else c.id[:12])
        return
    rows = [
        [
            c.id if no_trunc else c.id[:12],
            c.image,
            _since_created(c.created),
            c.status_text,
            ", ".join(port_text(p) for p in c.ports),
            c.name,
        ]
        for c in items
    ]
    emit_table(["CONTAINER ID", "IMAGE", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def _since_created(stamp: str) -> str:
    from datetime import UTC, datetime

    from lxcri_core.containers.status import human_duration

    try:
        secs = (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()
    except ValueError:
        return ""
    return f"{human_duration(secs)} ago"


def _bridge_line() -> None:
    """Say which bridge lxcri manages (created on first use) and its state."""
    from lxcri_core.errors import LxcriError
    from lxcri_core.network.inspect import read_bridges

    cfg = get_config()
    try:
        found = [b for b in read_bridges() if b.name == cfg.bridge]
    except LxcriError:
        return
    if not found:
        click.echo(f"\nbridge {cfg.bridge}: not created yet (made on the first container start)")
        return
    br = found[0]
    addrs = ", ".join(str(a) for a in br.addresses) or "no address"
    click.echo(f"\nbridge {br.name}: {br.state.lower()}, {addrs}, {len(br.ports)} port(s), NAT")


@click.command()
@output_option
@click.argument("container")
def status(container: str, output: str) -> None:
    """Show a container's status (VMID, running, exited, health, exit code, address)."""
    from lxcri_core.backend import CtRef

    st = get_backend().status(CtRef(container))
    if output == "json":
        emit_json(st.to_json())
    else:
        for k, v in st.to_json().items():
            if k == "ports":
                shown = ", ".join(port_text(p) for p in st.ports)
            elif k == "labels":
                shown = ", ".join(f"{lk}={lv}" for lk, lv in sorted(st.labels.items()))
            elif k == "tags":
                shown = ";".join(st.tags)  # as pct writes them
            else:
                shown = "" if v is None else v
            click.echo(f"{k}: {shown}")
