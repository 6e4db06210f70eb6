"""Extract the PVE API endpoints the Proxmox simulator serves from the full schema.

Usage: python tests/data/pve/gen_api_schema.py [/work/shared/reference/pve-api-schema.json]

Writes ``api-schema.json`` next to this script: for each (path, method) in
``WANTED`` the parameter schema (names, types, enums, patterns, formats,
property-string sub-schemas), the return type, ``allowtoken`` and
``protected``, so the simulator in tests/pvesim validates requests exactly as
the PVE 9 API would without the 1.2 MB whole-API file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/reference/pve-api-schema.json")

# Every endpoint the pve-api backend, pvesh and the simulator's tests use.
WANTED: list[tuple[str, str]] = [
    ("/version", "GET"),
    ("/access/ticket", "POST"),
    ("/cluster/resources", "GET"),
    ("/cluster/nextid", "GET"),
    ("/cluster/status", "GET"),
    ("/nodes", "GET"),
    ("/nodes/{node}/status", "GET"),
    ("/nodes/{node}/lxc", "GET"),
    ("/nodes/{node}/lxc", "POST"),
    ("/nodes/{node}/lxc/{vmid}", "GET"),
    ("/nodes/{node}/lxc/{vmid}", "DELETE"),
    ("/nodes/{node}/lxc/{vmid}/config", "GET"),
    ("/nodes/{node}/lxc/{vmid}/config", "PUT"),
    ("/nodes/{node}/lxc/{vmid}/pending", "GET"),
    ("/nodes/{node}/lxc/{vmid}/status", "GET"),
    ("/nodes/{node}/lxc/{vmid}/status/current", "GET"),
    ("/nodes/{node}/lxc/{vmid}/status/start", "POST"),
    ("/nodes/{node}/lxc/{vmid}/status/stop", "POST"),
    ("/nodes/{node}/lxc/{vmid}/status/shutdown", "POST"),
    ("/nodes/{node}/lxc/{vmid}/status/reboot", "POST"),
    ("/nodes/{node}/lxc/{vmid}/interfaces", "GET"),
    ("/nodes/{node}/lxc/{vmid}/move_volume", "POST"),
    ("/nodes/{node}/tasks", "GET"),
    ("/nodes/{node}/tasks/{upid}/status", "GET"),
    ("/nodes/{node}/tasks/{upid}/log", "GET"),
    ("/nodes/{node}/storage", "GET"),
    ("/nodes/{node}/storage/{storage}/content", "GET"),
    ("/nodes/{node}/storage/{storage}/content/{volume}", "GET"),
    ("/nodes/{node}/storage/{storage}/content/{volume}", "DELETE"),
    ("/nodes/{node}/storage/{storage}/upload", "POST"),
    ("/nodes/{node}/storage/{storage}/oci-registry-pull", "POST"),
]
KEEP = ("parameters", "returns", "allowtoken", "protected", "permissions", "description")


def find(nodes: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    for node in nodes:
        if node.get("path") == path:
            return node
        found = find(node.get("children") or [], path)
        if found is not None:
            return found
    return None


def extract(api: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, method in WANTED:
        node = find(api, path)
        if node is None or method not in node.get("info", {}):
            # An endpoint missing from this PVE release is left out, and the
            # simulator answers it with PVE's 501 like a real node would.
            print(f"note: {method} {path} is not in the schema", file=sys.stderr)
            continue
        info = node["info"][method]
        out.setdefault(path, {})[method] = {k: info[k] for k in KEEP if k in info}
    return out


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    api = json.loads(source.read_text())
    data = extract(api)
    target = HERE / "api-schema.json"
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in data.values())
    print(f"wrote {target} ({n} endpoints)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
