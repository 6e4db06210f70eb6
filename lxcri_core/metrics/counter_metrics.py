"""Pull and hook metrics, from the counters that pulls and hooks leave (``counters``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from lxcri_core.metrics import counters


def counter_metrics(root: Path, node: str) -> list[Metric]:
    """Pulls and hook runs, from the counters file other processes add to."""
    doc = counters.read(root)
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
        pulls.add_metric([registry, node], s["count"])
        perr.add_metric([registry, node], s["failed"])
        total.add(s)
    pull_h.add_metric([node], _buckets("pull", total.buckets), total.sum)
    for hook, s in sorted(doc.get("hook", {}).items()):
        hooks.add_metric([hook, node], s["count"])
        hfail.add_metric([hook, node], s["failed"])
        hook_h.add_metric([hook, node], _buckets("hook", s["buckets"]), s["sum"])
    return [pulls, perr, pull_h, hooks, hfail, hook_h]


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
