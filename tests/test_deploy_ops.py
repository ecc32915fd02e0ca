"""The monitoring kit in deploy/: Prometheus alert rules (checked and unit-tested with
promtool), the Grafana dashboard, and their agreement with the metrics and runbooks of
docs/OPERATIONS.md.

promtool comes from Debian's `prometheus` package (scripts/test.sh installs it). Without it
the promtool tests skip, except under CI=true where a missing promtool fails them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tidings-dashboard.json"
OPERATIONS = ROOT / "docs" / "OPERATIONS.md"

# Every metric Tidings exports (docs/OPERATIONS.md, "Metrics"). Histograms are read through
# their _bucket, _sum and _count series.
COUNTERS_AND_GAUGES = frozenset({
    "tidings_connections",
    "tidings_notifications_created_total",
    "tidings_in_app_deliveries_total",
    "tidings_socket_errors_total",
    "tidings_socket_disconnects_total",
    "tidings_http_responses_total",
    "tidings_deliveries_total",
    "tidings_dead_letters_total",
    "tidings_queue_depth",
    "tidings_redis_up",
    "tidings_fanout_received_total",
    "tidings_fanout_published_total",
    "tidings_fanout_publish_skipped_total",
    "tidings_fanout_dropped_total",
})
HISTOGRAMS = frozenset({"tidings_create_to_emit_seconds", "tidings_delivery_seconds"})
METRICS = COUNTERS_AND_GAUGES | HISTOGRAMS

# What the dashboard must show (the brief of the operator's first screen).
DASHBOARD_MUST_SHOW = frozenset({
    "tidings_connections",
    "tidings_notifications_created_total",
    "tidings_in_app_deliveries_total",
    "tidings_create_to_emit_seconds",
    "tidings_http_responses_total",
    "tidings_deliveries_total",
    "tidings_dead_letters_total",
    "tidings_queue_depth",
})

PROMQL_KEYWORDS = frozenset({
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")
_GRAFANA_RANGE = re.compile(r"\$(?:__rate_interval|__interval|__range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads, histogram series folded to their base
    name. Strings, label matchers, ranges and grouping clauses are dropped first, so label
    names never pass for metrics; an identifier followed by "(" is a function."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _BRACKETS.sub("", text)
    text = _GROUPING.sub("", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        if text[match.end():].lstrip().startswith("(") or word.lower() in PROMQL_KEYWORDS:
            continue
        base = re.sub(r"_(?:bucket|sum|count)$", "", word)
        names.add(base if base in HISTOGRAMS else word)
    return names


def test_metric_names_sees_metrics_and_not_labels_functions_or_numbers() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) '
        '(rate(tidings_create_to_emit_seconds_bucket{code="up"}[5m]))) > 1e3 '
        "and on (job) sum(tidings_connections offset 5m) by (instance) / up"
    )
    assert metric_names(expr) == {"tidings_create_to_emit_seconds", "tidings_connections", "up"}


def load_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in load_rules() if "alert" in rule]


def load_dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those folded inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in all_panels(load_dashboard()["panels"])
            for target in panel.get("targets", []) if "expr" in target]


def as_plain_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by values Prometheus parses."""
    return _GRAFANA_VARIABLE.sub("tidings", _GRAFANA_RANGE.sub("5m", expr))


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (required under CI=true): "
                        "apt-get install --no-install-recommends prometheus")
        pytest.skip("promtool is missing (apt-get install --no-install-recommends prometheus)")
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120,
                          check=False)


