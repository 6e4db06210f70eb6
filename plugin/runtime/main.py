"""``lxcri-runtime``: runc's command line, for containerd's runc v2 shim.

Every operation is a process start, so this module imports only ``os`` and
``sys`` and parses runc's small grammar by hand (argparse alone costs more
than ``state`` itself); a command imports what it needs when it runs.
``state`` imports only ``lxcri_core.runtime.state``.

Errors go to stderr as runc writes them (``time="..." level=error msg="..."``)
and, with ``--log FILE``, to that file as well, as JSON lines with
``--log-format json`` (containerd reports the last ``"level":"error"`` line).
"""

from __future__ import annotations

import os
import sys

VERSION = "0.1.0"
SPEC_VERSION = "1.2.0"

USAGE = """usage: lxcri-runtime [--root DIR] [--log FILE] [--log-format text|json]
                     [--systemd-cgroup] [--pve-register] COMMAND [OPTIONS] ID
commands:
  create --bundle DIR [--pid-file FILE] [--console-socket SOCK] ID
  start ID             state ID                 kill [--all] ID [SIGNAL]
  delete [--force] ID  ps [--format table|json] ID
  exec --process FILE [--detach] [--pid-file FILE] [--console-socket SOCK] [--tty] ID
  exec [--detach] ID COMMAND [ARG...]
  pause ID             resume ID                update --resources FILE ID
  list                 features                 --version
"""

#: Global flags taking a value, and those taking none (accepted for runc's contract).
_GLOBAL_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}
_GLOBAL_FLAG = {"--systemd-cgroup", "--debug", "--no-subreaper", "--pve-register"}

#: Per command: flags taking a value (with their short forms) and boolean flags.
_VALUE_OPTS: dict[str, dict[str, str]] = {
    "create": {
        "--bundle": "bundle",
        "-b": "bundle",
        "--pid-file": "pid_file",
        "--console-socket": "console_socket",
        "--preserve-fds": "preserve_fds",
    },
    "exec": {
        "--process": "process",
        "-p": "process",
        "--pid-file": "pid_file",
        "--console-socket": "console_socket",
        "--cwd": "cwd",
        "--env": "env",
        "-e": "env",
        "--user": "user",
        "-u": "user",
        "--preserve-fds": "preserve_fds",
    },
    "ps": {"--format": "format", "-f": "format"},
    "update": {"--resources": "resources", "-r": "resources"},
    "list": {"--format": "format", "-f": "format"},
}
_BOOL_OPTS: dict[str, dict[str, str]] = {
    "create": {"--no-pivot": "no_pivot", "--no-new-keyring": "no_new_keyring"},
    "exec": {"--detach": "detach", "-d": "detach", "--tty": "tty", "-t": "tty"},
    "kill": {"--all": "all", "-a": "all"},
    "delete": {"--force": "force", "-f": "force"},
    "list": {"--quiet": "quiet", "-q": "quiet"},
}
_NO_ID = {"features", "list"}


class Usage(Exception):
    pass


def parse(argv: list[str]) -> tuple[dict[str, str], str, dict[str, object], list[str]]:
    """(global options, command, command options, positional arguments)."""
    glob: dict[str, str] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        name, eq, value = argv[i].partition("=")
        if name in _GLOBAL_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise Usage(f"flag needs an argument: {name}")
                value = argv[i]
            glob[name[2:]] = value
        elif name in _GLOBAL_FLAG:
            glob[name[2:]] = "true"
        elif name in ("--version", "-v", "--help", "-h"):
            return glob, name, {}, []
        else:
            raise Usage(f"flag provided but not defined: {argv[i]}")
        i += 1
    if i >= len(argv):
        raise Usage("no command given")
    cmd = argv[i]
    i += 1
    values, bools = _VALUE_OPTS.get(cmd, {}), _BOOL_OPTS.get(cmd, {})
    opts: dict[str, object] = {}
    args: list[str] = []
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args += argv[i:]
            break
        if args and cmd == "exec":  # after the id: the command and its own flags
            args.append(a)
            continue
        if a.startswith("-") and len(a) > 1 and not (cmd == "kill" and args):
            name, eq, value = a.partition("=")
            if name in values:
                if not eq:
                    if i >= len(argv):
                        raise Usage(f"flag needs an argument: {name}")
                    value = argv[i]
                    i += 1
                key = values[name]
                if key == "env":
                    opts.setdefault("env", [])
                    opts["env"].append(value)  # type: ignore[attr-defined]
                else:
                    opts[key] = value
            elif name in bools:
                opts[bools[name]] = True
            elif name in ("--help", "-h"):
                raise Usage("")
            else:
                raise Usage(f"flag provided but not defined: {a}")
        else:
            args.append(a)
    return glob, cmd, opts, args


def _log_error(glob: dict[str, str], msg: str) -> None:
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    quoted = msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    sys.stderr.write(f'time="{now}" level=error msg="{quoted}"\n')
    path = glob.get("log")
    if not path:
        return
    if glob.get("log-format") == "json":
        import json

        line = json.dumps({"level": "error", "msg": msg, "time": now}) + "\n"
    else:
        line = f'time="{now}" level=error msg="{quoted}"\n'
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def _read_json(path: str, what: str) -> dict[str, object]:
    import json

    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path) as f:
                data = f.read()
        doc = json.loads(data)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what} {path}: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{what} {path}: not a JSON object")
    return doc


