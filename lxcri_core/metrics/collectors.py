"""Prometheus collectors: state read at scrape time, never by a polling thread.

Each collector reads its source once a scrape, in bulk: the containers from
the backend's ``list()`` (one read for all) and, for the running ones this
host can see, their cgroup and network counters (``containers.stats``: a
few small files each, the mount table read once for all); the image store's
index and blob directory; the storage of the backend and of lxcri's storage
backends (cached for ``exporter_storage_ttl`` seconds: ``zfs list`` and
``pvesm status`` are processes); and the pull and hook counters other
processes leave (``metrics.counters``). A source that fails is reported by
``lxcri_collector_up 0`` and leaves its metrics out; the scrape still answers.

Per-container metrics carry ``vmid``, ``name``, ``image`` and ``node``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from lxcri_core.log import get_logger
from lxcri_core.metrics import counters

if TYPE_CHECKING:
    from lxcri_core.backend import Backend
    from lxcri_core.config import Config

log = get_logger(__name__)

CT_LABELS = ("vmid", "name", "image", "node")

#: Every metric family the exporter can produce, name -> its label names (the
#: Grafana dashboard's test checks its expressions against this). Histograms and
#: counters are named here without their _bucket/_sum/_count/_total suffix.
METRICS: dict[str, tuple[str, ...]] = {
    "lxcri_container_info": (*CT_LABELS, "id", "backend", "image_digest"),
    "lxcri_container_state": (*CT_LABELS, "state"),
    "lxcri_container_health": (*CT_LABELS, "health"),
    "lxcri_container_restarts": CT_LABELS,
    "lxcri_container_cpu_seconds": CT_LABELS,
    "lxcri_container_memory_usage_bytes": CT_LABELS,
    "lxcri_container_memory_limit_bytes": CT_LABELS,
    "lxcri_container_pids": CT_LABELS,
    "lxcri_container_pids_limit": CT_LABELS,
    "lxcri_container_network_receive_bytes": CT_LABELS,
    "lxcri_container_network_transmit_bytes": CT_LABELS,
    "lxcri_images": ("node",),
    "lxcri_image_blobs": ("node",),
    "lxcri_image_blob_bytes": ("node",),
    "lxcri_image_pulls": ("registry", "node"),
    "lxcri_image_pull_errors": ("registry", "node"),
    "lxcri_image_pull_duration_seconds": ("node", "le"),
    "lxcri_hook_runs": ("hook", "node"),
    "lxcri_hook_failures": ("hook", "node"),
    "lxcri_hook_duration_seconds": ("hook", "node", "le"),
    "lxcri_storage_size_bytes": ("storage", "type", "node"),
    "lxcri_storage_used_bytes": ("storage", "type", "node"),
    "lxcri_storage_available_bytes": ("storage", "type", "node"),
    "lxcri_zfs_dataset_used_bytes": ("dataset", "node"),
    "lxcri_zfs_dataset_referenced_bytes": ("dataset", "node"),
    "lxcri_collector_up": ("collector",),
    "lxcri_collector_duration_seconds": ("collector",),
    "lxcri_exporter_collections": (),
}


def this_node() -> str:
    return os.uname().nodename


def read_small(path: str) -> str | None:
    """A small /proc or cgroup file's text, None when unreadable: ``fsutil.read_text``
    without the buffered text layer, which is half the time of 4000 reads a scrape."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


class _Timed:
    """Runs each part of a scrape, timing it and turning its failure into ``up 0``."""

    def __init__(self) -> None:
        self.up = GaugeMetricFamily(
            "lxcri_collector_up", "1 when the source was read in this scrape", labels=["collector"]
        )
        self.took = GaugeMetricFamily(
            "lxcri_collector_duration_seconds",
            "Seconds this scrape spent reading the source",
            labels=["collector"],
        )

    def run(self, name: str, part: Callable[[], Iterable[Metric]]) -> list[Metric]:
        t0 = time.perf_counter()
        try:
            out = list(part())
            ok = 1.0
        except Exception as e:  # one source failing must not fail the scrape
            log.warning("metrics source failed", collector=name, error=f"{type(e).__name__}: {e}")
            out, ok = [], 0.0
        self.up.add_metric([name], ok)
        self.took.add_metric([name], time.perf_counter() - t0)
        return out


