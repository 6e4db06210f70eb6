"""Content digests (``sha256:<hex>``) and streaming verification."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import BinaryIO

from lxcri_core.errors import DigestMismatch

_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
CHUNK = 1 << 20


def is_digest(value: str) -> bool:
    return bool(_DIGEST.fullmatch(value))


def check_digest(value: str) -> str:
    """Return ``value`` if it is a sha256 digest we can store, else raise."""
    if not is_digest(value):
        raise DigestMismatch(f"unsupported or malformed digest {value!r} (need sha256:<64 hex>)")
    return value


def sha256_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha256_file(f: BinaryIO) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(CHUNK), b""):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def hex_of(digest: str) -> str:
    """The hex part of a checked digest: its file name under blobs/sha256/."""
    return check_digest(digest).split(":", 1)[1]
