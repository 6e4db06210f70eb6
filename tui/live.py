"""``LiveSource``: the dashboard's data from a backend and lxcri's inspectors.

Every method blocks (a backend call, a /proc read, a registry transfer): the
screens call them from thread workers only, never on the UI thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lxcri_tui.reports as reports
from lxcri_tui.fmt import human_size
from lxcri_tui.source import PullReport, Section, StorageView, Usage

from lxcri_core import lifecycle
from lxcri_core.backend import Backend, ContainerStatus, CtRef, ExecCommand, ExecOptions
from lxcri_core.errors import LxcriError

if TYPE_CHECKING:
    from lxcri_core.config import Config
    from lxcri_core.containers.stats import Sample
    from lxcri_core.images import ImageDetails, ImageSummary

#: Backends whose containers' init pids are pids of this host: only there are CPU and
#: memory read from /proc (pve-api's pids are another node's; reading them here would
#: show some unrelated local process).
_LOCAL_PIDS = ("lxc", "pve-local")


class _PullProgress:
    """lxcri_core.progress.Progress forwarding each layer's bytes to ``report``."""

    def __init__(self, report: PullReport) -> None:
        self.report = report
        self.done: dict[str, int] = {}
        self.total: dict[str, int | None] = {}
        self.lock = threading.Lock()  # parallel layer downloads call from several threads

    def start(self, key: str, total: int | None, description: str) -> None:
        with self.lock:
            self.done[key], self.total[key] = 0, total
        self.report(key, 0, total)

    def advance(self, key: str, n: int) -> None:
        with self.lock:
            self.done[key] = self.done.get(key, 0) + n
            done, total = self.done[key], self.total.get(key)
        self.report(key, done, total)

    def finish(self, key: str) -> None:
        with self.lock:
            total = self.total.get(key) or self.done.get(key, 0)
        self.report(key, total, total)


class LiveSource:
    def __init__(self, cfg: Config, backend: Backend) -> None:
        self.cfg = cfg
        self.backend = backend
        self.backend_name = backend.name
        self._samples: dict[int, Sample] = {}
        self._names: dict[int, str] = {}

    def now(self) -> datetime:
        return datetime.now(UTC)

    @staticmethod
    def _ref(vmid: int) -> CtRef:
        return CtRef(str(vmid))

    def containers(self) -> list[ContainerStatus]:
        cts = sorted(self.backend.list(), key=lambda c: c.vmid)
        self._names = {c.vmid: c.name for c in cts}
        return cts

    def usage(self, cts: list[ContainerStatus]) -> dict[int, Usage]:
        from lxcri_core.containers import stats
        from lxcri_core.fsutil import read_text

        if self.backend_name not in _LOCAL_PIDS:
            return {}
        mountinfo = read_text("/proc/self/mountinfo") or ""
        out: dict[int, Usage] = {}
        seen: dict[int, Sample] = {}
        for c in cts:
            if c.status != "running" or not c.pid:
                continue
            try:
                cur = stats.sample(c.pid, mountinfo=mountinfo)
            except (LxcriError, OSError, ValueError):
                continue
            prev = self._samples.get(c.vmid)
            seen[c.vmid] = cur
            st = stats.stats_of(c.name, c.id, prev or cur, cur)
            out[c.vmid] = Usage(st.cpu_percent if prev else None, st.memory, st.memory_limit)
        self._samples = seen
        return out

    def config(self, vmid: int) -> dict[str, Any]:
        return self.backend.config_get(self._ref(vmid))

    def start(self, vmid: int) -> None:
        self.backend.start(self._ref(vmid))

    def stop(self, vmid: int) -> None:
        self.backend.stop(self._ref(vmid))

    def restart(self, vmid: int) -> None:
        # as `lxcri restart`: stop, then start (reboot is pct's, not every backend's)
        self.backend.stop(self._ref(vmid))
        self.backend.start(self._ref(vmid))

    def destroy(self, vmid: int) -> None:
        self.backend.remove(self._ref(vmid), force=True)

    def shell(self, vmid: int) -> ExecCommand:
        opts = ExecOptions(tty=True, interactive=True)
        return self.backend.exec_command(self._ref(vmid), ["/bin/sh"], opts)

    def logs(self, vmid: int, *, follow: bool, tail: int | None) -> Iterator[bytes]:
        return lifecycle.logs(self.backend, self._ref(vmid), follow=follow, tail=tail)

    def images(self) -> list[ImageSummary]:
        from lxcri_core.images import list_images

        return list_images(self.cfg)

    def image(self, name: str) -> ImageDetails:
        from lxcri_core.images import inspect_image

        return inspect_image(self.cfg, name)

    def pull(self, ref: str, report: PullReport) -> str:
        from lxcri_core.registry import pull

        return pull(self.cfg, ref, progress=_PullProgress(report)).name

    def remove_image(self, name: str) -> None:
        from lxcri_core.images import remove_image

        remove_image(self.cfg, name)

    def prune(self) -> str:
        from lxcri_core.images import prune_images

        r = prune_images(self.cfg)
        return f"pruned {r.count} items, freed {human_size(r.freed)}"

    def storage(self) -> StorageView:
        from lxcri_core.storage.storage_report import storage_report

        storages = getattr(self.backend, "storages", None)
        return reports.storage_view(
            storage_report(self.cfg), None if storages is None else list(storages())
        )

    def network(self) -> list[Section]:
        from lxcri_core.network.netreport import inspect_network, status_targets

        if self.backend_name == "lxc":  # lxcri's records add each container's bridge
            return reports.network_sections(inspect_network(self.cfg))
        targets = status_targets(self.backend.list())
        return reports.network_sections(inspect_network(self.cfg, None, targets))

    def host_security(self) -> Section:
        from lxcri_core.security.hostfacts import read_host_facts

        return reports.host_section(read_host_facts())

    def security(self, vmid: int) -> Section:
        if self.backend_name != "lxc":
            name = self._names.get(vmid, str(vmid))
            return reports.pve_section(name, vmid, self.config(vmid))
        from lxcri_core.security.report import plain_lxc_report

        resolve: Callable[[CtRef], str] = self.backend.resolve  # type: ignore[attr-defined]
        rep = plain_lxc_report(self.cfg, self.backend, resolve(self._ref(vmid)))
        return reports.container_section(rep)

    def stack_up(self, path: str, say: Callable[[str], None]) -> list[str]:
        from lxcri_core.stacks import apply
        from lxcri_core.stacks.parse import load_stack

        return apply.up(self.backend, load_stack(Path(path)), progress=say)

    def stack_down(self, name: str) -> list[str]:
        from lxcri_core.stacks import apply
        from lxcri_core.stacks.model import Stack

        # down finds a stack's containers by its label alone: no file needed
        return apply.down(self.backend, Stack(name=name, folder=Path("/"), services={}))
