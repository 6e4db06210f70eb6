"""What the dashboard shows, as plain data, and where it comes from.

Every screen reads through ``Source``: ``LiveSource`` (``lxcri_tui.live``) asks a
backend and lxcri's inspectors; the snapshot tests and the docs' screenshots feed
a recorded one, so a picture never depends on a clock, an id or this host.
Inspector reports reach the screens as ``Section`` tables and ``Node`` trees:
the screens stay dumb and a recorded source stays small.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lxcri_core.backend import ContainerStatus, ExecCommand
    from lxcri_core.images import ImageDetails, ImageSummary


@dataclass(frozen=True)
class Section:
    """One titled table of an inspector's report."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Node:
    """One line of a tree (storage: pools, layer chains, clones)."""

    label: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class StorageView:
    tree: tuple[Node, ...]
    sections: tuple[Section, ...]
    #: what ``lxcri image prune`` would free, in words
    prune: str


@dataclass(frozen=True)
class Usage:
    """A running container's CPU (docker's %, 100 = one core) and memory."""

    cpu_percent: float | None
    memory: int | None
    memory_limit: int | None


#: Pull progress as the loader reports it: (layer key, done bytes, total or None)
PullReport = Callable[[str, int, int | None], None]


class Source(Protocol):
    """The dashboard's only way to the containers, images and the host."""

    backend_name: str

    def now(self) -> datetime:
        """The clock uptimes are counted on (fixed in a recorded source)."""
        ...

    def containers(self) -> list[ContainerStatus]: ...
    def usage(self, cts: list[ContainerStatus]) -> dict[int, Usage]: ...
    def config(self, vmid: int) -> dict[str, object]: ...
    def start(self, vmid: int) -> None: ...
    def stop(self, vmid: int) -> None: ...
    def restart(self, vmid: int) -> None: ...
    def destroy(self, vmid: int) -> None: ...
    def shell(self, vmid: int) -> ExecCommand: ...
    def logs(self, vmid: int, *, follow: bool, tail: int | None) -> Iterator[bytes]: ...
    def images(self) -> list[ImageSummary]: ...
    def image(self, name: str) -> ImageDetails: ...
    def pull(self, ref: str, report: PullReport) -> str: ...
    def remove_image(self, name: str) -> None: ...
    def prune(self) -> str: ...
    def storage(self) -> StorageView: ...
    def network(self) -> list[Section]: ...
    def host_security(self) -> Section: ...
    def security(self, vmid: int) -> Section: ...
    def stack_up(self, path: str, say: Callable[[str], None]) -> list[str]: ...
    def stack_down(self, name: str) -> list[str]: ...


@dataclass
class History:
    """The last ``size`` CPU and memory readings of each container, for sparklines."""

    size: int = 60
    cpu: dict[int, list[float]] = field(default_factory=dict)
    memory: dict[int, list[float]] = field(default_factory=dict)

    def add(self, usage: dict[int, Usage]) -> None:
        for vmid, u in usage.items():
            if u.cpu_percent is not None:
                self.cpu.setdefault(vmid, []).append(u.cpu_percent)
                del self.cpu[vmid][: -self.size]
            if u.memory is not None:
                self.memory.setdefault(vmid, []).append(float(u.memory))
                del self.memory[vmid][: -self.size]
