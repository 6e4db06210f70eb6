"""An image of many layers runs: the hooks mount its overlay without mount(8).

util-linux 2.39+ (Debian trixie) passes ``lowerdir=`` through fsconfig,
which takes 255 bytes per value: a dozen layers were the limit there.
"""

from __future__ import annotations

import pytest

from lxcri_core.containers import engine
from lxcri_core.containers.record import load_record
from lxcri_core.spec.options import RunOptions
from tests.storage.test_overlay import many_layer_image
from tests.support.lxcenv import LxcEnv, mounts_under

pytestmark = pytest.mark.slow

REF = "localhost/lxt-layers48:latest"


def test_48_layer_image_runs(lxenv: LxcEnv):
    lxenv.add_image(many_layer_image(48), REF)
    cfg = lxenv.config()
    # the top layer's file, the one below whited out: all 48 layers are stacked in order
    check = 'test "$(cat /layers/47)" = 47 && test "$(ls /layers)" = 47'
    engine.create(cfg, REF, RunOptions(name="layers48", args=(check,)))
    lxenv.remember("layers48")
    rec = load_record(cfg.root, "layers48")
    assert rec.mount[0] == "overlay" and len(rec.mount) == 4 + 48
    assert engine.run_foreground(cfg, "layers48") == 0
    sdir = lxenv.state_dir("layers48")
    log = (sdir / "hooks.log").read_text()
    assert "pre-start: mounted rootfs" in log and "post-stop: unmounted" in log, log
    assert not mounts_under(sdir)
