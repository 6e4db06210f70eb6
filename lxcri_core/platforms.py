"""The host's OCI platform, and picking a manifest from an image index by platform."""

from __future__ import annotations

import os

from lxcri_core.errors import PlatformError
from lxcri_core.media import Descriptor, Index, Platform

# uname -m -> (GOARCH, variant), the names OCI indexes use.
_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


def host_platform() -> Platform:
    """``linux/amd64`` on x86-64 hosts, ``linux/arm64/v8`` on ARM64 ones, and so on."""
    machine = os.uname().machine
    arch, variant = _ARCH.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def platform_matches(have: Platform, want: Platform) -> bool:
    """OS and architecture must be equal; a variant only counts when both name one.

    arm64 manifests usually omit ``v8``, so a missing variant is a match.
    """
    if (have.os, have.architecture) != (want.os, want.architecture):
        return False
    return not (have.variant and want.variant and have.variant != want.variant)


def select_manifest(index: Index, want: Platform, what: str = "image index") -> Descriptor:
    """The manifest for ``want`` in ``index``, preferring an exact variant match."""
    found = [d for d in index.manifests if d.platform and platform_matches(d.platform, want)]
    exact = [d for d in found if d.platform and d.platform.variant == want.variant]
    if exact or found:
        return (exact or found)[0]
    have = sorted({str(d.platform) for d in index.manifests if d.platform})
    raise PlatformError(
        f"{what} has no manifest for {want} (it has: {', '.join(have) or 'none'}); "
        "choose one with --platform OS/ARCH"
    )
