"""Security with real containers: seccomp denials inside, dropped capabilities absent from
the kernel's view, the unprivileged root on the host, and inspect-security matching /proc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lxcri_core.security.caps import parse_status
from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv, children, proc_status

pytestmark = pytest.mark.slow


def test_default_seccomp_refuses_a_new_user_namespace(lxcri: Lxcri) -> None:
    """A user namespace would give the container's root every capability inside it
    (Docker's profile refuses it without CAP_SYS_ADMIN); nesting=1 allows it."""
    p = lxcri("run", "--rm", BUSYBOX_REF, "unshare -U true; echo rc=$?")
    assert p.returncode == 0, p.stderr
    assert "rc=1" in p.stdout and "Operation not permitted" in p.stdout + p.stderr
    p = lxcri("run", "--rm", "--features", "nesting=1", BUSYBOX_REF, "unshare -U true; echo rc=$?")
    assert p.returncode == 0, p.stderr
    assert "rc=0" in p.stdout


def test_a_json_profile_denies_its_syscall(lxcri: Lxcri, tmp_path: Path) -> None:
    prof = tmp_path / "deny-hostname.json"
    prof.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["sync"], "action": "SCMP_ACT_LOG"},
                ],
            }
        )
    )
    script = "hostname other; echo rc=$?"
    p = lxcri("run", "--rm", "--cap-add", "SYS_ADMIN", BUSYBOX_REF, script)
    assert "rc=0" in p.stdout, p.stdout + p.stderr  # allowed without the profile
    p = lxcri(
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        f"seccomp={prof}",
        BUSYBOX_REF,
        script,
    )
    assert "rc=1" in p.stdout and "Permission denied" in p.stdout + p.stderr  # EACCES (13)
    # what LXC cannot express is said at create, by name
    assert "not carried to LXC: action SCMP_ACT_LOG for sync" in p.stderr


def test_dropped_capability_is_absent_and_root_is_100000(lxenv: LxcEnv) -> None:
    init = lxenv.start("caps", args=("sleep 60",), cap_drop=("NET_RAW",), cap_add=("NET_ADMIN",))
    app = children(init)[0]
    st = parse_status(Path(f"/proc/{app}/status").read_text())
    assert "NET_RAW" not in st.effective and "NET_RAW" not in st.bounding
    assert "NET_ADMIN" in st.effective and "CHOWN" in st.effective
    assert "NET_RAW" not in parse_status(Path(f"/proc/{init}/status").read_text()).bounding
    # unprivileged: the container's root is uid 100000 on the host
    assert proc_status(init)["Uid"].split()[0] == "100000"
    assert Path(f"/proc/{init}/uid_map").read_text().split() == ["0", "100000", "65536"]


