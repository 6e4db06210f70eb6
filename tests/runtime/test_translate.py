"""config.json -> ContainerSpec + LXC keys, without containers: what is carried, and the
field named for everything LXC cannot express (never a silent drop)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.runtime.bundle import Bundle, translate
from tests.runtime.conftest import RUNTIME
from tests.support.ocibundle import base_config, make_rootfs


@pytest.fixture(scope="module")
def bdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bundle")
    make_rootfs(d / "rootfs")
    return d


def tr(bdir: Path, cfg: dict[str, Any]) -> Bundle:
    return translate(cfg, bdir)


def test_base_config_translates(bdir: Path) -> None:
    cfg = base_config(["/bin/sh", "-c", "echo a\nb"])
    cfg["process"]["env"] += ["MULTI=line1\nline2"]
    cfg["process"]["oomScoreAdj"] = 500
    cfg["linux"]["resources"] = {
        "memory": {"limit": 1 << 26, "reservation": 1 << 25},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"},
        "pids": {"limit": 64},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/1/ns/net"}
    b = tr(bdir, cfg)
    assert b.spec.args == ("/bin/sh", "-c", "echo a\nb")
    assert "MULTI=line1\nline2" in b.spec.env
    assert b.spec.hostname == "oci-test"
    assert b.spec.security.privileged is False
    assert [(m.kind, m.start, m.host, m.count) for m in b.spec.security.idmaps] == [
        ("u", 0, 200000, 65536),
        ("g", 0, 200000, 65536),
    ]
    assert "lxc.proc.oom_score_adj = 500" in b.lines
    assert "lxc.cgroup.memory.limit_in_bytes = 67108864" in b.lines
    assert "lxc.cgroup.memory.soft_limit_in_bytes = 33554432" in b.lines
    assert "lxc.cgroup.cpu.shares = 512" in b.lines
    assert "lxc.cgroup.cpu.cfs_quota_us = 50000" in b.lines
    assert "lxc.cgroup.cpuset.cpus = 0" in b.lines
    assert "lxc.cgroup.pids.max = 64" in b.lines
    assert "lxc.cgroup2.pids.max = 64" in b.lines
    assert "lxc.namespace.share.net = /proc/1/ns/net" in b.lines
    assert "lxc.namespace.clone = mnt pid cgroup uts ipc net user" in b.lines
    assert b.spec.ulimits[0].name == "nofile" and b.spec.ulimits[0].soft == 1024
    assert b.masked and b.readonly


def _bad(**change: Any) -> dict[str, Any]:
    cfg = base_config(["true"])
    for path, value in change.items():
        node = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return cfg


UNSUPPORTED = [
    ({"ociVersion": "2.0.0"}, "ociVersion"),
    ({"process__ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 1}}, "process.ioPriority"),
    ({"process__scheduler": {"policy": "SCHED_FIFO"}}, "process.scheduler"),
    ({"process__execCPUAffinity": {"initial": "0"}}, "process.execCPUAffinity"),
    ({"process__user": {"uid": 0, "gid": 0, "umask": 18}}, "process.user.umask"),
    ({"linux__intelRdt": {"closID": "gold"}}, "linux.intelRdt"),
    ({"linux__personality": {"domain": "LINUX32"}}, "linux.personality"),
    ({"linux__timeOffsets": {"monotonic": {"secs": 1}}}, "linux.timeOffsets"),
    ({"linux__netDevices": {"eth1": {}}}, "linux.netDevices"),
    ({"linux__memoryPolicy": {"mode": "MPOL_BIND"}}, "linux.memoryPolicy"),
    ({"linux__resources": {"memory": {"kernel": 1}}}, "linux.resources.memory.kernel"),
    ({"linux__resources": {"cpu": {"idle": 1}}}, "linux.resources.cpu.idle"),
    ({"linux__resources": {"network": {"classID": 1}}}, "linux.resources.network"),
    ({"linux__rootfsPropagation": "shared"}, "linux.rootfsPropagation"),
    ({"linux__cgroupsPath": "system.slice:lxcri:x"}, "linux.cgroupsPath"),
    ({"domainname": "example"}, "domainname"),
    ({"hooks": {"startContainer": [{"path": "/bin/true"}]}}, "hooks.startContainer"),
    ({"hooks": {"prestartt": [{"path": "/bin/true"}]}}, "hooks.prestartt"),
    ({"hooks": {"prestart": [{"path": "true"}]}}, "hooks.prestart[0].path"),
    ({"process__args": []}, "process.args"),
    ({"process__cwd": "relative"}, "process.cwd"),
    ({"process__env": ["NOEQUALS"]}, "process.env[0]"),
    ({"process__rlimits": [{"type": "NOFILE", "soft": 1, "hard": 1}]}, "process.rlimits[0].type"),
    ({"mounts": [{"destination": "/x", "type": "bind", "source": "rel"}]}, "mounts[0].source"),
    ({"mounts": [{"destination": "../etc", "type": "tmpfs"}]}, "mounts[0].destination"),
    (
        {"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["exec,suid"]}]},
        "mounts[0].options[0]",
    ),
    ({"linux__sysctl": {"kernel/../x": "1"}}, "linux.sysctl.kernel/../x"),
    ({"linux__sysctl": {"net.ipv4.ip_forward": "1\nlxc.hook.x=y"}}, "linux.sysctl.net.ipv4"),
    ({"linux__maskedPaths": ["relative"]}, "linux.maskedPaths[0]"),
    ({"linux__devices": [{"path": "/dev/fake", "type": "c", "major": 250, "minor": 9}]},
     "linux.devices[0]"),
    ({"hostname": "x\nlxc.hook.pre-start = /bin/evil"}, "hostname"),
    ({"linux__uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}, "linux.uidMappings"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field"), UNSUPPORTED, ids=[f for _, f in UNSUPPORTED])
def test_what_lxc_cannot_express_is_an_error_naming_the_field(
    bdir: Path, change: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as e:
        tr(bdir, _bad(**change))
    assert field in e.value.msg


def test_namespace_errors(bdir: Path) -> None:
    for drop, why in (("mount", "own mount namespace"), ("pid", "host's pid namespace")):
        cfg = base_config(["true"])
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != drop]
        with pytest.raises(SpecError, match=why):
            tr(bdir, cfg)
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    with pytest.raises(SpecError, match=r"linux.namespaces"):
        tr(bdir, cfg)
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]
    with pytest.raises(SpecError, match=r"hostname: setting a hostname needs a uts namespace"):
        tr(bdir, cfg)
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"][3] = {"type": "uts", "path": "/proc/1/ns/uts"}
    with pytest.raises(SpecError, match=r"hostname: .* uts namespace of its own"):
        tr(bdir, cfg)


def test_capability_sets_lxc_cannot_give(bdir: Path) -> None:
    cfg = base_config(["true"])
    cfg["process"]["capabilities"]["effective"] = ["CAP_KILL"]
    with pytest.raises(SpecError, match=r"process.capabilities.effective"):
        tr(bdir, cfg)
    cfg = base_config(["true"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    with pytest.raises(SpecError, match=r"process.capabilities.effective: LXC gives uid 1000"):
        tr(bdir, cfg)
    cfg["process"]["capabilities"]["effective"] = cfg["process"]["capabilities"]["permitted"] = []
    cfg["process"]["capabilities"]["ambient"] = ["CAP_KILL"]
    with pytest.raises(SpecError, match=r"process.capabilities.ambient"):
        tr(bdir, cfg)
    cfg = base_config(["true"])
    cfg["process"]["capabilities"]["bounding"] = ["CAP_BOGUS"]
    with pytest.raises(SpecError, match=r"unknown capability CAP_BOGUS"):
        tr(bdir, cfg)


def test_seccomp_json_is_translated_and_its_gaps_named(bdir: Path) -> None:
    cfg = base_config(["true"])
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    b = tr(bdir, cfg)
    assert "sethostname errno 1" in b.spec.security.seccomp_profile
    cfg["linux"]["seccomp"]["listenerPath"] = "/run/notify.sock"
    cfg["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY"
    with pytest.raises(SpecError, match=r"linux.seccomp|seccomp"):
        tr(bdir, cfg)


# -- the command line: one error line, exit 1, nothing left behind


def _run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The runtime with its stderr in a file: a created process keeps the runtime's
    stdio, and a pipe would stay open as long as it lives."""
    err = root.parent / f".stderr-{os.getpid()}"
    with open(err, "w") as f:
        proc = subprocess.run(
            [RUNTIME, "--root", str(root), *args], stdout=subprocess.DEVNULL, stderr=f, text=True,
            timeout=60,
        )  # fmt: skip
    proc.stderr = err.read_text()
    err.unlink()
    return proc


