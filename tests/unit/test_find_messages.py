"""`no such container` hints at id prefixes only for what could be one."""

from __future__ import annotations

from tests.conftest import invoke, lxcri_exe


def test_a_name_gets_no_id_prefix_hint():
    r = invoke("stop", "ga")
    assert r.exit_code == 1
    assert r.stderr.strip() == "lxcri: error: no such container: ga (see `lxcri ps -a`)"


def test_a_short_hex_string_gets_the_hint():
    r = invoke("inspect", "--type", "container", "ab1")
    assert r.exit_code == 1
    assert "no such container: ab1 (an id prefix needs at least 4 characters)" in r.stderr


def test_a_closed_pipe_is_no_error():
    """`lxcri images | head -1` says nothing about a broken pipe."""
    import os
    import subprocess
    from pathlib import Path

    exe = Path(lxcri_exe())
    # `true` has left before lxcri (100 ms to start) writes its first line
    code = f"{exe} images | true; {exe} ps -a | true; {exe} list | true"
    proc = subprocess.run(["sh", "-c", code], capture_output=True, text=True, env=os.environ)
    assert proc.stderr == ""