def test_inspect_security_equals_what_the_kernel_reports(lxenv: LxcEnv, lxcri: Lxcri) -> None:
    init = lxenv.start("insp", args=("sleep 60",), cap_drop=("MKNOD",))
    p = lxcri("inspect-security", "insp", "-o", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    app = children(init)[0]
    kernel_init = parse_status(Path(f"/proc/{init}/status").read_text())
    kernel_app = parse_status(Path(f"/proc/{app}/status").read_text())
    assert doc["pid"] == init and doc["app_pid"] == app
    assert doc["process"]["bounding"] == list(kernel_init.bounding)
    assert doc["app"]["effective"] == list(kernel_app.effective)
    assert "MKNOD" not in doc["app"]["effective"]
    assert doc["process"]["seccomp"] == "filter" and doc["process"]["seccomp_filters"] >= 1
    assert doc["host_root_uid"] == 100000
    assert doc["apparmor"] == "unavailable"  # this kernel has no AppArmor: reported, no crash
    assert doc["apparmor_profile"] == "generated"
    table = lxcri("inspect-security", "insp")
    assert table.returncode == 0 and "uid 100000" in table.stdout


def test_inspect_security_host_and_usage(lxcri: Lxcri) -> None:
    p = lxcri("inspect-security", "--host", "-o", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert "capability" in doc["lsms"] and doc["seccomp"]["supported"] is True
    status = Path("/proc/self/status").read_text()
    assert ("Seccomp:" in status) == doc["seccomp"]["supported"]
    assert doc["userns"]["max_user_namespaces"] == int(
        Path("/proc/sys/user/max_user_namespaces").read_text()
    )
    bad = lxcri("inspect-security")
    assert bad.returncode == 2
    missing = lxcri("inspect-security", "nosuch")
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


def test_apparmor_unconfined_and_a_label_start_on_a_kernel_without_them(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "label=type:lxc_t",
        BUSYBOX_REF,
        "echo up",
    )
    assert p.returncode == 0 and p.stdout.strip() == "up", p.stderr
    assert "apparmor=unconfined: the container runs without AppArmor confinement" in p.stderr


def test_create_warns_of_an_unwritable_bind_mount_and_cap_add_all(
    lxcri: Lxcri, lxenv: LxcEnv
) -> None:
    src = lxenv.root / "hostdir"
    src.mkdir(mode=0o755)  # host root's: the container's root (100000) cannot write it
    p = lxcri("run", "--rm", "-v", f"{src}:/data", BUSYBOX_REF, "touch /data/x; echo rc=$?")
    assert "rc=1" in p.stdout, p.stdout + p.stderr
    assert "cannot write" in p.stderr and f"chown 100000:100000 {src}" in p.stderr
    import os

    os.chown(src, 100000, 100000)  # the fix the warning names
    p = lxcri("run", "--rm", "-v", f"{src}:/data", BUSYBOX_REF, "touch /data/x; echo rc=$?")
    assert "rc=0" in p.stdout and "cannot write" not in p.stderr, p.stderr
    p = lxcri("run", "--rm", "--cap-add", "ALL", BUSYBOX_REF, "true")
    assert p.returncode == 0 and "--cap-add ALL" in p.stderr


def test_idmap_on_the_lxc_backend(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--idmap", "200000:65536", BUSYBOX_REF, "true")
    assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
    assert "--idmap 200000:65536" in p.stderr
    assert lxcri("list", "-o", "json").stdout.strip() in ("[]", "")  # nothing left behind
    p = lxcri("run", "--rm", "--idmap", "100000:65536", BUSYBOX_REF, "cat /proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "100000", "65536"]


def test_json_argument_conditions_and_arch_sections_hold_in_the_kernel(
    lxcri: Lxcri, tmp_path: Path
) -> None:
    """OCI's MASKED_EQ (value = mask, valueTwo = datum) and includes.arches survive the
    translation with LXC's meaning: the wrong operand order would deny nothing."""
    prof = tmp_path / "args.json"
    prof.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [
                    {
                        "names": ["sethostname"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 1,
                        # deny when (len & 0xff) == 5
                        "args": [
                            {"index": 1, "value": 255, "valueTwo": 5, "op": "SCMP_CMP_MASKED_EQ"}
                        ],
                    },
                    {
                        "names": ["kill"],
                        "action": "SCMP_ACT_ERRNO",
                        "errnoRet": 1,
                        "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}],  # SIGUSR1
                        "includes": {"arches": ["amd64", "386"]},
                    },
                ],
            }
        )
    )
    script = (
        "hostname abcde; echo five=$?; hostname abcd; echo four=$?; "
        "hostname abcdefg; echo seven=$?; "
        "trap '' USR1; kill -USR1 $$; echo usr1=$?; kill -0 $$; echo zero=$?"
    )
    p = lxcri(
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "--security-opt",
        f"seccomp={prof}",
        BUSYBOX_REF,
        script,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout.split()
    # 7 & 0xff != 5, while 7 & 5 == 5: the swapped order would deny seven
    assert "five=1" in out and "four=0" in out and "seven=0" in out, p.stdout + p.stderr
    assert "usr1=1" in out and "zero=0" in out, p.stdout + p.stderr


def test_features_on_plain_lxc(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--features", "fuse=1", BUSYBOX_REF, "test -c /dev/fuse; echo rc=$?")
    assert p.returncode == 0 and "rc=0" in p.stdout, p.stdout + p.stderr
    # unprivileged mknod needs Proxmox's syscall proxy: one clear error, nothing created
    p = lxcri("create", "--name", "mk", "--features", "mknod=1", BUSYBOX_REF)
    assert p.returncode == 1 and "lxc-syscalld" in p.stderr and p.stderr.count("\n") == 1
    assert lxcri("inspect-security", "mk").returncode == 1


def test_inspect_security_of_a_stopped_container(lxcri: Lxcri) -> None:
    p = lxcri("create", "--name", "cold", "--features", "nesting", "--cap-drop", "ALL", BUSYBOX_REF)
    assert p.returncode == 0, p.stderr
    doc = json.loads(lxcri("inspect-security", "cold", "-o", "json").stdout)
    assert doc["status"] != "running" and doc["process"] is None and doc["pid"] is None
    assert doc["capabilities"] == [] and doc["features"]["nesting"] is True
    assert doc["idmaps"] == ["u 0 100000 65536", "g 0 100000 65536"]
    assert lxcri("inspect-security", "cold").returncode == 0
