"""Who may reach what under lxcri's root (docker's CVE-2021-41091 lesson).

The root holds every image's files (setuid binaries and device nodes of
privileged images in the layer store), the containers' root filesystems and
upper dirs, and their secrets (``-e`` values in ``config``, ``lxcri.json``,
``process.json`` and ``ctr/env``). No other host user may reach any of it.

Unprivileged containers are set up by LXC as their mapped root (host uid and
gid 100000), which must pass through to the container's rootfs mount point,
its ``ctr/`` and ``/etc`` files and its volumes. So only that path gets the
mapped group, search permission only:

- ``ROOT``, ``ROOT/containers``, ``ROOT/lib`` (the shared init shim): 0710
  root:G (G = host gid of an unprivileged container's root);
- an unprivileged container's state dir: 0710 root:G; a privileged one's 0700;
- ``ROOT/volumes``: 0700. An unprivileged container's volumes are
  bind-mounted at ``STATE/volumes/N`` by the pre-start hook (listed in
  ``STATE/volumes.json``) and LXC mounts them from there, so the mapped
  group never passes through the volumes of other, privileged containers;
- its secrets (``config``, ``lxcri.json``, ``process.json``): 0600 root;
  ``ctr/env``: 0400, owned by the host uid the process runs as (the shim
  reads it as that user, as ``/proc/1/environ`` is readable by it);
- everything else (``images/``, ``storage/``, ``network/``): 0700, files 0600.

The dir and zfs backends' root filesystems are bind-mounted at the state
dir's ``rootfs`` by the pre-start hook (as the overlay is mounted there), so
the layer store itself never needs the mapped group.

Why the mapped root needs a passage at all: LXC sets up an unprivileged
container in a child already in the new user namespace; it opens the rootfs
path and the ``lxc.mount.entry`` sources as host uid/gid 100000 ("Permission
denied - Failed to open .../rootfs" otherwise). The config, the seccomp
profile and the log are opened by LXC's parent, as root.

Roots written by older versions (0755 everywhere, 0644 files) are tightened
the next time lxcri creates or starts a container in them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from lxcri_core.errors import StoreError
from lxcri_core.spec.model import DEFAULT_UID_BASE, ContainerSpec

#: Host gid of an unprivileged container's root: the group allowed to pass.
PASSAGE_GID = DEFAULT_UID_BASE
PASSAGE_MODE = 0o710
PRIVATE_MODE = 0o700
#: Entries of the root an unprivileged container passes through.
PASSAGES = ("containers", "lib")
#: lxcri's other entries of the root: private. Anything else in a root (an
#: admin's file; a root set to a shared directory by mistake) is left alone.
PRIVATE_ENTRIES = ("images", "storage", "network", "volumes")
#: In a state dir: what the pre-start hook bind-mounts where (``[[src, dst], ...]``).
VOLUMES_FILE = "volumes.json"
VOLUMES_DIR = "volumes"
#: Files of a state dir that hold the process's environment.
SECRET_FILES = ("config", "lxcri.json", "process.json")
#: Logs of a state dir: the process's output may print its secrets. Created
#: private before anything (LXC, the supervisor, the hooks) appends to them.
LOG_FILES = ("console.log", "supervisor.log", "hooks.log", "lxc.log")


def _set(path: Path, mode: int, gid: int = 0) -> None:
    """Give ``path`` (never a symlink) owner root, group ``gid`` and ``mode``."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, gid):
        os.chown(path, 0, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, mode)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700 root's."""
    path.mkdir(parents=True, exist_ok=True)
    _set(path, PRIVATE_MODE)
    return path


def passage_dir(path: Path, gid: int = PASSAGE_GID) -> Path:
    """Create ``path`` and make it 0710 root:gid: searchable by the mapped root only."""
    path.mkdir(parents=True, exist_ok=True)
    _set(path, PASSAGE_MODE, gid if os.geteuid() == 0 else os.getegid())
    return path


#: Written in a root lxcri created or adopted: only such a root is tightened.
ROOT_MARKER = ".lxcri-root"
#: Every entry lxcri itself makes in a root (``pve``: the pve-local backend's state).
ROOT_ENTRIES = frozenset((ROOT_MARKER, *PASSAGES, *PRIVATE_ENTRIES, "pve"))


