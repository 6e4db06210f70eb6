"""The fake ``pct`` and ``pvesh``: PVE's CLI handlers over the same state, run as root@pam.

Options are parsed as PVE::JSONSchema::get_options does (``--key value``,
``-key value``, ``--key=value``; a boolean alone means 1) and checked against
the same schema as the HTTPS API; errors print PVE's text (``400 Parameter
verification failed.`` then ``key: message`` lines) on stderr and exit 255 like
a Perl die. Worker tasks run in the foreground with their log on stdout.
``PVESIM_DIR`` names the state directory.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from tests.pvesim import routes, schema
from tests.pvesim.state import PveError, Sim

ROOT = "root@pam"


class UsageError(Exception):
    pass


def sim_from_env() -> Sim:
    d = os.environ.get("PVESIM_DIR")
    if not d:
        raise UsageError("PVESIM_DIR is not set (the simulator's state directory)")
    sim = Sim(Path(d))
    if not (sim.etc_pve / "storage.cfg").exists():
        raise UsageError(f"{d} is not a simulator state directory (no etc-pve/storage.cfg)")
    return sim


def get_options(
    props: dict[str, Any], args: list[str], extra: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, Any], list[str]]:
    """(options, positional args); unknown options are an error as with Getopt::Long."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i + 1 :]
            break
        if a.startswith("-") and len(a) > 1 and not a[1:].lstrip("-").isdigit():
            name = a.lstrip("-")
            value: str | None = None
            if "=" in name:
                name, value = name.split("=", 1)
            prop = schema._prop_for(props, name) if name not in extra else {"type": "string"}
            if prop is None:
                raise UsageError(f"Unknown option: {name}\n400 unable to parse option")
            if value is None:
                if prop.get("type") == "boolean":
                    nxt = args[i + 1] if i + 1 < len(args) else None
                    if nxt is not None and schema.parse_boolean(nxt) is not None:
                        value = nxt
                        i += 1
                    else:
                        value = "1"
                else:
                    if i + 1 >= len(args):
                        raise UsageError(
                            f"Option {name} requires an argument\n400 unable to parse option"
                        )
                    value = args[i + 1]
                    i += 1
            if prop.get("type") == "boolean":
                b = schema.parse_boolean(value)
                if b is None:
                    raise UsageError("400 unable to parse boolean option")
                value = str(b)
            opts[name] = value
        else:
            rest.append(a)
        i += 1
    return opts, rest


def call(sim: Sim, method: str, path: str, params: dict[str, Any]) -> Any:
    """Validate like the API and run the handler in the foreground as root@pam."""
    matched = schema.match(path)
    info = schema.method_info(matched[0], method) if matched else None
    if matched is None or info is None:
        raise PveError(f"no '{method.lower()}' handler for '{path}'", 501)
    params = {**params, **matched[1]}
    typed, errors = schema.validate(info["parameters"], params)
    if errors:
        raise PveError("Parameter verification failed.", 400, errors)
    if typed.get("node") not in (None, sim.node):
        raise PveError(f"hostname lookup '{typed['node']}' failed")
    handler = routes.ROUTES.get((matched[0], method))
    if handler is None:
        raise PveError(f"no '{method.lower()}' handler for '{path}'", 501)
    return handler(routes.Ctx(sim, ROOT, False, foreground=True), typed)


def report(e: PveError) -> int:
    if e.errors:
        msg = f"{e.code} {e}\n" + "".join(
            f"{k}: {v.rstrip()}\n" for k, v in sorted(e.errors.items())
        )
    else:
        msg = str(e).rstrip("\n") + "\n"
    sys.stderr.write(msg)
    return 255


def props_of(template: str, method: str) -> dict[str, Any]:
    info = schema.method_info(template, method)
    assert info is not None
    p: dict[str, Any] = info["parameters"]["properties"]
    return p


def render_text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, str | int | float):
        return f"{data}\n"
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main_entry(fn: Any) -> None:
    try:
        code = fn(sys.argv[1:])
    except UsageError as e:
        sys.stderr.write(f"{e}\n")
        code = 255
    except PveError as e:
        code = report(e)
    sys.stdout.flush()
    sys.exit(code)
