"""The runner networking uses for ``nft`` and ``ip``: ``lxcri_core.runner`` raising NetworkError.

Builders and parsers in this package are pure; the only side effect is a
``Runner`` call, so tests can swap in a recorder and callers can batch.
"""

from __future__ import annotations

from lxcri_core import runner
from lxcri_core.errors import NetworkError
from lxcri_core.runner import CmdResult, Runner, SubprocessRunner

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~3.5 ms a hook)
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["CmdResult", "NftRunner", "Runner", "checked", "json_lines", "run_cmd"]


class NftRunner(SubprocessRunner):
    """A SubprocessRunner that runs lxcri's ``nft -j`` calls in-process through
    libnftables (``nftlib``: no nft process per hook), the rest as processes."""

    __slots__ = ()

    def __call__(self, argv: Sequence[str], stdin: str | None = None, /) -> CmdResult:
        if argv and argv[0] == "nft":
            from lxcri_core.network import nftlib

            done = nftlib.run(argv, stdin)
            if done is not None:
                return CmdResult(*done)
        return super().__call__(argv, stdin)


#: The default runner of every function here that takes ``run=``.
run_cmd: Runner = NftRunner(
    NetworkError,
    "install the Debian package that provides it (nftables or iproute2)",
    timeout=60,
)


def checked(result: CmdResult, what: str) -> str:
    """``result.stdout``, or a NetworkError naming ``what`` failed and why."""
    return runner.checked(result, what, NetworkError)


def json_lines(text: str, what: str) -> list[Any]:
    """One JSON document per non-blank line (``ip -j -batch``, ``ovs-vsctl`` with several
    commands); a line that is not JSON is one NetworkError naming ``what``."""
    import json

    docs: list[Any] = []
    for line in text.splitlines():
        if line.strip():
            try:
                docs.append(json.loads(line))
            except ValueError as e:
                raise NetworkError(f"cannot parse {what}: {e}") from None
    return docs
