"""Locks and signal handling shared by create and remove: one name at a time, SIGTERM unwinds."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from lxcri_core.config import Config
from lxcri_core.containers.record import (
    containers_dir,
)
from lxcri_core.fsutil import flocked
from lxcri_core.log import get_logger

log = get_logger(__name__)


def _name_lock(cfg: Config, name: str) -> contextlib.AbstractContextManager[None]:
    """Serialises create and remove of one container name (lock files stay: unlinking
    a lock file another process waits on would give two holders)."""
    return flocked(containers_dir(cfg.root) / ".locks" / name)


@contextlib.contextmanager
def _term_raises() -> Iterator[None]:
    """Turn SIGTERM into an exception for the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class _Terminated(Exception):
    """SIGTERM arrived while a foreground container ran."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated()
