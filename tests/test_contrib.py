"""contrib/'s Prometheus alert rules and Grafana dashboard read only what /metrics exposes, and
the dashboard shows every figure it exposes: a metric renamed in service/metrics.py fails here,
not silently on a province's monitoring."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "contrib" / "prometheus-alerts.yml"
DASHBOARD = ROOT / "contrib" / "grafana-dashboard.json"
PROMETHEUS_OWN = {"up"}  # written by Prometheus for each scrape, not by favad
OPERATORS = {"and", "or", "unless", "bool", "offset"}
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def series(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not its functions, labels or operators)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings: label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges: [5m]
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = re.findall(r"(?<![\w.])([A-Za-z_][\w:]*)\b(?!\s*\()", expr)
    return set(names) - OPERATORS


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


@pytest.fixture
def exposed(backend) -> tuple[set[str], set[str]]:
    """(sample names, family names) of /metrics, with every histogram and counter fed once."""
    from service.metrics import Metrics

    figures = Metrics(backend)
    figures.on_call("complaint_filed", "28")
    figures.turnaround.observe(0.002)
    figures.on_batch(3, 0.01)
    families = list(text_string_to_metric_families(generate_latest(figures.registry).decode()))
    created = {f.name for f in families if f.name.endswith("_created")}  # when a series began: no figure
    return {s.name for f in families for s in f.samples}, {f.name for f in families} - created


def test_the_expression_parser_finds_metrics_and_nothing_else():
    assert series('histogram_quantile(0.99, sum by (instance, le) (rate(favad_x_bucket{a="b"}[5m]))) > 0.5') \
        == {"favad_x_bucket"}
    assert series('up{job="favad"} == 0 and on (instance) favad_ready offset 5m') == {"up", "favad_ready"}


@sqlite_only
def test_every_metric_the_alerts_and_the_dashboard_read_is_one_favad_exposes(exposed):
    samples, _ = exposed
    used = {name for rule in alert_rules() for name in series(rule["expr"])}
    used |= {name for expr in dashboard_exprs() for name in series(expr)}
    assert used - samples - PROMETHEUS_OWN == set()
    assert used & samples, "the parser found no favad metric at all"


@sqlite_only
def test_the_dashboard_shows_every_figure_favad_exposes(exposed):
    _, families = exposed
    shown = {name for expr in dashboard_exprs() for name in series(expr)}
    assert {f for f in families if not any(name.startswith(f) for name in shown)} == set()


def test_the_alerts_cover_what_an_operator_must_hear_of_and_each_says_what_to_do():
    rules = alert_rules()
    reads = {name for rule in rules for name in series(rule["expr"])}
    assert {"favad_complaints_overdue", "favad_outbox_oldest_unsent_seconds", "favad_outbox_dead",
            "favad_journal_backlog", "favad_database_up", "favad_ready", "up"} <= reads
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert re.fullmatch(r"Favad[A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_the_dashboard_is_one_grafana_imports():
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    assert [v["name"] for v in dash["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(set(refs)) == len(refs)
