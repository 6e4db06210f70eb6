"""fsutil.atomic_write: the old file or the new, private by default, no temp left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxcri_core.fsutil import atomic_write


def test_writes_replaces_and_keeps_it_private(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "state.json"
    atomic_write(p, b"one")
    assert p.read_bytes() == b"one" and p.stat().st_mode & 0o777 == 0o600
    atomic_write(str(p), b"two", mode=0o644)  # a str path too (the hooks pass one)
    assert p.read_bytes() == b"two" and p.stat().st_mode & 0o777 == 0o644
    assert os.listdir(p.parent) == ["state.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    p = tmp_path / "d" / "state.json"
    atomic_write(p, b"old")
    with pytest.raises(TypeError):
        atomic_write(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert os.listdir(p.parent) == ["state.json"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / "state.json"
    link.symlink_to(victim)
    atomic_write(link, b"new")
    assert victim.read_bytes() == b"keep"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_imports_no_tempfile(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom lxcri_core.fsutil import atomic_write\n"
        f"atomic_write({str(tmp_path / 'x')!r}, b'x')\n"
        "print('tempfile' in sys.modules, 'pathlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
