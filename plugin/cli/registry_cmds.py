"""``lxcri pull|push|login|logout``: thin wrappers over ``lxcri_core.registry``."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from lxcri_pve.cli.common import emit_json, emit_table, get_config, output_option

from lxcri_core.progress import Progress

_PLATFORM_HELP = (
    "Platform to pull from a multi-arch image, OS/ARCH[/VARIANT] [default: the host's]."
)
_INSECURE_HELP = "Use plain http for this registry (as if listed under registries.insecure)."
_CREDS_HELP = "Credentials: an auth.json/docker config.json, or a file with one line USER:PASSWORD."


class RichProgress:
    """A rich progress bar per blob on stderr; Progress calls come from worker threads."""

    def __init__(self, verb: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn(f"{verb} {{task.description}}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, key: str, total: int | None, description: str) -> None:
        with self._lock:
            if key in self._tasks:
                self._bars.reset(self._tasks[key], total=total, description=description)
            else:
                self._tasks[key] = self._bars.add_task(description, total=total)

    def advance(self, key: str, n: int) -> None:
        if n and key in self._tasks:
            self._bars.advance(self._tasks[key], n)

    def finish(self, key: str) -> None:
        with self._lock:
            task = self._tasks.get(key)
        if task is not None:
            total = self._bars.tasks[task].total
            self._bars.update(task, completed=total)

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.stop()


def _short(digest: str) -> str:
    """Tables show 12 hex digits, as docker's IMAGE ID; --output json has them all."""
    return digest.split(":", 1)[-1][:12]


@contextlib.contextmanager
def progress_for(verb: str) -> Iterator[Progress | None]:
    """Rich bars when stderr is a terminal; nothing when piped or logged."""
    if not sys.stderr.isatty():
        yield None
        return
    with RichProgress(verb) as bars:
        yield bars


@click.command()
@click.argument("ref")
@click.option("--platform", metavar="OS/ARCH", help=_PLATFORM_HELP)
@click.option("--insecure", is_flag=True, help=_INSECURE_HELP)
@click.option(
    "--creds-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help=_CREDS_HELP
)
@output_option
def pull(
    ref: str, platform: str | None, insecure: bool, creds_file: Path | None, output: str
) -> None:
    """Pull image REF (by tag or @digest) from its registry into the local store."""
    from lxcri_core.registry import pull as core_pull
    from lxcri_core.signals import term_raises

    # SIGTERM unwinds like Ctrl-C: temporary files removed, partial blobs kept to resume
    with term_raises(), progress_for("pull") as prog:
        rec = core_pull(
            get_config(),
            ref,
            platform=platform,
            insecure=insecure,
            creds_file=creds_file,
            progress=prog,
        )
    desc = rec.descriptor
    plat = str(desc.platform) if desc.platform else ""
    if output == "json":
        emit_json(
            {
                "name": rec.name,
                "digest": desc.digest,
                "media_type": desc.media_type,
                "size": desc.size,
                "platform": plat or None,
                "index": desc.annotations.get("io.lxcri.index.digest"),
            }
        )
    else:
        emit_table(["NAME", "DIGEST", "PLATFORM"], [[rec.name, _short(desc.digest), plat]])


@click.command()
@click.argument("ref")
@click.argument("dest_ref")
@click.option("--insecure", is_flag=True, help=_INSECURE_HELP)
@click.option(
    "--creds-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), help=_CREDS_HELP
)
@output_option
def push(ref: str, dest_ref: str, insecure: bool, creds_file: Path | None, output: str) -> None:
    """Push the stored image REF to DEST_REF (registry/repository[:tag])."""
    from lxcri_core.reference import parse_reference
    from lxcri_core.registry import push as core_push

    with progress_for("push") as prog:
        digest = core_push(
            get_config(), ref, dest_ref, insecure=insecure, creds_file=creds_file, progress=prog
        )
    dest = str(parse_reference(dest_ref))
    if output == "json":
        emit_json({"source": ref, "destination": dest, "digest": digest})
    else:
        emit_table(["SOURCE", "DESTINATION", "DIGEST"], [[ref, dest, _short(digest)]])


@click.command()
@click.argument("registry")
@click.option("--username", "-u", help="User name [prompted for if missing].")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from stdin (never from argv)."
)
@click.option("--insecure", is_flag=True, help=_INSECURE_HELP)
def login(registry: str, username: str | None, password_stdin: bool, insecure: bool) -> None:
    """Log in to REGISTRY: check the credentials, then keep them in lxcri's auth file."""
    from lxcri_core.registry import login as core_login

    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin needs --username")
        password = click.get_text_stream("stdin").read().rstrip("\r\n")
    else:
        try:
            if not username:
                username = click.prompt("Username", err=True)
            password = click.prompt("Password", hide_input=True, err=True)
        except click.Abort:  # end of input: no terminal, nothing piped
            from lxcri_core.errors import AuthError

            raise AuthError(
                "no password given; type it at the prompt or use --password-stdin"
            ) from None
    cfg = get_config()
    core_login(cfg, registry, username or "", password, insecure=insecure)
    click.echo(f"Login succeeded; credentials stored in {cfg.auth_file}", err=True)


@click.command()
@click.argument("registry")
def logout(registry: str) -> None:
    """Forget the stored credentials for REGISTRY."""
    from lxcri_core.registry import logout as core_logout

    cfg = get_config()
    if core_logout(cfg, registry):
        click.echo(f"Removed credentials for {registry} from {cfg.auth_file}", err=True)
    else:
        click.echo(f"Not logged in to {registry}", err=True)
