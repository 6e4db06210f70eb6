"""``lxcri exporter``: serve the collectors over HTTP(S) for Prometheus (``/metrics``).

prometheus-client's own server (a thread per request); each scrape reads
the sources then and there, one scrape at a time (a second waits for the
first: the backend object is not shared between threads). TLS is
prometheus-client's (``certfile``/``keyfile``, optionally client
certificates); it has no basic auth: put a reverse proxy in front for that
(README, "Metrics"). Listening anywhere but loopback without TLS is allowed
but warned about.
"""

from __future__ import annotations

import ipaddress
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from lxcri_core.errors import ConfigError
from lxcri_core.log import get_logger

if TYPE_CHECKING:
    from lxcri_core.backend import Backend
    from lxcri_core.config import Config

log = get_logger(__name__)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_listen(text: str) -> Listen:
    """``HOST:PORT`` or ``[V6]:PORT`` (an address, not a name but ``localhost``)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(f"listen address {text!r} is not HOST:PORT (e.g. 127.0.0.1:9464)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"listen address {text!r}: {host!r} is not an IP address") from None
    return Listen(host, int(port))


class _Serialized(Collector):
    """One collection at a time through ``inner``; a scrape that waited for another's
    collection, begun after it asked, is answered with that one: a flood of concurrent
    requests (anyone on the host may connect) costs one collection, not one each."""

    def __init__(self, inner: Collector) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.last: tuple[float, list[Metric]] | None = None
        self.collections = 0

    def collect(self) -> Iterator[Metric]:
        asked = time.monotonic()
        with self.lock:
            if self.last is not None and self.last[0] >= asked:
                metrics = self.last[1]
            else:
                began = time.monotonic()
                metrics = list(self.inner.collect())
                self.collections += 1
                count = CounterMetricFamily(
                    "lxcri_exporter_collections",
                    "Collections run (concurrent scrapes share one)",
                    value=self.collections,
                )
                metrics.append(count)
                self.last = (began, metrics)
        yield from metrics


def registry_for(cfg: Config, backend: Backend) -> CollectorRegistry:
    """The exporter's registry: lxcri's collector and the exporter's own process."""
    from lxcri_core.metrics.collectors import LxcriCollector

    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Serialized(LxcriCollector(cfg, backend, cfg.exporter_storage_ttl)))
    ProcessCollector(registry=reg)
    return reg


def serve(
    cfg: Config,
    backend: Backend,
    listen: Listen,
    certfile: str | None = None,
    keyfile: str | None = None,
    ready: threading.Event | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT (or ``ready``'s owner sets ``stop``)."""
    if not listen.loopback and not certfile:
        log.warning(
            "the exporter listens beyond loopback without TLS; anyone who reaches it reads "
            "the container list",
            listen=str(listen),
        )
    reg = registry_for(cfg, backend)
    try:
        httpd, thread = start_http_server(
            listen.port, listen.host, registry=reg, certfile=certfile, keyfile=keyfile
        )
    except OSError as e:
        raise ConfigError(f"cannot listen on {listen}: {e.strerror or e}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info("exporter listening", listen=str(listen), tls=bool(certfile))
    try:
        if ready is not None:
            ready.set()
        stop.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
