"""The files a stack file names, read only from inside its folder.

``env_file`` paths, the ``.env`` file and relative bind sources must stay in
the stack's folder: no absolute path, no ``..``, no symbolic link on the way
(each step opened with O_NOFOLLOW from the folder's fd), no FIFO or device
opened for reading; sizes bounded, each file and all references together.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from lxcri_core.errors import SpecError
from lxcri_core.stacks.model import EnvFile

#: an env_file larger than this is refused
MAX_ENV_FILE = 1 << 20
#: env_file bytes read for one stack, all references together
MAX_ENV_TOTAL = 8 << 20


def _err(path: str, why: str) -> SpecError:
    return SpecError(f"{path}: {why}" if path else why)


_LINK_REFUSED = (
    "a symbolic link or a non-directory is on the way (refused: it could lead out of "
    "the stack's folder)"
)


def _open_inside(folder: Path, rel: str, path: str, *, only_path: bool = False) -> int:
    """An fd of ``rel`` below ``folder``: relative, no ``..``, no symlink at any step.

    ``only_path``: an O_PATH fd (nothing is opened for reading: a device node or a
    FIFO there does nothing); a symbolic link as the last step is refused too.
    """
    if not rel or rel.startswith("/") or rel.startswith("~"):
        raise _err(path, f"{rel!r} must be a path relative to the stack's folder")
    parts = [p for p in rel.split("/") if p and p != "."]
    if ".." in parts:
        raise _err(path, f"{rel!r} must not leave the stack's folder ('..')")
    if "\x00" in rel:
        raise _err(path, "a path must not contain a NUL byte")
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise _err(path, f"cannot open the stack's folder {folder}: {e.strerror}") from None
    try:
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = os.O_NOFOLLOW | os.O_CLOEXEC
            if not last:
                flags |= os.O_PATH | os.O_DIRECTORY
            elif only_path:
                flags |= os.O_PATH  # on a symlink this opens the link: checked below
            else:
                flags |= os.O_RDONLY | os.O_NONBLOCK  # a FIFO must not hang the parse
            try:
                nfd = os.open(part, flags, dir_fd=fd)
            except OSError as e:
                why = _LINK_REFUSED if e.errno in (errno.ELOOP, errno.ENOTDIR) else e.strerror
                raise _err(path, f"{rel!r}: {why}") from None
            os.close(fd)
            fd = nfd
            if last and only_path and stat.S_ISLNK(os.fstat(fd).st_mode):
                raise _err(path, f"{rel!r}: {_LINK_REFUSED}")
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_env_file(folder: Path, rel: str, path: str) -> EnvFile:
    fd = _open_inside(folder, rel, path)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _err(path, f"{rel!r} is not a regular file")
        if st.st_size > MAX_ENV_FILE:
            raise _err(path, f"{rel!r} is larger than {MAX_ENV_FILE} bytes")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_ENV_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_ENV_FILE:
        raise _err(path, f"{rel!r} is larger than {MAX_ENV_FILE} bytes")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _err(path, f"{rel!r} is not UTF-8 text") from None
    return EnvFile(rel, text)


class EnvFiles:
    """Reads a stack's env files: each once, and all references together within
    ``MAX_ENV_TOTAL`` (one file named 100000 times must not make gigabytes of env)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.read: dict[str, EnvFile] = {}
        self.total = 0

    def __call__(self, rel: str, path: str) -> EnvFile:
        found = self.read.get(rel)
        if found is None:
            found = self.read[rel] = read_env_file(self.folder, rel, path)
        self.total += len(found.text)
        if self.total > MAX_ENV_TOTAL:
            raise _err(path, f"the env files come to more than {MAX_ENV_TOTAL} bytes in all")
        return found


def inside_path(folder: Path, rel: str, path: str) -> str:
    """The absolute path of an existing directory or file ``rel`` in the folder (bind source).

    Checked now; a folder someone else may write to could still change before the
    mount (keep stacks in folders only their user writes, as with any compose file)."""
    fd = _open_inside(folder, rel, path, only_path=True)
    os.close(fd)
    parts = [p for p in rel.split("/") if p and p != "."]
    return str(folder.joinpath(*parts)) if parts else str(folder)
