"""Proxmox storages (``/etc/pve/storage.cfg``) and a CT's rootfs volume on them.

Two storage types hold lxcri's root filesystems, as Proxmox lays them out:

- ``zfspool``: the image's layer chain as datasets below the pool (lxcri's zfs
  storage backend, ``<pool>/lxcri/layers/...``), the CT a clone of the top
  layer named ``<pool>/subvol-VMID-disk-0``: volume ``STORAGE:subvol-VMID-disk-0``.
  Creating it costs nothing; blocks are shared with the image.
- ``dir``: the subvol directory PVE's dir plugin allocates for a CT,
  ``<path>/images/VMID/subvol-VMID-disk-0.subvol`` (volume
  ``STORAGE:VMID/subvol-VMID-disk-0.subvol``; PVE's parse_name_dir wants the
  ``.subvol`` suffix). It is filled by ``cp -a --reflink=auto`` from lxcri's
  flattened, id-shifted template of the image (lxcri's dir storage backend):
  one reflink per file on btrfs/xfs, a plain copy elsewhere. Measured here
  (ext4, a 42 MB two-layer image): the template costs 0.58 s once per image,
  then 0.06-0.08 s per CT for the copy against 0.18-0.20 s for unpacking the
  (uncompressed) layers again into each subvol, so the copy wins, more so
  for compressed layers. An overlay over the layer chain would share more, but
  PVE mounts nothing but the volume directory itself, and it must stay valid
  when lxcri is gone.

Both are shifted to 100000 (``unprivileged: 1``) while unpacking.

A volume's tree is the image's, with its setuid-root files and (privileged)
v2 file capabilities, which lxcri's unpacker keeps only because no other host
user can reach them (lxcri_core/unpack/xattrs.py); an unprivileged volume's
setuid/setgid-100000 files would run as the ids every unprivileged CT and
lxcri's state passages (0710 root:100000) share. So the directory holding a
CT's volumes is private (``private_parent``): ``images/VMID`` is 0700
root:root for a privileged CT and 0710 root:100000 for an unprivileged one
(LXC sets up an unprivileged rootfs as the mapped root, which passes as the
group). A zfspool's subvols are mounted at ``<pool mountpoint>/NAME``, the
path PVE's ZFSPoolPlugin derives from the storage (moving a dataset's
mountpoint would make PVE bind-mount an empty directory), so their only
parent is the pool's mountpoint, shared by every CT of the storage: it gets
0710 root:100000, the most a directory shared by privileged CTs and
unprivileged CTs with PVE's default map can be. A CT with its own idmap on
such a pool needs its root group added by the admin (an ACL).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lxcri_core.errors import BackendError

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.spec.model import IdMap
    from lxcri_core.storage.chain import ImageChain
    from lxcri_core.storage.zfs import ZfsBackend
    from lxcri_core.store.layout import Store

#: The host gid of an unprivileged CT's root (PVE's default map 0-65535 -> 100000-165535).
MAPPED_ROOT_GID = 100000

_SECTION = re.compile(r"^([a-z][a-z0-9]*):\s*(\S+)\s*$")
_PROP = re.compile(r"^\s+(\S+)(?:\s+(.*?))?\s*$")


@dataclass(frozen=True)
class PveStorage:
    id: str
    type: str
    content: tuple[str, ...] = ()
    path: Path | None = None
    pool: str = ""
    disabled: bool = False


def read_storages(pve_root: Path) -> dict[str, PveStorage]:
    """Every storage of ``pve_root/storage.cfg`` (PVE's section-config format)."""
    path = pve_root / "storage.cfg"
    try:
        text = path.read_text()
    except OSError as e:
        raise BackendError(f"cannot read the Proxmox storage config {path}: {e.strerror}") from None
    out: dict[str, PveStorage] = {}
    cur: PveStorage | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if m := _SECTION.match(line):
            cur = PveStorage(m.group(2), m.group(1))
            out[cur.id] = cur
        elif (m := _PROP.match(line)) and cur is not None:
            key, value = m.group(1), m.group(2) or ""
            if key == "path":
                cur = replace(cur, path=Path(value))
            elif key == "content":
                cur = replace(cur, content=tuple(c for c in value.split(",") if c))
            elif key == "pool":
                cur = replace(cur, pool=value.strip("/"))
            elif key == "disable":
                cur = replace(cur, disabled=True)
            out[cur.id] = cur
    return out


def rootfs_storage(cfg: Config) -> PveStorage:
    """The storage CT root filesystems go to: ``pve_storage``, else local-zfs, else local."""
    storages = read_storages(cfg.pve_root)
    sid = cfg.pve_storage or ("local-zfs" if "local-zfs" in storages else "local")
    st = storages.get(sid)
    if st is None:
        raise BackendError(
            f"storage {sid!r} is not in {cfg.pve_root / 'storage.cfg'}; "
            f"use one of {', '.join(sorted(storages)) or '(none)'} (pve_storage)"
        )
    if st.disabled:
        raise BackendError(f"storage {sid!r} is disabled in storage.cfg")
    if st.type not in ("dir", "zfspool"):
        raise BackendError(
            f"storage {sid!r} is of type {st.type}; lxcri builds root filesystems on dir "
            "and zfspool storages only"
        )
    if "rootdir" not in st.content:
        raise BackendError(f"storage {sid!r} does not allow container root filesystems (rootdir)")
    if st.type == "dir" and st.path is None:
        raise BackendError(f"dir storage {sid!r} has no path in storage.cfg")
    if st.type == "zfspool" and not st.pool:
        raise BackendError(f"zfspool storage {sid!r} has no pool in storage.cfg")
    return st


def snippet_path(cfg: Config, volid: str) -> Path:
    """The file of a snippets volume ``STORAGE:snippets/NAME`` (PVE::Storage::path)."""
    sid, _, name = volid.partition(":")
    m = re.fullmatch(r"snippets/([A-Za-z0-9][A-Za-z0-9_.-]*)", name)
    if not m:
        raise BackendError(f"pve_hookscript {volid!r} is not a STORAGE:snippets/NAME volume")
    st = read_storages(cfg.pve_root).get(sid)
    if st is None or st.type != "dir" or st.path is None:
        raise BackendError(f"pve_hookscript {volid!r}: storage {sid!r} is not a dir storage")
    if "snippets" not in st.content:
        raise BackendError(f"pve_hookscript {volid!r}: storage {sid!r} has no snippets content")
    return st.path / "snippets" / m.group(1)


def _zfs_backend(cfg: Config, st: PveStorage) -> ZfsBackend:
    """lxcri's zfs storage backend on the storage's pool (layer chains below ``<pool>/lxcri``)."""
    from lxcri_core.storage.zfs import ZfsBackend

    return ZfsBackend(replace(cfg, zfs_pool=st.pool))


def create_rootfs(
    cfg: Config,
    st: PveStorage,
    store: Store,
    manifest_digest: str,
    idmap: IdMap | None,
    vmid: int,
    size_gib: int,
    disk: int = 0,
) -> tuple[str, Path]:
    """Build CT ``vmid``'s rootfs on ``st`` as its volume ``disk`` (0 at create; an
    upgrade builds the next generation beside the current one); (volume id, host path)."""
    from lxcri_core.errors import StorageError

    try:
        if st.type == "zfspool":
            from lxcri_core.storage.zfscli import get_prop, zfs

            zb = _zfs_backend(cfg, st)
            chain: ImageChain = zb.prepare_image(store, manifest_digest, idmap)
            # private before the clone mounts the image's tree below it
            pool_dir = _pool_dir(st, Path(get_prop(st.pool, "mountpoint")))
            private_parent(pool_dir, MAPPED_ROOT_GID)
            cid = disk_id(vmid, disk)
            rootfs = zb.create_rootfs(chain, cid)
            if rootfs.path.parent != pool_dir:  # a pool with its own mountpoint rules
                private_parent(_pool_dir(st, rootfs.path.parent), MAPPED_ROOT_GID)
            # PVE's subvol size is the dataset's refquota
            zfs("set", f"refquota={size_gib}G", zb.container_dataset(cid))
            return f"{st.id}:subvol-{vmid}-disk-{disk}", rootfs.path
        from lxcri_core.storage.cmd import run_cmd
        from lxcri_core.storage.dirs import DirBackend

        db = DirBackend(cfg)
        chain = db.prepare_image(store, manifest_digest, idmap)
        assert st.path is not None
        vdir = st.path / "images" / str(vmid)
        dest = vdir / f"subvol-{vmid}-disk-{disk}.subvol"
        if dest.exists():
            raise BackendError(
                f"{dest} exists but no CT {vmid} does; remove it or pick another VMID"
                if disk == 0
                else f"{dest} exists already; remove it by hand"
            )
        vdir.parent.mkdir(parents=True, exist_ok=True)
        vdir.mkdir(mode=0o700, exist_ok=True)
        private_parent(vdir, None if idmap is None else MAPPED_ROOT_GID)  # before the copy
        tmp = vdir / f".tmp-subvol-{vmid}-disk-{disk}"
        remove_path(tmp)
        src = db.images_dir / chain_dir_name(chain) / "rootfs"
        with db.locked():  # a prune waits until the copy is done
            run_cmd(["cp", "-a", "--reflink=auto", str(src), str(tmp)])
        os.rename(tmp, dest)
        return f"{st.id}:{vmid}/subvol-{vmid}-disk-{disk}.subvol", dest
    except StorageError as e:
        raise BackendError(
            f"cannot build the rootfs of CT {vmid} on storage {st.id}: {e}"
        ) from None


def private_parent(path: Path, gid: int | None) -> None:
    """Make ``path``, a directory holding CT volumes, passable by root only (``gid``
    None: 0700 root:root) or also by the mapped root group (0710 root:``gid``)."""
    from lxcri_pve.backends.pve_hookstate import private_dir

    private_dir(str(path), gid)


def _pool_dir(st: PveStorage, path: Path) -> Path:
    """``path``, where zfspool ``st`` mounts its subvols, unless it is no directory of its own."""
    if not path.is_absolute() or path == Path("/"):
        raise BackendError(
            f"zfspool storage {st.id}: its subvols are not mounted in a directory of their "
            f"own ({path}); give pool {st.pool} a mountpoint (zfs set mountpoint=/{st.pool})"
        )
    return path


def volume_parents(cfg: Config, vmid: int, volids: list[str]) -> dict[Path, bool]:
    """The directories holding CT ``vmid``'s volumes ``volids`` (``STORAGE:NAME``) on dir
    and zfspool storages, each with whether other CTs' volumes share it (a pool's).
    Other volumes (bind mounts, other storage types) are not lxcri's to guard."""
    storages = read_storages(cfg.pve_root)
    out: dict[Path, bool] = {}
    for volid in volids:
        sid, _, name = volid.partition(":")
        st = storages.get(sid)
        if st is None:
            continue
        if st.type == "dir" and st.path is not None:
            if re.fullmatch(rf"{vmid}/(?:subvol|vm|base)-{vmid}-disk-\d+(?:\.\w+)?", name):
                out.setdefault(st.path / "images" / str(vmid), False)
        elif st.type == "zfspool" and re.fullmatch(rf"subvol-{vmid}-disk-\d+", name):
            from lxcri_core.errors import StorageError
            from lxcri_core.storage.zfscli import get_prop

            try:
                mnt = Path(get_prop(f"{st.pool}/{name}", "mountpoint"))
            except StorageError:
                continue  # gone: nothing to reach
            out[_pool_dir(st, mnt.parent)] = True
    return out


def tighten_volumes(
    cfg: Config, vmid: int, volids: list[str], unprivileged: bool
) -> list[tuple[Path, int | None, bool]]:
    """Make the directories of CT ``vmid``'s volumes private (``private_parent``); a CT
    created before lxcri did so is tightened by its next start. Returns each directory
    with its group (None: root's) and whether other CTs' volumes share it (a pool's)."""
    done: list[tuple[Path, int | None, bool]] = []
    for path, shared in volume_parents(cfg, vmid, volids).items():
        gid = MAPPED_ROOT_GID if shared or unprivileged else None
        private_parent(path, gid)
        done.append((path, gid, shared))
    return done


def chain_dir_name(chain: ImageChain) -> str:
    from lxcri_core.storage.chain import short_key

    return short_key(chain.key)


def forget_rootfs(cfg: Config, st: PveStorage, vmid: int) -> None:
    """Drop lxcri's record of CT ``vmid``'s clone (zfspool), once ``pct destroy`` freed it.

    Only the record: the dataset is PVE's volume, and PVE destroys it.
    """
    if st.type != "zfspool":
        return
    from lxcri_core.storage.refs import save_refs

    zb = _zfs_backend(cfg, st)
    with zb.locked():
        refs = zb.refs()
        mine = [c for c in refs.containers if c == str(vmid) or c.startswith(f"{vmid}-disk-")]
        for cid in mine:
            del refs.containers[cid]
        if mine:
            save_refs(zb.state / "refs.json", refs)


def disk_id(vmid: int, disk: int) -> str:
    """The container id lxcri's zfs backend records CT ``vmid``'s rootfs volume ``disk``
    under (``ZfsBackend.container_dataset`` maps it to ``subvol-VMID-disk-N``)."""
    return str(vmid) if disk == 0 else f"{vmid}-disk-{disk}"


_DISK = re.compile(r"(?:\d+/)?subvol-(\d+)-disk-(\d+)(?:\.subvol)?")


def volume_disk(volid: str, vmid: int) -> int | None:
    """The disk number of CT ``vmid``'s subvol volume ``volid`` (None: another kind)."""
    m = _DISK.fullmatch(volid.partition(":")[2])
    return int(m.group(2)) if m and int(m.group(1)) == vmid else None


def volume_path(st: PveStorage, vmid: int, disk: int) -> Path:
    """Where CT ``vmid``'s volume ``disk`` is mounted on the host."""
    if st.type == "zfspool":
        from lxcri_core.storage.zfscli import get_prop

        return Path(get_prop(f"{st.pool}/subvol-{vmid}-disk-{disk}", "mountpoint"))
    assert st.path is not None
    return st.path / "images" / str(vmid) / f"subvol-{vmid}-disk-{disk}.subvol"


def volume_exists(cfg: Config, st: PveStorage, vmid: int, disk: int) -> bool:
    """Whether CT ``vmid``'s volume ``disk`` is on ``st`` (a dataset, or a directory)."""
    if st.type == "zfspool":
        from lxcri_core.storage.zfscli import exists

        return exists(f"{st.pool}/subvol-{vmid}-disk-{disk}")
    assert st.path is not None
    vdir = st.path / "images" / str(vmid)
    return (vdir / f"subvol-{vmid}-disk-{disk}.subvol").exists()


def remove_volume(cfg: Config, st: PveStorage, vmid: int, disk: int) -> None:
    """Delete CT ``vmid``'s rootfs volume ``disk`` (a discarded generation, or one an
    interrupted upgrade left half-built), with lxcri's record of its clone; idempotent."""
    if st.type == "zfspool":
        from lxcri_core.storage.refs import save_refs
        from lxcri_core.storage.zfs import destroy
        from lxcri_core.storage.zfscli import exists

        zb = _zfs_backend(cfg, st)
        cid = disk_id(vmid, disk)
        with zb.locked():
            ds = zb.container_dataset(cid)
            if exists(ds):
                destroy(ds)
            refs = zb.refs()
            if refs.containers.pop(cid, None) is not None:
                save_refs(zb.state / "refs.json", refs)
        return
    assert st.path is not None
    vdir = st.path / "images" / str(vmid)
    remove_path(vdir / f"subvol-{vmid}-disk-{disk}.subvol")
    remove_path(vdir / f".tmp-subvol-{vmid}-disk-{disk}")


def remove_rootfs(cfg: Config, st: PveStorage, vmid: int) -> None:
    """Undo ``create_rootfs`` (a create that failed half-way)."""
    if st.type == "zfspool":
        zb = _zfs_backend(cfg, st)
        if str(vmid) in zb.containers():
            zb.remove_rootfs(str(vmid))
        return
    assert st.path is not None
    vdir = st.path / "images" / str(vmid)
    remove_path(vdir / f"subvol-{vmid}-disk-0.subvol")
    remove_path(vdir / f".tmp-subvol-{vmid}-disk-0")
    if vdir.is_dir() and not any(vdir.iterdir()):
        vdir.rmdir()


def remove_path(path: Path) -> None:
    from lxcri_core.storage.fstree import remove_tree

    if path.exists() or path.is_symlink():
        remove_tree(path)
