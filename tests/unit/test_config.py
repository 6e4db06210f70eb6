from __future__ import annotations

from pathlib import Path

import pytest

from lxcri_core.config import DEFAULT_ROOT, load_config
from lxcri_core.errors import ConfigError


def test_defaults_without_a_file(tmp_path):
    cfg = load_config(env={"LXCRI_CONFIG": ""}, path=None)
    assert cfg.root == DEFAULT_ROOT or cfg.root == Path("/var/lib/lxcri")
    assert cfg.image_store == cfg.root / "images"


def test_precedence_flags_env_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "root: /from/file\nstorage: dir\nregistries:\n  insecure: ['127.0.0.1:5000']\n"
        "auths:\n  r.io: {username: u, password: p}\n"
    )
    assert load_config(f, env={}).root == Path("/from/file")
    assert load_config(f, env={"LXCRI_ROOT": "/from/env"}).root == Path("/from/env")
    cfg = load_config(f, env={"LXCRI_ROOT": "/from/env"}, root=Path("/from/flag"))
    assert cfg.root == Path("/from/flag")
    assert cfg.storage == "dir"
    assert cfg.insecure_registries == ("127.0.0.1:5000",)
    assert cfg.auths["r.io"].username == "u"
    assert "p" not in repr(cfg.auths["r.io"])


def test_config_path_from_env(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("zfs_pool: tank/data\n")
    assert load_config(env={"LXCRI_CONFIG": str(f)}).zfs_pool == "tank/data"


@pytest.mark.parametrize(
    "text",
    [
        "root: [1]",
        "bogus: 1",
        "storage: btrfs",
        "parallel_downloads: 0",
        "- a",
        "a: [",
        "registries: {insecure: 5}",
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f, env={})
    assert str(f) in str(e.value) or "must" in str(e.value)


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml", env={})


def test_bridge_settings(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("bridge: lxbr1\nbridge_subnet: 10.77.0.0/24\n")
    cfg = load_config(f, env={})
    assert (cfg.bridge, cfg.bridge_subnet) == ("lxbr1", "10.77.0.0/24")
    cfg = load_config(f, env={"LXCRI_BRIDGE": "lxbr2", "LXCRI_BRIDGE_SUBNET": "10.66.0.0/24"})
    assert (cfg.bridge, cfg.bridge_subnet) == ("lxbr2", "10.66.0.0/24")


def test_bridge_subnet6(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("bridge_subnet6: fd88::/64\n")
    assert load_config(f, env={}).bridge_subnet6 == "fd88::/64"
    assert load_config(f, env={"LXCRI_BRIDGE_SUBNET6": "fd99::/64"}).bridge_subnet6 == "fd99::/64"


def test_config_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("foo: [\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad, env={})
    assert "line" in str(e.value) and "\n" not in str(e.value)
    bad.write_bytes(b"\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad, env={})
    with pytest.raises(ConfigError, match="log level"):
        load_config(env={"LXCRI_LOG_LEVEL": "bogus", "LXCRI_CONFIG": ""})


def test_lock_and_unpack_limits() -> None:
    from lxcri_core.config import min_free_bytes, parse_config

    cfg = parse_config({})
    assert (cfg.lock_timeout, cfg.unpack_min_free, cfg.max_layer_bytes) == (300.0, "auto", 0)
    cfg = parse_config({"lock_timeout": 2, "unpack_min_free": "10%", "max_layer_bytes": 1 << 30})
    assert (cfg.lock_timeout, cfg.unpack_min_free, cfg.max_layer_bytes) == (2.0, "10%", 1 << 30)
    assert parse_config({"unpack_min_free": 4096}).unpack_min_free == "4096"
    # auto: 5 % of the filesystem or 1 GiB, whichever is smaller
    assert min_free_bytes("auto", 10 << 30) == 512 << 20
    assert min_free_bytes("auto", 100 << 30) == 1 << 30
    assert min_free_bytes("2G", 1) == 2 << 30 and min_free_bytes("0", 1 << 40) == 0
    for bad in (
        {"lock_timeout": 0},
        {"lock_timeout": "5"},
        {"lock_timeout": True},
        {"unpack_min_free": "lots"},
        {"unpack_min_free": "150%"},
        {"unpack_min_free": "-1G"},
        {"unpack_min_free": "inf"},
        {"max_layer_bytes": -1},
        {"max_layer_bytes": "1G"},
    ):
        with pytest.raises(ConfigError):
            parse_config(bad)


def test_proxmox_settings_from_file_and_env(tmp_path) -> None:
    from lxcri_core.config import parse_config

    cfg = parse_config({})
    assert (cfg.pve_user, cfg.pve_password_file, cfg.pve_template_storage) == ("root@pam", None, "")
    assert (cfg.pve_rootfs_size, cfg.pve_task_timeout) == (8, 900.0)
    f = tmp_path / "c.yaml"
    f.write_text(
        "pve_user: alice@pve\npve_password_file: /root/pw\npve_template_storage: nfs\n"
        "pve_rootfs_size: 20\npve_task_timeout: 60\n"
    )
    cfg = load_config(f, env={})
    assert (cfg.pve_user, cfg.pve_password_file, cfg.pve_template_storage) == (
        "alice@pve",
        Path("/root/pw"),
        "nfs",
    )
    assert (cfg.pve_rootfs_size, cfg.pve_task_timeout) == (20, 60.0)
    env = {
        "LXCRI_PVE_USER": "bob@pam",
        "LXCRI_PVE_PASSWORD_FILE": "/run/pw",
        "LXCRI_PVE_TEMPLATE_STORAGE": "local",
        "LXCRI_PVE_ROOTFS_SIZE": "4",
        "LXCRI_PVE_TASK_TIMEOUT": "30.5",
    }
    cfg = load_config(f, env=env)
    assert (cfg.pve_user, cfg.pve_password_file, cfg.pve_rootfs_size) == (
        "bob@pam",
        Path("/run/pw"),
        4,
    )
    assert (cfg.pve_template_storage, cfg.pve_task_timeout) == ("local", 30.5)
    for bad in (
        {"pve_rootfs_size": 0},
        {"pve_rootfs_size": "big"},
        {"pve_rootfs_size": True},
        {"pve_task_timeout": -1},
        {"pve_task_timeout": "soon"},
        {"pve_user": 5},
    ):
        with pytest.raises(ConfigError):
            parse_config(bad)
    for var, value in (("LXCRI_PVE_ROOTFS_SIZE", "8G"), ("LXCRI_PVE_USER", "root")):
        with pytest.raises(ConfigError, match=var.removeprefix("LXCRI_").lower()):
            load_config(f, env={var: value})
