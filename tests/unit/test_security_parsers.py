"""The security inspectors' pure parsers, from kernel text recorded in tests/data/security."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.security import caps, hostfacts, lsm
from lxcri_core.security.report import container_report
from lxcri_core.spec.model import DOCKER_DEFAULT_CAPS, SecuritySpec

DATA = Path(__file__).resolve().parent.parent / "data" / "security"


def _read(name: str) -> str:
    return (DATA / name).read_text()


def test_capability_masks_decode_to_names() -> None:
    assert caps.decode("0000000000000000") == ()
    # the host's bounding set here lacks SYS_RESOURCE (bit 24) and nothing else
    full = caps.decode("000001fffeffffff")
    assert len(full) == 40 and "SYS_RESOURCE" not in full and full[-1] == "CHECKPOINT_RESTORE"
    # a bit newer than the table is named by number, never dropped
    assert caps.decode(hex(1 << 45)) == ("CAP_45",)
    assert caps.encode(["CAP_NET_RAW", "chown"]) == "0000000000002001"
    with pytest.raises(SpecError):
        caps.decode("zz")


def test_status_of_a_container_init_and_its_process() -> None:
    init = caps.parse_status(_read("status-ct-default.txt"))
    app = caps.parse_status(_read("status-ct-app.txt"))
    kept = tuple(c for c in DOCKER_DEFAULT_CAPS if c != "NET_RAW")
    assert sorted(init.bounding) == sorted(kept)  # --cap-drop NET_RAW
    assert sorted(app.effective) == sorted(kept) and "NET_RAW" not in app.bounding
    assert app.ambient == () and not app.no_new_privs
    assert (init.seccomp, init.seccomp_filters) == ("filter", 1)
    assert init.uid == 100000
    host = caps.parse_status(_read("status-host.txt"))
    assert host.seccomp == "disabled" and host.seccomp_filters == 0
    with pytest.raises(SpecError, match="CapEff"):
        caps.parse_status("Name: x\n")


def test_a_kernel_without_seccomp_is_reported_so() -> None:
    text = "\n".join(
        line for line in _read("status-host.txt").splitlines() if not line.startswith("Seccomp")
    )
    st = caps.parse_status(text)
    assert st.seccomp == "unsupported" and st.seccomp_filters is None
    assert hostfacts.parse_seccomp(text, "allow errno").supported is False


def test_lsm_lists() -> None:
    assert lsm.parse_lsm_list(_read("lsm-ubuntu.txt"))[-3:] == ("apparmor", "ima", "evm")
    assert lsm.decode_lsm_ids([108, 100, 110, 109]) == ("lockdown", "capability", "landlock", "bpf")
    assert lsm.decode_lsm_ids([104, 200]) == ("apparmor", "lsm200")


def _files(files: dict[str, str]) -> lsm.Reader:
    return files.get


def test_apparmor_and_selinux_states() -> None:
    none = _files({})
    assert lsm.apparmor_state(none).state == "unavailable"
    assert lsm.selinux_state(none).state == "unavailable"
    aa = _files({"/sys/module/apparmor/parameters/enabled": "Y\n"})
    assert lsm.apparmor_state(aa).state == "enabled"
    off = _files({"/sys/module/apparmor/parameters/enabled": "N\n"})
    assert lsm.apparmor_state(off).state == "unavailable"
    se = _files({"/sys/fs/selinux/enforce": "1"})
    assert lsm.selinux_state(se).state == "enforcing"
    assert lsm.parse_attr_current("lxc-100_</var/lib/lxc> (enforce)\n") == (
        "lxc-100_</var/lib/lxc> (enforce)"
    )


def test_cgroup_layouts() -> None:
    v1, v2 = hostfacts.parse_cgroup_layout(_read("mountinfo-hybrid.txt"))
    assert "memory" in v1 and v2 == "/sys/fs/cgroup/unified"
    assert hostfacts.cgroup_version(v1, v2) == "hybrid"
    v1, v2 = hostfacts.parse_cgroup_layout(_read("mountinfo-v2.txt"))
    assert (v1, v2) == ([], "/sys/fs/cgroup")
    assert hostfacts.cgroup_version(v1, v2) == "v2"
    assert hostfacts.cgroup_version(["name=systemd"], "") == "none"


def test_user_namespace_switches() -> None:
    u = hostfacts.parse_userns("96364\n", None)
    assert u.available and u.unprivileged_clone is None
    u = hostfacts.parse_userns("0\n", "0\n")
    assert not u.available and u.unprivileged_clone is False


def test_host_facts_from_recorded_files() -> None:
    files = {
        hostfacts.MOUNTINFO: _read("mountinfo-v2.txt"),
        "/sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n",
        lsm.LSM_FILE: _read("lsm-ubuntu.txt"),
        "/sys/module/apparmor/parameters/enabled": "Y\n",
        hostfacts.SELF_STATUS: _read("status-host.txt"),
        hostfacts.SECCOMP_ACTIONS: "kill_process errno allow\n",
        hostfacts.MAX_USERNS: "63000\n",
    }
    f = hostfacts.read_host_facts(files.get)
    assert f.lsm_source == "securityfs" and "apparmor" in f.lsms
    assert f.apparmor.state == "enabled" and f.selinux.state == "unavailable"
    assert f.cgroup.version == "v2" and "memory" in f.cgroup.v2_controllers
    assert f.seccomp.actions == ("kill_process", "errno", "allow")
    assert f.userns.max_user_namespaces == 63000


def test_container_report_from_recorded_proc() -> None:
    files = {
        "/proc/7/status": _read("status-ct-default.txt"),
        "/proc/7/uid_map": _read("uid_map-ct.txt"),
        "/proc/7/gid_map": _read("uid_map-ct.txt"),
        "/proc/7/task/7/children": "8 ",
        "/proc/8/status": _read("status-ct-app.txt"),
    }
    off = lsm.LsmState("apparmor", "unavailable")
    rep = container_report(
        SecuritySpec(),
        name="web",
        vmid=100,
        status="running",
        pid=7,
        apparmor=off,
        selinux=lsm.LsmState("selinux", "unavailable"),
        read=files.get,
    )
    assert rep.host_root_uid == 100000 and rep.app_pid == 8
    assert rep.apparmor == "unavailable" and rep.apparmor_profile == "generated"
    assert rep.app is not None and "NET_RAW" not in rep.app.effective
    assert rep.to_json()["host_root_uid"] == 100000
    stopped = container_report(
        SecuritySpec(privileged=True),
        name="x",
        vmid=1,
        status="stopped",
        pid=None,
        apparmor=off,
        selinux=off,
        read=files.get,
    )
    assert stopped.process is None and stopped.host_root_uid is None and stopped.idmaps == ()


def test_bind_mount_warning_names_the_fix() -> None:
    import os
    import stat

    from lxcri_core.security.advice import bind_mount_warnings, security_warnings
    from lxcri_core.spec.model import ContainerSpec, Mount

    def fake(uid: int, mode: int) -> os.stat_result:
        return os.stat_result((stat.S_IFDIR | mode, 0, 0, 0, uid, uid, 0, 0, 0, 0))

    spec = ContainerSpec(image="x", args=("sh",), mounts=(Mount("/data", "/srv/d", "bind"),))
    (w,) = bind_mount_warnings(spec, lambda p: fake(0, 0o755))
    assert "chown 100000:100000 /srv/d" in w and "read-only" in w
    assert bind_mount_warnings(spec, lambda p: fake(100000, 0o755)) == []
    assert bind_mount_warnings(spec, lambda p: fake(0, 0o777)) == []
    assert security_warnings(spec) == []