def test_cli_bad_config_is_one_line_and_leaves_nothing(bdir: Path, tmp_path: Path) -> None:
    b = tmp_path / "b"
    b.mkdir()
    (b / "rootfs").symlink_to(bdir / "rootfs")
    cfg = base_config(["true"])
    cfg["linux"]["intelRdt"] = {"closID": "x"}
    (b / "config.json").write_text(json.dumps(cfg))
    root = tmp_path / "root"
    proc = _run(root, "create", "--bundle", str(b), "c1")
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1
    assert 'msg="config.json: linux.intelRdt: LXC cannot express it"' in proc.stderr
    assert not root.exists() or os.listdir(root) == []


def test_cli_version_features_usage(tmp_path: Path) -> None:
    v = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("lxcri-runtime version ")
    assert "spec: 1.2.0" in v.stdout
    f = json.loads(subprocess.run([RUNTIME, "features"], capture_output=True).stdout)
    assert f["ociVersionMax"] == "1.2.0" and "startContainer" not in f["hooks"]
    assert "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    u = _run(tmp_path, "kill")
    assert u.returncode == 2 and '"kill" requires a container id' in u.stderr
    u = _run(tmp_path, "create", "--bogus", "x")
    assert u.returncode == 2 and "flag provided but not defined: --bogus" in u.stderr
    # runc's global flags containerd passes are accepted
    s = _run(tmp_path, "--systemd-cgroup", "--log-format", "json", "state", "nope")
    assert s.returncode == 1 and "container does not exist" in s.stderr


