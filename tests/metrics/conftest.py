"""The exporter as a real process, scraped over HTTP and parsed by prometheus-client's parser."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import lxcri_exe
from tests.containers.conftest import cfg, lxcri, lxenv  # noqa: F401 - fixtures
from tests.support.lxcenv import LxcEnv, free_port


@dataclass
class Scrape:
    text: str
    #: (sample name, frozenset of label items) -> value
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    def value(self, metric: str, /, **labels: str) -> float | None:
        """The one sample of ``name`` whose labels include ``labels`` (None: none)."""
        hits = [
            v for (n, ls), v in self.samples.items() if n == metric and set(labels.items()) <= ls
        ]
        assert len(hits) <= 1, f"{metric}{labels} matches {len(hits)} samples"
        return hits[0] if hits else None

    def names(self) -> set[str]:
        return {n for n, _ in self.samples}


def parse(text: str) -> Scrape:
    samples = {}
    for fam in text_string_to_metric_families(text):  # raises on text it cannot parse
        for s in fam.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return Scrape(text, samples)


@dataclass
class Exporter:
    proc: subprocess.Popen[str]
    port: int
    log: Path
    #: the CA of its certificate: scraped over HTTPS
    ca: Path | None = None

    def scrape(self) -> Scrape:
        import ssl

        scheme = "https" if self.ca else "http"
        ctx = None
        if self.ca:
            ctx = ssl.create_default_context(cafile=str(self.ca))
            # Python 3.13's default (X509 strict) wants extensions the test CA has not
            ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        url = f"{scheme}://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10, context=ctx) as r:
            assert r.status == 200
            return parse(r.read().decode())


def start_exporter(
    env: dict[str, str], log: Path, *args: str, backend: str = "lxc", ca: Path | None = None
) -> Exporter:
    port = free_port()
    listen = ["--listen", f"127.0.0.1:{port}"]
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [lxcri_exe(), "--backend", backend, "exporter", *listen, *args],
            stdout=f,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **env},
        )
    exp = Exporter(proc, port, log, ca)
    deadline = time.monotonic() + 20
    while True:
        try:
            exp.scrape()
            return exp
        except OSError as e:  # URLError, a refused connection, a TLS error
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_exporter(exp)
                raise AssertionError(f"exporter did not come up ({e}): {log.read_text()}") from None
            time.sleep(0.1)


def stop_exporter(exp: Exporter) -> int:
    if exp.proc.poll() is None:
        exp.proc.send_signal(signal.SIGTERM)
        try:
            exp.proc.wait(10)
        except subprocess.TimeoutExpired:
            exp.proc.kill()
            exp.proc.wait()
    return exp.proc.returncode


@pytest.fixture
def exporter(lxenv: LxcEnv, tmp_path: Path) -> Iterator[Exporter]:  # noqa: F811
    exp = start_exporter(lxenv.env, tmp_path / "exporter.log")
    try:
        yield exp
    finally:
        rc = stop_exporter(exp)
    assert rc == 0, f"exporter exited {rc}: {exp.log.read_text()}"
