"""Seccomp translation (OCI/Docker JSON -> LXC), the default profile, --security-opt
apparmor=/label=, --features, and the rendered LXC and Proxmox keys."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.security import seccomp
from lxcri_core.spec.build import build_spec
from lxcri_core.spec.lxc_config import render_lxc_config
from lxcri_core.spec.options import RunOptions, apply_capabilities
from lxcri_core.spec.pve_config import render_pve_config

DATA = Path(__file__).resolve().parent.parent / "data" / "security"
IMG: dict[str, Any] = {"config": {"Cmd": ["/bin/sh"]}}


def _lxc(tmp_path: Path, **kw: Any) -> Any:
    spec = build_spec(IMG, RunOptions(name="ct", host_env={}, **kw), image="x:1")
    return spec, render_lxc_config(
        spec, name="ct", rootfs_path=tmp_path / "rootfs", state_dir=tmp_path / "state"
    )


def test_docker_profile_translates_for_the_containers_capabilities() -> None:
    doc = json.loads((DATA / "docker-excerpt.json").read_text())
    tr = seccomp.translate(doc, caps=("CHOWN",), kernel=(6, 1))
    lines = tr.text.splitlines()
    assert lines[:3] == ["2", "allowlist errno 1", "[all]"]
    assert "read allow" in lines and "exit_group allow" in lines
    # each personality rule stays its own alternative
    assert "personality allow [0,0x0,SCMP_CMP_EQ]" in lines
    assert "personality allow [0,0xffffffff,SCMP_CMP_EQ]" in lines
    # OCI MASKED_EQ: value is the mask, valueTwo the datum; LXC wants [index,datum,op,mask]
    assert "clone allow [0,0x0,SCMP_CMP_MASKED_EQ,0x7e020000]" in lines
    assert "clone3 errno 38" in lines and "socket errno 22 [0,0x28,SCMP_CMP_EQ]" in lines
    assert "mount allow" not in lines  # needs CAP_SYS_ADMIN, which this container lacks
    assert "ptrace allow" in lines  # minKernel 4.8 <= 6.1
    # arch-specific rules go under LXC's section names
    i = lines.index("[x86_64]")
    assert "arch_prctl allow" in lines[i:] and "[x86]" in lines and "[x32]" in lines
    # what LXC cannot do is named, never dropped silently
    assert tr.unsupported == ("action SCMP_ACT_LOG for sync",)
    with_admin = seccomp.translate(doc, caps=None, kernel=(4, 4)).text.splitlines()
    assert "mount allow" in with_admin and "clone3 errno 38" not in with_admin
    assert "ptrace allow" not in with_admin  # the kernel is older than minKernel


def test_oci_profile_with_allow_default_is_a_denylist() -> None:
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "listenerPath": "/run/x.sock",
        "syscalls": [
            {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"},
        ],
    }
    tr = seccomp.translate(doc)
    assert tr.text == "2\ndenylist\n[all]\nsethostname errno 13\n"
    assert tr.unsupported == (
        "flag SECCOMP_FILTER_FLAG_LOG",
        "listenerPath (LXC's notify proxy is configured apart)",
        "action SCMP_ACT_KILL_PROCESS for kill",
        "action SCMP_ACT_NOTIFY for getpid",
    )


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ([], "not an object"),
        ({"defaultAction": "SCMP_ACT_LOG"}, "cannot be expressed"),
        ({"defaultAction": "ALLOW"}, "not a seccomp action"),
        # a name that would inject LXC lines of the author's choosing
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read\n[all]\nmount"], "action": "SCMP_ACT_ALLOW"}],
            },
            "not a system call",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read allow"], "action": "SCMP_ACT_ALLOW"}],
            },
            "not a system call",
        ),
        ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}, "architecture"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["[all]\nmount"]}, "architecture"),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["vax"]}}
                ],
            },
            "architecture",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "index",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "64-bit",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ]\nmount allow"}],
                    }
                ],
            },
            "operator",
        ),
        ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99999}, "errno"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": {"names": []}}, "not a list"),
    ],
)
def test_hostile_json_is_refused_with_one_clear_error(doc: Any, why: str) -> None:
    with pytest.raises(SpecError, match=why) as e:
        seccomp.translate(doc)
    assert "\n" not in str(e.value)


def test_a_huge_profile_is_refused() -> None:
    names = [f"s{i}" for i in range(9000)]
    doc = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    with pytest.raises(SpecError, match="more than"):
        seccomp.translate(doc)
    with pytest.raises(SpecError, match="larger than"):
        seccomp.parse_profile(b"{" + b" " * seccomp.MAX_PROFILE_BYTES + b"}")
    deep = b"[" * 100000 + b"]" * 100000
    with pytest.raises(SpecError, match=r"not valid JSON|not an object"):
        seccomp.parse_profile(b' {"a": ' + deep + b"}")


def test_lxc_text_is_taken_as_is_after_a_header_check() -> None:
    assert (
        seccomp.parse_profile(b"2\ndenylist\nmount errno 1").text == "2\ndenylist\nmount errno 1\n"
    )
    for bad in (b"hello", b"2\nmaybe\n", b"3\ndenylist\n", b"2\ndenylist debug\n", b"2\n\x00"):
        with pytest.raises(SpecError):
            seccomp.parse_profile(bad)


def test_profile_file_must_be_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="not a regular file"):  # never blocks on the fifo
        seccomp.load_profile(str(fifo), None)
    with pytest.raises(SpecError, match="not a regular file"):
        seccomp.load_profile("/dev/zero", None)
    with pytest.raises(SpecError, match="no such profile file"):
        seccomp.load_profile(str(tmp_path / "none.json"), None)
    real = tmp_path / "p.json"
    real.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}')
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert seccomp.load_profile(str(link), None).text == "2\ndenylist\n"


def test_json_profile_is_read_at_create_into_the_state_dir(tmp_path: Path) -> None:
    prof = tmp_path / "p.json"
    prof.write_text((DATA / "docker-excerpt.json").read_text())
    spec, cfg = _lxc(tmp_path, security_opts=(f"seccomp={prof}",))
    assert cfg.value("lxc.seccomp.profile") == str(tmp_path / "state" / "seccomp")
    assert cfg.files["seccomp"].startswith(b"2\nallowlist errno 1\n")
    assert spec.security.seccomp_unsupported == ("action SCMP_ACT_LOG for sync",)
    prof.write_text("garbage")  # a later change does not reach the container
    assert cfg.files["seccomp"] == spec.security.seccomp_profile.encode()
    # Proxmox reads the profile from the host at each start: JSON is refused there
    with pytest.raises(SpecError, match="LXC's format"):
        render_pve_config(spec, 100)


def test_default_profile_follows_capabilities_and_features() -> None:
    default = seccomp.default_profile(
        apply_capabilities(("CHOWN",), (), ()), keyctl=False, nesting=False, privileged=False
    )
    lines = default.splitlines()
    assert "unshare errno 1 [0,0x10000000,SCMP_CMP_MASKED_EQ,0x10000000]" in lines
    assert "clone3 errno 38" in lines and "mount errno 1" in lines
    assert "keyctl errno 38" in lines and "reboot errno 1" in lines
    admin = seccomp.default_profile(("SYS_ADMIN",), keyctl=True, nesting=False, privileged=False)
    assert "unshare" not in admin and "mount errno" not in admin and "keyctl" not in admin
    nested = seccomp.default_profile(("CHOWN",), keyctl=False, nesting=True, privileged=False)
    assert "unshare" not in nested and "clone3" not in nested


def test_apparmor_selection_is_written(tmp_path: Path) -> None:
    _, cfg = _lxc(tmp_path)
    assert cfg.value("lxc.apparmor.profile") == "generated"
    assert "deny mount -> /sys/," in cfg.values("lxc.apparmor.raw")
    _, cfg = _lxc(tmp_path, security_opts=("apparmor=lxc-container-default-cgns",))
    assert cfg.value("lxc.apparmor.profile") == "lxc-container-default-cgns"
    assert cfg.values("lxc.apparmor.raw") == []
    _, cfg = _lxc(tmp_path, security_opts=("apparmor=unconfined",), features=("fuse=1",))
    assert cfg.value("lxc.apparmor.profile") == "unconfined"
    _, cfg = _lxc(tmp_path, features=("fuse",))
    assert "mount fstype=fuse," in cfg.values("lxc.apparmor.raw")
    # a profile name cannot add config lines
    with pytest.raises(SpecError, match="apparmor"):
        _lxc(tmp_path, security_opts=("apparmor=x\nlxc.cap.keep = sys_admin",))
    spec = build_spec(
        IMG,
        RunOptions(name="ct", host_env={}, security_opts=("apparmor=lxc-container-default-cgns",)),
    )
    pve = render_pve_config(spec, 100).main
    assert pve.get("lxc.apparmor.profile") == "lxc-container-default-cgns"


def test_selinux_label(tmp_path: Path) -> None:
    _, cfg = _lxc(tmp_path, security_opts=("label=type:lxc_net_t", "label=level:s0:c1,c2"))
    assert cfg.value("lxc.selinux.context") == "system_u:system_r:lxc_net_t:s0:c1,c2"
    _, cfg = _lxc(tmp_path, security_opts=("label=type:x", "label=disable"))
    assert cfg.value("lxc.selinux.context") is None
    for bad in ("label=type:a b", "label=colour:red", "label=type:a:b"):
        with pytest.raises(SpecError, match="label"):
            _lxc(tmp_path, security_opts=(bad,))


def test_features_pct_style_and_bare(tmp_path: Path) -> None:
    spec, cfg = _lxc(tmp_path, features=("nesting=1,keyctl=1", "fuse"))
    sec = spec.security
    assert (sec.nesting, sec.keyctl, sec.fuse, sec.mknod) == (True, True, True, False)
    assert cfg.value("lxc.apparmor.allow_nesting") == "1"
    assert "/dev/fuse dev/fuse none bind,create=file,optional 0 0" in cfg.values("lxc.mount.entry")
    assert b"keyctl" not in cfg.files["seccomp"]
    pve = render_pve_config(spec, 100)
    assert pve.main.get("features") == "fuse=1,keyctl=1,nesting=1"
    spec = build_spec(IMG, RunOptions(name="ct", host_env={}, features=("mknod=1",)))
    assert render_pve_config(spec, 100).main.get("features") == "mknod=1"
    with pytest.raises(SpecError, match="lxc-syscalld"):  # plain LXC has no syscall proxy
        render_lxc_config(spec, name="ct", rootfs_path=tmp_path, state_dir=tmp_path)
    for bad in ("nesting=2", "mount=nfs", "nesting=1,,"):
        with pytest.raises(SpecError, match="--features"):
            _lxc(tmp_path, features=(bad,))


def test_capability_names_all_case_and_prefix() -> None:
    assert apply_capabilities(("CHOWN",), ("cap_net_admin", "Sys_Time"), ()) == (
        "CHOWN",
        "NET_ADMIN",
        "SYS_TIME",
    )
    assert apply_capabilities(("CHOWN",), ("all",), ()) is None
    assert apply_capabilities(("CHOWN",), ("NET_RAW",), ("ALL",)) == ("NET_RAW",)
    with pytest.raises(SpecError, match=r"--cap-add.*CAP_FOO") as e:
        apply_capabilities(("CHOWN",), ("CAP_FOO",), ())
    assert "\n" not in str(e.value)


def test_custom_idmap_is_rendered_and_checked(tmp_path: Path) -> None:
    spec, cfg = _lxc(tmp_path, idmap="200000:65536")
    assert cfg.values("lxc.idmap") == ["u 0 200000 65536", "g 0 200000 65536"]
    pve = render_pve_config(spec, 100).main
    assert pve.get_all("lxc.idmap") == ["u 0 200000 65536", "g 0 200000 65536"]
    default, _ = _lxc(tmp_path)
    assert render_pve_config(default, 100).main.get_all("lxc.idmap") == []  # PVE's own
    for bad, why in (("0:65536", "root"), ("x", "BASE:COUNT"), ("1:0", "COUNT")):
        with pytest.raises(SpecError, match=why):
            _lxc(tmp_path, idmap=bad)
    with pytest.raises(SpecError, match="privileged"):
        _lxc(tmp_path, idmap="200000:65536", privileged=True)


def test_one_rule_cannot_multiply_past_the_limit() -> None:
    arches = list(seccomp.GO_ARCHES)
    args = [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"} for i in range(6)]
    rule = {
        "names": [f"s{i}" for i in range(200)],
        "action": "SCMP_ACT_ALLOW",
        "args": args,
        "includes": {"arches": arches},
    }
    with pytest.raises(SpecError, match="more than"):
        seccomp.translate({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule]})
