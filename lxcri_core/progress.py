"""Progress reporting for long transfers, without any UI library.

The core reports through this small protocol; the CLI implements it with
rich progress bars on a TTY, and everything else gets the silent default.
Implementations must be thread-safe: parallel layer downloads call them
from worker threads.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives per-item progress (one item per blob, keyed by its digest)."""

    def start(self, key: str, total: int | None, description: str) -> None:
        """An item of ``total`` bytes (None: unknown) begins; again for a known key
        means it restarts from zero (a download that had to start over)."""

    def advance(self, key: str, n: int) -> None:
        """``n`` more bytes of the item were transferred."""

    def finish(self, key: str) -> None:
        """The item is complete (or was already present)."""


class NullProgress:
    """Reports nothing: the default when no one is watching."""

    def start(self, key: str, total: int | None, description: str) -> None:
        pass

    def advance(self, key: str, n: int) -> None:
        pass

    def finish(self, key: str) -> None:
        pass
