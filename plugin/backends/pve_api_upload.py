"""A template upload streamed from disk: ``POST /nodes/{node}/storage/{storage}/upload``.

proxmoxer 2.2 builds a multipart body in memory unless ``requests_toolbelt``
is installed, and refuses one over 2 GiB; an image archive is often hundreds
of megabytes. This body is read from the file as it is sent, with a
Content-Length (pveproxy takes no chunked upload), the form fields first and
the file last, as pveproxy reads them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class MultipartFile:
    """``fields`` then the file at ``path`` as part ``file_field`` named ``filename``."""

    def __init__(
        self, fields: Mapping[str, str], file_field: str, filename: str, path: Path
    ) -> None:
        self.boundary = "lxcri-" + secrets.token_hex(16)
        b = self.boundary
        head = b"".join(
            f'--{b}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        )
        head += (
            f'--{b}\r\nContent-Disposition: form-data; name="{file_field}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self._head = head
        self._tail = f"\r\n--{b}--\r\n".encode()
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._stage = 0  # 0: head, 1: file, 2: tail, 3: done
        self._pending = head

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def read(self, n: int = -1) -> bytes:
        want = CHUNK if n is None or n < 0 else n
        out = bytearray()
        while len(out) < want and self._stage < 3:
            if self._stage == 1:
                data = self._file.read(want - len(out))
                if data:
                    out += data
                    continue
                self._stage, self._pending = 2, self._tail
                continue
            take = self._pending[: want - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
            if not self._pending:
                self._stage += 1
        return bytes(out)

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self._file.close()
