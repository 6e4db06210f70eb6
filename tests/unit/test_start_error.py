"""Telling a failed start from a process that exited non-zero, from recorded lxc.log lines."""

from __future__ import annotations

import shutil
from pathlib import Path

from lxcri_core.containers.engine import start_error

DATA = Path(__file__).resolve().parents[1] / "data" / "lxc"


def test_lxc_execute_errors_are_a_failed_start(tmp_path):
    shutil.copy(DATA / "start-failed.log", tmp_path / "lxc.log")
    assert start_error(tmp_path, 0) == "Script exited with status 1"
    (tmp_path / "hooks.log").write_text("2026-11-29T02:02:20 pre-start: FAILED: false:\n")
    assert start_error(tmp_path, 0) == "pre-start: FAILED: false:"


def test_errors_of_other_lxc_tools_and_old_lines_are_not(tmp_path):
    old = (DATA / "start-failed.log").read_bytes()
    (tmp_path / "lxc.log").write_bytes(old + (DATA / "info-while-stopping.log").read_bytes())
    assert start_error(tmp_path, len(old)) is None
    assert start_error(tmp_path / "missing", 0) is None


def test_namespaces_refused_is_a_failed_start_with_a_hint(tmp_path):
    """Recorded in a chroot: lxc-execute cannot clone the namespaces."""
    shutil.copy(DATA / "clone-failed.log", tmp_path / "lxc.log")
    why = start_error(tmp_path, 0)
    assert why is not None
    assert why.startswith("Operation not permitted - Failed to clone a new set of namespaces; ")
    assert "chroot" in why and "user namespaces" in why


def test_tear_down_errors_after_the_process_ran_are_not(tmp_path):
    """Recorded: the bridge was deleted while the process ran; LXC's errors removing
    the veth come after the run and must not turn exit 1 into a failed start (which
    ends a restart policy)."""
    shutil.copy(DATA / "teardown-after-run.log", tmp_path / "lxc.log")
    assert start_error(tmp_path, 0) is None
