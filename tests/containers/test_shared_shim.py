"""The init shim: one shared copy under the root, bind-mounted read-only into
every container; no container has a copy of its own, none can change it."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.containers import engine
from lxcri_core.containers.paths import libexec
from lxcri_core.spec.options import RunOptions
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow

#: Every way a container's root might try to change the shim (each in a subshell:
#: a failed redirection of a builtin ends the shell), then its checksum.
ATTACKS = (
    "echo x > /.lxcri/init",
    ": > /.lxcri/init",
    "cat /bin/busybox > /.lxcri/init",
    "chmod 777 /.lxcri/init",
    "rm -f /.lxcri/init",
    "busybox mount -o remount,rw,bind /.lxcri/init && echo y >> /.lxcri/init",
    "busybox umount /.lxcri/init; echo z > /.lxcri/init",
    "busybox mount -o remount,rw,bind /.lxcri; echo w > /.lxcri/init",
    "busybox truncate -s 0 /.lxcri/init",
)
ATTACK = "; ".join(f"( {a} )" for a in ATTACKS) + "; echo done"


def digest(path: os.PathLike[str] | str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


KINDS: dict[str, dict[str, Any]] = {
    "unprivileged": {},
    # may remount its mounts, but the host's file is not its to write
    "unprivileged-with-sys-admin": {"cap_add": ("SYS_ADMIN",)},
    # all capabilities: it can remount anything writable, so it gets a copy of its own
    "privileged": {"privileged": True},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_container_cannot_change_the_shim_others_run(lxenv: LxcEnv, kind: str) -> None:
    cfg = lxenv.config()
    lxenv.start("other", args=("sleep 120",))
    shared = lxenv.root / "lib" / "lxcri-init"
    before = digest(shared)
    assert before == digest(libexec("lxcri-init"))
    lxenv.start("attacker", args=("sleep 120",), **KINDS[kind])

    cmd = engine.exec_argv(cfg, "attacker", ["/bin/sh", "-c", ATTACK])
    proc = subprocess.run(cmd.argv, env=cmd.env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "done", proc.stderr
    assert digest(shared) == before, proc.stderr
    assert digest(libexec("lxcri-init")) == before
    assert os.stat(shared).st_mode & 0o7777 == 0o755 and os.stat(shared).st_uid == 0
    assert engine.status(cfg, "attacker").status == "running"
    if kind != "privileged":
        assert proc.stderr.count("Read-only file system") >= 3, proc.stderr
    else:
        # it runs a copy of its own (which it may well have just destroyed)
        assert "lib/lxcri-init" not in (lxenv.state_dir("attacker") / "config").read_text()


def test_no_container_carries_a_copy_of_the_shim(lxenv: LxcEnv) -> None:
    lxenv.start("noshim1", args=("sleep 60",))
    lxenv.start("noshim2", args=("sleep 60",), cap_add=("SYS_ADMIN",))
    size = os.stat(libexec("lxcri-init")).st_size
    assert size > 100_000
    for name in ("noshim1", "noshim2"):
        sdir = lxenv.state_dir(name)
        assert (sdir / "ctr" / "init").stat().st_size == 0  # the mount point only
        big = [
            os.path.join(d, f)
            for d, _, files in os.walk(sdir)
            if not d.startswith(str(sdir / "rootfs"))
            for f in files
            if os.path.getsize(os.path.join(d, f)) >= size // 2
        ]
        assert big == []


def test_an_upgraded_shim_is_shared_from_the_next_start(
    lxenv: LxcEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = lxenv.config()
    engine.create(cfg, BUSYBOX_REF, RunOptions(name="upg", args=("sleep 60",)))
    newer = tmp_path / "libexec"
    newer.mkdir()
    # still a valid ELF: bytes after the last segment are ignored by the loader
    (newer / "lxcri-init").write_bytes(libexec("lxcri-init").read_bytes() + b"\0upgraded")
    os.chmod(newer / "lxcri-init", 0o755)
    monkeypatch.setenv("LXCRI_LIBEXEC", str(newer))
    engine.start(cfg, "upg")
    lxenv.remember("upg")
    assert engine.status(cfg, "upg").status == "running"
    assert digest(lxenv.root / "lib" / "lxcri-init") == digest(newer / "lxcri-init")
