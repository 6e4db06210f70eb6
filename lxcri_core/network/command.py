"""The runner networking uses for ``nft`` and ``ip``: ``lxcri_core.runner`` raising NetworkError.

Builders and parsers in this package are pure; the only side effect is a
``Runner`` call, so tests can swap in a recorder and callers can batch.
"""

from __future__ import annotations

from lxcri_core import runner
from lxcri_core.errors import NetworkError
from lxcri_core.runner import CmdResult, Runner, SubprocessRunner

__all__ = ["CmdResult", "Runner", "checked", "run_cmd"]

#: The default runner of every function here that takes ``run=``.
run_cmd: Runner = SubprocessRunner(
    NetworkError,
    "install the Debian package that provides it (nftables or iproute2)",
    timeout=60,
)


def checked(result: CmdResult, what: str) -> str:
    """``result.stdout``, or a NetworkError naming ``what`` failed and why."""
    return runner.checked(result, what, NetworkError)
