"""The peer: the same image run through LXC's own OCI template (``lxc-create -t
oci`` + ``lxc-execute``) gets the same argv, environment, cwd and ids as with
``lxcri run``."""

from __future__ import annotations

import pytest

from tests.containers.conftest import Lxcri
from tests.support.images import write_layout
from tests.support.lxcenv import PROBE_REF, LxcEnv, make_dir, probe_image, sh

pytestmark = pytest.mark.slow

#: Set by LXC's lxc-execute only; lxcri's shim sets the image's environment exactly.
LXC_ONLY = {"container=lxc"}


def probe_output(out: str) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            got.setdefault(key, []).append(value)
    return got


def test_lxc_oci_template_and_lxcri_run_the_same_process(lxcri: Lxcri, lxenv: LxcEnv) -> None:
    layout = lxenv.root / "probe-layout"
    built = write_layout(layout, probe_image(), "probe")
    assert built.manifest_digest == lxenv.images[PROBE_REF]  # the very same image

    peer = make_dir(lxenv.root)
    net = peer / "net.conf"
    net.write_text("lxc.net.0.type = empty\n")
    p = sh(
        "lxc-create", "-n", "peer", "-P", str(peer), "-t", "oci", "-f", str(net),
        "--", "--url", f"oci:{layout}:probe",
        timeout=120,
    )  # fmt: skip
    try:
        assert p.returncode == 0, p.stderr
        theirs = sh("lxc-execute", "-n", "peer", "-P", str(peer), timeout=60)
    finally:
        sh("lxc-destroy", "-n", "peer", "-P", str(peer), timeout=60)
    assert theirs.returncode == 0, theirs.stderr
    ours = lxcri("run", "--rm", "--network", "none", "--name", "peer", PROBE_REF)
    assert ours.returncode == 0, ours.stderr

    t, o = probe_output(theirs.stdout), probe_output(ours.stdout)
    assert o["arg"] == t["arg"] == ["[/probe.sh]", "[one]", "[two]"]
    assert o["cwd"] == t["cwd"] == ["/www"]
    assert o["uid"] == t["uid"] == ["33:33"]
    # lxcri adds what docker adds (HOSTNAME, HOME from /etc/passwd); LXC adds container=lxc
    assert set(t["env"]) - LXC_ONLY == set(o["env"]) - {"HOSTNAME=peer", "HOME=/www"}
    assert {"FOO=bar", "PATH=/bin"} <= set(o["env"])