class LxcriCollector(Collector):
    """Everything lxcri exports; one instance per exporter (it keeps the backend open:
    pve-api caches the CTs' configs between scrapes)."""

    def __init__(self, cfg: Config, backend: Backend, storage_ttl: float = 60.0) -> None:
        self.cfg = cfg
        self.backend = backend
        # the node label of what this host holds (images, counters, local storage): on a
        # Proxmox node its name as pve-local knows it (its CTs carry it), else the host's
        local_node = getattr(backend, "node", "") if backend.name == "pve-local" else ""
        self.node = str(local_node or this_node())
        self.storage_ttl = storage_ttl
        self._storage: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        return []  # no describe-time read: registering must not scrape

    def collect(self) -> Iterator[Metric]:
        t = _Timed()
        yield from t.run("containers", self._containers)
        yield from t.run("images", self._images)
        yield from t.run("counters", self._counters)
        yield from t.run("storage", self._storage_cached)
        yield t.up
        yield t.took

    # -- containers ---------------------------------------------------------------------
    def _containers(self) -> list[Metric]:
        from lxcri_core.containers.stats import Sample, host_memory, parse_cgroup_mounts, sample
        from lxcri_core.errors import BackendError
        from lxcri_core.fsutil import read_text

        cts = self.backend.list()
        f = _ContainerFamilies()
        local = self.backend.name != "pve-api"  # pve-api's CTs run on other hosts
        mounts = parse_cgroup_mounts(read_text("/proc/self/mountinfo") or "") if local else {}
        hostmem = host_memory()
        for ct in cts:
            labels = [str(ct.vmid), ct.name, ct.image, ct.node or self.node]
            f.info.add_metric(
                labels,
                {"id": ct.id, "backend": self.backend.name, "image_digest": ct.image_digest},
            )
            # the current state only (a series of 0s for the other four would be 2000
            # more lines at 500 containers): count by (state) and == 1 work as ever
            f.state.add_metric([*labels, ct.status], 1.0)
            if ct.health:
                f.health.add_metric([*labels, ct.health], 1.0)
            f.restarts.add_metric(labels, ct.restarts)
            if not local or ct.status != "running" or ct.pid is None:
                continue
            try:
                s: Sample = sample(ct.pid, read_small, mounts=mounts, blkio=False)
            except BackendError:
                continue  # stopped meanwhile
            f.add_sample(labels, s, hostmem)
        return f.all()

    # -- image store --------------------------------------------------------------------
    def _images(self) -> list[Metric]:
        from lxcri_core.store.layout import Store

        store = Store(self.cfg.image_store, lock_timeout=self.cfg.lock_timeout)
        n_images = len(store.images()) if (store.root / "index.json").is_file() else 0
        n_blobs = size = 0
        try:
            with os.scandir(store.blobs_dir) as it:
                for entry in it:
                    if entry.is_file(follow_symlinks=False):
                        n_blobs += 1
                        size += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            pass
        out: list[Metric] = []
        for name, doc, value in (
            ("lxcri_images", "Named images in the image store", n_images),
            ("lxcri_image_blobs", "Blobs (layers, configs, manifests) in the image store", n_blobs),
            ("lxcri_image_blob_bytes", "Bytes of the image store's blobs", size),
        ):
            g = GaugeMetricFamily(name, doc, labels=["node"])
            g.add_metric([self.node], value)
            out.append(g)
        return out

    # -- pulls and hooks, from other processes -----------------------------------------
    def _counters(self) -> list[Metric]:
        doc = counters.read(self.cfg.root)
        pulls = CounterMetricFamily(
            "lxcri_image_pulls", "Image pulls started by lxcri", labels=["registry", "node"]
        )
        perr = CounterMetricFamily(
            "lxcri_image_pull_errors", "Image pulls that failed", labels=["registry", "node"]
        )
        pull_h = HistogramMetricFamily(
            "lxcri_image_pull_duration_seconds", "Duration of image pulls", labels=["node"]
        )
        hooks = CounterMetricFamily(
            "lxcri_hook_runs", "Runs of lxcri's container hooks", labels=["hook", "node"]
        )
        hfail = CounterMetricFamily(
            "lxcri_hook_failures", "Runs of lxcri's hooks that failed", labels=["hook", "node"]
        )
        hook_h = HistogramMetricFamily(
            "lxcri_hook_duration_seconds",
            "Duration of lxcri's hook work at a container's start and stop",
            labels=["hook", "node"],
        )
        total = _Sum(len(counters.BUCKETS["pull"]) + 1)
        for registry, s in sorted(doc.get("pull", {}).items()):
            pulls.add_metric([registry, self.node], s["count"])
            perr.add_metric([registry, self.node], s["failed"])
            total.add(s)
        pull_h.add_metric([self.node], _buckets("pull", total.buckets), total.sum)
        for hook, s in sorted(doc.get("hook", {}).items()):
            hooks.add_metric([hook, self.node], s["count"])
            hfail.add_metric([hook, self.node], s["failed"])
            hook_h.add_metric([hook, self.node], _buckets("hook", s["buckets"]), s["sum"])
        return [pulls, perr, pull_h, hooks, hfail, hook_h]

    # -- storage -----------------------------------------------------------------------
    def _storage_cached(self) -> list[Metric]:
        now = time.monotonic()
        if self._storage is not None and now - self._storage[0] < self.storage_ttl:
            return self._storage[1]
        metrics = self._storage_read()
        self._storage = (now, metrics)
        return metrics

    def _storage_read(self) -> list[Metric]:
        lab = ["storage", "type", "node"]
        size = GaugeMetricFamily("lxcri_storage_size_bytes", "Size of a storage", labels=lab)
        used = GaugeMetricFamily("lxcri_storage_used_bytes", "Bytes used on a storage", labels=lab)
        avail = GaugeMetricFamily(
            "lxcri_storage_available_bytes", "Bytes still available on a storage", labels=lab
        )
        for sid, kind, node, total, u, a in self._storages():
            for fam, value in ((size, total), (used, u), (avail, a)):
                if value is not None:
                    fam.add_metric([sid, kind, node], value)
        out: list[Metric] = [size, used, avail]
        if self.cfg.zfs_pool:
            from lxcri_core.storage.zfs_inspect import ZfsReader

            ds_used = GaugeMetricFamily(
                "lxcri_zfs_dataset_used_bytes",
                "Bytes a ZFS dataset below zfs_pool uses",
                labels=["dataset", "node"],
            )
            ds_ref = GaugeMetricFamily(
                "lxcri_zfs_dataset_referenced_bytes",
                "Bytes a ZFS dataset below zfs_pool refers to",
                labels=["dataset", "node"],
            )
            for d in ZfsReader().datasets(self.cfg.zfs_pool.strip("/")).datasets:
                if d.type == "filesystem":
                    ds_used.add_metric([d.name, self.node], d.used)
                    ds_ref.add_metric([d.name, self.node], d.referenced)
            out += [ds_used, ds_ref]
        return out

    def _storages(self) -> list[tuple[str, str, str, int | None, int | None, int | None]]:
        """(storage, type, node, size, used, available) of the backend's storages (Proxmox)
        and of lxcri's own storage backends under the state root (dir, overlay)."""
        out: list[tuple[str, str, str, int | None, int | None, int | None]] = []
        storages = getattr(self.backend, "storages", None)
        if storages is not None:
            for s in storages():
                out.append((s.id, s.type, s.node or self.node, s.total, s.used, s.avail))
        base = self.cfg.root / "storage"
        for name in ("dir", "overlay"):
            path = base / name
            if not path.is_dir():
                continue
            st = os.statvfs(path)
            total = st.f_blocks * st.f_frsize
            free = st.f_bfree * st.f_frsize
            avail = st.f_bavail * st.f_frsize
            out.append((f"lxcri-{name}", name, self.node, total, total - free, avail))
        return out


