"""When each part of ``console.log`` was written: ``logs -t`` and ``logs --since``.

``console.log`` stays the process's raw output (``lxc-execute`` writes it
directly, so the container never depends on a reader staying alive, and
older lxcri versions and people reading the file see what they always saw).
Beside it the supervisor keeps ``console.times``: a line ``OFFSET TIME_NS``
each time the file has grown, polled every ``POLL`` seconds. A log line
gets the time of the poll that first saw its first byte, so a time stamp is
at most ``POLL`` late; output written before this file existed (an older
lxcri) has no time stamp.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lxcri_core.errors import BackendError

TIMES = "console.times"
POLL = 0.1


class LogStamper:
    """A thread noting in ``console.times`` when ``console.log`` grew."""

    def __init__(self, sdir: Path, poll: float = POLL) -> None:
        self.log, self.times, self.poll = sdir / "console.log", sdir / TIMES, poll
        self._seen = self._size()  # what is there already was stamped by an earlier run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-stamper")

    def start(self) -> LogStamper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._note()  # what came with the exit

    def _size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self._note()

    def _note(self) -> None:
        size = self._size()
        if size < self._seen:  # truncated or replaced: start over from its start
            self._seen = 0
        if size > self._seen:
            with contextlib.suppress(OSError), open(self.times, "a") as f:
                f.write(f"{self._seen} {datetime.now(UTC).timestamp() * 1e9:.0f}\n")
            self._seen = size


@dataclass(frozen=True)
class Stamp:
    offset: int
    time_ns: int


def parse_times(text: str) -> list[Stamp]:
    """``console.times``, sorted by offset; a torn last line is ignored."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            out.append(Stamp(int(parts[0]), int(parts[1])))
    out.sort(key=lambda s: s.offset)
    return out


def read_times(sdir: Path) -> list[Stamp] | None:
    """The stamps, or None when the container's output has none (an older lxcri)."""
    try:
        return parse_times((sdir / TIMES).read_text())
    except FileNotFoundError:
        return None


def stamped_lines(
    data: bytes, stamps: list[Stamp], base: int = 0
) -> list[tuple[int | None, bytes]]:
    """Split ``data`` (read from offset ``base``) into lines with their time (ns) or None."""
    offsets = [s.offset for s in stamps]
    out: list[tuple[int | None, bytes]] = []
    pos = 0
    for line in data.splitlines(keepends=True):
        i = bisect.bisect_right(offsets, base + pos) - 1
        out.append((stamps[i].time_ns if i >= 0 else None, line))
        pos += len(line)
    return out


def format_time(time_ns: int) -> str:
    """RFC 3339 with nanoseconds in UTC, as ``docker logs -t`` prints it."""
    secs, nanos = divmod(time_ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime | None = None) -> int:
    """``--since``: RFC 3339 (``2026-11-30T10:00:00Z``, a date, an offset), a Unix time, or
    a duration ago (``10m``, ``1h30m``, ``45s``); the time in ns since the epoch."""
    now = now or datetime.now(UTC)
    value = text.strip()
    if value and _RELATIVE.sub("", value) == "":
        secs = sum(float(n) * _UNITS[u] for n, u in _RELATIVE.findall(value))
        return _ns(now - timedelta(seconds=secs))
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return int(float(value) * 1e9)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BackendError(
            f"--since {text!r}: give a time (2026-11-30T10:00:00Z) or a duration (10m, 1h30m)"
        ) from None
    if when.tzinfo is None:  # docker reads a time without an offset as local time
        when = when.astimezone()
    return _ns(when)


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
