"""Decompress a layer in a second thread, hash it as it is consumed.

zlib and zstandard release the GIL on large buffers, so decompressing in a
producer thread uses the second core while the main thread parses the tar
and makes system calls. Inflating is the longer of the two jobs, so the
diff_id hash (hashlib also releases the GIL) runs on the consumer side,
which measured a little faster than hashing in the producer. The queue is
bounded, so a decompression bomb never holds more than a few chunks.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from lxcri_core.errors import UnpackError

READ_SIZE = 1 << 20  # compressed bytes per read
OUT_SIZE = 4 << 20  # most uncompressed bytes one chunk may hold
QUEUE_DEPTH = 6
_EOF = b""


def _gzip_chunks(src: BinaryIO, what: str) -> Iterator[bytes]:
    """Inflate gzip, including multi-member streams (pigz, concatenated layers).

    After a member ends, what follows it is ``unused_data`` and nothing else:
    CPython (3.11, 3.12) can leave the same bytes in ``unconsumed_tail`` when
    the member ended in input that an earlier output limit had left over, so
    adding the two fed the next member twice, doubling at every member (a
    9 KB layer then inflated without end). Only zero padding may follow the
    last member, as GNU gzip allows.
    """
    d = zlib.decompressobj(wbits=31)
    in_member = True  # the stream must hold at least one member
    padding = False  # zeros seen after a member: only more zeros may follow
    src_done = False
    data = b""
    while True:
        if not data and not src_done:
            data = src.read(READ_SIZE)
            src_done = not data
        if not in_member:
            if not data:
                if src_done:
                    return
                continue
            rest = data.lstrip(b"\0")
            padding = padding or len(rest) != len(data)
            if not rest:
                data = b""
                continue
            if padding:
                raise UnpackError(f"{what}: garbage after the end of the gzip stream")
            if len(rest) < 2 and not src_done:
                more = src.read(READ_SIZE)  # the next member's magic spans two reads
                src_done = not more
                data = rest + more
                continue
            if not rest.startswith(b"\x1f\x8b"):
                raise UnpackError(f"{what}: garbage after the end of the gzip stream")
            d = zlib.decompressobj(wbits=31)
            in_member, data = True, rest
        if not data and src_done:
            # End of input inside a member: what the inflater still holds
            # (an output limit can stop it with all input consumed), else truncation.
            try:
                out = d.decompress(b"", OUT_SIZE)
            except zlib.error as e:
                raise UnpackError(f"{what}: corrupt gzip data ({e})") from None
            if out:
                yield out
            if d.eof:
                in_member, data = False, d.unused_data
            elif not out:
                raise UnpackError(f"{what}: gzip stream is truncated")
            continue
        try:
            out = d.decompress(data, OUT_SIZE)
        except zlib.error as e:
            raise UnpackError(f"{what}: corrupt gzip data ({e})") from None
        if out:
            yield out
        if d.eof:
            in_member, data = False, d.unused_data
        else:
            data = d.unconsumed_tail


def _zstd_chunks(src: BinaryIO, what: str) -> Iterator[bytes]:
    import zstandard  # only for zstd layers

    reader = zstandard.ZstdDecompressor().stream_reader(
        src, read_size=READ_SIZE, read_across_frames=True
    )
    while True:
        try:
            out = reader.read(OUT_SIZE)
        except zstandard.ZstdError as e:
            raise UnpackError(f"{what}: corrupt zstd data ({e})") from None
        if not out:
            return
        yield out


def _plain_chunks(src: BinaryIO, what: str) -> Iterator[bytes]:
    del what
    yield from iter(lambda: src.read(OUT_SIZE), b"")


CODECS = {"gzip": _gzip_chunks, "zstd": _zstd_chunks, "none": _plain_chunks}


class LayerStream:
    """The uncompressed tar of one layer, produced by a thread, hashed as it is read.

    ``chunks()`` yields the tar in pieces; after it is exhausted ``digest`` is
    the ``sha256:`` of everything yielded. ``close()`` stops the producer early.
    """

    def __init__(self, src: BinaryIO, compression: str, what: str) -> None:
        self._gen = CODECS[compression](src, what)
        self._q: queue.Queue[bytes | BaseException] = queue.Queue(QUEUE_DEPTH)
        self._stop = threading.Event()
        self._hash = hashlib.sha256()
        self.digest = ""
        self.size = 0
        self._thread = threading.Thread(target=self._produce, name="lxcri-unpack", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for chunk in self._gen:
                self.size += len(chunk)
                if not self._put(chunk):
                    return
            self._put(_EOF)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._q.get()
            if isinstance(item, BaseException):
                self._thread.join()
                if isinstance(item, UnpackError):
                    raise item
                if isinstance(item, OSError):
                    raise UnpackError(f"reading the layer failed: {os.strerror(item.errno or 0)}")
                raise item
            if not item:
                self._thread.join()
                self.digest = "sha256:" + self._hash.hexdigest()
                return
            self._hash.update(item)
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
