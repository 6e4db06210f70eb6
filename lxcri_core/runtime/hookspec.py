"""One OCI hook as the runtime keeps it (apart from the translation: ``start`` and
``delete`` read hooks without importing the spec model)."""

from __future__ import annotations

from typing import NamedTuple


class Hook(NamedTuple):
    """One OCI hook: the program, its argv and environment, a timeout in seconds."""

    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None
