"""The one error tree of lxcri.

Every failure lxcri reports is an ``LxcriError``; each subclass names the
domain that failed, and builtins are mixed in where they fit so callers can
catch either way (``except FileNotFoundError`` still sees ``ImageNotFound``).
Messages name the object and, where there is one, the fix; the CLI prints
``str(err)`` as one line on stderr and exits 1.

    LxcriError
    ├── ConfigError (ValueError)        bad or unreadable configuration
    ├── ReferenceError_ (ValueError)    an image reference that does not parse
    ├── RegistryError                   talking to a registry
    │   ├── AuthError (PermissionError) 401/403, bad or missing credentials
    │   ├── NotFoundError (LookupError) 404 for a repository, tag or blob
    │   └── RateLimitError              429
    ├── DigestMismatch (ValueError)     content did not hash to its digest
    ├── StoreError                      the local image store
    │   └── ImageNotFound (LookupError) a reference not in the store
    ├── ImportError_ (ValueError)       an archive or layout that cannot be imported
    ├── PlatformError (LookupError)     no manifest for the requested platform
    ├── UnpackError                     applying a layer to a filesystem
    ├── StorageError                    dir / overlay / zfs storage backends
    ├── SpecError (ValueError)          building a container spec
    ├── NetworkError                    bridges, addresses, published ports (nftables)
    ├── BackendError                    lxc / pve-local / pve-api platform backends
    │   ├── ContainerNotFound (LookupError)  no container has that VMID, name or id
    │   └── CorruptState                     a container's state exists but cannot be read
    └── LockTimeout (TimeoutError)      another lxcri process held a lock too long
"""

from __future__ import annotations


class LxcriError(Exception):
    """Base of every error lxcri raises on purpose."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg

    def __str__(self) -> str:
        return self.msg


class ConfigError(LxcriError, ValueError):
    """The configuration file, an environment variable or a flag is invalid."""


class ReferenceError_(LxcriError, ValueError):
    """An image reference does not parse."""


class RegistryError(LxcriError):
    """A registry request failed."""


class AuthError(RegistryError, PermissionError):
    """The registry refused the credentials (401/403) or none were found."""


class NotFoundError(RegistryError, LookupError):
    """The registry has no such repository, tag, manifest or blob (404)."""


class RateLimitError(RegistryError):
    """The registry asked us to slow down (429)."""


class DigestMismatch(LxcriError, ValueError):
    """Content did not hash to the digest (or size) it was announced with."""


class StoreError(LxcriError):
    """The local image store is unusable or an operation on it failed."""


class ImageNotFound(StoreError, LookupError):
    """A reference is not in the local store."""


class ImportError_(LxcriError, ValueError):
    """An OCI layout, oci-archive or docker-archive cannot be imported."""


class PlatformError(LxcriError, LookupError):
    """An image index has no manifest for the requested platform."""


class UnpackError(LxcriError):
    """A layer could not be applied safely to its target."""


class StorageError(LxcriError):
    """A storage backend (dir, overlay, zfs) failed."""


class SpecError(LxcriError, ValueError):
    """A container spec could not be built from an image and options."""


class NetworkError(LxcriError):
    """A bridge, an address lease or a published port could not be set up or removed."""


class BackendError(LxcriError):
    """A platform backend (lxc, pve-local, pve-api) failed."""


class ContainerNotFound(BackendError, LookupError):
    """No container of this backend has that VMID, name or id."""


class CorruptState(BackendError):
    """A container's record or config exists but cannot be read: never taken for a
    half-created container (a ``remove`` without ``--force`` refuses it)."""


class LockTimeout(LxcriError, TimeoutError):
    """Another process held a store or storage lock longer than ``lock_timeout``."""


class OciRuntimeError(BackendError):
    """``lxcri-runtime`` refused or failed an operation of runc's contract; the
    message keeps runc's wording where containerd matches on it
    ("container does not exist", "container not running")."""
