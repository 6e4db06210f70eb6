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
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lxcri_core.log import get_logger
from lxcri_core.metrics.container_metrics import container_metrics
from lxcri_core.metrics.counter_metrics import counter_metrics

if TYPE_CHECKING:
    from lxcri_core.backend import Backend
    from lxcri_core.config import Config

log = get_logger(__name__)

__all__ = ["LxcriCollector", "this_node"]


def this_node() -> str:
    return os.uname().nodename


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
        yield from t.run("containers", lambda: container_metrics(self.backend, self.node))
        yield from t.run("images", self._images)
        yield from t.run("counters", lambda: counter_metrics(self.cfg.root, self.node))
        yield from t.run("storage", self._storage_cached)
        yield t.up
        yield t.took

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
