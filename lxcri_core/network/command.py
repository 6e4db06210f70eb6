"""Running the few external tools networking needs (``nft``, ``ip``), as data.

Builders and parsers in this package are pure; the only side effect is a
``Runner`` call, so tests can swap in a recorder and callers can batch.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxcri_core.errors import NetworkError


@dataclass(frozen=True)
class CmdResult:
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str


#: ``runner(argv, stdin_text) -> CmdResult``; never raises for a non-zero exit.
Runner = Callable[[Sequence[str], "str | None"], CmdResult]


def run_cmd(argv: Sequence[str], stdin: str | None = None) -> CmdResult:
    """Run ``argv`` (no shell), feeding ``stdin``; a missing program is a NetworkError."""
    try:
        proc = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise NetworkError(
            f"{argv[0]} is not installed; install the Debian package that provides it "
            "(nftables or iproute2)"
        ) from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"{' '.join(argv)} did not finish within 60 s") from None
    return CmdResult(proc.returncode, proc.stdout, proc.stderr)


def checked(result: CmdResult, what: str) -> str:
    """``result.stdout``, or a NetworkError naming ``what`` failed and why."""
    if result.returncode != 0:
        lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
        # nft prints "Error: ..." then the offending input and a caret line.
        errors = [ln for ln in lines if ln.startswith("Error")]
        detail = (errors or lines or [f"exit status {result.returncode}"])[0]
        raise NetworkError(f"{what} failed: {detail}")
    return result.stdout
