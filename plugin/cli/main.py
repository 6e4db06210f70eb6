"""``lxcri``: the entry point. Subcommands are imported only when invoked.

Keeping the import of ``lxcri`` itself cheap matters: shell completion and
``--help`` run it on every keystroke.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from lxcri_core import __version__

# command name -> "module:attribute"; the module is imported on first use.
COMMANDS: dict[str, str] = {
    "pull": "lxcri_pve.cli.registry_cmds:pull",
    "push": "lxcri_pve.cli.registry_cmds:push",
    "login": "lxcri_pve.cli.registry_cmds:login",
    "logout": "lxcri_pve.cli.registry_cmds:logout",
    "images": "lxcri_pve.cli.image_cmds:images",
    "inspect": "lxcri_pve.cli.image_cmds:inspect",
    "import": "lxcri_pve.cli.image_cmds:import_",
    "export": "lxcri_pve.cli.image_cmds:export",
    "rmi": "lxcri_pve.cli.image_cmds:rmi",
    "image": "lxcri_pve.cli.image_cmds:image",
    "unpack": "lxcri_pve.cli.unpack_cmds:unpack",
    "run": "lxcri_pve.cli.container_cmds:run",
    "create": "lxcri_pve.cli.container_cmds:create",
    "start": "lxcri_pve.cli.container_cmds:start",
    "stop": "lxcri_pve.cli.container_cmds:stop",
    "restart": "lxcri_pve.cli.container_cmds:restart",
    "destroy": "lxcri_pve.cli.container_cmds:destroy",
    "shutdown": "lxcri_pve.cli.container_cmds:shutdown",
    "reboot": "lxcri_pve.cli.container_cmds:reboot",
    "enter": "lxcri_pve.cli.container_cmds:enter",
    "config": "lxcri_pve.cli.config_cmds:config",
    "set": "lxcri_pve.cli.config_cmds:set_",
    "rm": "lxcri_pve.cli.container_cmds:destroy",
    "exec": "lxcri_pve.cli.container_cmds:exec_",
    "logs": "lxcri_pve.cli.logs_cmd:logs",
    "list": "lxcri_pve.cli.container_cmds:list_",
    "ps": "lxcri_pve.cli.container_cmds:ps",
    "status": "lxcri_pve.cli.container_cmds:status",
    "volume": "lxcri_pve.cli.volume_cmds:volume",
    "kill": "lxcri_pve.cli.ops_cmds:kill",
    "wait": "lxcri_pve.cli.ops_cmds:wait",
    "port": "lxcri_pve.cli.ops_cmds:port",
    "top": "lxcri_pve.cli.ops_cmds:top",
    "stats": "lxcri_pve.cli.ops_cmds:stats",
    "cp": "lxcri_pve.cli.copy_cmd:cp",
    "inspect-storage": "lxcri_pve.cli.storage_cmds:inspect_storage",
    "inspect-security": "lxcri_pve.cli.security_cmds:inspect_security",
    "stack": "lxcri_pve.cli.stack_cmds:stack",
    "up": "lxcri_pve.cli.stack_cmds:up",
    "down": "lxcri_pve.cli.stack_cmds:down",
    "inspect-network": "lxcri_pve.cli.network_cmds:inspect_network",
    "upgrade": "lxcri_pve.cli.upgrade_cmds:upgrade",
    "rollback": "lxcri_pve.cli.upgrade_cmds:rollback",
    "history": "lxcri_pve.cli.upgrade_cmds:history",
    "auto-update": "lxcri_pve.cli.upgrade_cmds:auto_update",
    "exporter": "lxcri_pve.cli.exporter_cmd:exporter",
    "tui": "lxcri_pve.cli.tui_cmd:tui",
    "containerd-config": "lxcri_pve.cli.containerd_cmd:containerd_config",
}


class LazyGroup(click.Group):
    """A group whose subcommands live in modules imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            mod_name, attr = COMMANDS[cmd_name].split(":")
            try:
                mod = importlib.import_module(mod_name)
            except ModuleNotFoundError as e:
                if e.name != mod_name:
                    raise
                return None  # a command group not built yet
            cmd = getattr(mod, attr)
            assert isinstance(cmd, click.Command)
            return cmd
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        from lxcri_core.errors import LxcriError
        from lxcri_core.log import redact_text

        try:
            return super().invoke(ctx)
        except LxcriError as e:
            # One clear line, exit 1; the traceback only at debug level. Masked: a
            # message quotes what was given, a URL with a password included.
            click.echo(f"lxcri: error: {redact_text(str(e))}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            # `lxcri ps | head -1`: the reader left; nothing to tell anyone, as
            # a shell's tools do (exit 128 + SIGPIPE), and no error at exit's flush
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            ctx.exit(141)
        except OSError as e:
            # a read-only or full state root, a missing permission: the system's
            # own words, one line (what failed is in the filename)
            where = f": {e.filename}" if e.filename else ""
            click.echo(f"lxcri: error: {e.strerror or e}{where}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("lxcri: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="lxcri")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="LXCRI_CONFIG",
    help="Configuration file [env LXCRI_CONFIG; default /etc/lxcri/config.yaml].",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    help="State root holding the image store [env LXCRI_ROOT; default /var/lib/lxcri].",
)
@click.option(
    "--backend",
    type=click.Choice(["lxc", "pve-local", "pve-api"]),
    help="Where containers live [env LXCRI_BACKEND; default pve-local on a Proxmox VE "
    "host, else lxc].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log verbosity on stderr [env LXCRI_LOG_LEVEL; default warning].",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="Log lines on stderr: readable text or JSON [env LXCRI_LOG_FORMAT; default text].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    root: str | None,
    backend: str | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Run OCI (Docker) images as Proxmox VE LXC containers.

    Images are pulled from registries (with credentials), kept in a local
    OCI image store with layers shared between containers, and run as LXC
    or Proxmox containers. Every command takes --output json where it prints
    data; errors are one line on stderr with exit status 1.
    """
    from pathlib import Path

    from lxcri_core.config import load_config
    from lxcri_core.errors import ConfigError
    from lxcri_core.log import redact_text, setup_logging

    try:
        cfg = load_config(
            config_path,
            root=Path(root) if root else None,
            log_level=log_level,
            log_format=log_format,
        )
    except ConfigError as e:
        click.echo(f"lxcri: error: {redact_text(str(e))}", err=True)
        ctx.exit(1)
    if backend:  # the flag over LXCRI_BACKEND and the file
        import dataclasses

        cfg = dataclasses.replace(cfg, backend=backend)
    # stderr is read by a person: readable lines, unless JSON was asked for (log_format)
    json_lines = cfg.log_format == "json"
    setup_logging(cfg.log_level, json=json_lines, people=not json_lines)
    ctx.obj = cfg


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Bash:  lxcri completion bash > /etc/bash_completion.d/lxcri
    Zsh:   lxcri completion zsh > "${fpath[1]}/_lxcri"
    Fish:  lxcri completion fish > ~/.config/fish/completions/lxcri.fish
    """
    from click.shell_completion import get_completion_class

    comp_cls = get_completion_class(shell)
    assert comp_cls is not None
    comp = comp_cls(cli, {}, "lxcri", "_LXCRI_COMPLETE")
    click.echo(comp.source())


def main() -> None:
    cli.main(prog_name="lxcri")


if __name__ == "__main__":
    main()
