"""--add-host with hostile values, through the real CLI: one line, exit 1, nothing created;
a good value lands in the container's /etc/hosts as one line."""

from __future__ import annotations

import pytest

from tests.containers.conftest import Lxcri
from tests.support.lxcenv import BUSYBOX_REF, LxcEnv

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "hostile",
    [
        "evil\n6.6.6.6 registry.example:10.0.0.9",
        "db:fe80::1%eth0\n6.6.6.6 registry.example",
        "db #x:10.0.0.9",
    ],
)
def test_hostile_add_host_is_refused(lxcri: Lxcri, lxenv: LxcEnv, hostile: str) -> None:
    p = lxcri("run", "--name", "h", "--add-host", hostile, BUSYBOX_REF, "cat /etc/hosts")
    assert p.returncode == 1, p.stdout
    assert p.stderr.startswith("lxcri: error: invalid --add-host value")
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert "6.6.6.6" not in p.stdout
    assert not lxenv.state_dir("h").exists()


def test_add_host_is_one_line_of_etc_hosts(lxcri: Lxcri) -> None:
    p = lxcri("run", "--rm", "--add-host", "db.internal:10.0.0.9", "--add-host",
              "v6=[FD00::0009]", BUSYBOX_REF, "cat /etc/hosts")  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "10.0.0.9\tdb.internal" in lines and "fd00::9\tv6" in lines
