"""What a person should hear when creating a container: choices that weaken isolation,
profile rules LXC cannot carry, and bind mounts the container's root cannot write.

An unprivileged container's root is a high host uid (100000): a ``-v /host/dir:/data``
whose directory belongs to host root is read-only in practice, silently. The fix
is named: give the directory to the mapped range, or mount it read-only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from lxcri_core.security.caps import DANGEROUS_CAPS
from lxcri_core.security.lsm import apparmor_warning
from lxcri_core.spec.model import ContainerSpec


def security_warnings(spec: ContainerSpec) -> list[str]:
    sec = spec.security
    out = []
    if sec.capabilities is None and not sec.privileged:
        out.append(
            "--cap-add ALL: the container's root keeps every capability (in its user "
            "namespace); add the few it needs instead"
        )
    elif sec.capabilities is not None:
        risky = sorted(DANGEROUS_CAPS & set(sec.capabilities))
        if risky:
            out.append(
                f"--cap-add {','.join(risky)}: each widens what the container's root can do "
                "to the kernel"
            )
    if sec.seccomp == "unconfined" and not sec.privileged:
        out.append("seccomp=unconfined: every system call reaches the kernel")
    for item in sec.seccomp_unsupported:
        out.append(f"seccomp profile {sec.seccomp}: not carried to LXC: {item}")
    aa = apparmor_warning(sec.apparmor_profile)
    if aa:
        out.append(aa)
    return out


Stat = Callable[[str], os.stat_result]


def bind_mount_warnings(spec: ContainerSpec, stat_fn: Stat = os.stat) -> list[str]:
    """A writable bind mount of an unprivileged container whose source its root cannot
    write, each with the fix."""
    sec = spec.security
    if not sec.unprivileged:
        return []
    uids = [m for m in sec.idmaps if m.kind == "u" and m.start == 0]
    gids = [m for m in sec.idmaps if m.kind == "g" and m.start == 0]
    if not uids or not gids:
        return []
    uid, gid, count = uids[0].host, gids[0].host, uids[0].count
    out = []
    for m in spec.mounts:
        if m.kind != "bind" or m.read_only:
            continue
        try:
            st = stat_fn(m.source)
        except OSError:
            continue  # create refuses a missing source on its own
        mode = st.st_mode
        writable = (
            (st.st_uid == uid and mode & stat.S_IWUSR)
            or (st.st_gid == gid and mode & stat.S_IWGRP)
            or mode & stat.S_IWOTH
        )
        mapped = uid <= st.st_uid < uid + count
        if not writable:
            owner = f"owned by host uid {st.st_uid}" + ("" if mapped else ", outside the map")
            out.append(
                f"-v {m.source}:{m.target}: the container's root (host uid {uid}) cannot "
                f"write {m.source} ({owner}); give it to the mapped range "
                f"(chown {uid}:{gid} {m.source}), use an idmapped mount where the kernel "
                "has them, or mount it read-only (:ro)"
            )
    return out
