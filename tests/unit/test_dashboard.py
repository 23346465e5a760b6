"""The Grafana dashboard: generated from code, committed as JSON, and naming only metrics Tandem exports."""

from __future__ import annotations

import json
import re

import pytest

from common import metrics
from deploy.grafana import build_dashboard

pytestmark = pytest.mark.timeout(60)

# PromQL words that look like identifiers but are not metric names (functions are recognised by their "(").
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left after removing strings, label
    matchers, range selectors and grouping clauses, that are neither keywords nor function calls."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = re.findall(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)\b(?!\s*\()", expr)
    return {name for name in names if name not in _KEYWORDS}


def committed() -> dict:
    return json.loads(build_dashboard.OUTPUT.read_text())


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows included."""
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found += [(inner["title"], target["expr"]) for target in inner.get("targets", [])]
    return found


def test_the_name_parser_sees_metrics_and_ignores_functions_labels_and_ranges():
    expr = 'histogram_quantile(0.99, sum by (le, actor_id) (rate(tandem_a_bucket{robot=~"x|y"}[$__rate_interval])))'
    assert metric_names(expr) == {"tandem_a_bucket"}
    assert metric_names("scalar(max(x_total)) - on (instance) y{a=\"b\"} offset 5m") == {"x_total", "y"}
    assert metric_names('m{name=~".*_loss"}') == {"m"}


def test_every_query_names_only_metrics_the_code_exports():
    exported = metrics.exported_names()
    panels = queries(committed())
    assert len(panels) >= 25
    for title, expr in panels:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= exported, f"{title}: {sorted(names - exported)} are not declared in common/metrics.py"


def test_committed_json_is_what_the_code_generates():
    assert build_dashboard.main(["--check"]) == 0, "run: python -m deploy.grafana.build_dashboard"


def test_dashboard_json_round_trips_through_the_foundation_sdk():
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()
    text = build_dashboard.OUTPUT.read_text()
    model = Dashboard.from_json(json.loads(text))
    assert build_dashboard.to_json(model) == text
    assert model.uid == build_dashboard.UID and len(model.panels) == len(committed()["panels"])


def test_the_issue_panels_are_all_there():
    titles = " | ".join(panel["title"].lower() for panel in committed()["panels"])
    for wanted in ("actors connected", "transitions/s", "bytes/s", "spool", "staleness", "updates/s",
                   "update seconds", "replay size", "losses", "q statistics", "entropy", "gate-open",
                   "control period", "overruns", "watchdog", "interventions", "success rate",
                   "rejected messages", "reconnects", "training stage"):  # fmt: skip
        assert wanted in titles, wanted


def test_panel_ids_are_unique_and_every_panel_uses_the_provisioned_datasource():
    dashboard = committed()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    provisioning = (build_dashboard.OUTPUT.parents[1] / "provisioning" / "datasources" / "prometheus.yml").read_text()
    assert f"uid: {build_dashboard.DATASOURCE.uid}" in provisioning
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == build_dashboard.DATASOURCE.uid, panel["title"]
