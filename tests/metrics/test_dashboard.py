"""contrib/grafana's dashboard asks only for metrics and labels the exporter has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lxcri_core.metrics.catalogue import METRICS

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "lxcri-dashboard.json"
SUFFIXES = ("_bucket", "_count", "_sum", "_total")
#: PromQL words that are no metric: functions, aggregations, keywords, and Grafana's
#: own label_values().
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
    "histogram_quantile", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "label_values", "abs", "clamp_min", "clamp_max",
}  # fmt: skip
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)[^,]*,\s*(\w+)\s*\)")
_WORD = re.compile(r"[a-zA-Z_][a-zA-Z0-9_:]*")


def _exprs(node: Any) -> Iterator[str]:
    """Every PromQL text in the dashboard: panel targets and templating queries."""
    if isinstance(node, dict):
        for k, v in node.items():
            promql = k in ("expr", "definition") or (k == "query" and "(" in str(v))
            if promql and isinstance(v, str):
                yield v
            else:
                yield from _exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _exprs(v)


def base(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
            return name[: -len(suffix)]
    return name


def problems(expr: str) -> list[str]:
    """What in ``expr`` names no exported metric, or a label its metric lacks."""
    out = []
    metrics: set[str] = set()
    for m in re.finditer(r"\blxcri_[a-zA-Z0-9_]+", _STRINGS.sub('""', expr)):
        name = base(m.group())
        if name not in METRICS:
            out.append(f"unknown metric {m.group()}")
        metrics.add(name)
    for m in _SELECTOR.finditer(expr):
        name = base(m.group(1))
        for label in _MATCHER.findall(m.group(2)):
            if label not in METRICS.get(name, ()):
                out.append(f"{m.group(1)} has no label {label}")
    known = {label for name in metrics for label in METRICS.get(name, ())}
    for group in _GROUPING.findall(expr):
        for label in (g.strip() for g in group.split(",") if g.strip()):
            if label not in known:
                out.append(f"grouping by {label}, which none of {sorted(metrics)} has")
    for name, label in _LABEL_VALUES.findall(expr):
        if label not in METRICS.get(base(name), ()):
            out.append(f"label_values: {name} has no label {label}")
    # any other word that is not PromQL's nor a label: a metric of another exporter
    bare = _GROUPING.sub("", _STRINGS.sub('""', re.sub(r"\{[^}]*\}|\[[^]]*\]", "", expr)))
    for word in _WORD.findall(bare):
        if word.startswith("lxcri_") or word in PROMQL_WORDS or word in known:
            continue
        out.append(f"unknown word {word} (not an lxcri metric)")
    return out


def test_the_dashboard_has_each_section_and_parses() -> None:
    doc = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in doc["panels"] if p["type"] == "row"]
    assert rows == [
        "Containers overview",
        "Container detail: $name",
        "Image pulls and hooks",
        "Storage",
    ]
    assert len(list(_exprs(doc))) > 30


def test_every_expression_names_exported_metrics_and_labels() -> None:
    doc = json.loads(DASHBOARD.read_text())
    bad = {e: p for e in _exprs(doc) if (p := problems(e))}
    assert not bad, json.dumps(bad, indent=1)


@pytest.mark.parametrize(
    "expr",
    [
        "rate(lxcri_container_cpu_secnds_total[5m])",  # a typo
        'lxcri_container_pids{container="x"}',  # no such label
        "sum by (pod) (lxcri_container_pids)",
        "node_memory_MemTotal_bytes",  # another exporter's
        "label_values(lxcri_container_info, pod)",
    ],
)
def test_the_checker_catches_what_grafana_would_show_as_no_data(expr: str) -> None:
    assert problems(expr)
