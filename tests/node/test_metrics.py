"""The Grafana dashboard charts exactly what the node exports, in valid PromQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest

from node.api.metrics import NodeMetrics, gwei

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "pictor-node.json"
METRIC = re.compile(r"\bpictor_[a-z_]+\b")


def exported() -> set[str]:
    """Sample names as Prometheus stores them (counters gain ``_total``)."""
    names = set()
    for family in NodeMetrics().registry.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize(("title", "expr"), queries())
def test_every_query_parses_and_names_exported_metrics(title: str, expr: str) -> None:
    promql_parser.parse(expr.replace("$instance", ".*"))
    names = set(METRIC.findall(expr))
    assert names, f"{title}: no pictor metric in {expr}"
    assert names <= exported(), f"{title}: {names - exported()} not exported by the node"


def test_every_exported_metric_is_charted() -> None:
    charted = {n for _, expr in queries() for n in METRIC.findall(expr)}
    assert exported() - charted == set()


def test_peer_score_bands_and_gwei() -> None:
    metrics = NodeMetrics()
    metrics.set_peer_scores([(0.0, False), (10.0, False), (60.0, False), (150.0, True)])
    text = metrics.render().decode()
    for band, n in (("0", 1), ("0-25", 1), ("25-50", 0), ("50-100", 1), ("banned", 1)):
        assert f'pictor_peers_by_score{{band="{band}"}} {n}.0' in text
    assert gwei(1_500_000_000) == 1.5 and gwei(10**27) == 10**18  # 1e9 ETH stays exact in gwei
