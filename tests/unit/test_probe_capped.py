"""``run_capped`` (the healthcheck's runner) with real processes, and lxc-attach's
command line for an older container's shim: no env value on it."""

from __future__ import annotations

import time
from pathlib import Path

from lxcri_core.containers import lxc
from lxcri_core.containers.probe import run_capped


def test_output_keeps_the_last_bytes_only() -> None:
    rc, out = run_capped(["sh", "-c", "printf 'a%.0s' $(seq 5000); echo -n END; exit 3"], None, 10)
    assert rc == 3 and len(out) == 4096 and out.endswith("aaaEND")


def test_a_probe_printing_without_end_is_killed_at_the_cap() -> None:
    t = time.monotonic()
    rc, out = run_capped(["cat", "/dev/zero"], None, 30, cap=1 << 20)
    assert rc == -1 and "exceeded 1048576 bytes" in out
    assert time.monotonic() - t < 10


def test_the_timeout_kills_a_quiet_probe_and_what_it_started() -> None:
    t = time.monotonic()
    rc, out = run_capped(["sh", "-c", "sleep 30 & sleep 30"], None, 0.5)
    assert rc == -1 and "timeout (0.5s)" in out
    assert time.monotonic() - t < 5


def test_a_probe_that_cannot_start_is_one_line() -> None:
    rc, out = run_capped(["/nonexistent/probe"], None, 5)
    assert rc == -1 and "could not run /nonexistent/probe" in out


def test_attach_for_an_old_shim_keeps_values_off_argv() -> None:
    argv, env = lxc.attach_argv(
        "c", Path("/x"), ["true"], ["DB_PASSWORD=s3cr3t", "PATH=/bin", "LD_PRELOAD=/l.so"], 0, 0
    )
    assert not any("s3cr3t" in a for a in argv)
    i = argv.index("DB_PASSWORD")
    assert argv[i - 1] == "--keep-var"
    assert env["DB_PASSWORD"] == "s3cr3t" and env["PATH"] == "/bin"
    # the host's lxc-attach never runs with the container's loader variables
    assert "LD_PRELOAD" not in env and "LD_PRELOAD=/l.so" in argv
    assert argv[0].startswith("/")  # found on the host's PATH, not the container's
