"""``lxcri logs``: a detached container's output, with time stamps and --since."""

from __future__ import annotations

import sys
import time

import click
from lxcri_pve.cli.completion import container_names

_HELP = """Print a detached container's output (stdout and stderr).

\b
--since takes an RFC 3339 time (2026-11-30T10:00:00Z, 2026-11-30T11:00:00+01:00,
2026-11-30), a Unix time, or a duration ago (30s, 10m, 1h30m). Time stamps
(-t) are RFC 3339 in UTC, when lxcri's supervisor first saw the line (at
most 0.1 s late); output from before lxcri recorded times has none and is
shown without one (and left out by --since).

\b
--hooks prints what lxcri's start and stop hooks logged for the container
instead (kept to about 2 MiB: hooks.log, then hooks.log.1).

\b
Examples:
  lxcri logs web
  lxcri logs -f --tail 20 web
  lxcri logs -t --since 10m web
  lxcri logs --hooks web
"""


@click.command(help=_HELP)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
@click.option("-n", "--tail", type=click.IntRange(min=0), help="Only the last N lines.")
@click.option("-t", "--timestamps", is_flag=True, help="Prefix each line with its time.")
@click.option("--since", metavar="TIME|DURATION", help="Only output written since then.")
@click.option("--hooks", is_flag=True, help="Show the container's hook log instead.")
@click.argument("container", shell_complete=container_names)
def logs(
    container: str,
    follow: bool,
    tail: int | None,
    timestamps: bool,
    since: str | None,
    hooks: bool,
) -> None:
    from lxcri_pve.cli.common import get_backend, get_config, lxc_name

    from lxcri_core.backend import CtRef

    if hooks:
        if follow or timestamps or since is not None:
            raise click.UsageError("--hooks takes --tail only (not -f, -t or --since)")
        _hook_log(container, tail)
        return
    from lxcri_core.containers.exec import logs_path
    from lxcri_core.containers.listing import status
    from lxcri_core.containers.logtimes import format_time, parse_since, read_times, stamped_lines

    since_ns = parse_since(since) if since is not None else None
    cfg = get_config()
    backend = get_backend()
    if backend.name != "lxc":  # the Proxmox backends: their own log, without time stamps
        from lxcri_core import lifecycle

        if timestamps or since_ns is not None:
            raise click.UsageError(f"-t and --since need --backend lxc, not {backend.name}")
        for chunk in lifecycle.logs(backend, CtRef(container), follow=follow, tail=tail):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        return
    name = lxc_name(container, "logs")
    path = logs_path(cfg, name)
    sdir = path.parent
    out = sys.stdout.buffer
    stamped = timestamps or since_ns is not None
    if stamped and read_times(sdir) is None and path.exists():
        click.echo(
            f"lxcri: {name}'s output has no time stamps (written by an older lxcri)", err=True
        )

    def emit(lines: list[tuple[int | None, bytes]]) -> None:
        for ts, line in lines:
            if since_ns is not None and (ts is None or ts < since_ns):
                continue
            if timestamps:
                out.write(f"{format_time(ts)} ".encode() if ts is not None else b"")
            out.write(line)
        out.flush()

    def split(data: bytes, base: int) -> list[tuple[int | None, bytes]]:
        return stamped_lines(data, (read_times(sdir) or []) if stamped else [], base)

    if not path.exists():
        return
    with open(path, "rb") as f:
        data = f.read()
        # a last line without its newline yet waits for the rest when following
        keep = b"" if not follow or data.endswith(b"\n") else data[data.rfind(b"\n") + 1 :]
        data = data[: len(data) - len(keep)]
        lines = split(data, 0)
        if tail is not None:
            lines = lines[-tail:] if tail else []
        emit(lines)
        base = len(data)
        while follow:
            chunk = f.read()
            if chunk:
                buf = keep + chunk
                cut = buf.rfind(b"\n") + 1
                ready, keep = buf[:cut], buf[cut:]
                emit(split(ready, base))
                base += len(ready)
            elif status(cfg, name).status not in ("running", "restarting"):
                emit(split(keep, base))
                break  # nothing more will come
            else:
                time.sleep(0.2)


def _hook_log(container: str, tail: int | None) -> None:
    """Print the hook log of ``container`` (plain LXC: its state dir; pve-local: the
    state dir of its VMID, where the Proxmox hookscript writes)."""
    from pathlib import Path

    from lxcri_pve.cli.common import get_backend, get_config, lxc_name

    from lxcri_core.backend import CtRef
    from lxcri_core.errors import BackendError
    from lxcri_core.hooks.run import read_hook_log

    cfg = get_config()
    backend = get_backend()
    if backend.name == "lxc":
        from lxcri_core.containers.record import state_dir

        sdir: Path = state_dir(cfg.root, lxc_name(container, "logs --hooks"))
    elif backend.name == "pve-local":
        from lxcri_pve.backends.pve_state import state_dir as pve_state_dir

        sdir = pve_state_dir(cfg.root, backend.status(CtRef(container)).vmid)
    else:
        raise BackendError(
            f"hook logs stay on the node that ran the hooks; run `lxcri --backend pve-local "
            f"logs --hooks {container}` there (not possible on {backend.name})"
        )
    sys.stdout.write(read_hook_log(sdir, tail))
    sys.stdout.flush()
