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
