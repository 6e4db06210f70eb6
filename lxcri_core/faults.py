"""Fault injection for the crash tests: a kill -9 at a named step of an operation.

Upgrade and rollback (every backend) call ``point(step)`` between their steps;
the tests set ``LXCRI_FAULT=step`` and check that what the kill left is finished
or undone by the next command. The real code path runs; only root, who runs
lxcri, can set its environment."""

from __future__ import annotations

import os
import signal

ENV = "LXCRI_FAULT"


def point(step: str) -> None:
    """SIGKILL this process here when ``LXCRI_FAULT`` names ``step``."""
    if os.environ.get(ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
