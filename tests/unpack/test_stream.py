"""The layer decompressors on input that arrives in pieces (pipes, sockets)."""

from __future__ import annotations

import gzip
import io
import os
from typing import Any, BinaryIO, cast

import pytest

from lxcri_core.errors import UnpackError
from lxcri_core.unpack.stream import CODECS, OUT_SIZE


class ShortReads(io.RawIOBase):
    """A reader returning at most ``n`` bytes per read, as a pipe may."""

    def __init__(self, data: bytes, n: int) -> None:
        self.data, self.pos, self.n = data, 0, n

    def readable(self) -> bool:
        return True

    def read(self, size: Any = -1) -> bytes:
        k = self.n if size is None or size < 0 else min(size, self.n)
        out = self.data[self.pos : self.pos + k]
        self.pos += len(out)
        return out


def inflate(blob: bytes, n: int) -> bytes:
    return b"".join(CODECS["gzip"](cast(BinaryIO, ShortReads(blob, n)), "layer"))


@pytest.mark.timeout(60)
def test_every_member_boundary_position_across_reads() -> None:
    """The next member's magic may start at, or straddle, a read boundary."""
    one, two = os.urandom(3000), b"z" * 5000
    first = gzip.compress(one)
    blob = first + gzip.compress(two) + gzip.compress(b"")
    for n in range(len(first) - 3, len(first) + 4):
        assert inflate(blob, n) == one + two, n
    assert inflate(blob, 1) == one + two


@pytest.mark.timeout(60)
def test_member_ending_in_the_unconsumed_tail_is_fed_once() -> None:
    data = [b"\0" * (OUT_SIZE + 777), b"second member", b"\0" * (2 * OUT_SIZE), b"end"]
    blob = b"".join(gzip.compress(d) for d in data)
    for n in (len(blob), 1 << 20, 1000, 7):
        assert inflate(blob, n) == b"".join(data), n


def test_zero_padding_after_the_last_member_only() -> None:
    blob = gzip.compress(b"a") + b"\0" * 3000
    assert inflate(blob, 1000) == b"a"
    with pytest.raises(UnpackError, match="garbage after the end"):
        inflate(blob + gzip.compress(b"b"), 1000)
    with pytest.raises(UnpackError, match="garbage after the end"):
        inflate(gzip.compress(b"a") + b"x", 1000)
    with pytest.raises(UnpackError, match="garbage after the end"):
        inflate(gzip.compress(b"a") + b"\x1f\x8c", 1000)


def test_truncated_and_empty_streams() -> None:
    blob = gzip.compress(os.urandom(10_000))
    for cut in (0, 5, 100, len(blob) - 1):
        with pytest.raises(UnpackError, match="truncated"):
            inflate(blob[:cut], 64)
