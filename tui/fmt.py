"""Cell text for people: sizes, uptimes, percentages; and text a container controls
made harmless before it reaches the terminal."""

from __future__ import annotations

import re
from datetime import datetime

from rich.text import Text

#: C0/C1 control characters (ESC starts terminal escape sequences) but tab
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def safe(text: object) -> Text:
    """``text`` as a rich Text: never parsed as markup (a container's interface name,
    log line or label could hold ``[link=...]``), control characters shown as ``\\xNN``
    so they never reach the terminal as escape sequences."""
    s = "" if text is None else str(text)
    return Text(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s), no_wrap=True)


def safe_str(text: object) -> str:
    return safe(text).plain


def human_size(n: int | float | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def percent(p: float | None) -> str:
    return "-" if p is None else f"{p:.1f}%"


def uptime(started_at: str, now: datetime) -> str:
    """``3d 4h``, ``5m 2s``: how long since ``started_at`` (ISO 8601), '' if unknown."""
    if not started_at:
        return ""
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if start.tzinfo is None or now.tzinfo is None:
        start, now = start.replace(tzinfo=None), now.replace(tzinfo=None)
    secs = max(0, int((now - start).total_seconds()))
    d, rest = divmod(secs, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    if d:
        return f"{d}d {h}h"
    if h:
        return f"{h}h {m}m"
    return f"{m}m {s}s" if m else f"{s}s"
