"""What the container sees, as runtime-tools' validation checks it: hostname, mounts
(bind with options, tmpfs), masked and read-only paths, rlimits, capabilities, sysctl,
cgroup limits, user and groups; and the OCI hooks in order with the state on stdin."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.runtime.conftest import Rt
from tests.support.ocibundle import base_config

PROBE = """
echo "hostname=$(hostname)"
echo "nofile=$(ulimit -n)"
grep -E '^Cap(Bnd|Eff)' /proc/self/status | tr '\\t' ' '
echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
echo "data=$(cat /data/file)"
touch /data/new 2>/dev/null && echo data-rw || echo data-ro
touch /scratch/x && echo "scratch=$(grep ' /scratch ' /proc/mounts | cut -d' ' -f3)"
echo "timer_list=$(wc -c < /proc/timer_list)"
echo "etc=$(ls /etc | wc -l)"
echo 1 > /proc/sysrq-trigger 2>/dev/null && echo sysrq-rw || echo sysrq-ro
echo "ids=$(id -u):$(id -g):$(id -G)"
echo "nnp=$(grep NoNewPrivs /proc/self/status | tr -d '\\t ')"
"""


def _caps_mask(names: list[str]) -> int:
    from lxcri_core.security.caps import CAP_BITS

    return sum(1 << CAP_BITS.index(n.removeprefix("CAP_")) for n in names)


def test_what_the_container_sees(rt: Rt, tmp_path: Path) -> None:
    data = rt.base / "data"
    data.mkdir()
    (data / "file").write_text("from-host")
    cfg = base_config(["sh", "-c", PROBE])
    cfg["hostname"] = "conformance"
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["maskedPaths"] += ["/etc"]
    cfg["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [7, 9]}
    cfg["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
    ]
    b = rt.bundle("b", cfg)
    out = rt.base / "out"
    pid = rt.create("c1", b, out)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0
    seen = dict(ln.split("=", 1) for ln in out.read_text().splitlines() if "=" in ln)
    lines = out.read_text().splitlines()
    assert seen["hostname"] == "conformance"
    assert seen["nofile"] == "321"
    caps = {ln.split(":")[0]: int(ln.split(":")[1], 16) for ln in lines if ln.startswith("Cap")}
    want = _caps_mask(cfg["process"]["capabilities"]["bounding"])
    assert caps == {"CapBnd": want, "CapEff": want}
    assert seen["ip_forward"] == "1"  # in the container's own network namespace
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text()  # the host's is untouched by it
    assert seen["data"] == "from-host"
    assert "data-ro" in lines and not (data / "new").exists()
    assert seen["scratch"] == "tmpfs"
    assert Path("/proc/timer_list").read_text()  # what the container would see unmasked
    assert seen["timer_list"] == "0"  # masked: /dev/null over it
    assert seen["etc"] == "0"  # masked: an empty tmpfs over it (passwd and group in the image)
    assert "sysrq-ro" in lines
    assert seen["ids"] == "0:0:0 7 9"
    assert seen["nnp"] == "NoNewPrivs:1"


def test_non_root_user_and_readonly_root(rt: Rt) -> None:
    cfg = base_config(["sh", "-c", "id -u; id -g; touch /x 2>/dev/null || echo ro-root"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    caps = cfg["process"]["capabilities"]
    caps["effective"] = caps["permitted"] = []
    cfg["root"]["readonly"] = True
    b = rt.bundle("b", cfg)
    out = rt.base / "out"
    pid = rt.create("c1", b, out)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0
    assert out.read_text().splitlines() == ["1000", "1000", "ro-root"]


def test_hooks_run_in_order_with_the_state_on_stdin(rt: Rt) -> None:
    log = rt.base / "hooks"
    log.mkdir()
    hook = f'read -r s; echo "$1" >> {log}/order; printf \'%s\' "$s" > {log}/$1.json; '
    hook += 'test "$HOOKVAR" = yes'

    def h(kind: str) -> dict[str, object]:
        return {"path": "/bin/sh", "args": ["sh", "-c", hook, "sh", kind], "env": ["HOOKVAR=yes"]}

    cfg = base_config(["true"])
    cfg["hooks"] = {
        k: [h(k)] for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    b = rt.bundle("b", cfg)
    pid = rt.create("c1", b)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0
    rt.run("delete", "c1")
    order = (log / "order").read_text().split()
    assert order == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    for kind in order:
        st = json.loads((log / f"{kind}.json").read_text())
        assert st["id"] == "c1" and st["bundle"] == str(b), st
        assert st["ociVersion"].startswith("1.")
    assert json.loads((log / "poststop.json").read_text())["status"] == "stopped"
    assert json.loads((log / "prestart.json").read_text())["pid"] > 0


def test_a_failing_prestart_hook_fails_the_start(rt: Rt) -> None:
    cfg = base_config(["sh", "-c", "echo ran > /ran"])
    cfg["hooks"] = {"prestart": [{"path": "/bin/false"}]}
    b = rt.bundle("b", cfg)
    pid = rt.create("c1", b)
    proc = rt.run("start", "c1", check=False)
    rt.wait_exit(pid)
    time.sleep(0.1)
    assert proc.returncode == 1
    assert not (b / "rootfs" / "ran").exists()


def test_user_namespace_from_the_mappings(rt: Rt) -> None:
    """linux.uidMappings/gidMappings with a user namespace: an unprivileged container."""
    cfg = base_config(["sh", "-c", "cat /proc/self/uid_map; id -u"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["resources"] = {}
    b = rt.bundle("b", cfg)
    out = rt.base / "out"
    pid = rt.create("c1", b, out)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0, (rt.root / "c1" / "lxc.log").read_text()
    lines = out.read_text().split("\n")
    assert lines[0].split() == ["0", "100000", "65536"]
    assert lines[1] == "0"


def test_joining_a_pod_sandbox_namespaces(rt: Rt) -> None:
    """Namespaces given by path (a pod's sandbox): the second container is in the first's
    network, ipc and uts namespaces, in a pid namespace of its own."""
    sandbox = rt.bundle("sandbox", base_config(["sleep", "30"]))
    spid = rt.create("sandbox", sandbox)
    rt.run("start", "sandbox")
    procs = eval(rt.run("ps", "--format", "json", "sandbox").stdout)
    member = procs[-1]  # the sleep
    cfg = base_config(["sh", "-c", "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done"])
    del cfg["hostname"]  # the sandbox's uts namespace holds the name
    cfg["linux"]["namespaces"] = [
        {"type": "pid"},
        {"type": "mount"},
        {"type": "network", "path": f"/proc/{member}/ns/net"},
        {"type": "ipc", "path": f"/proc/{member}/ns/ipc"},
        {"type": "uts", "path": f"/proc/{member}/ns/uts"},
    ]
    b = rt.bundle("b", cfg)
    out = rt.base / "out"
    pid = rt.create("c1", b, out)
    rt.run("start", "c1")
    assert rt.wait_exit(pid) == 0, (rt.root / "c1" / "lxc.log").read_text()
    seen = out.read_text().split()
    for n, got in zip(("net", "ipc", "uts"), seen, strict=False):
        assert got == os.readlink(f"/proc/{member}/ns/{n}")
    assert seen[3] != os.readlink(f"/proc/{member}/ns/pid")
    rt.run("kill", "sandbox", "KILL")
    rt.wait_exit(spid)
