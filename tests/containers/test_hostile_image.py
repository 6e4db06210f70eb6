"""A hostile image's symlinks never make lxcri or LXC create anything on the host."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.containers import engine
from lxcri_core.spec.options import RunOptions
from tests.support.images import Entry, Layer, busybox_image, make_tar
from tests.support.lxcenv import LxcEnv

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("privileged", [False, True])
def test_symlinked_mount_targets_stay_inside_the_rootfs(lxenv: LxcEnv, privileged: bool):
    outside = lxenv.root / "host-outside"
    outside.mkdir()
    img = busybox_image(Volumes={"/data/pwned": {}}, Cmd=["cat /etc/hostname; ls -d /data/pwned"])
    # /data points at a host path; /etc/hosts at another one
    img.layers.append(
        Layer(
            make_tar(
                [
                    Entry("data", "symlink", link=str(outside)),
                    Entry("etc/hosts", "symlink", link=str(outside / "hosts")),
                ]
            )
        )
    )
    ref = "localhost/lxt-hostile:1"
    lxenv.add_image(img, ref)
    cfg = lxenv.config()
    name = f"hostile{int(privileged)}"
    engine.create(cfg, ref, RunOptions(name=name, privileged=privileged))
    lxenv.remember(name)
    assert engine.run_foreground(cfg, name) == 0
    assert list(outside.iterdir()) == []  # nothing created on the host
    config = (lxenv.state_dir(name) / "config").read_text()
    assert "create=" not in config.replace("dev/fuse", "")
    # the targets exist inside the rootfs, where the links lead when resolved in-root
    assert f"{str(outside).lstrip('/')}/pwned none bind" in config
    assert Path(outside).is_dir()


@pytest.mark.parametrize("privileged", [False, True])
def test_file_capability_works_for_the_container_only(lxenv: LxcEnv, privileged: bool):
    """cap_setuid=ep from an image still lets a non-root process in the container
    become the container's root; on the host the unprivileged rootfs grants nothing
    (tests/unpack/test_xattrs.py)."""
    import struct
    import subprocess

    from tests.unpack.test_xattrs import SETUID_PROG, binary_tar

    src = lxenv.root / "getroot.c"
    src.write_text(SETUID_PROG)
    subprocess.run(
        ["gcc", "-static", "-Os", "-s", "-o", str(src.with_suffix("")), str(src)], check=True
    )
    cap = struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)  # cap_setuid=ep, v2
    prog = src.with_suffix("").read_bytes()
    img = busybox_image(Entrypoint=["/bin/getroot"], Cmd=[])
    img.layers.append(
        Layer(binary_tar([("bin/getroot", prog, 0o755, {"security.capability": cap})]))
    )
    ref = "localhost/lxt-caps:1"
    lxenv.add_image(img, ref)
    cfg = lxenv.config()
    name = f"caps{int(privileged)}"
    engine.create(cfg, ref, RunOptions(name=name, privileged=privileged, user="65534:65534"))
    lxenv.remember(name)
    assert engine.run_foreground(cfg, name) == 0  # setuid(0) worked inside
