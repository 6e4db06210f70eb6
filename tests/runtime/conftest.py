"""Fixtures for ``lxcri-runtime``: a runtime root, bundles, and the shim's part.

containerd's shim is a child subreaper: ``runc create`` exits and the
container's process becomes the shim's child, which reaps it and so learns
its exit status. The ``rt`` fixture makes the test process that subreaper
(for the test's duration), so a test sees the status exactly as the shim
does. The runtime runs as the installed console script, a real process.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.ocibundle import base_config, make_bundle

REPO = Path(__file__).resolve().parent.parent.parent
#: The console script (the trixie root's launcher there, tests/trixie/inside).
RUNTIME = os.environ.get("LXCRI_TEST_RUNTIME_EXE") or str(REPO / ".venv" / "bin" / "lxcri-runtime")
BASE = Path("/var/tmp/lxcri-tests")
PR_SET_CHILD_SUBREAPER = 36


def _subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@dataclass
class Rt:
    """One runtime root and the bundles of a test."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    def run(
        self, *args: str, check: bool = True, stdout: Any = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [
                RUNTIME,
                "--root",
                str(self.root),
                "--log",
                str(self.base / "log.json"),
                "--log-format",
                "json",
                *args,
            ],
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"lxcri-runtime {' '.join(args)}: {proc.stderr}")
        return proc

    def bundle(self, name: str, config: dict[str, Any] | None = None, **process: Any) -> Path:
        cfg = config or base_config()
        cfg["process"].update(process)
        return make_bundle(self.base / name, cfg)

    def state(self, cid: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.run("state", cid).stdout)
        return doc

    def create(self, cid: str, bundle: Path, out: Path | None = None) -> int:
        """``create`` with the process's stdout and stderr going to ``out``; its pid.

        Files, not pipes: the process keeps the runtime's stdio (as runc's does),
        so a pipe would stay open until the container ends."""
        pid_file = self.base / f"{cid}.pid"
        err = self.base / f"{cid}.create.err"
        with open(out or os.devnull, "wb") as f, open(err, "wb") as e:
            proc = subprocess.run(
                [
                    RUNTIME,
                    "--root",
                    str(self.root),
                    "create",
                    "--bundle",
                    str(bundle),
                    "--pid-file",
                    str(pid_file),
                    cid,
                ],
                stdout=f,
                stderr=e,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
        if proc.returncode != 0:
            raise AssertionError(f"create {cid}: {err.read_text()}")
        return int(pid_file.read_text())

    def wait_exit(self, pid: int, timeout: float = 30) -> int:
        """The exit status of the container's process (we are its subreaper)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got, status = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        raise AssertionError(f"process {pid} still runs after {timeout}s")

    def last_log_error(self) -> dict[str, Any]:
        lines = (self.base / "log.json").read_text().splitlines()
        doc: dict[str, Any] = json.loads(lines[-1])
        return doc


def _cleanup(rt: Rt) -> None:
    if rt.root.is_dir():
        for cid in os.listdir(rt.root):
            if (rt.root / cid / "state").exists():
                rt.run("delete", "--force", cid, check=False)
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:  # what became ours as the subreaper
            pass


@pytest.fixture
def rt() -> Iterator[Rt]:
    if shutil.which("lxc-execute") is None:
        pytest.fail("lxc-execute is not installed (run `make deps`)")
    BASE.mkdir(mode=0o711, parents=True, exist_ok=True)
    base = BASE / f"rt-{secrets.token_hex(4)}"
    base.mkdir(mode=0o711)
    _subreaper(True)
    r = Rt(base)
    try:
        yield r
    finally:
        _cleanup(r)
        _subreaper(False)
        shutil.rmtree(base, ignore_errors=True)
