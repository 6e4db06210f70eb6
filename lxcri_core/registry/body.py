"""Response bodies from a registry, read with a cap that stops the reading.

A hostile or broken registry can answer with an endless body (no
Content-Length, or a false one), or with a small gzip body that inflates to
gigabytes. So no body is ever read whole by requests: every response is
opened with ``stream=True`` and read here in chunks with a running count,
and reading stops as soon as the cap is passed. A Content-Encoding the
server applies in spite of our ``Accept-Encoding: identity`` is undone here
under the same cap, never by urllib3 (which inflates a whole chunk at once).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lxcri_core.errors import RegistryError

if TYPE_CHECKING:
    import requests

#: A manifest or index (the distribution spec's own limit).
MAX_MANIFEST = 4 << 20
#: A token service's JSON reply (Docker Hub's are a few KiB).
MAX_TOKEN_REPLY = 1 << 20
#: An error document, a ``/v2/`` answer, anything else read only for a message.
MAX_SMALL_BODY = 64 << 10
#: Bytes read from the socket at a time.
CHUNK = 64 << 10


class BodyTooLarge(RegistryError):
    """A response body passed its cap; reading stopped there."""


def size_text(n: int) -> str:
    """``4194304`` -> ``4 MiB`` (limits in messages)."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def shown_url(url: str) -> str:
    """``url`` for a message: without its query, which may hold a presigned URL's secret."""
    return url.split("?", 1)[0]


def _too_large(what: str, url: str, limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"{what} from {url} is larger than {size_text(limit)}; stopped reading it")


def _decoder(encoding: str, what: str, url: str) -> zlib._Decompress | None:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    raise RegistryError(f"{what} from {url} has an unsupported Content-Encoding {encoding!r}")


def iter_body(
    resp: requests.Response, limit: int, what: str, chunk: int = CHUNK
) -> Iterator[bytes]:
    """The decoded body of ``resp`` in chunks; BodyTooLarge once it passes ``limit`` bytes.

    A Content-Length above the limit is refused before anything is read.
    Transport errors (urllib3's, OSError) pass through for callers that resume.
    """
    url = shown_url(resp.url)
    decoder = _decoder(resp.headers.get("Content-Encoding", ""), what, url)
    length = resp.headers.get("Content-Length", "").strip()
    if decoder is None and length.isdigit() and int(length) > limit:
        raise _too_large(what, url, limit)  # an encoded length says nothing of the decoded one
    seen = 0
    for raw in resp.raw.stream(chunk, decode_content=False):
        if decoder is None:
            seen += len(raw)
            if seen > limit:
                raise _too_large(what, url, limit)
            yield raw
            continue
        data = raw
        while data:
            try:
                # max_length bounds what one call may inflate: one byte past
                # the cap is enough to know it was passed
                out = decoder.decompress(data, limit + 1 - seen)
            except zlib.error:
                raise RegistryError(f"{what} from {url} is not valid compressed data") from None
            seen += len(out)
            if seen > limit:
                raise _too_large(what, url, limit)
            if out:
                yield out
            data = decoder.unconsumed_tail


def read_capped(resp: requests.Response, limit: int, what: str) -> bytes:
    """The whole body of ``resp`` (at most ``limit`` bytes); the response is closed."""
    import urllib3

    buf = bytearray()
    try:
        for chunk in iter_body(resp, limit, what):
            buf += chunk
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise RegistryError(f"reading {what} from {shown_url(resp.url)} failed: {e}") from None
    finally:
        resp.close()
    return bytes(buf)
