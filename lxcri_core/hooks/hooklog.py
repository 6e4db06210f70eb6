"""A container's ``hooks.log`` is capped: moved to ``hooks.log.1`` past ``HOOK_LOG_MAX``.

Shared by the LXC hook and the Proxmox hookscript, both of which run at every
start and stop: one ``stat`` a run, nothing imported.
"""

from __future__ import annotations

import os

#: Size at which ``hooks.log`` is moved to ``hooks.log.1`` (the one before is dropped):
#: a container restarting in a loop must not fill the state root.
HOOK_LOG_MAX = 1 << 20


def rotate_if_big(path: str, max_bytes: int = HOOK_LOG_MAX) -> None:
    try:
        if os.stat(path).st_size > max_bytes:
            os.replace(path, f"{path}.1")
    except OSError:
        pass
