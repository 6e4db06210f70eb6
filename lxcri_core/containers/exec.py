"""``exec``: the lxc-attach command running a process in a container as docker exec does; logs."""

from __future__ import annotations

import os
from pathlib import Path

from lxcri_core.backend import ExecCommand
from lxcri_core.config import Config
from lxcri_core.containers import lxc
from lxcri_core.containers.record import (
    load_record,
    lxcpath,
    state_dir,
)
from lxcri_core.errors import BackendError
from lxcri_core.log import get_logger

log = get_logger(__name__)

#: re-exported (engine and the tests use it here): see ``lxc.EXEC_ENV_PREFIX``
EXEC_ENV_PREFIX = lxc.EXEC_ENV_PREFIX


def exec_argv(
    cfg: Config,
    name: str,
    argv: list[str],
    *,
    env: tuple[str, ...] = (),
    user: str = "",
    workdir: str | None = None,
    tty: bool = False,
    host_env: dict[str, str] | None = None,
) -> ExecCommand:
    """The command running ``argv`` in ``name`` as docker exec does.

    It runs as the container's user unless ``user`` (``NAME|UID[:GROUP|GID]``,
    names from the container's /etc/passwd and /etc/group) says otherwise,
    with the user's supplementary groups, in the container's working
    directory unless ``workdir``, with the container's environment plus
    ``TERM=xterm`` for a tty plus ``env`` (``-e NAME=VALUE`` or ``-e NAME``).
    The init shim (``/.lxcri/init --exec``) sets all of that inside the
    container and exits 126/127 as docker does when it cannot.
    """
    from lxcri_core.errors import SpecError
    from lxcri_core.spec.build import merge_env
    from lxcri_core.spec.lxc_config import CTR_DIR, DEFAULT_INIT_SHIM
    from lxcri_core.spec.options import parse_env, parse_user
    from lxcri_core.spec.users import read_rootfs_file, resolve_user

    rec = load_record(cfg.root, name)
    if lxc.state(name, lxcpath(cfg)) != "RUNNING":
        raise BackendError(f"container {name} is not running")
    host = dict(os.environ if host_env is None else host_env)
    spec = rec.spec
    u = spec.user
    if user:
        uname, group = parse_user(user)
        # the running container's files: read without following its links out of the rootfs
        root = Path(rec.rootfs)
        u = resolve_user(
            uname,
            group,
            read_rootfs_file(root, "etc/passwd"),
            read_rootfs_file(root, "etc/group"),
            tuple(str(g) for g in spec.user.group_add_gids),  # the container's --group-add
        )
    cwd = spec.working_dir if workdir is None else workdir
    if not cwd.startswith("/"):
        raise SpecError(f"invalid -w value {cwd!r}: the working directory must be absolute")
    extra = [e for e in (parse_env(v, host) for v in env) if e is not None]
    full_env = merge_env(spec.env, ["TERM=xterm"] if tty else [], extra)
    if not lxc.shim_has_exec(state_dir(cfg.root, name) / CTR_DIR / "init"):
        # a container created before the shim had --exec: lxc-attach alone, as then
        cmd, kept = lxc.attach_argv(name, lxcpath(cfg), argv, full_env, u.uid, u.gid)
        return ExecCommand(cmd, {**host, **kept})
    cmd, run_env = lxc.shim_exec_argv(
        name,
        lxcpath(cfg),
        argv,
        full_env,
        u.uid,
        u.gid,
        u.additional_gids,
        cwd,
        spec.security.shim_sets_ids,
        DEFAULT_INIT_SHIM,
    )
    out_env = {k: v for k, v in host.items() if not k.startswith(lxc.EXEC_ENV_PREFIX)}
    out_env.update((k, v) for k, v in run_env.items() if k.startswith(lxc.EXEC_ENV_PREFIX))
    return ExecCommand(cmd, out_env)


def logs_path(cfg: Config, name: str) -> Path:
    load_record(cfg.root, name)
    return state_dir(cfg.root, name) / "console.log"
