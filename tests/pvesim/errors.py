"""The simulator's one error type: a failure PVE reports as an HTTP error."""

from __future__ import annotations


class PveError(Exception):
    """``code`` is the HTTP status (500 for a plain die in PVE); ``errors`` per parameter."""

    def __init__(self, msg: str, code: int = 500, errors: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.errors = errors


def param_error(key: str, msg: str) -> PveError:
    return PveError("Parameter verification failed.", 400, {key: msg})
