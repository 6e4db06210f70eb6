"""compose's variable interpolation in a stack file's values: ``$VAR``, ``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
``${VAR:+other}``, ``${VAR+other}``, and ``$$`` for a literal ``$``.

Without it a compose file would mean something else here than in docker compose
(a ``$$`` meant for the container's shell would reach it doubled). The values
come from lxcri's own environment, then from a ``.env`` file in the stack's
folder (read as ``env_file`` is: no symlink, no FIFO). Keys are not
interpolated, as in compose. A ``$`` followed by anything else is an error
naming the path, never passed through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxcri_core.errors import SpecError

_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"
_TOKEN = re.compile(
    rf"\$(?:(?P<dollar>\$)|(?P<bare>{_NAME})|\{{(?P<name>{_NAME})"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bad>))"
)


#: characters interpolation may produce for one file, all values together: a value
#: repeating ``${BIG}`` must not make gigabytes out of a small file
MAX_OUTPUT = 16 << 20


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_OUTPUT

    def take(self, text: str, path: str) -> str:
        self.left -= len(text)
        if self.left < 0:
            raise SpecError(f"{path}: more than {MAX_OUTPUT} characters after interpolation")
        return text


def interpolate_text(
    text: str, env: Mapping[str, str], path: str, budget: _Budget | None = None
) -> str:
    """``text`` with its variables replaced (SpecError naming ``path`` for a bad one)."""
    spend = budget or _Budget()
    if "$" not in text:
        return spend.take(text, path)

    def one(m: re.Match[str]) -> str:
        return spend.take(_value(m), path)

    def _value(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        if m.group("bare"):
            return env.get(m.group("bare"), "")
        name = m.group("name")
        if name is None:
            rest = text[m.start() : m.start() + 12]
            raise SpecError(
                f"{path}: invalid variable at {rest!r}; write $$ for a literal $, "
                "or $NAME / ${NAME}"
            )
        op, arg = m.group("op"), m.group("arg") or ""
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in ("-", ":-"):
            return arg if empty else str(value)
        if op in ("?", ":?"):
            if empty:
                raise SpecError(f"{path}: variable {name} is not set: {arg or 'required'}")
            return str(value)
        if op in ("+", ":+"):
            return "" if empty else arg
        return value or ""

    return _TOKEN.sub(one, text)


def interpolate(
    data: Any, env: Mapping[str, str], path: str = "", budget: _Budget | None = None
) -> Any:
    """A copy of the loaded document with every string value interpolated."""
    spend = budget or _Budget()
    if isinstance(data, str):
        return interpolate_text(data, env, path or "(top)", spend)
    if isinstance(data, dict):
        return {
            k: interpolate(v, env, f"{path}.{k}" if path else str(k), spend)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [interpolate(v, env, f"{path}[{i}]", spend) for i, v in enumerate(data)]
    return data


def parse_dotenv(text: str) -> dict[str, str]:
    """A ``.env`` file: ``NAME=VALUE`` lines (``export`` allowed), ``#`` comments, a value
    in matching single or double quotes taken without them."""
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        name, eq, value = line.partition("=")
        name = name.strip()
        if not eq or not re.fullmatch(_NAME, name):
            raise SpecError(f".env line {lineno}: expected NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name] = value
    return out
