"""What an upgrade moves in pct.conf: only what the old image gave, never the user's own."""

from __future__ import annotations

from lxcri_pve.backends.pve_generations import Derived, apply_derived, derived_healthcheck

from lxcri_core.spec.pve_config import parse_pve_config

OLD = Derived(
    entrypoint="/bin/app --v1",
    env=("PATH=/bin", "APP=1", "GONE=x", "SHARED=image"),
    cwd="/srv",
    uid="33",
    gid="33",
    halt="SIGTERM",
    healthcheck={"test": ["CMD", "true"]},
)
NEW = Derived(
    entrypoint="/bin/app --v2",
    env=("PATH=/bin:/usr/bin", "APP=2", "SHARED=image2", "ADDED=y"),
    cwd="/app",
    uid="0",
    gid="0",
    halt="SIGQUIT",
)

CONF = """arch: amd64
entrypoint: /bin/app --v1
hostname: web
memory: 256
mp0: local:100/subvol-100-disk-1.subvol,mp=/data,backup=1
net0: name=eth0,bridge=vmbr0,ip=dhcp,type=veth
rootfs: local:100/subvol-100-disk-0.subvol,size=8G
tags: lxcri;prod
lxc.environment.runtime: PATH=/bin
lxc.environment.runtime: APP=1
lxc.environment.runtime: GONE=x
lxc.environment.runtime: SHARED=mine
lxc.environment.runtime: MINE=1
lxc.init.uid: 33
lxc.init.gid: 33
lxc.init.cwd: /srv
lxc.signal.halt: SIGTERM
"""


def test_image_given_settings_move_and_the_users_stay() -> None:
    conf = parse_pve_config(CONF)
    apply_derived(conf, OLD, NEW)
    m = conf.main
    assert m.get("entrypoint") == "/bin/app --v2"
    assert m.get_all("lxc.environment.runtime") == [
        "PATH=/bin:/usr/bin",
        "APP=2",
        "SHARED=mine",  # the user's value of the image's variable
        "MINE=1",
        "ADDED=y",
    ]
    # the new image runs as root: no uid/gid lines, as create writes it
    assert m.get_all("lxc.init.uid") == [] and m.get_all("lxc.init.gid") == []
    assert m.get("lxc.init.cwd") == "/app" and m.get("lxc.signal.halt") == "SIGQUIT"
    for key in ("memory", "mp0", "net0", "rootfs", "tags", "hostname"):
        assert m.get(key) == parse_pve_config(CONF).main.get(key)
    # and back: the same rule in reverse restores what the old image gave
    apply_derived(conf, NEW, OLD)
    back = conf.main
    assert back.get("entrypoint") == "/bin/app --v1"
    env = back.get_all("lxc.environment.runtime")
    assert env == ["PATH=/bin", "APP=1", "SHARED=mine", "MINE=1", "GONE=x"]
    assert back.get("lxc.init.uid") == "33" and back.get("lxc.init.cwd") == "/srv"


def test_settings_the_user_gave_are_kept() -> None:
    conf = parse_pve_config(
        CONF.replace("entrypoint: /bin/app --v1", "entrypoint: /bin/sh -c mine")
        .replace("lxc.init.uid: 33", "lxc.init.uid: 1000")
        .replace("lxc.init.cwd: /srv", "lxc.init.cwd: /home")
        .replace("lxc.signal.halt: SIGTERM", "lxc.signal.halt: SIGKILL")
    )
    apply_derived(conf, OLD, NEW)
    m = conf.main
    assert m.get("entrypoint") == "/bin/sh -c mine"
    assert (m.get("lxc.init.uid"), m.get("lxc.init.gid")) == ("1000", "33")
    assert m.get("lxc.init.cwd") == "/home" and m.get("lxc.signal.halt") == "SIGKILL"


def test_healthcheck_follows_the_image_unless_the_user_set_one() -> None:
    assert derived_healthcheck(OLD.healthcheck, OLD, NEW) is None
    mine = {"test": ["CMD", "mine"]}
    assert derived_healthcheck(mine, OLD, NEW) == mine
