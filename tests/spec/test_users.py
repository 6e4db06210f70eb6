"""--user resolution against passwd/group text, and safe reads from a rootfs."""

from __future__ import annotations

import os

import pytest

from lxcri_core.errors import SpecError
from lxcri_core.spec.model import User
from lxcri_core.spec.users import parse_group, parse_passwd, read_rootfs_file, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
broken line
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
app:x:1000:1000:App,,,:/home/app:/bin/sh
nohome:x:1001:1001::
"""
GROUP = """root:x:0:
daemon:x:1:
www-data:x:33:
app:x:1000:
audio:x:29:app,www-data
video:x:44: app
staff:x:50:
bad:x:notanumber:
"""


def test_parsers_skip_malformed_lines():
    users = parse_passwd(PASSWD)
    assert [u.name for u in users] == ["root", "daemon", "www-data", "app", "nohome"]
    assert users[3].home == "/home/app" and users[4].home == "/"
    groups = parse_group(GROUP)
    assert [g.name for g in groups][-1] == "staff"
    assert groups[4].members == ("app", "www-data")


@pytest.mark.parametrize(
    ("user", "group", "expected"),
    [
        ("", "", User(0, 0, (), "root", "/root")),
        ("app", "", User(1000, 1000, (29, 44), "app", "/home/app")),
        ("1000", "", User(1000, 1000, (29, 44), "app", "/home/app")),
        ("www-data", "", User(33, 33, (29,), "www-data", "/var/www")),
        ("app", "staff", User(1000, 50, (), "app", "/home/app")),
        ("app", "50", User(1000, 50, (), "app", "/home/app")),
        ("app", "4242", User(1000, 4242, (), "app", "/home/app")),
        ("4000", "", User(4000, 0, (), "", "/")),
        ("4000", "4000", User(4000, 4000, (), "", "/")),
        ("nohome", "", User(1001, 1001, (), "nohome", "/")),
    ],
)
def test_resolve(user, group, expected):
    assert resolve_user(user, group, PASSWD, GROUP) == expected


def test_group_add():
    got = resolve_user("app", "", PASSWD, GROUP, group_add=("staff", "7"))
    assert got.additional_gids == (29, 44, 50, 7)


def test_unknown_names_are_errors():
    with pytest.raises(SpecError, match=r"user 'ghost'.*not in /etc/passwd"):
        resolve_user("ghost", "", PASSWD, GROUP)
    with pytest.raises(SpecError, match=r"group 'ghosts'.*not in /etc/group"):
        resolve_user("app", "ghosts", PASSWD, GROUP)
    with pytest.raises(SpecError, match="has no /etc/passwd"):
        resolve_user("app", "", None, None)
    assert resolve_user("123", "456", None, None) == User(123, 456)


def test_read_rootfs_file_does_not_follow_symlinks(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    secret = tmp_path / "host-passwd"
    secret.write_text("hostuser:x:0:0::/:/bin/sh\n")
    (rootfs / "etc" / "passwd").symlink_to(secret)
    assert read_rootfs_file(rootfs, "etc/passwd") is None
    (rootfs / "etc" / "passwd").unlink()
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    assert read_rootfs_file(rootfs, "etc/passwd") == PASSWD
    assert read_rootfs_file(rootfs, "etc/group") is None
    # a symlinked directory on the way is refused too
    (rootfs / "etc2").symlink_to(tmp_path)
    assert read_rootfs_file(rootfs, "etc2/host-passwd") is None
    os.mkfifo(rootfs / "etc" / "group")
    assert read_rootfs_file(rootfs, "etc/group") is None
    with pytest.raises(SpecError, match="escapes"):
        read_rootfs_file(rootfs, "../host-passwd")
