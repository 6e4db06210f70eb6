"""Proxmox API parameters checked as the simulator checks them (tests/pvesim/schema.py).

One validator of the PVE 9 schema serves the spec tests and the simulator, so
what ``render_pve_config`` writes is held to exactly what a (simulated) node
accepts: names (``net[n]`` families), types, ranges, enums, patterns, named
formats, property-string keys, and the checks pve-container makes in code.
"""

from __future__ import annotations

from typing import Any

from tests.pvesim import schema

#: The two calls a container's settings go through.
KINDS = {
    "create": ("/nodes/{node}/lxc", "POST"),
    "update": ("/nodes/{node}/lxc/{vmid}/config", "PUT"),
}


def load_schema(kind: str = "create") -> dict[str, Any]:
    info = schema.method_info(*KINDS[kind])
    assert info is not None
    props: dict[str, Any] = info["parameters"]["properties"]
    return props


def validate_params(params: dict[str, Any], kind: str = "create") -> list[str]:
    """Every error of ``params`` (``key: PVE's message``) against the create (or update)
    call; the call's own required parameters (node, vmid, ostemplate) are not asked for."""
    info = schema.method_info(*KINDS[kind])
    assert info is not None
    _, errors = schema.validate(info["parameters"], params)
    return [f"{k}: {m}" for k, m in errors.items() if k in params or m != schema.MISSING]
