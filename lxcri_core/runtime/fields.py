"""Reading config.json's fields: each reader names the field in the error it raises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lxcri_core.errors import SpecError


def bad(path: str, why: str) -> SpecError:
    return SpecError(f"config.json: {path}: {why}")


def obj(doc: Any, path: str) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise bad(path, "must be an object")
    return doc


def items(doc: Any, path: str) -> list[Any]:
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise bad(path, "must be a list")
    return doc


def text(v: Any, path: str) -> str:
    if not isinstance(v, str):
        raise bad(path, "must be a string")
    if "\0" in v or "\n" in v:
        raise bad(path, "holds a NUL byte or a newline")
    return v


def argv_items(v: Any, path: str) -> tuple[str, ...]:
    """argv or environment entries: any text but NUL (the shim reads them NUL-separated)."""
    out = []
    for i, x in enumerate(items(v, path)):
        if not isinstance(x, str):
            raise bad(f"{path}[{i}]", "must be a string")
        if "\0" in x:
            raise bad(f"{path}[{i}]", "holds a NUL byte")
        out.append(x)
    return tuple(out)


def integer(v: Any, path: str, lo: int = -(2**63), hi: int = 2**64 - 1) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise bad(path, f"must be an integer in [{lo}, {hi}]")
    return v


def texts(v: Any, path: str) -> tuple[str, ...]:
    return tuple(text(x, f"{path}[{i}]") for i, x in enumerate(items(v, path)))


def unsupported(doc: Mapping[str, Any], keys: Sequence[str], prefix: str, why: str) -> None:
    for k in keys:
        if doc.get(k) not in (None, {}, [], ""):
            raise bad(f"{prefix}{k}", why)
