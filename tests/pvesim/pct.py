"""pct: create, start, stop, shutdown, reboot, destroy, set, config, list, status, exec, enter.

Each verb maps to the API method pct's own handler calls (PVE::CLI::pct), so
its options are that method's parameters; ``exec``/``enter`` use lxc-attach on
the simulator's lxcpath as pct does on /var/lib/lxc.
"""

from __future__ import annotations

import os
from typing import Any

from tests.pvesim import cli
from tests.pvesim.state import PveError

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


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 255
    verb, args = argv[0], argv[1:]
    sim = cli.sim_from_env()
    if verb in ("exec", "enter"):
        if not args or not args[0].isdigit():
            raise cli.UsageError(f"400 not enough arguments\npct {verb} <vmid>")
        vmid = int(args[0])
        if not sim.exists(vmid):
            raise PveError(f"Configuration file 'nodes/{sim.node}/lxc/{vmid}.conf' does not exist")
        cmd = args[1:]
        if cmd and cmd[0] == "--":
            cmd = cmd[1:]
        # pct's own attach: a clean environment, TERM kept.
        argv2 = [
            "lxc-attach",
            "-P",
            str(sim.lxcpath),
            "-n",
            str(vmid),
            "--clear-env",
            "--keep-var",
            "TERM",
        ]
        if verb == "exec":
            if not cmd:
                raise cli.UsageError("missing command")
            argv2 += ["--", *cmd]
        os.execvp(argv2[0], argv2)
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
    elif verb == "status":
        print(f"status: {data['status']}")
        if "verbose" in opts:
            for k, v in sorted(data.items()):
                if k != "status":
                    print(f"{k}: {v}")
    elif verb == "list":
        print(f"{'VMID':<10} {'Status':<10} {'Lock':<12} Name")
        for d in sorted(data, key=lambda d: int(d["vmid"])):
            print(f"{d['vmid']:<10} {d['status']:<10} {d.get('lock', ''):<12} {d['name']}")
    return 0


if __name__ == "__main__":
    cli.main_entry(main)
