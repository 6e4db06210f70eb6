"""``-p`` values for network tests, through the one parser (spec.options.parse_port)."""

from __future__ import annotations

from lxcri_core.spec.model import PortMapping
from lxcri_core.spec.options import parse_port


def one_port(spec: str) -> PortMapping:
    """The single mapping ``-p spec`` gives (the tests never use ranges here)."""
    (mapping,) = parse_port(spec)
    return mapping