def claim_root(root: Path) -> Path:
    """Create ``root``, or check that an existing one is lxcri's to tighten; its real path.

    ``secure_root`` makes the root 0710 root:100000: given ``--root /tmp`` (or
    any shared directory) it would break it for the whole host. So only a
    directory lxcri created, marked (``.lxcri-root``), or that has lxcri's
    layout (``images/oci-layout`` or ``containers/``: roots of earlier
    versions), or one empty or holding only lxcri's own entries, is taken; a
    world-writable or sticky one never (any local user could plant that layout).
    """
    try:
        root.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    root = root.resolve()  # /var/lib/lxcri may be a link to the data disk
    marker = root / ROOT_MARKER
    if not created:
        st = os.stat(root)
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISDIR(st.st_mode):
            raise StoreError(f"lxcri root {root} is not a directory")
        if mode & (stat.S_IWOTH | stat.S_ISVTX):
            raise StoreError(
                f"refusing lxcri root {root}: it is a shared directory (mode {mode:04o}, "
                "world-writable or sticky); choose a directory of its own (--root, LXCRI_ROOT)"
            )
        ours = (
            marker.exists()
            or (root / "images" / "oci-layout").is_file()
            or (root / "containers").is_dir()
            # empty, or only what lxcri writes there (a `network create` before any run)
            or all(e.name in ROOT_ENTRIES for e in os.scandir(root))
        )
        if not ours:
            raise StoreError(
                f"refusing lxcri root {root}: it holds other files and no lxcri root "
                f"(no {ROOT_MARKER}); choose an empty directory or a new path (--root, LXCRI_ROOT)"
            )
    if not marker.exists():
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    return root


def secure_root(root: Path) -> None:
    """Make the root private but for the passages; tighten what older versions left.

    Cheap when the root is already private: a stat per entry of the root.
    A root that is not yet 0710 was made by an older lxcri, so every
    container's state dir in it is tightened too.
    """
    root = claim_root(root)
    migrating = stat.S_IMODE(os.stat(root).st_mode) != PASSAGE_MODE
    passage_dir(root)
    for name in PASSAGES:
        passage_dir(root / name)
    for name in PRIVATE_ENTRIES:
        private_dir(root / name)
    for entry in (root / "containers").iterdir():
        if entry.name.startswith("."):  # .locks, .NAME.creating: never a passage
            _tighten(entry)
    if migrating:
        for sdir in (root / "containers").iterdir():
            if sdir.is_dir() and not sdir.is_symlink() and not sdir.name.startswith("."):
                with contextlib.suppress(Exception):  # a half-created or broken one
                    _tighten_state_dir(root, sdir.name)


def _tighten(path: Path) -> None:
    """Drop group and other access from one entry (dirs 0700, files go-rwx)."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        _set(path, PRIVATE_MODE)
    elif stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)


def _tighten_state_dir(root: Path, name: str) -> None:
    from lxcri_core.containers.record import load_record

    rec = load_record(root, name)
    secure_state_dir(root / "containers" / name, rec.spec)


def host_ids(spec: ContainerSpec) -> tuple[int, int]:
    """The host uid and gid the container's process runs as."""
    uid, gid = spec.user.uid, spec.user.gid
    sec = spec.security
    if not sec.unprivileged:
        return uid, gid
    hu = next((h for m in sec.idmaps if m.kind == "u" and (h := m.host_id(uid)) is not None), None)
    hg = next((h for m in sec.idmaps if m.kind == "g" and (h := m.host_id(gid)) is not None), None)
    # an id outside the map cannot run anyway; nobody then owns the secrets but root
    return (hu if hu is not None else 0), (hg if hg is not None else 0)


def passage_gid(spec: ContainerSpec) -> int | None:
    """The host gid that must pass through this container's state dir (None: privileged)."""
    if not spec.security.unprivileged:
        return None
    return next((m.host for m in spec.security.idmaps if m.kind == "g" and m.start == 0), None)


