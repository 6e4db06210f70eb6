"""Choosing one manifest from an image index (manifest list) by platform."""

from __future__ import annotations

import os

from lxcri_core.errors import PlatformError
from lxcri_core.media import Descriptor, Index, Platform

#: ``uname -m`` -> (GOARCH, variant), as the OCI image spec names platforms.
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


def host_platform() -> Platform:
    """The platform this machine runs (``linux/amd64`` on a PVE host)."""
    machine = os.uname().machine
    arch, variant = _MACHINES.get(machine, (machine, ""))
    return Platform("linux", arch, variant)


def _variant_ok(cand: Platform, want: Platform) -> bool:
    if not want.variant:
        return True
    if cand.variant == want.variant:
        return True
    # arm64 manifests usually omit the (only) variant v8.
    return want.architecture == "arm64" and want.variant == "v8" and not cand.variant


def select_manifest(index: Index, want: Platform, what: str) -> Descriptor:
    """The index entry for ``want``; an exact variant beats an unspecified one."""
    matches = [
        d
        for d in index.manifests
        if d.platform is not None
        and d.platform.os == want.os
        and d.platform.architecture == want.architecture
        and _variant_ok(d.platform, want)
    ]
    if not matches:
        have = sorted(
            {str(d.platform) for d in index.manifests if d.platform} - {"unknown/unknown"}
        )
        raise PlatformError(
            f"{what} has no image for {want}; it offers {', '.join(have) or 'no platforms'}"
            " (choose one with --platform OS/ARCH[/VARIANT])"
        )
    exact = [d for d in matches if d.platform and d.platform.variant == want.variant]
    return (exact or matches)[0]
