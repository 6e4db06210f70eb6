"""pvesh: ``pvesh get|create|set|delete PATH [--param value ...] [--output-format json]``.

The verbs are GET, POST, PUT and DELETE of the API path, run in-process as
root@pam against the simulator's state (worker tasks in the foreground, their
UPID printed as the result, as pvesh does on a node).
"""

from __future__ import annotations

import json
from typing import Any

from tests.pvesim import cli, schema

METHODS = {"get": "GET", "ls": "GET", "create": "POST", "set": "PUT", "delete": "DELETE"}
FORMATS = ("text", "json", "json-pretty", "yaml")


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in METHODS:
        raise cli.UsageError(
            "USAGE: pvesh <get|create|set|delete> <api_path> [OPTIONS] [FORMAT_OPTIONS]"
        )
    method, path = METHODS[argv[0]], "/" + argv[1].strip("/")
    sim = cli.sim_from_env()
    matched = schema.match(path)
    info = schema.method_info(matched[0], method) if matched else None
    if matched is None or info is None:
        raise cli.UsageError(f"no '{argv[0]}' handler for '{path}'")
    extra = {"output-format", "noproxy", "quiet", "human-readable", "noborder", "noheader"}
    opts, rest = cli.get_options(info["parameters"]["properties"], argv[2:], extra)
    if rest:
        raise cli.UsageError("400 too many arguments")
    fmt = opts.pop("output-format", "text")
    if fmt not in FORMATS:
        raise cli.UsageError(
            "400 Parameter verification failed.\noutput-format: value "
            f"'{fmt}' does not have a value in the enumeration '{', '.join(FORMATS)}'"
        )
    params: dict[str, Any] = {k: v for k, v in opts.items() if k not in extra}
    data = cli.call(sim, method, path, params)
    if fmt == "json":
        print(json.dumps(data, sort_keys=True))
    elif fmt in ("json-pretty", "yaml"):
        print(json.dumps(data, indent=4, sort_keys=True))
    else:
        print(cli.render_text(data), end="")
    return 0


if __name__ == "__main__":
    cli.main_entry(main)