def test_cli_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    p = _run(tmp_path / "r", "create", "--preserve-fds", "2", "--bundle", str(tmp_path), "c1")
    assert p.returncode == 1 and "--preserve-fds" in p.stderr
    p = _run(tmp_path / "r", "--log-format", "xml", "state", "c1")
    assert p.returncode == 2 and "--log-format 'xml'" in p.stderr


def test_cli_log_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    proc = subprocess.run(
        [RUNTIME, "--root", str(tmp_path), "--log", str(log), "--log-format", "json",
         "delete", "nope"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1
    doc = json.loads(log.read_text().splitlines()[-1])
    assert doc["level"] == "error" and doc["msg"] == "container does not exist"
    assert doc["time"].endswith("Z")


@pytest.mark.parametrize("cid", ["../escape", "a/b", "..", ".", "x\ny", ""])
def test_hostile_ids_touch_nothing_outside_the_root(tmp_path: Path, cid: str) -> None:
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    proc = _run(root, "create", "--bundle", str(tmp_path), cid)
    assert proc.returncode in (1, 2)
    assert sorted(os.listdir(tmp_path)) == ["root"]
    assert os.listdir(root) == []
    proc = _run(root, "delete", "--force", cid)
    assert proc.returncode in (1, 2)
    assert (tmp_path / "root").is_dir()


def test_hostile_rootfs_symlinks_stay_inside(rt_dir: Path) -> None:
    """An image's /.lxcri -> /etc-like links and a bind target through a link are
    resolved inside the rootfs: nothing is created on the host."""
    victim = rt_dir / "victim"
    victim.mkdir()
    b = rt_dir / "b"
    make_rootfs(b / "rootfs")
    (b / "rootfs" / ".lxcri").symlink_to(str(victim))
    (b / "rootfs" / "data").symlink_to(str(victim / "d"))
    cfg = copy.deepcopy(base_config(["true"]))
    cfg["mounts"].append({"destination": "/data/x", "type": "tmpfs", "source": "tmpfs"})
    (b / "config.json").write_text(json.dumps(cfg))
    root = rt_dir / "root"
    proc = _run(root, "create", "--bundle", str(b), "c1")
    try:
        assert proc.returncode in (0, 1), proc.stderr
        assert os.listdir(victim) == []
    finally:
        _run(root, "delete", "--force", "c1")


@pytest.fixture
def rt_dir(tmp_path: Path) -> Path:
    return tmp_path


def test_state_files_are_private(rt_dir: Path) -> None:
    b = rt_dir / "b"
    make_rootfs(b / "rootfs")
    cfg = base_config(["true"])
    cfg["process"]["env"].append("SECRET=hunter2")
    cfg["hooks"] = {"poststop": [{"path": "/bin/true", "env": ["TOKEN=s3cret"]}]}
    (b / "config.json").write_text(json.dumps(cfg))
    root = rt_dir / "root"
    with open(os.devnull, "wb") as null:
        subprocess.run(
            [RUNTIME, "--root", str(root), "create", "--bundle", str(b), "c1"],
            stdout=null, stderr=null, check=True,
        )  # fmt: skip
    try:
        for name in ("config", "ctr/env", "process.json", "state", "hooks.json"):
            assert (root / "c1" / name).stat().st_mode & 0o077 == 0, name
    finally:
        _run(root, "delete", "--force", "c1")


@pytest.mark.parametrize(
    "key",
    ["kernel.core_pattern", "vm.overcommit_memory", "kernel.modprobe", "fs.protected_symlinks"],
)
def test_a_sysctl_of_the_host_is_refused(bdir: Path, key: str) -> None:
    """Written in the container's namespaces, a sysctl that no namespace holds would
    change the host's kernel (kernel.core_pattern: a host program run as root on a
    crash). Only the namespaced ones pass, as runc allows them."""
    cfg = base_config(["true"])
    cfg["linux"]["sysctl"] = {key: "|/tmp/evil"}
    with pytest.raises(SpecError, match=rf"linux.sysctl.{key}: .*host"):
        tr(bdir, cfg)


def test_namespaced_sysctls_need_their_namespace(bdir: Path) -> None:
    cfg = base_config(["true"])
    cfg["linux"]["sysctl"] = {"kernel.shmmax": "1000000", "fs.mqueue.msg_max": "20"}
    assert tr(bdir, cfg).sysctl["kernel.shmmax"] == "1000000"
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    with pytest.raises(SpecError, match=r"linux.sysctl.net.ipv4.ip_forward: .*host"):
        tr(bdir, cfg)


def test_state_imports_stay_minimal(tmp_path: Path) -> None:
    """``state`` runs on every containerd poll: no json, re, pathlib, subprocess, no
    translation (``python3 -X importtime`` of the real command)."""
    import sys

    proc = subprocess.run(
        [sys.executable, "-X", "importtime", RUNTIME, "--root", str(tmp_path), "state", "x"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "container does not exist" in proc.stderr
    mods = {ln.rsplit("|", 1)[1].strip() for ln in proc.stderr.splitlines() if "|" in ln}
    assert "lxcri_core.runtime.state" in mods
    heavy = {"json", "re", "pathlib", "subprocess", "lxcri_core.runtime.bundle", "dataclasses"}
    assert not mods & heavy, mods & heavy
