"""The one rule for what may name a container's state: its id and its name.

A container's name and id become an LXC container name and a directory
(``$LXCRI_ROOT/containers/NAME``), storage directories and ZFS datasets
(``<pool>/lxcri/containers/ID``), nftables chains (``c-ID-post``) and IPAM
lease keys. Every one of those is checked here, with one rule:

    1 to 64 ASCII letters, digits, ``_``, ``.``, ``-``, starting with a letter or digit.

Why 64: lxcri's own ids and containerd's are 64 hex digits, Proxmox VMIDs are
numbers (``100``), names were 63 long at most (a 64th character is harmless:
the default hostname keeps 63). Every consumer has room for it: an nft chain
name may be 255 bytes (``c-`` + 64 + ``-post`` is 71), a file name 255, a ZFS
dataset name 255 in all (``lxcri/containers/`` + 64 leaves 173 for the pool).
The first character keeps out ``.``, ``..``, hidden files and option-looking
``-x``; no ``/``, whitespace, ``:`` or ``@`` (ZFS snapshot and nft syntax).
"""

from __future__ import annotations

import re

from lxcri_core.errors import LxcriError

MAX_ID = 64
#: ``\Z`` and ASCII: ``$`` would let a final newline through, ``\w`` non-ASCII letters.
ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_ID - 1}}}\Z", re.ASCII)


def valid_id(value: str) -> bool:
    """Whether ``value`` may name a container's state (see the module doc)."""
    return ID_RE.match(value) is not None


def check_id(value: str, what: str, error: type[LxcriError] = LxcriError) -> str:
    """``value`` if ``valid_id``, else ``error`` naming ``what`` (``container name`` ...)."""
    if not valid_id(value):
        raise error(
            f"invalid {what} {value!r}: use 1-{MAX_ID} letters, digits, '_', '.' and '-', "
            "starting with a letter or digit (a Proxmox VMID or a 64-hex id fits)"
        )
    return value
