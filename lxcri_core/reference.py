"""Image references, parsed as docker does.

``nginx`` is ``docker.io/library/nginx:latest``; a first component with a
``.`` or ``:`` or equal to ``localhost`` is a registry host (``127.0.0.1:5000/
bb:1.0``); ``@sha256:...`` pins a digest (a tag may stand beside it, the
digest wins). Grammar: github.com/distribution/reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxcri_core.errors import ReferenceError_

DEFAULT_REGISTRY = "docker.io"
DEFAULT_TAG = "latest"
LEGACY_REGISTRIES = {"index.docker.io", "registry-1.docker.io"}

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|{_IPV6})(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
NAME_TOTAL_MAX = 255


@dataclass(frozen=True)
class Reference:
    """A fully qualified image reference."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def target(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        s = self.name
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def familiar(self) -> str:
        """The short form docker prints (``nginx:1.27``, ``user/app:1``)."""
        s = str(self)
        if self.registry == DEFAULT_REGISTRY:
            s = s.removeprefix(f"{DEFAULT_REGISTRY}/").removeprefix("library/")
        return s

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_REGISTRY, name
    if domain in LEGACY_REGISTRIES:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return domain, path


def parse_reference(text: str) -> Reference:
    """Parse ``text`` as docker would, filling in docker.io, library/ and :latest."""
    if not text or text != text.strip():
        raise ReferenceError_(f"invalid image reference {text!r}: empty or padded with spaces")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, _, digest = remainder.partition("@")
        if not _DIGEST.fullmatch(digest):
            raise ReferenceError_(f"invalid image reference {text!r}: bad digest {digest!r}")
        if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
            raise ReferenceError_(f"invalid image reference {text!r}: sha256 needs 64 hex digits")
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ReferenceError_(f"invalid image reference {text!r}: bad tag {tag!r}")
    domain, path = _split_domain(remainder)
    if not _DOMAIN.fullmatch(domain):
        raise ReferenceError_(f"invalid image reference {text!r}: bad registry {domain!r}")
    if not _PATH.fullmatch(path):
        if path.lower() != path and _PATH.fullmatch(path.lower()):
            raise ReferenceError_(
                f"invalid image reference {text!r}: repository name must be lowercase"
            )
        raise ReferenceError_(f"invalid image reference {text!r}: bad repository {path!r}")
    if len(f"{domain}/{path}") > NAME_TOTAL_MAX:
        raise ReferenceError_(f"invalid image reference {text!r}: name longer than 255 characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
