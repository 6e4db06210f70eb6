"""Running host tools (``nft``, ``ip``, ``zfs``, ``cp``, ``lxc-*``): one runner, injectable.

Code that drives a tool takes ``run: Runner`` (default: a ``SubprocessRunner``
raising its package's error class) and treats the call as data: argv in, a
``CmdResult`` out. A non-zero exit is a result, not an exception, so callers
decide what a failure means (``checked``/``output`` turn it into their domain
error); only "the tool is missing" and "it hung" raise, since no caller can
use a result then. Tests pass a recording runner and never start a process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lxcri_core.errors import LxcriError
from lxcri_core.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class CmdResult:
    """What a finished command left behind (the fields of ``CompletedProcess`` lxcri reads)."""

    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """``run(argv, stdin_text) -> CmdResult``; never raises for a non-zero exit."""

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult: ...


@dataclass(frozen=True)
class SubprocessRunner:
    """The default ``Runner``: no shell, output captured as text, bounded time.

    ``error`` is the caller's domain error (NetworkError, StorageError, ...),
    raised when the program is missing (with ``install_hint``) or runs longer
    than ``timeout`` seconds.
    """

    error: type[LxcriError] = LxcriError
    install_hint: str = "install it"
    timeout: float = 60.0
    cwd: Path | None = None

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        log.debug("run", argv=list(argv))
        try:
            proc = subprocess.run(
                list(argv),
                input=stdin,
                cwd=self.cwd,
                capture_output=True,
                text=True,
                check=False,
                timeout=self.timeout,
            )
        except FileNotFoundError:
            raise self.error(f"{argv[0]} is not installed; {self.install_hint}") from None
        except subprocess.TimeoutExpired:
            raise self.error(
                f"`{' '.join(argv)}` did not finish within {self.timeout:g} s"
            ) from None
        return CmdResult(proc.returncode, proc.stdout, proc.stderr)


def failure_detail(result: CmdResult) -> str:
    """The line that says why a command failed.

    nft prints ``Error: ...`` then the offending input and a caret line: that
    first ``Error`` line; otherwise every stderr (or stdout) line, joined.
    """
    lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error")]
    if errors:
        return errors[0]
    return "; ".join(lines) or f"exit status {result.returncode}"


def checked(result: CmdResult, what: str, error: type[LxcriError] = LxcriError) -> str:
    """``result.stdout``, or ``error`` saying ``what`` failed and why."""
    if result.returncode != 0:
        raise error(f"{what} failed: {failure_detail(result)}")
    return result.stdout


def output(run: Runner, argv: Sequence[str], error: type[LxcriError] = LxcriError) -> str:
    """Run ``argv`` with ``run``; its stdout, or ``error`` naming the command."""
    return checked(run(argv), f"`{' '.join(argv)}`", error)
