"""Registries for the registry-client tests: started once per session, stopped by PID."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lxcri_core.config import Config, load_config
from tests.support.images import Built, busybox_image, multilayer_image
from tests.support.registry import Registry, push_image, start_registry, write_authfile

USER, PASSWORD = "alice", "wonderland-7"


@dataclass
class Populated:
    reg: Registry
    bb: Built  # test/bb:1.0, one layer
    multi: Built  # test/multi:1.0, three layers
    index: Built  # test/idx:1.0, linux/amd64 + linux/arm64

    @property
    def addr(self) -> str:
        return self.reg.addr


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Populated]:
    work = tmp_path_factory.mktemp("registry")
    reg = start_registry(work / "reg")
    try:
        bb = push_image(reg.addr, busybox_image(), "test/bb:1.0", work)
        multi = push_image(reg.addr, multilayer_image(), "test/multi:1.0", work)
        amd = busybox_image(Cmd=["echo amd64"])
        arm = busybox_image(Cmd=["echo arm64"])
        arm.architecture = "arm64"
        index = push_image(reg.addr, [amd, arm], "test/idx:1.0", work)
        yield Populated(reg, bb, multi, index)
    finally:
        reg.stop()


@dataclass
class AuthRegistry:
    reg: Registry
    bb: Built  # private/bb:1.0

    @property
    def addr(self) -> str:
        return self.reg.addr


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    work = tmp_path_factory.mktemp("auth-registry")
    reg = start_registry(work / "reg", users={USER: PASSWORD})
    try:
        authfile = write_authfile(work / "skopeo-auth.json", reg.addr, USER, PASSWORD)
        bb = push_image(reg.addr, busybox_image(), "private/bb:1.0", work, authfile=authfile)
        yield AuthRegistry(reg, bb)
    finally:
        reg.stop()


@pytest.fixture
def cfg(isolated_env: Path) -> Config:
    """The isolated config, with 127.0.0.1 registries treated as plain http."""
    return load_config()


def insecure(cfg: Config, *addrs: str) -> Config:
    return cfg.with_overrides(insecure_registries=tuple(addrs))
