"""``ps --filter KEY=VALUE``: which containers a filter keeps (pure, as docker does it).

Keys, as in ``docker ps``:

- ``name=TEXT``          the name contains TEXT (docker matches a regular
                         expression; a substring is what people type);
- ``id=PREFIX``          the id starts with PREFIX;
- ``status=STATE``       created, running, paused, restarting or exited;
- ``label=KEY``          the label KEY is set (to anything);
  ``label=KEY=VALUE``    ... to exactly VALUE;
- ``ancestor=IMAGE``     made from IMAGE: a reference in any docker form
                         (``busybox`` means ``docker.io/library/busybox:latest``),
                         or a manifest digest or a prefix of one (4+ hex digits).

Several values of one key: any of them; different keys: all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from lxcri_core.errors import SpecError

KEYS = ("name", "id", "status", "label", "ancestor")
STATES = ("created", "running", "paused", "restarting", "exited")
_HEX = re.compile(r"(sha256:)?[0-9a-f]{4,64}")

Filters = Mapping[str, Sequence[str]]


class Filterable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def image_digest(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """``["label=a=b", "status=exited"]`` -> ``{"label": ["a=b"], "status": ["exited"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in KEYS:
            raise SpecError(
                f"--filter {item!r}: expected KEY=VALUE with KEY one of {', '.join(KEYS)}"
            )
        if key == "status" and value not in STATES:
            raise SpecError(f"--filter {item!r}: status is one of {', '.join(STATES)}")
        if key in ("label", "ancestor", "id") and not value:
            raise SpecError(f"--filter {item!r}: give a value after '='")
        out.setdefault(key, []).append(value)
    return out


def _ancestor(value: str, image: str, digest: str) -> bool:
    from lxcri_core.errors import ReferenceError_
    from lxcri_core.reference import parse_reference

    if _HEX.fullmatch(value):
        hexpart = value.removeprefix("sha256:")
        if digest.removeprefix("sha256:").startswith(hexpart):
            return True
    try:
        want = parse_reference(value)
        have = parse_reference(image)
    except ReferenceError_:
        return value == image
    if want.digest:
        return want.digest == digest
    return (want.name, want.tag) == (have.name, have.tag)


def _one(key: str, value: str, c: Filterable) -> bool:
    if key == "name":
        return value in c.name
    if key == "id":
        return c.id.startswith(value)
    if key == "status":
        return c.status == value
    if key == "label":
        k, sep, v = value.partition("=")
        return k in c.labels and (not sep or c.labels[k] == v)
    return _ancestor(value, c.image, c.image_digest)


def matches(c: Filterable, filters: Filters) -> bool:
    return all(any(_one(key, v, c) for v in values) for key, values in filters.items())