# --- Alert rules -------------------------------------------------------------------------


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_alert_rules_pass_their_promtool_unit_tests(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_would_catch_a_wrong_expectation(
        promtool: str, tmp_path: Path) -> None:
    """Guards the guard: the same unit tests fail once an expected label is wrong."""
    shutil.copy(RULES, tmp_path / RULES.name)
    broken = RULES_TEST.read_text().replace("medium: email", "medium: push", 1)
    (tmp_path / RULES_TEST.name).write_text(broken)
    result = run_promtool(promtool, "test", "rules", str(tmp_path / RULES_TEST.name))
    assert result.returncode != 0
    assert "TidingsDeadLetters" in result.stdout + result.stderr


def test_every_alert_has_severity_summary_description_and_runbook() -> None:
    for rule in load_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        assert annotations["runbook"] == f"docs/OPERATIONS.md#{name.lower()}", name


def test_every_alert_has_a_runbook_section_in_the_operations_guide() -> None:
    headings = set(re.findall(r"^#{2,4} (\S+)\s*$", OPERATIONS.read_text(), re.MULTILINE))
    missing = [name for name in alert_names() if name not in headings]
    assert not missing, f"no runbook heading in docs/OPERATIONS.md for {missing}"


def test_every_alert_is_unit_tested_both_firing_and_quiet() -> None:
    cases = [case for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
             for case in test["alert_rule_test"]]
    for name in alert_names():
        outcomes = {bool(case["exp_alerts"]) for case in cases if case["alertname"] == name}
        assert outcomes == {True, False}, f"{name}: needs a firing and a quiet case"


def test_alert_rules_read_only_tidings_metrics_and_up() -> None:
    for rule in load_rules():
        unknown = metric_names(rule["expr"]) - METRICS - {"up"}
        assert not unknown, f"{rule['alert']} reads unknown metrics {unknown}"


def test_the_dead_letter_alert_is_labelled_by_medium() -> None:
    rule = next(rule for rule in load_rules() if rule["alert"] == "TidingsDeadLetters")
    assert re.search(r"by \([^)]*\bmedium\b[^)]*\)", rule["expr"])


# --- Grafana dashboard -------------------------------------------------------------------


def test_dashboard_panels_have_unique_ids_and_a_place_on_the_grid() -> None:
    panels = list(all_panels(load_dashboard()["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {ids}"
    for panel in panels:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_dashboard_queries_go_through_the_datasource_variable() -> None:
    dashboard = load_dashboard()
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in all_panels(dashboard["panels"]):
        targets = panel.get("targets", [])
        if not targets:
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        ref_ids = [target["refId"] for target in targets]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_dashboard_reads_only_tidings_metrics_and_shows_the_essential_ones() -> None:
    # label_values(<selector>, <label>): only the selector is PromQL.
    variable_queries = [
        re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", var["definition"])
        for var in load_dashboard()["templating"]["list"] if var["type"] == "query"
    ]
    read: set[str] = set()
    for expr in dashboard_exprs() + variable_queries:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= METRICS, f"unknown metrics {names - METRICS} in {expr!r}"
        read |= names
    assert DASHBOARD_MUST_SHOW <= read, f"not on the dashboard: {DASHBOARD_MUST_SHOW - read}"


def test_dashboard_create_to_emit_panel_shows_p50_p95_p99() -> None:
    quantiles = {
        match for expr in dashboard_exprs() if "tidings_create_to_emit_seconds" in expr
        for match in re.findall(r"histogram_quantile\(\s*([0-9.]+)", expr)
    }
    assert {"0.5", "0.95", "0.99"} <= quantiles


def test_every_dashboard_expression_parses(promtool: str, tmp_path: Path) -> None:
    """promtool cannot query without a server, so each expression becomes a recording rule
    of a throwaway file that `promtool check rules` parses."""
    exprs = dashboard_exprs()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{index}", "expr": as_plain_promql(expr)}
        for index, expr in enumerate(exprs)
    ]}]}
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = run_promtool(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_a_malformed_expression_fails_the_parse_check(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (le (rate(tidings_connections[5m]))"}]}]}))
    assert run_promtool(promtool, "check", "rules", str(path)).returncode != 0


# --- Operations guide --------------------------------------------------------------------


def test_operations_guide_lists_every_metric() -> None:
    text = OPERATIONS.read_text()
    missing = sorted(name for name in METRICS if f"`{name}" not in text)
    assert not missing, f"docs/OPERATIONS.md does not describe {missing}"
