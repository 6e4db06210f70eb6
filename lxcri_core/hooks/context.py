"""What an LXC hook is told, for hook versions 0 and 1.

LXC runs ``lxc.hook.*`` commands through ``sh -c`` with extra arguments:

- version 0 (default): ``CMD NAME SECTION TYPE [ARGS...]``;
- version 1 (``lxc.hook.version = 1``): ``CMD [ARGS...]`` with ``LXC_NAME``,
  ``LXC_HOOK_SECTION`` and ``LXC_HOOK_TYPE`` in the environment.

Both set ``LXC_CONFIG_FILE``, ``LXC_ROOTFS_MOUNT`` and ``LXC_ROOTFS_PATH``;
start-host adds ``LXC_PID``; stop hooks add ``LXC_TARGET``. This module is
imported on every container start, so it imports nothing heavy.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The file beside an LXC config that marks a container as lxcri's.
MARKER = "lxcri.json"
HOOK_TYPES = frozenset(
    {"pre-start", "pre-mount", "mount", "autodev", "start-host", "start", "stop",
     "post-stop", "clone", "destroy"}
)  # fmt: skip

_FIELDS = ("name", "hook_type", "version", "config_file", "rootfs_mount", "rootfs_path",
           "pid", "target", "args", "env")  # fmt: skip


class HookContext:
    """One hook invocation, immutable. A plain class, not a dataclass: importing
    dataclasses (inspect, ast, ...) would cost ~13 ms of every hook run."""

    __slots__ = _FIELDS
    name: str
    hook_type: str
    version: int
    config_file: str
    rootfs_mount: str
    rootfs_path: str
    pid: int | None
    target: str
    args: tuple[str, ...]
    env: Mapping[str, str]

    def __init__(
        self,
        name: str,
        hook_type: str,
        version: int,
        config_file: str = "",
        rootfs_mount: str = "",
        rootfs_path: str = "",
        pid: int | None = None,
        target: str = "",
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        values = (name, hook_type, version, config_file, rootfs_mount, rootfs_path, pid,
                  target, tuple(args), dict(env or {}))  # fmt: skip
        for key, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"HookContext is immutable (cannot set {key})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HookContext) and all(
            getattr(self, k) == getattr(other, k) for k in _FIELDS
        )

    __hash__ = None  # type: ignore[assignment]  # env is a dict, as it was

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in _FIELDS if k != "env")
        return f"HookContext({shown})"

    @property
    def state_dir(self) -> str:
        """lxcri keeps a container's state beside its LXC config."""
        return os.path.dirname(self.config_file)

    def managed(self) -> bool:
        """True when lxcri created this container (a marker file beside the config)."""
        return bool(self.config_file) and os.path.isfile(os.path.join(self.state_dir, MARKER))

    @classmethod
    def from_env(cls, env: Mapping[str, str], argv: Sequence[str]) -> HookContext:
        """Parse a hook invocation; raises ValueError for one LXC would never make."""
        args = list(argv[1:])
        version = int(env.get("LXC_HOOK_VERSION", "0") or 0)
        if version == 0 and len(args) >= 3 and args[2] in HOOK_TYPES:
            name, _section, hook_type, rest = args[0], args[1], args[2], args[3:]
        elif version == 1 or env.get("LXC_HOOK_TYPE"):
            name = env.get("LXC_NAME", "")
            hook_type = env.get("LXC_HOOK_TYPE", "")
            rest = args
        else:
            raise ValueError(f"not an LXC hook invocation: argv={list(argv)!r}")
        if hook_type not in HOOK_TYPES:
            raise ValueError(f"unknown LXC hook type {hook_type!r}")
        pid = env.get("LXC_PID")
        return cls(
            name=name or env.get("LXC_NAME", ""),
            hook_type=hook_type,
            version=version,
            config_file=env.get("LXC_CONFIG_FILE", ""),
            rootfs_mount=env.get("LXC_ROOTFS_MOUNT", ""),
            rootfs_path=env.get("LXC_ROOTFS_PATH", ""),
            pid=int(pid) if pid and pid.isdigit() else None,
            target=env.get("LXC_TARGET", ""),
            args=tuple(rest),
            env=dict(env),
        )
