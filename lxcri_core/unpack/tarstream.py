"""A streaming tar reader: ustar, GNU long names and PAX headers, nothing more.

tarfile builds a TarInfo per member and re-reads through layers of
buffering; this reader parses the 512-byte headers itself from large chunks
and hands file data straight to ``os.write``. Names stay bytes (tar names
are bytes; no decoding cost and no surprises with non-UTF-8 names).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxcri_core.errors import UnpackError

BLOCK = 512
#: A PAX or GNU long-name header larger than this is hostile, not a long name.
MAX_META = 1 << 20

REG, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_REG_ALIASES = {b"\0": REG, b"7": REG}


@dataclass(slots=True)
class Header:
    """One member: its type, metadata and (for regular files) the size of its data."""

    name: bytes
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: bytes
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes] = field(default_factory=dict)


def show(name: bytes) -> str:
    """A name for messages: printable, undecodable bytes escaped."""
    return name.decode("utf-8", "backslashreplace")


def _num(field_: bytes, what: str) -> int:
    if field_ and field_[0] & 0x80:
        # GNU base-256: big-endian two's complement, first byte 0x80 or 0xff.
        n = int.from_bytes(field_[1:], "big")
        if field_[0] == 0xFF:
            n -= 1 << (8 * (len(field_) - 1))
        return n
    text = field_.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise UnpackError(f"corrupt tar header: bad {what} field {field_!r}") from None


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156]
    try:
        want = int(stored.split(b"\0", 1)[0].strip(b" ") or b"0", 8)
    except ValueError:
        return False
    s = sum(block) - sum(stored) + 8 * 32
    return want == s


def parse_pax(data: bytes, what: str) -> dict[bytes, bytes]:
    """PAX records ``"<len> <key>=<value>\\n"``; values stay bytes (xattrs are binary)."""
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise UnpackError(f"corrupt PAX header in {what}") from None
        end = pos + length
        if sp < 0 or length <= 0 or end > len(data) or data[end - 1 : end] != b"\n":
            raise UnpackError(f"corrupt PAX header in {what}")
        key, eq, value = data[sp + 1 : end - 1].partition(b"=")
        if not eq:
            raise UnpackError(f"corrupt PAX record in {what}")
        out[key] = value
        pos = end
    return out


class TarReader:
    """Reads members from an iterator of byte chunks.

    After ``next()`` returns a header, the caller must consume exactly its
    data with ``copy_to`` or ``skip`` before asking for the next one.
    """

    def __init__(self, chunks: Iterator[bytes], what: str) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self._what = what
        self._global: dict[bytes, bytes] = {}
        self._left = 0  # data bytes and padding of the current member not yet consumed

    def _fill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                rest = self._buf[self._pos :]
                self._buf = rest + chunk if rest else chunk
                self._pos = 0
                return True
        return False

    def read(self, n: int) -> bytes:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                raise UnpackError(f"{self._what}: tar stream is truncated")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def skip_raw(self, n: int) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise UnpackError(f"{self._what}: tar stream is truncated")
                continue
            k = min(avail, n)
            self._pos += k
            n -= k

    def copy_to(self, fd: int, n: int) -> None:
        """Write the next ``n`` data bytes of the current member to ``fd``."""
        if n > self._left:
            raise UnpackError(f"{self._what}: read past the end of a member")
        self._left -= n
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._fill():
                    raise UnpackError(f"{self._what}: tar stream is truncated")
                continue
            k = min(avail, n)
            view = memoryview(self._buf)[self._pos : self._pos + k]
            while view:
                w = os.write(fd, view)
                view = view[w:]
            self._pos += k
            n -= k

    def drain(self) -> None:
        """Consume what follows the end-of-archive marker (it is hashed too)."""
        self._buf, self._pos = b"", 0
        for _ in self._chunks:
            pass

    def _meta(self, size: int, kind: str) -> bytes:
        if size > MAX_META:
            raise UnpackError(f"{self._what}: {kind} header of {size} bytes is too large")
        data = self.read(size)
        self.skip_raw(-size % BLOCK)
        return data

    def next(self) -> Header | None:
        """The next member, or ``None`` at the end of the archive."""
        if self._left:
            self.skip_raw(self._left)
            self._left = 0
        pax: dict[bytes, bytes] = {}
        long_name = long_link = None
        while True:
            if len(self._buf) - self._pos < BLOCK and not self._fill_to(BLOCK):
                # EOF without the end-of-archive blocks: accepted as GNU tar does,
                # but only on a block boundary (a cut header is truncation).
                if len(self._buf) - self._pos:
                    raise UnpackError(f"{self._what}: tar stream is truncated")
                if pax or long_name is not None or long_link is not None:
                    raise UnpackError(f"{self._what}: tar stream ends after an extended header")
                return None
            block = self.read(BLOCK)
            if block.count(0) == BLOCK:
                return None
            if not _checksum_ok(block):
                near = show(block[:100].split(b"\0", 1)[0])
                raise UnpackError(f"{self._what}: corrupt tar header (bad checksum) near {near!r}")
            typ = block[156:157]
            size = _num(block[124:136], "size")
            if size < 0:
                raise UnpackError(f"{self._what}: negative member size")
            if typ == b"x":
                pax.update(parse_pax(self._meta(size, "PAX"), self._what))
                continue
            if typ == b"g":
                self._global.update(parse_pax(self._meta(size, "PAX"), self._what))
                continue
            if typ == b"L":
                long_name = self._meta(size, "GNU long name").split(b"\0", 1)[0]
                continue
            if typ == b"K":
                long_link = self._meta(size, "GNU long link").split(b"\0", 1)[0]
                continue
            return self._header(block, typ, size, pax, long_name, long_link)

    def _fill_to(self, n: int) -> bool:
        while len(self._buf) - self._pos < n:
            if not self._fill():
                return False
        return True

    def _header(
        self,
        block: bytes,
        typ: bytes,
        size: int,
        pax: dict[bytes, bytes],
        long_name: bytes | None,
        long_link: bytes | None,
    ) -> Header:
        if self._global:
            pax = {**self._global, **pax}
        name = block[0:100].split(b"\0", 1)[0]
        if block[257:263] == b"ustar\0":
            prefix = block[345:500].split(b"\0", 1)[0]
            if prefix:
                name = prefix + b"/" + name
        if long_name is not None:
            name = long_name
        link = long_link if long_link is not None else block[157:257].split(b"\0", 1)[0]
        typ = _REG_ALIASES.get(typ, typ)
        if typ == REG and name.endswith(b"/"):
            typ = DIR  # old tars mark directories by a trailing slash only
        h = Header(
            name=name,
            type=typ,
            mode=_num(block[100:108], "mode") & 0o7777,
            uid=_num(block[108:116], "uid"),
            gid=_num(block[116:124], "gid"),
            size=size,
            mtime_ns=_num(block[136:148], "mtime") * 1_000_000_000,
            linkname=link,
            devmajor=_num(block[329:337], "devmajor") if typ in (CHAR, BLOCKDEV) else 0,
            devminor=_num(block[337:345], "devminor") if typ in (CHAR, BLOCKDEV) else 0,
        )
        if pax:
            self._apply_pax(h, pax)
        if h.type not in (REG, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO):
            raise UnpackError(
                f"{self._what}: entry {show(h.name)!r} has unsupported tar type {h.type!r} "
                "(sparse, multi-volume and vendor types are not allowed in layers)"
            )
        # Only regular files carry data; other types' data is skipped unread.
        self._left = h.size + (-h.size % BLOCK)
        if h.type != REG:
            h.size = 0
        return h

    def _apply_pax(self, h: Header, pax: dict[bytes, bytes]) -> None:
        try:
            for key, value in pax.items():
                if key == b"path":
                    h.name = value
                elif key == b"linkpath":
                    h.linkname = value
                elif key == b"size":
                    h.size = int(value)
                elif key == b"uid":
                    h.uid = int(value)
                elif key == b"gid":
                    h.gid = int(value)
                elif key == b"mtime":
                    h.mtime_ns = _pax_time_ns(value)
                elif key.startswith(b"SCHILY.xattr."):
                    h.xattrs[key[13:].decode("utf-8", "surrogateescape")] = value
                elif key.startswith(b"GNU.sparse."):
                    raise UnpackError(
                        f"{self._what}: entry {show(h.name)!r} is a sparse file, "
                        "which layers must not contain"
                    )
        except ValueError:
            raise UnpackError(f"{self._what}: entry {show(h.name)!r} has a bad PAX value") from None
        if h.size < 0 or h.uid < 0 or h.gid < 0:
            raise UnpackError(f"{self._what}: entry {show(h.name)!r} has a negative PAX value")


def _pax_time_ns(value: bytes) -> int:
    whole, _, frac = value.partition(b".")
    neg = whole.startswith(b"-")
    ns = abs(int(whole)) * 1_000_000_000 + int((frac + b"000000000")[:9] or b"0")
    return -ns if neg else ns
