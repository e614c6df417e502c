"""The Prometheus configuration, alert rules and Grafana dashboard, checked with the real
`promtool` (no server, no Ray): valid, every alert unit-tested firing and not firing, and every
metric they name one that the app or Ray exports (tests/data/exported_metrics.txt)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring import dashboard_exprs, exported_names, promql_metric_names, rule_exprs
from tests.projects import ROOT

PROMETHEUS = ROOT / "conf/prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*_test.yml"))
DASHBOARD = ROOT / "conf/grafana/dashboards/soccerpredict.json"
PROVISIONING = ROOT / "conf/grafana/provisioning"
EXPORTED = ROOT / "tests/data/exported_metrics.txt"
ROWS = ["HTTP traffic", "Serve replicas and queues", "Model", "ML quality"]


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: apt-get install prometheus (.ci/run does)")
    return binary


def _run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_prometheus_config_is_valid(promtool: str) -> None:
    """Also loads the rule files; the file_sd path need not exist (Ray writes it at run time)."""
    out = _run([promtool, "check", "config", "prometheus.yml"], PROMETHEUS)
    assert f"{len(RULES)} rule files found" in out


def test_rules_are_valid(promtool: str) -> None:
    assert RULES
    _run([promtool, "check", "rules", *map(str, RULES)], PROMETHEUS)


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(promtool: str, unit_test: Path) -> None:
    _run([promtool, "test", "rules", unit_test.name], unit_test.parent)


def _alerts(rule_file: Path) -> set[str]:
    groups = yaml.safe_load(rule_file.read_text())["groups"]
    return {r["alert"] for g in groups for r in g["rules"] if "alert" in r}


def _cases(unit_test: Path) -> dict[str, set[bool]]:
    """alertname -> {True if some case expects it firing, False if some case expects none}."""
    seen: dict[str, set[bool]] = defaultdict(set)
    for case in yaml.safe_load(unit_test.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            seen[check["alertname"]].add(bool(check.get("exp_alerts")))
    return seen


@pytest.mark.parametrize("rule_file", RULES, ids=lambda p: p.name)
def test_every_alert_is_shown_firing_and_not_firing(rule_file: Path) -> None:
    unit_test = PROMETHEUS / "tests" / f"{rule_file.stem}_test.yml"
    assert unit_test.exists(), f"{rule_file.name} has no unit test {unit_test.name}"
    loaded = yaml.safe_load(unit_test.read_text())["rule_files"]
    assert f"../rules/{rule_file.name}" in loaded  # an alert checked without its rules passes
    cases = _cases(unit_test)
    for alert in sorted(_alerts(rule_file)):
        assert True in cases.get(alert, set()), f"{alert}: no case shows it firing"
        assert False in cases.get(alert, set()), f"{alert}: no case shows it not firing"
    assert set(cases) <= _alerts(rule_file), "unit test names alerts its rule file lacks"


def _dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Row title -> its panels (a panel belongs to the last row above it in the list)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], list(panel.get("panels", [])))
        else:
            current.append(panel)
    return rows


def test_dashboard_structure() -> None:
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    rows = _rows(dashboard)
    assert list(rows) == ROWS
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are not unique"
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"panel {panel['title']!r} overlaps another"
        cells |= area
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]
            assert target.get("datasource", panel["datasource"]) == panel["datasource"]
    rows_in_order = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert [p["gridPos"]["y"] for p in rows_in_order] == sorted(
        p["gridPos"]["y"] for p in rows_in_order
    )


def test_ml_quality_row_has_a_drift_gauge_and_a_model_age_stat() -> None:
    quality = _rows(_dashboard())["ML quality"]
    exprs = {(p["type"], t["expr"]) for p in quality for t in p["targets"]}
    assert any(kind == "gauge" and "ray_soccerpredict_drift_share" in expr for kind, expr in exprs)
    assert any(
        kind == "stat" and "ray_soccerpredict_model_registered_timestamp_seconds" in expr
        for kind, expr in exprs
    )


def test_grafana_provisioning() -> None:
    datasources = yaml.safe_load((PROVISIONING / "datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9090"
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["global"]
    assert source["jsonData"]["timeInterval"] == scrape["scrape_interval"] == "15s"
    assert _dashboard()["templating"]["list"][0]["current"]["value"] == source["uid"]
    providers = yaml.safe_load((PROVISIONING / "dashboards/soccerpredict.yml").read_text())
    (provider,) = providers["providers"]
    assert (ROOT / provider["options"]["path"]).resolve() == DASHBOARD.parent


def test_dashboard_and_rules_name_only_exported_metrics() -> None:
    rules = rule_exprs(PROMETHEUS / "rules")
    recorded = {name for name, _ in rules if ":" in name}
    exported = exported_names(EXPORTED.read_text()) | {"up"} | recorded
    used = {
        (where, name)
        for where, expr in [*dashboard_exprs(DASHBOARD), *rules]
        for name in promql_metric_names(expr)
    }
    assert len(used) > 30
    missing = sorted({f"{name} (in {where})" for where, name in used if name not in exported})
    assert not missing, f"not in {EXPORTED.name}:\n" + "\n".join(missing)


def test_every_app_metric_is_in_the_exported_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve_app/metrics.py and the list agree: Ray exports `ray_<name>`, a counter `_total`."""
    made: list[tuple[str, str]] = []

    def kind(label: str) -> type:
        return type(label, (), {"__init__": lambda self, name, *a, **k: made.append((name, label))})

    fake = types.ModuleType("ray.util.metrics")
    fake.Counter, fake.Gauge, fake.Histogram = kind("counter"), kind("gauge"), kind("histogram")
    monkeypatch.setitem(sys.modules, "ray.util.metrics", fake)
    from serve_app.metrics import AppMetrics

    AppMetrics()
    exported = exported_names(EXPORTED.read_text())
    suffix = {"counter": "_total", "gauge": "", "histogram": "_bucket"}
    missing = [
        f"ray_{name}{suffix[label]}"
        for name, label in made
        if f"ray_{name}{suffix[label]}" not in exported
    ]
    assert len(made) > 20 and not missing, missing


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (route, status) (rate(ray_soccerpredict_http_requests_total{route!~"/metrics|/x"}[5m]))',
            {"ray_soccerpredict_http_requests_total"},
        ),
        ("histogram_quantile(0.95, sum by (le) (rate(a_bucket[$__rate_interval])))", {"a_bucket"}),
        ('(sum(x{status=~"5.."}) or vector(0)) / sum(x)', {"x"}),
        ("time() - max(drift_ts) > 2 * 86400", {"drift_ts"}),
        ("a / on () group_left sum(b) > 0.2 and on () sum(c) * 300 >= 20", {"a", "b", "c"}),
        ("a * on (job, instance) group_left (version, node) b", {"a", "b"}),
        ("sum without (instance) (c) unless ignoring (le) d offset 15m", {"c", "d"}),
        ("x == bool 1 or y offset -1h30m", {"x", "y"}),
        ("max_over_time(deriv(rec:rule:rate5m[1h:5m])[2h:]) @ start()", {"rec:rule:rate5m"}),
        ('label_replace(up{job="a b"}, "dst", "$1", "src", "(by|on) (x)")', {"up"}),
        ('count_values("version", m) and topk(3, n)', {"m", "n"}),
        ('{__name__="from_matcher", le="+Inf"} > Inf or NaN < 1e-3 + 0x1F', {"from_matcher"}),
        ("sum(rate(z[5m])) by (le) # by (comment) w", {"z"}),
        ('max(q{window="$window", league=~"${league:regex}"}) > $threshold', {"q"}),
        ("absent(ray_x)", {"ray_x"}),
    ],
)
def test_promql_metric_names(expr: str, names: set[str]) -> None:
    assert promql_metric_names(expr) == names


def test_exported_names() -> None:
    text = """\
# HELP ray_a_total A counter
# TYPE ray_a_total counter
ray_a_total{WorkerId="0a1f",route="/predict"} 3.0
# TYPE ray_h histogram
ray_h_bucket{le="0.1"} 1.0
# TYPE om_counter counter
# TYPE g gauge
g 1 1700000000000
up{job="ray"} 1
# EOF
"""
    assert exported_names(text) == {
        "ray_a_total",
        "ray_h",
        "ray_h_bucket",
        "ray_h_sum",
        "ray_h_count",
        "om_counter",
        "om_counter_total",
        "g",
        "up",
    }
