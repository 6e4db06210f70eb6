"""`lxcri run` on plain LXC, end to end: the process, its environment, volumes,
ports, id mapping, seccomp and capabilities, with real containers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.containers.conftest import Lxcri
from tests.support.lxcenv import (
    BUSYBOX_REF,
    DEMO_REF,
    PROBE_REF,
    LxcEnv,
    children,
    free_port,
    http_get,
    link_exists,
    mounts_under,
    nft_chains,
    proc_status,
    sh,
    veth_of,
    wait_for,
)

pytestmark = pytest.mark.slow

CAP_CHOWN, CAP_NET_RAW = 0, 13


def probe_lines(out: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in out.splitlines() if line.startswith(key + "=")]


def test_argv_with_spaces_and_quotes_reaches_the_process_and_exit_status_propagates(
    lxcri: Lxcri,
) -> None:
    args = ["a b", "it's", '"q"', "$HOME", "", "  edge  ", "tab\there"]
    script = 'for a in "$0" "$@"; do printf "[%s]\\n" "$a"; done; exit 7'
    p = lxcri("run", "--rm", "--entrypoint", "/bin/sh", BUSYBOX_REF, "-c", script, *args)
    assert p.returncode == 7, p.stderr
    assert p.stdout.splitlines() == [f"[{a}]" for a in args]


def test_image_entrypoint_cmd_env_workdir_and_user(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--name", "probe1", PROBE_REF)
    assert p.returncode == 0, p.stderr
    assert probe_lines(p.stdout, "arg") == ["[/probe.sh]", "[one]", "[two]"]
    assert probe_lines(p.stdout, "cwd") == ["/www"]
    assert probe_lines(p.stdout, "uid") == ["33:33"]  # USER www from /etc/passwd
    env = probe_lines(p.stdout, "env")
    assert {"FOO=bar", "PATH=/bin", "HOSTNAME=probe1", "HOME=/www"} <= set(env)


def test_flags_override_env_workdir_user_and_args(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    env_file = lxenv.root / "vars.env"
    env_file.write_text("# a comment\nA=1\nB=two words\n\nFOO=from-file\n")
    p = lxcri(
        "run",
        "--rm",
        "-e",
        "FOO=baz",
        "-e",
        "SP= x y ",
        "--env-file",
        str(env_file),
        "-w",
        "/tmp",
        "-u",
        "0:0",
        PROBE_REF,
        "a",
        "b c",
    )
    assert p.returncode == 0, p.stderr
    assert probe_lines(p.stdout, "arg") == ["[/probe.sh]", "[a]", "[b c]"]
    assert probe_lines(p.stdout, "cwd") == ["/tmp"]
    assert probe_lines(p.stdout, "uid") == ["0:0"]
    env = probe_lines(p.stdout, "env")
    # -e wins over --env-file; edge spaces survive (the shim sets env exactly)
    assert {"FOO=baz", "SP= x y ", "A=1", "B=two words"} <= set(env)
    assert "FOO=from-file" not in env

    p = lxcri("run", "--rm", "-u", "33:33", BUSYBOX_REF, "id -u; id -g; pwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33", "33", "/"]


def test_missing_image_gives_one_clear_line_and_exit_1(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "localhost/lxt-missing:1")
    assert p.returncode == 1
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "localhost/lxt-missing:1" in lines[0]
    assert "not in the local store" in lines[0]


def test_named_volume_survives_removing_and_recreating_the_container(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    p = lxcri("run", "--rm", "-v", "lxtdata:/data", BUSYBOX_REF, "echo kept > /data/f")
    assert p.returncode == 0, p.stderr
    assert list(lxenv.lxcpath.glob("*/lxcri.json")) == []  # --rm removed it
    p = lxcri("run", "--rm", "-v", "lxtdata:/data", BUSYBOX_REF, "cat /data/f")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "kept\n"
    # written by the container's root: host uid 100000 (unprivileged by default)
    assert (lxenv.root / "volumes" / "lxtdata" / "f").stat().st_uid == 100000


def test_network_none_has_only_loopback(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--network", "none", BUSYBOX_REF, "ls /sys/class/net")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["lo"]


def test_published_port_reaches_httpd_and_stop_leaves_nothing(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_demo()
    port = free_port()
    p = lxcri("run", "-d", "--name", "web", "-p", f"{port}:80", DEMO_REF)
    assert p.returncode == 0, p.stderr
    cid = lxenv.remember("web")
    assert p.stdout.strip() == cid
    veth = veth_of("web", lxenv.lxcpath)
    assert veth and link_exists(veth)
    assert nft_chains(cid)
    assert "lxcri demo" in wait_for(lambda: _try_get(port), what="httpd through the port")

    p = lxcri("stop", "web")
    assert p.returncode == 0, p.stderr
    assert mounts_under(lxenv.root) == []
    assert nft_chains(cid) == []
    assert not link_exists(veth)
    assert lxcri("rm", "web").returncode == 0


def _try_get(port: int) -> str:
    try:
        return http_get(port, timeout=2)
    except OSError:
        return ""


def test_unprivileged_files_and_processes_are_owned_by_100000_and_up(lxenv: LxcEnv) -> None:
    pid = lxenv.start("unpriv", args=("touch /tmp/made; sleep 60",))
    rootfs = Path(_rootfs(lxenv, "unpriv"))
    made = rootfs / "tmp/made"
    wait_for(made.exists, what="the file the container makes")
    assert made.stat().st_uid == 100000
    assert (rootfs / "bin/busybox").stat().st_uid == 100000
    assert (rootfs / "etc/passwd").stat().st_gid == 100000
    assert proc_status(pid)["Uid"].split()[0] == "100000"
    www = lxenv.start("unpriv-www", args=("sleep 60",), user="33:33")
    child = wait_for(lambda: children(www), what="the process under init")
    assert proc_status(child[0])["Uid"].split()[0] == str(100000 + 33)


def _rootfs(lxenv: LxcEnv, name: str) -> str:
    from lxcri_core.containers.record import load_record

    return load_record(lxenv.root, name).rootfs


def test_seccomp_denied_syscall_fails(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    profile = lxenv.root / "deny-mkdir.seccomp"
    # ENOSYS (38) cannot come from permissions or capabilities: only from the filter
    profile.write_text("2\ndenylist\nmkdir errno 38\nmkdirat errno 38\n")
    script = "mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status"
    p = lxcri("run", "--rm", "--security-opt", f"seccomp={profile}", BUSYBOX_REF, script)
    assert p.returncode == 0, p.stderr
    assert "rc=1" in p.stdout
    assert "Function not implemented" in p.stderr + p.stdout
    # the default profile is a filter too, and leaves mkdir alone
    p = lxcri("run", "--rm", BUSYBOX_REF, script)
    assert p.returncode == 0, p.stderr
    assert "rc=0" in p.stdout
    assert "Seccomp:\t2" in p.stdout


def test_dropped_capability_is_absent_from_the_init_status(lxenv: LxcEnv) -> None:
    pid = lxenv.start("capdrop", args=("sleep 60",), cap_drop=("NET_RAW",))
    bnd = int(proc_status(pid)["CapBnd"], 16)
    assert not bnd & (1 << CAP_NET_RAW)
    assert bnd & (1 << CAP_CHOWN)
    pid = lxenv.start("capkeep", args=("sleep 60",))
    assert int(proc_status(pid)["CapBnd"], 16) & (1 << CAP_NET_RAW)


def test_memory_limit_is_set_in_the_cgroup(lxenv: LxcEnv) -> None:
    lxenv.start("mem", args=("sleep 60",), memory="64m")
    p = sh("lxc-cgroup", "-n", "mem", "-P", str(lxenv.lxcpath), "memory.limit_in_bytes")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(64 * 1024 * 1024)


def test_exec_exit_status_env_and_user(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("ex", args=("sleep 60",), env=("FOO=bar",))
    assert lxcri("exec", "ex", "sh", "-c", "exit 5").returncode == 5
    p = lxcri("exec", "-e", "EXTRA=1 2", "ex", "sh", "-c", 'echo "$FOO|$EXTRA"; id -u')
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["bar|1 2", "0"]
    p = lxcri("exec", "-u", "33:33", "ex", "id", "-u")
    assert p.stdout.strip() == "33"
    p = lxcri("exec", "ex", "/no/such/thing")
    assert p.returncode != 0


def test_logs_show_stdout_and_stderr(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.start("talker", args=("echo to-out; echo to-err >&2; sleep 60",))

    def logged() -> str:
        p = lxcri("logs", "talker")
        return p.stdout if "to-out" in p.stdout and "to-err" in p.stdout else ""

    wait_for(logged, what="both lines in lxcri logs")
    p = lxcri("logs", "--tail", "1", "talker")
    assert p.returncode == 0 and len(p.stdout.splitlines()) == 1


def test_list_and_status_json(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    import json

    port = free_port()
    lxenv.start("js", args=("sleep 60",), publish=(f"127.0.0.1:{port}:80",))
    p = lxcri("list", "--output", "json")
    assert p.returncode == 0, p.stderr
    items = json.loads(p.stdout)
    assert [i["name"] for i in items] == ["js"]
    assert items[0]["status"] == "running"
    assert items[0]["image"] == BUSYBOX_REF
    assert items[0]["ports"] == [
        {"host_ip": "127.0.0.1", "host_port": port, "container_port": 80, "protocol": "tcp"}
    ]
    p = lxcri("status", "js", "--output", "json")
    doc = json.loads(p.stdout)
    assert doc["status"] == "running" and doc["pid"] > 1 and doc["ipv4"]
    assert os.path.exists(f"/proc/{doc['pid']}")
    assert lxcri("stop", "js").returncode == 0
    doc = json.loads(lxcri("status", "js", "--output", "json").stdout)
    assert doc["status"] == "exited" and doc["pid"] is None
