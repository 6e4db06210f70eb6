"""``lxcri cp``: copy files between a container and the host."""

from __future__ import annotations

import click
from lxcri_pve.cli.common import emit_json, get_config, lxc_name, output_option

_HELP = """Copy files or directories between a container and the host.

\b
  lxcri cp [-L] CONTAINER:SRC_PATH DEST_PATH
  lxcri cp [-L] SRC_PATH CONTAINER:DEST_PATH

Works while the container runs (volumes included) and while it is stopped
(then a path on a volume is refused: copy to the volume's directory). As
with docker, a destination that is an existing directory receives the
source under its own name; otherwise the source is copied to that name.
Paths in the container are resolved inside it: its symbolic links never
lead to host files. Files copied in belong to the container's root; files
copied out to you, without setuid/setgid bits; device nodes, fifos and
sockets are skipped (and named on stderr).

\b
Examples:
  lxcri cp web:/etc/nginx/nginx.conf ./nginx.conf
  lxcri cp ./site web:/usr/share/nginx/html
  lxcri cp -L web:/etc/localtime /tmp/tz
"""


@click.command(help=_HELP)
@click.option(
    "-L",
    "--follow-link",
    "follow",
    is_flag=True,
    help="Copy what a source symlink points to (resolved inside the container).",
)
@click.argument("src", metavar="SRC")
@click.argument("dest", metavar="DEST")
@output_option
def cp(src: str, dest: str, follow: bool, output: str) -> None:
    from lxcri_core.containers.copy import copy_in, copy_out, parse_location
    from lxcri_core.errors import BackendError

    s_ct, s_path = parse_location(src)
    d_ct, d_path = parse_location(dest)
    if (s_ct is None) == (d_ct is None):
        raise BackendError(
            "give exactly one CONTAINER:PATH, e.g. `lxcri cp web:/etc/hosts ./hosts`"
            if s_ct is None
            else "copying between two containers is not supported; copy through the host"
        )
    cfg = get_config()
    if s_ct is not None:
        res = copy_out(cfg, lxc_name(s_ct, "cp"), s_path, d_path, follow=follow)
    else:
        assert d_ct is not None
        res = copy_in(cfg, lxc_name(d_ct, "cp"), s_path, d_path, follow=follow)
    for skipped in res.skipped:
        click.echo(f"lxcri: skipped {skipped}: not a file, directory or link", err=True)
    if output == "json":
        emit_json(res.to_json())
