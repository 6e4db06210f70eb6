"""Frozen dataclasses to JSON and back (ContainerSpec and what it holds).

``dataclasses.asdict`` gives the JSON side; ``from_dict`` rebuilds the
nested dataclasses from their type hints, turning lists back into tuples.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


def to_dict(obj: Any) -> Any:
    return dataclasses.asdict(obj)


def _convert(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(arg, value)
            except (TypeError, ValueError, KeyError):
                continue
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_dict(tp, value)
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value, strict=True))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return dict(value)
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise ValueError(f"{value!r} is not one of {get_args(tp)}")
        return value
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild dataclass ``cls`` from ``to_dict`` output; unknown keys are ignored."""
    if not isinstance(data, Mapping):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    kw = {name: _convert(tp, data[name]) for name, tp in _fields(cls) if name in data}  # type: ignore[arg-type]
    return cls(**kw)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, type) of each field: ``get_type_hints`` evaluates every annotation string
    and was most of the time of listing hundreds of records; the classes do not change."""
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