@dataclass
class _Sum:
    """Histogram series added together (pulls of every registry)."""

    n: int
    sum: float = 0.0

    def __post_init__(self) -> None:
        self.buckets = [0] * self.n

    def add(self, s: dict[str, Any]) -> None:
        self.sum += s["sum"]
        self.buckets = [a + b for a, b in zip(self.buckets, s["buckets"], strict=True)]


def _buckets(kind: str, counts: Sequence[int]) -> list[tuple[str, float]]:
    """Per-bucket counts as prometheus-client wants them: cumulative, ``le`` as text."""
    out, acc = [], 0
    for bound, n in zip([*counters.BUCKETS[kind], float("inf")], counts, strict=True):
        acc += n
        out.append(("+Inf" if bound == float("inf") else repr(float(bound)), float(acc)))
    return out


class _ContainerFamilies:
    def __init__(self) -> None:
        lab = list(CT_LABELS)
        self.info = InfoMetricFamily(
            "lxcri_container", "A container's id, backend and image digest", labels=lab
        )
        self.state = GaugeMetricFamily(
            "lxcri_container_state",
            "1 with the container's state (created, running, paused, restarting, exited)",
            labels=[*lab, "state"],
        )
        self.health = GaugeMetricFamily(
            "lxcri_container_health",
            "1 with the health (starting, healthy, unhealthy) of a container with a healthcheck",
            labels=[*lab, "health"],
        )
        self.restarts = CounterMetricFamily(
            "lxcri_container_restarts", "Restarts by the restart policy", labels=lab
        )
        self.cpu = CounterMetricFamily(
            "lxcri_container_cpu_seconds", "CPU time used by a running container", labels=lab
        )
        self.mem = GaugeMetricFamily(
            "lxcri_container_memory_usage_bytes",
            "Memory used, without inactive page cache (docker's figure)",
            labels=lab,
        )
        self.mem_limit = GaugeMetricFamily(
            "lxcri_container_memory_limit_bytes",
            "Memory limit (the host's memory when the container has none)",
            labels=lab,
        )
        self.pids = GaugeMetricFamily("lxcri_container_pids", "Processes and threads", labels=lab)
        self.pids_limit = GaugeMetricFamily(
            "lxcri_container_pids_limit", "Limit of processes and threads", labels=lab
        )
        self.rx = CounterMetricFamily(
            "lxcri_container_network_receive_bytes", "Bytes received (all but lo)", labels=lab
        )
        self.tx = CounterMetricFamily(
            "lxcri_container_network_transmit_bytes", "Bytes sent (all but lo)", labels=lab
        )

    def add_sample(self, labels: list[str], s: Any, hostmem: int | None) -> None:
        if s.cpu_ns is not None:
            self.cpu.add_metric(labels, s.cpu_ns / 1e9)
        if s.memory is not None:
            self.mem.add_metric(labels, s.memory)
        limit = s.memory_limit if s.memory_limit is not None else hostmem
        if limit is not None:
            self.mem_limit.add_metric(labels, limit)
        if s.pids is not None:
            self.pids.add_metric(labels, s.pids)
        if s.pids_limit is not None:
            self.pids_limit.add_metric(labels, s.pids_limit)
        self.rx.add_metric(labels, s.net_rx)
        self.tx.add_metric(labels, s.net_tx)

    def all(self) -> list[Metric]:
        return [
            self.info, self.state, self.health, self.restarts, self.cpu, self.mem,
            self.mem_limit, self.pids, self.pids_limit, self.rx, self.tx,
        ]  # fmt: skip
