"""The one byte-size parser: flags (``--memory 512m``), config (``2G``), zfs output.

Binary units always (``k`` = 1024), as docker, zfs and Proxmox read them; the
unit letter is case-insensitive and may be followed by ``b`` or ``ib``
(``1.5GiB``, ``512mb``). A bare number is bytes; a fraction is rounded down to
whole bytes. Nothing else is accepted: no sign, no exponent, no ``inf``/``nan``.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtpez]?)(i?b)?", re.I | re.ASCII)
_UNITS = "_kmgtpez"


def parse_size(text: str) -> int:
    """``"512m"`` -> 536870912; ValueError naming the accepted forms otherwise."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a size such as 512m, 2G or 1.5GiB")
    unit = m.group(2).lower()
    power = _UNITS.index(unit) if unit else 0
    return int(float(m.group(1)) * 1024**power)
