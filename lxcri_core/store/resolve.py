"""Find images in the store by name or digest: the one resolver of every image command.

``inspect``, ``unpack``, ``run``/``create``, ``rmi``, ``export`` and ``push``
all call ``resolve``/``find_records``, so an image one of them finds, all do.
Accepted, in this order (docker's order: a name first, then an id):

1. the exact store name;
2. any docker form of a reference (``busybox``, ``busybox:1.36``,
   ``docker.io/library/busybox``, ``127.0.0.1:5000/bb@sha256:...``),
   normalised with ``parse_reference``; ``NAME@DIGEST`` needs a stored tag of
   that repository with that digest;
3. a manifest digest (``sha256:<64 hex>``, the id ``lxcri images`` shows the
   first 12 digits of) or a unique prefix of one, with or without ``sha256:``.

Docker takes an id prefix of any length; lxcri wants at least ``MIN_PREFIX``
(4) hex digits without ``sha256:``, so a one-letter typo is "not found" rather
than some image whose digest happens to start with it. A prefix two images
share is an error, never a guess.
"""

from __future__ import annotations

import re

from lxcri_core.errors import ImageNotFound, LxcriError
from lxcri_core.reference import parse_reference
from lxcri_core.store.layout import ImageRecord, Store

#: Fewer digits than this are never taken as a digest prefix (``lxcri inspect a``
#: should say "not found", not pick an image whose digest starts with a).
MIN_PREFIX = 4
_PREFIX = re.compile(r"(?:sha256:)?([0-9a-f]{1,64})")


def find_records(store: Store, text: str) -> list[ImageRecord]:
    """Every store name ``text`` designates (several when it is a shared digest).

    Raises ImageNotFound when nothing matches or a digest prefix is ambiguous.
    """
    records = store.images() if (store.root / "index.json").exists() else []
    exact = [r for r in records if r.name == text]
    if exact:
        return exact
    ref = None
    bad: LxcriError | None = None
    try:
        ref = parse_reference(text)
    except LxcriError as e:
        bad = e
    if ref is not None:
        if ref.digest:
            # name@digest: a digest pull stored under that name, or any tag of
            # that repository whose manifest is this digest.
            hits = [
                r
                for r in records
                if r.name == str(ref)
                or (r.descriptor.digest == ref.digest and r.name.startswith(ref.name + ":"))
            ]
        else:
            hits = [r for r in records if r.name == str(ref)]
        if hits:
            return hits
    m = _PREFIX.fullmatch(text)
    if m and (len(m.group(1)) >= MIN_PREFIX or text.startswith("sha256:")):
        digests = {
            r.descriptor.digest
            for r in records
            if r.descriptor.digest.split(":", 1)[1].startswith(m.group(1))
        }
        if len(digests) == 1:
            (d,) = digests
            return [r for r in records if r.descriptor.digest == d]
        if len(digests) > 1:
            raise ImageNotFound(
                f"digest prefix {text} matches {len(digests)} images; give more digits"
            )
    if bad is not None and not m:
        raise bad  # neither a reference nor a digest: say what is wrong with it
    shown = str(ref) if ref is not None else text
    raise ImageNotFound(
        f"image {shown} not found in the store; run `lxcri pull {text}` or `lxcri import` first"
    )


def resolve(store: Store, text: str) -> ImageRecord:
    """The one image ``text`` designates (the first name when a digest has several)."""
    return find_records(store, text)[0]
