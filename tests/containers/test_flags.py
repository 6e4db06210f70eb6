"""``run``/``create`` flags with real containers: supplementary groups, --tmpfs, --mount,
--read-only, --ulimit, --device, -P and --init."""

from __future__ import annotations

import pytest

from tests.containers.conftest import Lxcri
from tests.support.images import Entry, Image, Layer, busybox_image, make_tar
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow

GROUPS_REF = "localhost/lxt-groups:latest"


def groups_image() -> Image:
    """busybox running as ``www``, a member of staff (50) and audio (29) in /etc/group."""
    img = busybox_image(User="www")
    group = b"root:x:0:\nwww:x:33:\naudio:x:29:nobody,www\nstaff:x:50:www\nnogroup:x:65534:\n"
    img.layers.append(Layer(make_tar([Entry("etc/group", data=group)])))
    return img


def test_group_add_gives_the_process_supplementary_groups(lxcri: Lxcri) -> None:
    p = lxcri(
        "run",
        "--rm",
        "-u",
        "33",
        "--group-add",
        "65534",
        "--group-add",
        "7",
        BUSYBOX_REF,
        "id -G; grep ^Groups: /proc/self/status",
    )
    assert p.returncode == 0, p.stderr
    first, status = p.stdout.splitlines()
    assert first.split() == ["33", "7", "65534"]
    assert status.split()[1:] == ["7", "65534"]


def test_group_add_by_name_and_the_users_own_groups(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    lxenv.add_image(groups_image(), GROUPS_REF)
    p = lxcri("run", "--rm", "--group-add", "nogroup", GROUPS_REF, "id -u; id -G")
    assert p.returncode == 0, p.stderr
    uid, gids = p.stdout.splitlines()
    # the image USER's memberships from /etc/group, as docker gives them, plus --group-add
    assert uid == "33" and sorted(gids.split(), key=int) == ["29", "33", "50", "65534"]


def test_no_groups_without_group_add(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "-u", "33:33", BUSYBOX_REF, "id -G")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33"]


def test_group_add_with_setgid_dropped_is_refused(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    p = lxcri(
        "run",
        "--rm",
        "--name",
        "g",
        "--cap-drop",
        "SETGID",
        "-u",
        "33",
        "--group-add",
        "7",
        BUSYBOX_REF,
        "id -G",
    )
    assert p.returncode == 1
    assert "--group-add needs the SETUID and SETGID" in p.stderr
    assert not lxenv.state_dir("g").exists()


def test_cap_drop_all_with_a_user_still_runs_as_that_user(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--cap-drop", "ALL", "-u", "33:33", BUSYBOX_REF, "id -u; id -g")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["33", "33"]
