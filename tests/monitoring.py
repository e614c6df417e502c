"""What the monitoring configuration names: the PromQL of the Grafana dashboard and of the alert
rules, the metric names in a PromQL expression, and the names in a Prometheus exposition.

Used by tests/test_monitoring_config.py (against the checked-in list of exported metrics) and
tests/test_monitoring.py (against what the running app and Ray export).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# Words that are not metric names where an identifier may stand. Functions and aggregations are
# recognised by the "(" that follows them instead, so no list of them is needed.
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
NAME_MATCHER = re.compile(r'__name__\s*=\s*"((?:\\.|[^"\\])*)"')
GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
TOKEN = re.compile(r"[A-Za-z_:][\w:]*|\d[\w.]*|\.\d[\w.]*|\S")
SUFFIXES = {
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
    "counter": ("_total",),
}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # the panels of a collapsed row


def dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    """("dashboard panel <title>", expr) for every PromQL query of every panel."""
    dashboard = json.loads(Path(path).read_text())
    return [
        (f"dashboard panel {panel.get('title', '')}", target["expr"])
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def rule_exprs(rules_dir: Path) -> list[tuple[str, str]]:
    """(record name, expr) for recording rules and ("alert <name>", expr) for alerts."""
    found = []
    for path in sorted(Path(rules_dir).glob("*.yml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                name = rule["record"] if "record" in rule else f"alert {rule['alert']}"
                found.append((name, str(rule["expr"])))
    return found


def _strip_brackets(expr: str, opening: str, closing: str) -> str:
    """`expr` without anything inside `opening`...`closing` (no nesting occurs once strings are
    gone: label matchers and range/subquery durations hold no brackets of their own kind)."""
    return re.sub(
        re.escape(opening) + r"[^" + re.escape(closing) + r"]*" + re.escape(closing), " ", expr
    )


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (Grafana variables allowed).

    Left out: functions and aggregations (an identifier followed by "("), keywords, label names
    in selectors and in by/without/on/ignoring/group_left/group_right lists, string literals,
    durations, numbers and comments. A `{__name__="x"}` selector counts as x.
    """
    names = set(NAME_MATCHER.findall(expr))
    text = STRING.sub('""', expr)
    text = re.sub(r"#[^\n]*", " ", text)
    text = GRAFANA_VARIABLE.sub(" 1m ", text)
    text = _strip_brackets(_strip_brackets(text, "{", "}"), "[", "]")
    text = LABEL_LIST.sub(" ", text)
    tokens = TOKEN.findall(text)
    for i, token in enumerate(tokens):
        if not (token[0].isalpha() or token[0] in "_:") or token.lower() in KEYWORDS:
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "(":
            continue  # a function or an aggregation
        names.add(token)
    return names


def exported_names(exposition_text: str) -> set[str]:
    """Family and sample names in Prometheus text exposition.

    Sample lines give their own names; HELP/TYPE lines give the family, and for histograms,
    summaries and counters also the sample names Prometheus stores (`_bucket`, `_sum`, `_count`,
    `_total`), so a metadata-only list stands for the samples a scrape would bring.
    """
    names: set[str] = set()
    for line in exposition_text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                family = parts[2]
                names.add(family)
                kind = parts[3] if parts[1] == "TYPE" and len(parts) > 3 else ""
                names |= {family + s for s in SUFFIXES.get(kind, ()) if not family.endswith(s)}
            continue
        names.add(re.split(r"[{\s]", line, maxsplit=1)[0])
    return names
