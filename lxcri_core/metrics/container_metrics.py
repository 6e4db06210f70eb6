"""Per-container metrics: one bulk list, then a few small cgroup and /proc files each.

``containers.stats`` reads what ``lxcri stats`` shows; here the mount table
is parsed once for all containers, block I/O is not read, and the files are
read without Python's buffered text layer: a scrape of 500 running
containers reads ~4000 files (bench/exporter.py).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from lxcri_core.metrics.catalogue import CT_LABELS

if TYPE_CHECKING:
    from lxcri_core.backend import Backend


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


def container_metrics(backend: Backend, node: str) -> list[Metric]:
    """The containers of ``backend`` from its bulk list; the counters of the running ones
    this host can see from their cgroups (not pve-api's: they run on other hosts)."""
    from lxcri_core.containers.stats import Sample, host_memory, parse_cgroup_mounts, sample
    from lxcri_core.errors import BackendError
    from lxcri_core.fsutil import read_text

    cts = backend.list()
    f = ContainerFamilies()
    local = backend.name != "pve-api"  # pve-api's CTs run on other hosts
    mounts = parse_cgroup_mounts(read_text("/proc/self/mountinfo") or "") if local else {}
    hostmem = host_memory()
    for ct in cts:
        labels = [str(ct.vmid), ct.name, ct.image, ct.node or node]
        f.info.add_metric(
            labels,
            {"id": ct.id, "backend": backend.name, "image_digest": ct.image_digest},
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


class ContainerFamilies:
    """The per-container families of one scrape."""

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
