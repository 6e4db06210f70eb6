"""Running host tools (``nft``, ``ip``, ``zfs``, ``cp``, ``lxc-*``): one runner, injectable.

Code that drives a tool takes ``run: Runner`` (default: a ``SubprocessRunner``
raising its package's error class) and treats the call as data: argv in, a
``CmdResult`` out. A non-zero exit is a result, not an exception, so callers
decide what a failure means (``checked``/``output`` turn it into their domain
error); only "the tool is missing" and "it hung" raise, since no caller can
use a result then. Tests pass a recording runner and never start a process.
"""

from __future__ import annotations

from lxcri_core.errors import LxcriError
from lxcri_core.log import get_logger

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Protocol

# Plain classes, no dataclasses and no subprocess at import: this module is on
# the LXC hook's path, where importing dataclasses alone costs ~13 ms.

log = get_logger(__name__)


class CmdResult:
    """What a finished command left behind (the fields of ``CompletedProcess`` lxcri reads)."""

    __slots__ = ("returncode", "stderr", "stdout")

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def _key(self) -> tuple[int, str, str]:
        return (self.returncode, self.stdout, self.stderr)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CmdResult) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"CmdResult(returncode={self.returncode!r}, stdout={self.stdout!r}, "
            f"stderr={self.stderr!r})"
        )


if TYPE_CHECKING:

    class Runner(Protocol):
        """``run(argv, stdin_text) -> CmdResult``; never raises for a non-zero exit."""

        def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult: ...

else:

    class Runner:
        """``run(argv, stdin_text) -> CmdResult``; never raises for a non-zero exit (a
        Protocol for type checkers; at run time a plain name: typing is not imported)."""


class SubprocessRunner:
    """The default ``Runner``: no shell, output captured as text, bounded time.

    ``error`` is the caller's domain error (NetworkError, StorageError, ...),
    raised when the program is missing (with ``install_hint``) or runs longer
    than ``timeout`` seconds.
    """

    __slots__ = ("cwd", "error", "install_hint", "timeout")

    def __init__(
        self,
        error: type[LxcriError] = LxcriError,
        install_hint: str = "install it",
        timeout: float = 60.0,
        cwd: Path | None = None,
    ) -> None:
        self.error = error
        self.install_hint = install_hint
        self.timeout = timeout
        self.cwd = cwd

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error={self.error.__name__}, "
            f"install_hint={self.install_hint!r}, timeout={self.timeout!r}, cwd={self.cwd!r})"
        )

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        import subprocess

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
