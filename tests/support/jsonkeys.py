"""The --output json naming rule (plugin/cli/output.py), as a check for tests."""

from __future__ import annotations

import re
from typing import Any

SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
#: Maps whose keys are data, not lxcri's names (see plugin/cli/output.py).
VERBATIM = frozenset({"labels", "config", "history"})


def bad_keys(doc: Any, path: str = "$", verbatim: frozenset[str] = VERBATIM) -> list[str]:
    """Every key path in ``doc`` that is not snake_case; verbatim maps are skipped
    (an image's ``config`` only: a container's config is lxcri's and checked)."""
    out: list[str] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if not SNAKE.fullmatch(str(k)):
                out.append(f"{path}.{k}")
            if k in verbatim and not (k == "config" and isinstance(v, dict) and "env" in v):
                continue
            out += bad_keys(v, f"{path}.{k}", verbatim)
    elif isinstance(doc, list):
        for n, item in enumerate(doc):
            out += bad_keys(item, f"{path}[{n}]", verbatim)
    return out
