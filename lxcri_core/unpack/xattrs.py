"""Which extended attributes of a layer entry are written, and in what form.

A layer is hostile input, and some xattrs are host policy rather than file
content, so the rule is an allow-list:

- ``user.*`` is written as is: it is data, and grants nothing.
- ``security.capability`` (file capabilities) is rewritten, never copied.
  A v1/v2 capability has no root id and the kernel honours it in the
  initial user namespace: written as is, a ``cap_setuid=ep`` file from an
  image hands host root to anyone who can reach it. For an unprivileged
  target it becomes a VFS_CAP_REVISION_3 capability whose root id is the
  id map's host base, exactly what the kernel writes when the container's
  root sets it: it then works only inside a user namespace whose root is
  that uid. For a privileged target the container *is* host root, so the
  capability must stay effective in the initial namespace; a v3 with root
  id 0 would not help, because the kernel treats it as (and reads it back
  as) a v2 capability. Such a file is as powerful as the setuid-root
  binaries privileged images ship anyway; both are safe only because the
  layer store and container roots are private to root (mode 0700/0710,
  not traversable by other host users) -- an assumption this module makes.
- ``system.posix_acl_access``/``system.posix_acl_default``: the uids and
  gids in the entries are shifted through the id map like the owner.
- Everything else is dropped with a warning: ``trusted.*`` (overlayfs's
  ``trusted.overlay.*`` could forge whiteouts, opaque dirs and redirects in
  an overlay lower dir), ``security.*`` (SELinux/SMACK/IMA labels belong to
  the host's policy) and any other namespace.
"""

from __future__ import annotations

import struct

from lxcri_core.spec.model import IdMap

CAPABILITY = "security.capability"
ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"

# <linux/capability.h>
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
VFS_CAP_REVISION_1 = 0x01000000
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
_SIZES = {VFS_CAP_REVISION_1: 12, VFS_CAP_REVISION_2: 20, VFS_CAP_REVISION_3: 24}

# <linux/posix_acl_xattr.h>
ACL_XATTR_VERSION = 2
ACL_USER = 0x02
ACL_GROUP = 0x08


class Dropped(Exception):
    """An xattr that is not written; the message says why (it is logged)."""


def parse_capability(value: bytes) -> tuple[int, int, int, int | None]:
    """(flags, permitted, inheritable, rootid or None) of a ``security.capability`` value.

    ``permitted`` and ``inheritable`` are 64-bit masks; a v1 capability has
    only the low 32 bits. ``rootid`` is None for v1/v2 (no root id).
    """
    if len(value) < 4:
        raise Dropped("a file capability shorter than its header")
    (magic,) = struct.unpack_from("<I", value)
    rev = magic & VFS_CAP_REVISION_MASK
    if _SIZES.get(rev) != len(value):
        raise Dropped(f"a malformed file capability (header {magic:#010x}, {len(value)} bytes)")
    flags = magic & ~VFS_CAP_REVISION_MASK
    if rev == VFS_CAP_REVISION_1:
        p0, i0 = struct.unpack_from("<II", value, 4)
        return flags, p0, i0, None
    p0, i0, p1, i1 = struct.unpack_from("<IIII", value, 4)
    rootid = struct.unpack_from("<I", value, 20)[0] if rev == VFS_CAP_REVISION_3 else None
    return flags, p0 | p1 << 32, i0 | i1 << 32, rootid


def capability_bytes(flags: int, permitted: int, inheritable: int, rootid: int | None) -> bytes:
    """The on-disk form: v2 when ``rootid`` is None, else v3 with that root id."""
    lo, hi = 0xFFFFFFFF, 32
    words = (permitted & lo, inheritable & lo, permitted >> hi & lo, inheritable >> hi & lo)
    if rootid is None:
        return struct.pack("<IIIII", VFS_CAP_REVISION_2 | flags, *words)
    return struct.pack("<IIIIII", VFS_CAP_REVISION_3 | flags, *words, rootid)


def rewrite_capability(value: bytes, idmap: IdMap | None) -> bytes:
    """The capability to write for a target with ``idmap`` (None: privileged)."""
    flags, permitted, inheritable, rootid = parse_capability(value)
    flags &= VFS_CAP_FLAGS_EFFECTIVE
    if idmap is None:
        # Privileged target: the container runs as host root, so the
        # capability must work in the initial namespace (see the module doc).
        if rootid:
            # Rooted at a host uid such as 100000, it would work in every
            # unprivileged container whose root that uid is: never written.
            raise Dropped(f"a file capability for root id {rootid} in a privileged image")
        return capability_bytes(flags, permitted, inheritable, None)
    # The image's root id (0 for v1/v2) is a container uid: shift it like an owner.
    cid = rootid or 0
    host = idmap.host_id(cid)
    if host is None:
        raise Dropped(f"a file capability for root id {cid}, outside the id map")
    return capability_bytes(flags, permitted, inheritable, host)


def shift_acl(value: bytes, idmap: IdMap | None) -> bytes:
    """A POSIX ACL xattr with its named users and groups moved through ``idmap``."""
    if len(value) < 4 or (len(value) - 4) % 8:
        raise Dropped("a malformed POSIX ACL")
    (version,) = struct.unpack_from("<I", value)
    if version != ACL_XATTR_VERSION:
        raise Dropped(f"a POSIX ACL of unknown version {version}")
    if idmap is None:
        return value
    out = bytearray(value)
    for off in range(4, len(value), 8):
        tag, _perm, ident = struct.unpack_from("<HHI", value, off)
        if tag in (ACL_USER, ACL_GROUP):
            host = idmap.host_id(ident)
            if host is None:
                raise Dropped(f"a POSIX ACL naming id {ident}, outside the id map")
            struct.pack_into("<I", out, off + 4, host)
    return bytes(out)


def layer_xattr(key: str, value: bytes, idmap: IdMap | None, regular: bool) -> bytes:
    """The value to write for xattr ``key`` of a layer entry; raises ``Dropped`` if none.

    ``regular``: whether the entry is a regular file, the only kind a file
    capability means anything on.
    """
    if key.startswith("user."):
        return value
    if key == CAPABILITY:
        if not regular:
            raise Dropped("a file capability on something that is not a regular file")
        return rewrite_capability(value, idmap)
    if key in (ACL_ACCESS, ACL_DEFAULT):
        return shift_acl(value, idmap)
    raise Dropped("only user.*, security.capability and POSIX ACL xattrs are taken from a layer")


__all__ = [
    "CAPABILITY",
    "Dropped",
    "capability_bytes",
    "layer_xattr",
    "parse_capability",
    "rewrite_capability",
    "shift_acl",
]
