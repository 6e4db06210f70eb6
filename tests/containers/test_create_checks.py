"""Options that could only fail at start are refused at create, with one clear line."""

from __future__ import annotations

import socket

import pytest

from lxcri_core.containers import engine
from lxcri_core.errors import SpecError
from lxcri_core.spec.options import RunOptions
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"stop_timeout": -5}, "give 0 or more seconds"),
        ({"network": "none", "publish": ("18099:80",)}, "--network none has no ports"),
        ({"volumes": ("/tmp:/",)}, "hide the whole root"),
        ({"security_opts": ("seccomp=/nonexistent",)}, "no such profile file"),
        ({"bridge": "nosuchbr0"}, "no such bridge"),
        ({"publish": ("18098:80", "18098:81")}, "published twice"),
        ({"publish": ("192.0.2.77:18097:80",)}, "is not an address of this host"),
    ],
)
def test_refused_at_create(lxenv: LxcEnv, opts, message):
    with pytest.raises(SpecError, match=message):
        engine.create(lxenv.config(), BUSYBOX_REF, RunOptions(name="bad", **opts))
    assert not lxenv.state_dir("bad").exists()


def test_any_free_host_port(lxenv: LxcEnv):
    rec = engine.create(lxenv.config(), BUSYBOX_REF, RunOptions(name="anyport", publish=("80",)))
    lxenv.remember("anyport")
    (port,) = rec.spec.ports
    assert port.container_port == 80 and port.host_port > 0
    with socket.socket() as s:  # it was free when chosen
        s.bind(("", port.host_port))


def test_working_directory_is_created(lxenv: LxcEnv):
    cfg = lxenv.config()
    engine.create(
        cfg,
        BUSYBOX_REF,
        RunOptions(name="wd", workdir="/new/dir", args=('test "$PWD" = /new/dir',)),
    )
    lxenv.remember("wd")
    assert engine.run_foreground(cfg, "wd") == 0


def test_rm_with_restart_policy_is_a_usage_error(lxcri):
    proc = lxcri("run", "--rm", "--restart", "always", BUSYBOX_REF)
    assert proc.returncode == 2 and "cannot be combined" in proc.stderr
