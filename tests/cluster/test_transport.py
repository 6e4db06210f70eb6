"""The node transport: ssh argv, and the pump between two real processes."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import pytest

from lxcri_core.cluster.transport import LocalNode, SshNode, pump
from lxcri_core.errors import StorageError


def test_ssh_argv_quotes_the_remote_command() -> None:
    node = SshNode("pve2", "10.0.0.2", identity=Path("/k"), known_hosts=Path("/kh"))
    argv = node.argv(["zfs", "recv", "pool/x; touch /tmp/pwned"])
    assert argv[0] == "ssh" and "BatchMode=yes" in argv and "StrictHostKeyChecking=yes" in argv
    assert "HostKeyAlias=pve2" in argv and "UserKnownHostsFile=/kh" in argv
    # the remote shell gets one string: the name stays one word
    assert argv[-3:-1] == ["root@10.0.0.2", "--"]
    assert shlex.split(argv[-1]) == ["zfs", "recv", "pool/x; touch /tmp/pwned"]


def test_pump_moves_every_byte_compressed(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.write_bytes(os.urandom(1 << 20) + bytes(3 << 20))
    out = tmp_path / "out"
    moved = pump(
        LocalNode(), ["cat", str(src)], LocalNode(), ["sh", "-c", f"cat > {out}"], compress=True
    )
    assert out.read_bytes() == src.read_bytes()
    assert moved.stream_bytes == 4 << 20 and moved.bytes < 2 << 20  # the zeros compress


def test_pump_bandwidth_limit(tmp_path: Path) -> None:
    start = time.monotonic()
    zeros = ["head", "-c", str(3 << 20), "/dev/zero"]
    moved = pump(LocalNode(), zeros, LocalNode(), ["sh", "-c", "cat >/dev/null"], bwlimit=2 << 20)
    assert moved.bytes == 3 << 20 and time.monotonic() - start >= 1.0


def test_pump_failure_names_the_side(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="`false` on localhost"):
        pump(LocalNode(), ["false"], LocalNode(), ["sh", "-c", "cat >/dev/null"])
    with pytest.raises(StorageError, match=r"exit status 3"):
        pump(
            LocalNode(), ["head", "-c", "100000", "/dev/zero"], LocalNode(), ["sh", "-c", "exit 3"]
        )
    with pytest.raises(StorageError, match="positive"):
        pump(LocalNode(), ["true"], LocalNode(), ["true"], bwlimit=0)
    # an empty stream is fine: nothing to move
    assert pump(LocalNode(), ["true"], LocalNode(), ["sh", "-c", "cat >/dev/null"]).bytes == 0
