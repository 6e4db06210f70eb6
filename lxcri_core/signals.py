"""SIGTERM as an exception, so a killed command unwinds through its clean-up.

Python's default SIGTERM ends the process at once: no ``finally`` runs, and
an unpack killed mid-layer left its ``.NAME.tmp-*`` staging tree behind.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled like Ctrl-C (nothing catches it by accident)."""


def _raise(signum: int, frame: Any) -> None:
    # Further TERMs must not interrupt the clean-up this one starts (SIGKILL still can).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


@contextlib.contextmanager
def term_raises() -> Iterator[None]:
    """Turn SIGTERM into ``Terminated`` for the block (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