def secure_state_dir(sdir: Path, spec: ContainerSpec) -> None:
    """Modes and owners of one container's state dir (see the module's docstring)."""
    gid = passage_gid(spec)
    if gid is None:
        _set(sdir, PRIVATE_MODE)
    else:
        passage_dir(sdir, gid)
    for fname in SECRET_FILES:
        with contextlib.suppress(FileNotFoundError):
            _set(sdir / fname, 0o600)
    for fname in LOG_FILES:
        fd = os.open(sdir / fname, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
    env = sdir / "ctr" / "env"
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(env)
        if stat.S_ISREG(st.st_mode):
            uid, pgid = host_ids(spec)
            if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (uid, pgid):
                os.chown(env, uid, pgid, follow_symlinks=False)
            if stat.S_IMODE(st.st_mode) != 0o400:
                os.chmod(env, 0o400)


def shared_shim(root: Path) -> Path:
    """The one copy of the init shim every container bind-mounts read-only (``ROOT/lib``).

    A copy under the root rather than the installed file: the installed path
    (a checkout, say) need not be reachable by an unprivileged container's
    root. Replaced (atomically) when the installed shim changes; containers
    running keep the copy they mounted.
    """
    import filecmp
    import shutil

    from lxcri_core.containers.paths import libexec

    src = libexec("lxcri-init")
    dst = passage_dir(root / "lib") / "lxcri-init"
    if dst.is_file() and not dst.is_symlink() and filecmp.cmp(src, dst, shallow=False):
        return dst
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dst


def passed_volumes(
    tmp: Path, sdir: Path, spec: ContainerSpec, volumes: dict[str, Path]
) -> dict[str, Path]:
    """The volume paths LXC mounts from: an unprivileged container's via its state dir.

    ``volumes`` maps a volume key to its host directory under ``ROOT/volumes``
    (private); for an unprivileged container each gets a mount point
    ``STATE/volumes/N`` that the pre-start hook bind-mounts it on, listed in
    ``volumes.json`` (written to ``tmp``, the state dir being created, which
    becomes ``sdir``).
    """
    if passage_gid(spec) is None or not volumes:
        return volumes
    import json

    from lxcri_core.fsutil import atomic_write

    out: dict[str, Path] = {}
    pairs = []
    passage_dir(tmp / VOLUMES_DIR, passage_gid(spec) or PASSAGE_GID)
    for n, (key, src) in enumerate(sorted(volumes.items())):
        (tmp / VOLUMES_DIR / str(n)).mkdir(mode=0o700, exist_ok=True)
        out[key] = sdir / VOLUMES_DIR / str(n)
        pairs.append([str(src), str(out[key])])
    atomic_write(tmp / VOLUMES_FILE, json.dumps(pairs).encode())
    return out


def volume_mounts(sdir: Path) -> list[tuple[Path, Path]]:
    """(volume dir, mount point) pairs of ``volumes.json``, mount points inside ``sdir``."""
    import json

    try:
        pairs = json.loads((sdir / VOLUMES_FILE).read_text())
    except FileNotFoundError:
        return []
    out = []
    for src, dst in pairs:
        d = Path(dst)
        if d.parent != sdir / VOLUMES_DIR:  # never mount anywhere else
            raise ValueError(f"{VOLUMES_FILE}: mount point {dst} is not in {sdir}")
        out.append((Path(src), d))
    return out


def unmount_volumes(sdir: Path) -> None:
    """Unmount every volume mounted in ``sdir`` (a removal must never delete
    through one into the volume's data)."""
    import subprocess

    from lxcri_core.errors import BackendError
    from lxcri_core.fsutil import is_mountpoint

    vdir = sdir / VOLUMES_DIR
    if not vdir.is_dir():
        return
    for point in sorted(vdir.iterdir(), reverse=True):
        while is_mountpoint(point):
            proc = subprocess.run(["umount", str(point)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise BackendError(
                    f"cannot unmount volume at {point}: {proc.stderr.strip()}; "
                    "the container's state is kept"
                )


def pass_old_volumes(root: Path, sdir: Path, spec: ContainerSpec) -> None:
    """An unprivileged container of an older lxcri mounts its volumes straight from
    ``ROOT/volumes``, now private: rewrite its config to mount them via its state dir."""
    import json

    from lxcri_core.fsutil import atomic_write
    from lxcri_core.spec.lxc_config import fstab_escape

    if passage_gid(spec) is None or (sdir / VOLUMES_FILE).exists():
        return
    key = "lxc.mount.entry = "
    vols = fstab_escape(str(root / "volumes")) + "/"
    text = (sdir / "config").read_text()
    lines: list[str] = []
    pairs: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith(key + vols):
            src, rest = line[len(key) :].split(" ", 1)
            dst = sdir / VOLUMES_DIR / str(len(pairs))
            # volume names are plain ([A-Za-z0-9_.-]): nothing to unescape in them
            pairs.append([str(root / "volumes" / src[len(vols) :]), str(dst)])
            line = f"{key}{fstab_escape(str(dst))} {rest}"
        lines.append(line)
    if not pairs:
        return
    passage_dir(sdir / VOLUMES_DIR, passage_gid(spec) or PASSAGE_GID)
    for _, point in pairs:
        Path(point).mkdir(mode=0o700, exist_ok=True)
    atomic_write(sdir / VOLUMES_FILE, json.dumps(pairs).encode())
    atomic_write(sdir / "config", "".join(lines).encode())