def run(glob: dict[str, str], cmd: str, opts: dict[str, object], args: list[str]) -> int:
    root = glob.get("root") or "/run/lxcri-runtime"
    if glob.get("log-format", "text") not in ("text", "json"):
        raise Usage(f"--log-format {glob['log-format']!r}: text or json")
    if str(opts.get("preserve_fds", "0")) != "0":
        # LXC closes every inherited descriptor but stdio: passing them is not possible
        from lxcri_core.errors import OciRuntimeError

        raise OciRuntimeError("--preserve-fds: LXC passes no file descriptors but stdio")
    if cmd not in _NO_ID:
        if not args:
            raise Usage(f'"{cmd}" requires a container id')
        cid = args[0]
        if cmd not in ("kill", "exec") and len(args) > 1:
            raise Usage(f'"{cmd}" takes one container id, got {len(args)} arguments')
    if cmd == "state":
        from lxcri_core.runtime import state

        sys.stdout.write(state.load(root, cid).to_json() + "\n")
        return 0
    from lxcri_core.runtime import ops

    if cmd == "create":
        bundle = str(opts.get("bundle") or ".")
        ops.create(
            root,
            cid,
            bundle,
            pid_file=opts.get("pid_file"),  # type: ignore[arg-type]
            console_socket=opts.get("console_socket"),  # type: ignore[arg-type]
        )
        from lxcri_pve.runtime import pve_register

        if glob.get("pve-register") or pve_register.wanted(bundle):
            try:
                pve_register.register(root, cid)
            except BaseException:
                ops.delete(root, cid, force=True)  # asked for and not done: no container
                raise
    elif cmd == "start":
        ops.start(root, cid)
    elif cmd == "kill":
        if len(args) > 2:
            raise Usage('"kill" takes an id and at most one signal')
        ops.kill(
            root,
            cid,
            ops.parse_signal(args[1] if len(args) > 1 else "SIGTERM"),
            bool(opts.get("all")),
        )
    elif cmd == "delete":
        from lxcri_pve.runtime import pve_register

        vmid = pve_register.registered(root, cid)
        ops.delete(root, cid, bool(opts.get("force")))
        if vmid is not None:
            pve_register.unregister(root, cid, vmid)
    elif cmd == "pause":
        ops.pause(root, cid)
    elif cmd == "resume":
        ops.resume(root, cid)
    elif cmd == "ps":
        pids = ops.ps(root, cid)
        if opts.get("format", "table") == "json":
            sys.stdout.write("[" + ",".join(str(p) for p in pids) + "]\n")
        else:
            import subprocess

            if pids:
                return subprocess.call(["ps", "-f", "-p", ",".join(map(str, pids))])
            sys.stdout.write("UID PID PPID C STIME TTY TIME CMD\n")
    elif cmd == "update":
        if not opts.get("resources"):
            raise Usage('"update" needs --resources FILE (or - for stdin)')
        ops.update(root, cid, _read_json(str(opts["resources"]), "--resources"))
    elif cmd == "exec":
        if opts.get("process"):
            process = _read_json(str(opts["process"]), "--process")
        elif len(args) > 1:
            process = {
                "args": args[1:],
                "env": opts.get("env")
                or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "cwd": opts.get("cwd", "/"),
                "terminal": bool(opts.get("tty")),
            }
            if opts.get("user"):
                uid, _, gid = str(opts["user"]).partition(":")
                process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        else:
            raise Usage('"exec" needs --process FILE or a command after the id')
        rc = ops.exec_(
            root,
            cid,
            process,
            detach=bool(opts.get("detach")),
            pid_file=opts.get("pid_file"),  # type: ignore[arg-type]
            console_socket=opts.get("console_socket"),  # type: ignore[arg-type]
        )
        return 0 if opts.get("detach") else rc
    elif cmd == "features":
        import json

        sys.stdout.write(json.dumps(ops.features(), indent=4) + "\n")
    elif cmd == "list":
        _list(root, opts)
    else:
        raise Usage(f"No help topic for '{cmd}'")
    return 0


def _list(root: str, opts: dict[str, object]) -> None:
    import json

    from lxcri_core.runtime import state

    docs = [json.loads(state.load(root, cid).to_json()) for cid in state.list_ids(root)]
    if opts.get("quiet"):
        sys.stdout.write("".join(d["id"] + "\n" for d in docs))
    elif opts.get("format") == "json":
        sys.stdout.write(json.dumps(docs) + "\n")
    else:
        sys.stdout.write("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
        for d in docs:
            sys.stdout.write(
                f"{d['id']}\t{d['pid']}\t{d['status']}\t{d['bundle']}\t{d['created']}\t\n"
            )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        glob, cmd, opts, args = parse(argv)
    except Usage as e:
        if str(e):
            sys.stderr.write(f"lxcri-runtime: {e}\n")
        sys.stderr.write(USAGE)
        return 2
    if cmd in ("--version", "-v"):
        sys.stdout.write(f"lxcri-runtime version {VERSION}\nspec: {SPEC_VERSION}\n")
        return 0
    if cmd in ("--help", "-h"):
        sys.stdout.write(USAGE)
        return 0
    try:
        return run(glob, cmd, opts, args)
    except Usage as e:
        sys.stderr.write(f"lxcri-runtime: {e}\n{USAGE}")
        return 2
    except Exception as e:  # every failure: one line, containerd reads the log's last
        from lxcri_core.errors import LxcriError

        if not isinstance(e, LxcriError | OSError | ValueError):
            raise
        msg = e.msg if isinstance(e, LxcriError) else str(e)
        _log_error(glob, msg)
        return 1


if __name__ == "__main__":
    sys.exit(main())
