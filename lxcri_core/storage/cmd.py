"""The runner the storage backends use for ``zfs`` and ``cp``: ``lxcri_core.runner``
raising StorageError."""

from __future__ import annotations

from collections.abc import Sequence

from lxcri_core import runner
from lxcri_core.errors import StorageError
from lxcri_core.runner import Runner, SubprocessRunner

__all__ = ["Runner", "output", "run_cmd"]

#: The default runner of every function here that takes ``run=`` (copies may be large).
run_cmd: Runner = SubprocessRunner(
    StorageError, "install it or pick another storage backend", timeout=600
)


def output(argv: Sequence[str], run: Runner = run_cmd) -> str:
    """The stdout of ``argv``; a failure is a StorageError naming the command."""
    return runner.output(run, argv, StorageError)
