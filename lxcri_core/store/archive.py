"""Read-only access to the files of an import source: a directory or a tar archive.

Both kinds answer the same questions (is a file there, how big is it, give
me a stream of it) so the OCI and docker-archive importers do not care which
one they got. Tar members are streamed straight out of the archive, never
extracted to disk; member names are checked when the archive is opened, so
an archive with an absolute or ``..`` path is refused as a whole.
"""

from __future__ import annotations

import posixpath
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, cast

from lxcri_core.errors import ImportError_

#: How many symlink/hardlink hops a tar member may take to reach a file
#: (docker-archive's ``<id>/layer.tar -> ../<hex>.tar`` takes one).
MAX_LINK_HOPS = 8


def _clean(name: str) -> str | None:
    """``name`` normalised to a relative path, or None when it is absolute or escapes."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


class Source(ABC):
    """Files of an import source, addressed by relative ``/``-separated names."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @abstractmethod
    def has(self, name: str) -> bool:
        """Whether the source holds a regular file ``name``."""

    @abstractmethod
    def size(self, name: str) -> int:
        """Size of the regular file ``name``; ImportError_ when it is missing."""

    @abstractmethod
    def open(self, name: str) -> BinaryIO:
        """A stream of the file ``name``; ImportError_ when it is missing."""

    def read(self, name: str, limit: int) -> bytes:
        """The whole of a small file (JSON documents), refusing ones above ``limit``."""
        size = self.size(name)
        if size > limit:
            raise ImportError_(
                f"cannot import {self.path}: {name} is {size} bytes, more than the "
                f"{limit} allowed for a metadata file"
            )
        with self.open(name) as f:
            data = f.read(limit + 1)
        if len(data) != size:
            raise ImportError_(f"cannot import {self.path}: {name} is truncated")
        return data

    def missing(self, name: str) -> ImportError_:
        return ImportError_(
            f"cannot import {self.path}: it lacks {name}; the layout or archive is incomplete"
        )

    @abstractmethod
    def close(self) -> None:
        """Release what the source holds open."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DirSource(Source):
    """An unpacked layout (``oci:DIR``) or an extracted docker-archive."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._root = path.resolve()

    def close(self) -> None:
        return None  # a directory holds nothing open

    def _file(self, name: str) -> Path | None:
        rel = _clean(name)
        if rel is None:
            raise ImportError_(f"cannot import {self.path}: refusing unsafe path {name!r}")
        p = (self._root / rel).resolve()
        # A symlink in the layout must not lead us to read files outside it.
        if not p.is_relative_to(self._root) or not p.is_file():
            return None
        return p

    def has(self, name: str) -> bool:
        return self._file(name) is not None

    def size(self, name: str) -> int:
        p = self._file(name)
        if p is None:
            raise self.missing(name)
        return p.stat().st_size

    def open(self, name: str) -> BinaryIO:
        p = self._file(name)
        if p is None:
            raise self.missing(name)
        return open(p, "rb")


class TarSource(Source):
    """An oci-archive or docker-archive tar (optionally gzip-compressed)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed in close()
        except (tarfile.TarError, EOFError):
            raise ImportError_(
                f"cannot import {path}: not a tar archive or OCI layout directory"
            ) from None
        except OSError as e:
            raise ImportError_(f"cannot import {path}: {e.strerror}") from None
        self._members: dict[str, tarfile.TarInfo] = {}
        try:
            for m in self._tar.getmembers():
                rel = _clean(m.name)
                if rel is None:
                    raise ImportError_(
                        f"cannot import {path}: member {m.name!r} has an absolute or '..' path; "
                        "refusing the whole archive"
                    )
                self._members[rel] = m  # a later member replaces an earlier one, as in tar
        except (tarfile.TarError, EOFError) as e:
            self._tar.close()
            raise ImportError_(
                f"cannot import {path}: the archive is truncated or corrupt ({e})"
            ) from None
        except BaseException:
            self._tar.close()
            raise

    def _regular(self, name: str) -> tarfile.TarInfo | None:
        rel = _clean(name)
        for _ in range(MAX_LINK_HOPS):
            m = self._members.get(rel) if rel is not None else None
            if m is None:
                return None
            if m.isreg():
                return m
            if m.issym():
                # relative to the link's directory; ".." may climb, but not out of the archive
                target = posixpath.normpath(posixpath.join(posixpath.dirname(m.name), m.linkname))
                rel = None if m.linkname.startswith("/") else _clean(target)
            elif m.islnk():
                rel = _clean(m.linkname)
            else:
                return None
            if rel is None:
                raise ImportError_(
                    f"cannot import {self.path}: link {m.name!r} points outside the archive"
                )
        return None

    def has(self, name: str) -> bool:
        return self._regular(name) is not None

    def size(self, name: str) -> int:
        m = self._regular(name)
        if m is None:
            raise self.missing(name)
        return m.size

    def open(self, name: str) -> BinaryIO:
        m = self._regular(name)
        if m is None:
            raise self.missing(name)
        f = self._tar.extractfile(m)
        assert f is not None  # a regular member always has a file object
        return cast(BinaryIO, f)

    def close(self) -> None:
        self._tar.close()


def open_source(path: Path) -> Source:
    """A Source for ``path``: a directory or a tar file."""
    if path.is_dir():
        return DirSource(path)
    if path.is_file():
        return TarSource(path)
    raise ImportError_(f"cannot import {path}: no such file or directory")
