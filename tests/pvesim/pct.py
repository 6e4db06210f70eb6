"""pct: create, start, stop, shutdown, reboot, destroy, set, config, list, status, exec, enter.

Each verb maps to the API method pct's own handler calls (PVE::CLI::pct), so
its options are that method's parameters; ``exec``/``enter`` use lxc-attach on
the simulator's lxcpath as pct does on /var/lib/lxc.
"""

from __future__ import annotations

import os
from typing import Any

from tests.pvesim import cli, lxcstart, schema
from tests.pvesim.state import PveError, Sim

LXC = "/nodes/{node}/lxc"
CT = "/nodes/{node}/lxc/{vmid}"

# verb: (method, template, positional parameter names)
VERBS: dict[str, tuple[str, str, list[str]]] = {
    "create": ("POST", LXC, ["vmid", "ostemplate"]),
    "start": ("POST", CT + "/status/start", ["vmid"]),
    "stop": ("POST", CT + "/status/stop", ["vmid"]),
    "shutdown": ("POST", CT + "/status/shutdown", ["vmid"]),
    "reboot": ("POST", CT + "/status/reboot", ["vmid"]),
    "destroy": ("DELETE", CT, ["vmid"]),
    "set": ("PUT", CT + "/config", ["vmid"]),
    "config": ("GET", CT + "/config", ["vmid"]),
    "status": ("GET", CT + "/status/current", ["vmid"]),
    "list": ("GET", LXC, []),
}
USAGE = (
    "USAGE: pct <COMMAND> [ARGS] [OPTIONS]\n"
    + "".join(
        f"       pct {v} {' '.join('<' + a + '>' for a in VERBS[v][2])} [OPTIONS]\n" for v in VERBS
    )
    + "       pct exec <vmid> [<extra-args>]\n       pct enter <vmid>\n"
)


def _config_text(data: dict[str, Any]) -> str:
    out = []
    descr = data.pop("description", None)
    if descr:
        out += [f"description: {line}" for line in str(descr).rstrip("\n").split("\n")]
    lxc = data.pop("lxc", [])
    data.pop("digest", None)
    data.pop("env", None)
    out += [f"{k}: {v}" for k, v in sorted(data.items())]
    out += [f"{k}: {v}" for k, v in lxc]
    return "".join(line + "\n" for line in out)


def attach(sim: Sim, verb: str, args: list[str]) -> int:
    """pct exec/enter: lxc-attach with a clean environment unless --keep-env 1 (PVE 9)."""
    keep_env = False
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest += args[i:]
            break
        if a.lstrip("-") == "keep-env" and a.startswith("-"):
            nxt = args[i + 1] if i + 1 < len(args) else ""
            if schema.parse_boolean(nxt) is not None:
                keep_env = schema.parse_boolean(nxt) == 1
                i += 1
            else:
                keep_env = True
        else:
            rest.append(a)
        i += 1
    if not rest or not rest[0].isdigit():
        raise cli.UsageError(f"400 not enough arguments\npct {verb} <vmid>")
    vmid = int(rest[0])
    sim.load(vmid)  # test if the CT exists on this node
    if lxcstart.state(sim, vmid)[0] != "running":
        raise PveError(f"container '{vmid}' not running!")
    cmd = rest[1:]
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if verb == "exec" and not cmd:
        raise PveError("missing command")
    argv = ["lxc-attach", "-P", str(sim.lxcpath), "-n", str(vmid)]
    argv.append("--keep-env" if keep_env else "--clear-env")
    if verb == "exec":
        argv += ["--", *cmd]
    # pct's clean_environment: these two would break TLS inside the CT.
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    os.execvpe(argv[0], argv, env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 255
    verb, args = argv[0], argv[1:]
    sim = cli.sim_from_env()
    if verb in ("exec", "enter"):
        return attach(sim, verb, args)
    if verb not in VERBS:
        raise cli.UsageError(f"unknown command 'pct {verb}'\n{USAGE}")
    method, template, positional = VERBS[verb]
    extra = {"verbose"} if verb == "status" else set()
    opts, rest = cli.get_options(cli.props_of(template, method), args, extra)
    if len(rest) < len(positional):
        raise cli.UsageError("400 not enough arguments\n" + USAGE)
    if len(rest) > len(positional):
        raise cli.UsageError("400 too many arguments\n" + USAGE)
    params: dict[str, Any] = dict(zip(positional, rest, strict=True))
    params.update({k: v for k, v in opts.items() if k not in extra})
    path = template.replace("{node}", sim.node)
    if "{vmid}" in template:
        path = path.replace("{vmid}", params.pop("vmid"))
    data = cli.call(sim, method, path, params)
    if verb == "config":
        print(_config_text(dict(data)), end="")
    elif verb == "status" and "verbose" in opts:
        for k, v in sorted(data.items()):
            if k != "cpu" and v is not None:
                print(f"{k}: {v}")
    elif verb == "status":
        print(f"status: {data['status']}")
    elif verb == "list" and data:
        # pct.pm's format; nothing at all (no header) when there is no CT.
        row = "{:<10} {:<10} {:<12} {:<20}"
        print(row.format("VMID", "Status", "Lock", "Name"))
        for d in sorted(data, key=lambda d: int(d["vmid"])):
            print(row.format(d["vmid"], d["status"], d.get("lock", ""), d["name"]))
    return 0


if __name__ == "__main__":
    cli.main_entry(main)
