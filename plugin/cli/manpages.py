"""Man pages from the CLI's own help: ``python3 -m lxcri_pve.cli.manpages OUTDIR``.

Writes ``lxcri.1`` (the global options and every command) and one
``lxcri-GROUP.1`` per verb group (``image``, ``volume``, ``stack``...), so
the pages say what ``--help`` says and cannot drift from it. Whatever
commands exist when the package is built get a page: a group added later
needs nothing here. The output holds no date, so builds are reproducible.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click
from lxcri_pve.cli.main import cli

from lxcri_core import __version__


def _esc(text: str) -> str:
    """Text as roff reads it literally: backslashes, minus signs, leading dots."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln[:1] in (".", "'") else ln for ln in text.split("\n"))


def _paragraphs(help_text: str) -> list[str]:
    """click's help as roff paragraphs; ``\\b`` blocks stay as they are written."""
    text = inspect.cleandoc(help_text).split("\f")[0]
    out = []
    for para in text.split("\n\n"):
        if para.startswith("\b\n"):
            out.append(".nf\n" + _esc(para[2:]) + "\n.fi")
        elif para.strip():
            out.append(_esc(" ".join(para.split())))
    return out


def _subcommands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is not None and not cmd.hidden:
            found.append((name, cmd))
    return found


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    lines = []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record:
            lines += [".TP", f"\\fB{_esc(record[0])}\\fR", _esc(" ".join(record[1].split()))]
    return lines


def _usage(cmd: click.Command, ctx: click.Context) -> str:
    return _esc(" ".join(cmd.collect_usage_pieces(ctx)))


def _command(cmd: click.Command, ctx: click.Context, heading: str) -> list[str]:
    """One command as a subsection: usage, help, options."""
    lines = [
        f'.SS "{_esc(ctx.command_path)}"',
        f"\\fB{_esc(ctx.command_path)}\\fR {_usage(cmd, ctx)}",
    ]
    for para in _paragraphs(cmd.help or cmd.short_help or ""):
        lines += [".PP", para]
    opts = _options(cmd, ctx)
    if opts:
        lines += [".PP", f"{heading}:", ".RS", *opts, ".RE"]
    return lines


def _header(name: str, summary: str) -> list[str]:
    return [
        f'.TH "{name.upper()}" "1" "" "lxcri {__version__}" "lxcri manual"',
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(summary)}",
    ]


def _page_name(path: str) -> str:
    return path.replace(" ", "-")


def render_pages() -> dict[str, str]:
    """File name -> roff text: ``lxcri.1`` and one page per verb group."""
    pages: dict[str, str] = {}
    root_ctx = click.Context(cli, info_name="lxcri")
    groups: list[str] = []
    body: list[str] = []
    for name, cmd in _subcommands(cli, root_ctx):
        ctx = click.Context(cmd, info_name=name, parent=root_ctx)
        if isinstance(cmd, click.Group):
            groups.append(name)
            pages[f"lxcri-{name}.1"] = _group_page(cmd, ctx)
            body += [
                f'.SS "lxcri {_esc(name)}"',
                _esc(cmd.get_short_help_str(200)),
                ".PP",
                f"See \\fBlxcri\\-{_esc(name)}\\fR(1).",
            ]
        else:
            body += _command(cmd, ctx, "Options")
    lines = _header("lxcri", cli.get_short_help_str(200))
    lines += [".SH SYNOPSIS", f"\\fBlxcri\\fR {_usage(cli, root_ctx)}", ".SH DESCRIPTION"]
    for para in _paragraphs(cli.help or ""):
        lines += [".PP", para]
    lines += [".SH OPTIONS", *_options(cli, root_ctx), ".SH COMMANDS", *body]
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/lxcri/config.yaml\\fR",
        "Settings (every one documented there, commented out).",
        ".TP",
        "\\fI/var/lib/lxcri\\fR",
        "State root: the image store, containers' state and volumes.",
        ".TP",
        "\\fI/usr/lib/lxcri\\fR",
        "The LXC hooks, the Proxmox VE hookscript and the exec shim.",
        ".SH SEE ALSO",
        ", ".join(f"\\fBlxcri\\-{_esc(g)}\\fR(1)" for g in groups)
        + ", \\fBlxc\\fR(7), \\fBpct\\fR(1)",
    ]
    pages["lxcri.1"] = "\n".join(lines) + "\n"
    pages["lxcri-runtime.1"] = _runtime_page()
    return pages


def _runtime_page() -> str:
    """``lxcri-runtime(1)``: its usage text (the runtime's one help) as the synopsis."""
    from lxcri_pve.runtime.main import USAGE

    lines = _header("lxcri-runtime", "an OCI runtime with runc's command line, on LXC")
    lines += [".SH SYNOPSIS", ".nf", *(_esc(ln) for ln in USAGE.rstrip().splitlines()), ".fi"]
    lines += [
        ".SH DESCRIPTION",
        ".PP",
        "containerd's runc v2 shim drives it as it drives runc: each container is an LXC",
        "container whose root filesystem is the bundle's root.path; config.json is",
        "translated field by field, and what LXC cannot express fails the create with an",
        "error naming the field. State is kept under \\-\\-root (default",
        "\\fI/run/lxcri\\-runtime\\fR), errors also go to \\-\\-log as JSON lines.",
        "Register it with containerd with \\fBlxcri containerd\\-config \\-\\-write\\fR.",
        ".SH SEE ALSO",
        "\\fBlxcri\\fR(1), \\fBctr\\fR(8), \\fBrunc\\fR(8)",
    ]
    return "\n".join(lines) + "\n"


def _group_page(group: click.Group, ctx: click.Context) -> str:
    path = ctx.command_path
    lines = _header(_page_name(path), group.get_short_help_str(200))
    lines += [".SH SYNOPSIS", f"\\fB{_esc(path)}\\fR {_usage(group, ctx)}", ".SH DESCRIPTION"]
    for para in _paragraphs(group.help or ""):
        lines += [".PP", para]
    opts = _options(group, ctx)
    if opts:
        lines += [".SH OPTIONS", *opts]
    lines.append(".SH COMMANDS")
    for name, cmd in _subcommands(group, ctx):
        sub_ctx = click.Context(cmd, info_name=name, parent=ctx)
        lines += _command(cmd, sub_ctx, "Options")
    lines += [".SH SEE ALSO", "\\fBlxcri\\fR(1)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m lxcri_pve.cli.manpages OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(render_pages().items()):
        (out / name).write_text(text)
        print(out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
