"""Extract the Proxmox container-config parameters from the full PVE API schema.

Usage: python tests/data/pve/gen_schema.py [/work/shared/reference/pve-api-schema.json]

Writes ``lxc-config-schema.json`` next to this script: the parameter
properties of ``POST /nodes/{node}/lxc`` (create) and ``PUT
/nodes/{node}/lxc/{vmid}/config`` (update), so the test suite stands alone
without the 1.2 MB whole-API file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/shared/reference/pve-api-schema.json")
WANTED = {
    "create": ("/nodes/{node}/lxc", "POST"),
    "update": ("/nodes/{node}/lxc/{vmid}/config", "PUT"),
}


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
    for name, (path, method) in WANTED.items():
        node = find(api, path)
        if node is None:
            raise SystemExit(f"{path} not found in the schema")
        params = node["info"][method]["parameters"]
        out[name] = {
            "path": path,
            "method": method,
            "additionalProperties": params.get("additionalProperties", 1),
            "properties": params["properties"],
        }
    return out


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    api = json.loads(source.read_text())
    data = extract(api)
    target = HERE / "lxc-config-schema.json"
    target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({len(data['create']['properties'])} create parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
