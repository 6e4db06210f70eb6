"""Paths inside a container's rootfs, resolved as the container would see them.

An image is untrusted: ``/data -> /etc`` or ``/etc -> /tmp/x`` must never
make the host create or mount anything outside the rootfs. So lxcri creates
every mount target itself before the first start, resolving symlinks inside
the rootfs (an absolute link means the rootfs root; ``..`` stops at it, as in
a chroot — what runc's securejoin does), and hands LXC the resolved path
with no ``create=`` option: LXC's own creation follows links on the host.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from lxcri_core.errors import BackendError

MAX_LINKS = 40


def resolve_in_root(
    root: Path, path: str, *, create: Literal["dir", "file"] | None = None, owner: int = 0
) -> str:
    """``path`` (absolute, in the container) as a rootfs-relative path, links resolved inside.

    Missing components are created as directories (mode 0755, owned by
    ``owner``: the container's root); with ``create`` the last one is created
    as a directory or an empty file. Raises BackendError for a component that
    is not a directory, a target of the wrong type, or a link loop.
    """
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        cur = root.joinpath(*done, comp)
        last = not todo
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if last and create == "file":
                fd = os.open(cur, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                os.fchown(fd, owner, owner)
                os.close(fd)
            elif not last or create == "dir":
                os.mkdir(cur, 0o755)
                os.chown(cur, owner, owner, follow_symlinks=False)
                os.chmod(cur, 0o755)
            else:
                raise BackendError(f"{path} does not exist in the container's rootfs") from None
            done.append(comp)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_LINKS:
                raise BackendError(f"{path} in the container's rootfs: too many symbolic links")
            target = os.readlink(cur)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            raise BackendError(
                f"{path}: /{'/'.join([*done, comp])} is not a directory in the image"
            )
        if last and create == "dir" and not stat.S_ISDIR(st.st_mode):
            raise BackendError(f"{path} is a file in the image; a volume needs a directory there")
        if last and create == "file" and stat.S_ISDIR(st.st_mode):
            raise BackendError(f"{path} is a directory in the image; a file is mounted there")
        done.append(comp)
    return "/".join(done)
